"""The shape of a seed: what the emulator's store is filled with at start or on reset.

``seed.py`` builds these (demo, empty, large); ``store.py`` loads them. Content is a
callable yielding chunks so that a 64 MiB (or 1 GiB) file is streamed to its blob, never held
in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Content = Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class SeedUser:
    id: int
    login: str
    name: str


@dataclass(frozen=True)
class SeedApp:
    """An OAuth application. Client-credentials tokens act as ``service_user_id``."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    service_user_id: int | None = None


@dataclass(frozen=True)
class SeedVersion:
    content: Content
    created_by: int  # a SeedUser id
    notes: str | None = None
    # Seconds before "now" at load time; older versions get larger ages.
    age_seconds: float = 0.0


@dataclass(frozen=True)
class SeedFile:
    name: str
    versions: tuple[SeedVersion, ...]
    private: bool = False
    deleted: bool = False  # in the recycle bin
    read_only: bool = False
    checked_out_by: int | None = None  # a SeedUser id
    checked_out_for_seconds: float = 0.0
    description: str | None = None


@dataclass(frozen=True)
class SeedFolder:
    name: str
    children: tuple[SeedFolder | SeedFile, ...] = ()
    private: bool = False
    deleted: bool = False
    read_only: bool = False
    age_seconds: float = 0.0


@dataclass(frozen=True)
class SeedProject:
    id: int
    name: str
    display_name: str
    project_number: str
    documents: SeedFolder  # the root folder's children are this folder's children


@dataclass(frozen=True)
class SeedCompany:
    id: int
    name: str
    projects: tuple[SeedProject, ...]
    documents: SeedFolder
    member_user_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Seed:
    name: str
    users: tuple[SeedUser, ...]
    apps: tuple[SeedApp, ...]
    companies: tuple[SeedCompany, ...]
    # The user the /oauth/authorize approval page signs in as.
    demo_user_id: int
    extra: dict[str, str] = field(default_factory=dict)
