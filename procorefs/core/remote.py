"""What the core needs from the API client, as a Protocol, and the core's view of remote items.

``RemoteClient`` is the subset of ``procorefs.api.ProcoreClient`` the core calls, so the core
can be unit-tested with a small fake and never depends on how the client is built;
``RangeStreamer`` is what a client offers on top to stream a range of a version into a sink
(``ProcoreClient.download_to``), which the reader uses to write downloads straight into the
content cache (a client without it is read through ``read_range``). ``Item`` is
one folder or file as the core caches it (plain, frozen, JSON-serialisable for the on-disk
metadata), built from the client's ``Folder``/``File``/``DocumentEntry`` models. ``Listing`` is
one folder with its visible children and their local names, immutable: a change makes a new
``Listing``, so a reader holding one never sees it half-updated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from procorefs.api import Priority, Scope
from procorefs.api.downloads import ByteSink
from procorefs.api.models import (
    Company,
    DocumentEntry,
    File,
    FileVersion,
    Folder,
    Project,
    User,
    UserRef,
)
from procorefs.core.names import NameCodec, NameRequest, assign_names_in, lookup_key


class RemoteClient(Protocol):
    """The calls the core makes; ``procorefs.api.ProcoreClient`` provides all of them."""

    def me(self) -> User: ...

    def companies(self) -> list[Company]: ...

    def projects(self, company_id: int) -> list[Project]: ...

    def root_folder(self, scope: Scope, *, priority: Priority = ...) -> Folder: ...

    def folder(self, scope: Scope, folder_id: int, *, priority: Priority = ...) -> Folder: ...

    def create_folder(self, scope: Scope, name: str, parent_id: int | None) -> Folder: ...

    def update_folder(self, scope: Scope, folder_id: int, *, name: str | None = None,
                      parent_id: int | None = None) -> Folder: ...

    def delete_folder(self, scope: Scope, folder_id: int) -> None: ...

    def file(self, scope: Scope, file_id: int) -> File: ...

    def update_file(self, scope: Scope, file_id: int, *, name: str | None = None,
                    parent_id: int | None = None) -> File: ...

    def delete_file(self, scope: Scope, file_id: int) -> None: ...

    def documents(self, scope: Scope, *,
                  updated_between: tuple[datetime, datetime] | None = None,
                  folder_id: int | None = None, document_type: str | None = None,
                  in_recycle_bin: bool | None = False, per_page: int | None = None,
                  priority: Priority = ...) -> Iterator[DocumentEntry]: ...

    def read_range(self, version: FileVersion, offset: int, length: int, *,
                   priority: Priority = ...) -> bytes: ...

    # The write path (core/commits.py) also uploads and creates files and versions.
    def upload(self, scope: Scope, path: Path, *, filename: str, state: Any = None,
               on_state: Callable[[Any], object] | None = None,
               progress: Callable[[int, int], object] | None = None) -> str: ...

    def create_file(self, scope: Scope, name: str, parent_id: int | None,
                    upload_uuid: str) -> File: ...

    def create_version(self, scope: Scope, file_id: int, upload_uuid: str, *,
                       notes: str | None = None) -> FileVersion: ...


@runtime_checkable
class RangeStreamer(Protocol):
    """A client that streams bytes ``offset``..``offset+length`` of a version into ``dest``
    in order, chunk by chunk (resuming after a break), and answers how many it wrote."""

    def download_to(self, version: FileVersion, dest: ByteSink, *, offset: int = ...,
                    length: int | None = ..., priority: Priority = ...) -> int: ...


def ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def scope_key(scope: Scope) -> str:
    """A stable text form of a scope, for the on-disk metadata."""
    return f"{scope.company_id}:{scope.project_id if scope.project_id is not None else ''}"


def scope_from_key(text: str) -> Scope:
    company, _, project = text.partition(":")
    return Scope(int(company), int(project) if project else None)


@dataclass(frozen=True, slots=True)
class Item:
    """One visible Procore folder or file, as far as the filesystem cares."""

    kind: Literal["file", "dir"]
    id: int
    name: str  # the remote name
    parent_id: int | None
    size: int
    created: float | None
    updated: float | None
    read_only: bool = False
    version: FileVersion | None = None  # files: the current (highest-numbered) version
    checked_out_by: UserRef | None = None
    checked_out_until: float | None = None

    @property
    def version_number(self) -> int | None:
        return self.version.number if self.version is not None else None

    @classmethod
    def of_folder(cls, folder: Folder) -> Item:
        return cls(kind="dir", id=folder.id, name=folder.name, parent_id=folder.parent_id,
                   size=0, created=None, updated=ts(folder.updated_at),
                   read_only=folder.read_only)

    @classmethod
    def of_file(cls, f: File) -> Item:
        version = f.current_version
        return cls(kind="file", id=f.id, name=f.name, parent_id=f.parent_id,
                   size=version.size if version is not None else f.size,
                   created=ts(f.created_at), updated=ts(f.updated_at), read_only=f.read_only,
                   version=version, checked_out_by=f.checked_out_by,
                   checked_out_until=ts(f.checked_out_until))

    @classmethod
    def of_document(cls, doc: DocumentEntry) -> Item:
        if doc.document_type == "folder":
            return cls(kind="dir", id=doc.id, name=doc.name, parent_id=doc.parent_id, size=0,
                       created=ts(doc.created_at), updated=ts(doc.updated_at),
                       read_only=doc.read_only)
        return cls(kind="file", id=doc.id, name=doc.name, parent_id=doc.parent_id,
                   size=doc.size, created=ts(doc.created_at), updated=ts(doc.updated_at),
                   read_only=doc.read_only, version=doc.current_version,
                   checked_out_by=doc.checked_out_by,
                   checked_out_until=ts(doc.checked_out_until))

    def merged_into_old(self, old: Item | None) -> Item:
        """Keep what this (possibly thinner) view lacks from the previous view of the item."""
        if old is None or old.kind != self.kind:
            return self
        merged = replace(self, created=self.created if self.created is not None else old.created)
        if merged.kind == "file" and merged.version is None and old.version is not None:
            # An answer without file_versions (a PATCH may omit them) keeps what we knew.
            merged = replace(merged, version=old.version, size=old.size)
        return merged

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "k": self.kind, "id": self.id, "n": self.name, "p": self.parent_id,
            "s": self.size, "c": self.created, "u": self.updated, "ro": self.read_only,
        }
        if self.version is not None:
            v = self.version
            data["v"] = {"id": v.id, "n": v.number, "s": v.size, "url": v.url,
                         "c": ts(v.created_at)}
        if self.checked_out_by is not None:
            data["cob"] = {"id": self.checked_out_by.id, "login": self.checked_out_by.login,
                           "name": self.checked_out_by.name}
            data["cou"] = self.checked_out_until
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Item:
        version = None
        raw = data.get("v")
        if isinstance(raw, Mapping):
            created = raw.get("c")
            version = FileVersion(
                id=int(raw["id"]), number=int(raw["n"]), size=int(raw["s"]), url=str(raw["url"]),
                created_at=datetime.fromtimestamp(created, UTC) if created is not None else None)
        by = None
        rawby = data.get("cob")
        if isinstance(rawby, Mapping):
            by = UserRef(id=int(rawby["id"]), login=rawby.get("login"), name=rawby.get("name"))
        kind: Literal["file", "dir"] = "file" if data["k"] == "file" else "dir"
        return cls(kind=kind, id=int(data["id"]), name=str(data["n"]), parent_id=data.get("p"),
                   size=int(data["s"]), created=data.get("c"), updated=data.get("u"),
                   read_only=bool(data.get("ro")), version=version, checked_out_by=by,
                   checked_out_until=data.get("cou"))


def visible(item_is_deleted: bool, item_is_bin: bool) -> bool:
    return not (item_is_deleted or item_is_bin)


def children_of(folder: Folder) -> dict[int, Item]:
    """The visible children of a fetched folder: the recycle bin and deleted items are hidden."""
    out: dict[int, Item] = {}
    for sub in folder.folders:
        if visible(sub.is_deleted, sub.is_recycle_bin):
            out[sub.id] = Item.of_folder(sub)
    for f in folder.files:
        if not f.is_deleted:
            out[f.id] = Item.of_file(f)
    return out


@dataclass(frozen=True)
class Listing:
    """One folder and its visible children, with local names assigned once.

    ``fetched_at`` is when its content was last known to be true (monotonic seconds), by a
    fetch or an update of our own; ``fresh_until`` is how long it may answer without asking.
    Build one with ``Listing.build``; the ``with_*`` methods return changed copies.
    """

    scope: Scope
    folder: Item
    children: Mapping[int, Item]
    codec: NameCodec
    fetched_at: float
    fresh_until: float
    names: Mapping[int, str]
    by_key: Mapping[str, int]

    @classmethod
    def build(cls, scope: Scope, folder: Item, children: Mapping[int, Item], codec: NameCodec,
              fetched_at: float, fresh_until: float) -> Listing:
        names = assign_names_in(codec, (
            NameRequest(item.name, item.id, item.kind == "file", (0, item.id))
            for item in children.values()), folder=repr(folder.name or "/"))
        by_key = {lookup_key(codec, n): i for i, n in names.items()}
        return cls(scope, folder, dict(children), codec, fetched_at, fresh_until, names, by_key)

    def lookup(self, local: str) -> Item | None:
        ident = self.by_key.get(lookup_key(self.codec, local))
        return self.children[ident] if ident is not None else None

    def entries(self) -> list[tuple[str, Item]]:
        return sorted(((self.names[i], item) for i, item in self.children.items()),
                      key=lambda pair: pair[0])

    def with_children(self, children: Mapping[int, Item]) -> Listing:
        return Listing.build(self.scope, self.folder, children, self.codec, self.fetched_at,
                             self.fresh_until)

    def with_folder(self, folder: Item) -> Listing:
        return replace(self, folder=folder)

    def with_freshness(self, fresh_until: float) -> Listing:
        return replace(self, fresh_until=fresh_until)
