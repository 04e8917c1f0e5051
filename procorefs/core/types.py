"""The plain values the core hands to its adapters: stats, directory entries, filesystem sizes.

Frozen dataclasses only: an adapter turns them into ``st_*`` dicts (FUSE) or FILETIMEs and
attribute bits (WinFsp); nothing OS-specific lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class EntryStat:
    kind: Literal["file", "dir"]
    size: int
    mtime: float  # from updated_at
    ctime: float  # from created_at (folders: updated_at when created_at is unknown)
    birthtime: float
    read_only: bool  # checked out by someone else, or read_only in Procore
    remote_id: int | None  # Procore id (None for synthetic dirs such as a company folder)
    version: int | None  # current version number for files


@dataclass(frozen=True, slots=True)
class DirEntry:
    name: str  # local (encoded) name
    stat: EntryStat


@dataclass(frozen=True, slots=True)
class StatFs:
    block_size: int
    blocks: int
    blocks_free: int
    files: int
    files_free: int
    name_max: int
