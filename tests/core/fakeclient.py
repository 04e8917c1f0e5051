"""An in-memory stand-in for ``ProcoreClient`` for the core's unit tests.

It keeps folders, files and versions per scope the way the Procore notes describe them (one
level of children per folder listing, soft deletes into a recycle bin, ``/documents`` rows
with ``updated_at`` from an injected clock), counts every call by name, and can be switched
offline. It is deliberately small: the real client and the emulator are tested in their own
tiers, and ``tests/core`` runs the core against them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from procorefs.api import Priority, Scope
from procorefs.api.errors import (
    Conflict,
    Forbidden,
    NetworkError,
    NotFound,
    ValidationFailed,
)
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
from procorefs.clock import Clock

ME = UserRef(id=1, login="me@test", name="Me")
OTHER = UserRef(id=2, login="other@test", name="Other Person")


@dataclass
class _Node:
    id: int
    scope: Scope
    kind: str  # "folder" | "file"
    name: str
    parent_id: int | None
    created: float
    updated: float
    deleted: bool = False
    recycle_bin: bool = False
    read_only: bool = False
    versions: list[tuple[int, bytes, float]] = field(default_factory=list)  # (id, data, when)
    checked_out_by: UserRef | None = None
    checked_out_until: float | None = None


class FakeClient:
    def __init__(self, clock: Clock, *, company_id: int = 10, projects: tuple[int, ...] = (100,),
                 project_names: dict[int, str] | None = None,
                 company_name: str = "Acme") -> None:
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self.offline = False
        self.forbidden_scopes: set[Scope] = set()
        self.delay: threading.Event | None = None  # when set, folder() waits for it
        self.ranges: list[tuple[int, int, int, Priority]] = []
        self.uploads: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._next = 1000
        self._nodes: dict[int, _Node] = {}
        self._roots: dict[Scope, int] = {}
        self.company = Company(id=company_id, name=company_name)
        names = project_names or {}
        self.project_list = [Project(id=p, name=names.get(p, f"Project {p}"),
                                     display_name=names.get(p, f"Project {p}"),
                                     company_id=company_id) for p in projects]
        for scope in [Scope(company_id)] + [Scope(company_id, p) for p in projects]:
            root = self._new(scope, "folder", "", None)
            self._roots[scope] = root.id
            self._new(scope, "folder", "Recycle Bin", root.id).recycle_bin = True

    # --------------------------------------------------------------- helpers

    def _id(self) -> int:
        self._next += 1
        return self._next

    def _new(self, scope: Scope, kind: str, name: str, parent_id: int | None) -> _Node:
        now = self.clock.time()
        node = _Node(self._id(), scope, kind, name, parent_id, now, now)
        self._nodes[node.id] = node
        return node

    def root_id(self, scope: Scope) -> int:
        return self._roots[scope]

    def add_folder(self, scope: Scope, name: str, parent_id: int | None = None) -> int:
        with self._lock:
            return self._new(scope, "folder", name, parent_id or self._roots[scope]).id

    def add_file(self, scope: Scope, name: str, data: bytes, parent_id: int | None = None) -> int:
        with self._lock:
            node = self._new(scope, "file", name, parent_id or self._roots[scope])
            node.versions.append((self._id(), data, self.clock.time()))
            return node.id

    def add_version(self, file_id: int, data: bytes) -> None:
        with self._lock:
            node = self._nodes[file_id]
            node.versions.append((self._id(), data, self.clock.time()))
            node.updated = self.clock.time()

    def set_checkout(self, file_id: int, by: UserRef | None, until: float | None) -> None:
        with self._lock:
            node = self._nodes[file_id]
            node.checked_out_by, node.checked_out_until = by, until
            node.updated = self.clock.time()

    def remote_rename(self, item_id: int, name: str | None = None,
                      parent_id: int | None = None) -> None:
        with self._lock:
            node = self._nodes[item_id]
            if name is not None:
                node.name = name
            if parent_id is not None:
                node.parent_id = parent_id
            node.updated = self.clock.time()

    def remote_delete(self, item_id: int) -> None:
        with self._lock:
            node = self._nodes[item_id]
            node.deleted = True
            node.updated = self.clock.time()

    def node(self, item_id: int) -> _Node:
        return self._nodes[item_id]

    def find(self, scope: Scope, *parts: str) -> _Node:
        """The live node at a path of remote names under the scope's root."""
        current = self._roots[scope]
        for part in parts:
            match = [n for n in self._nodes.values() if n.parent_id == current
                     and n.name == part and not n.deleted and n.scope == scope]
            if not match:
                raise KeyError(parts)
            current = match[0].id
        return self._nodes[current]

    def _check(self, name: str, scope: Scope | None = None) -> None:
        self.calls[name] += 1
        if self.offline:
            raise NetworkError("connection refused")
        if scope is not None and scope in self.forbidden_scopes:
            raise Forbidden("no access", status=403)

    def _live(self, scope: Scope, item_id: int, kind: str) -> _Node:
        node = self._nodes.get(item_id)
        if node is None or node.scope != scope or node.kind != kind or node.deleted:
            raise NotFound(f"{kind} {item_id} not found", status=404)
        return node

    def _version(self, node: _Node, vid: int, data: bytes, when: float) -> FileVersion:
        number = [v[0] for v in node.versions].index(vid) + 1
        return FileVersion(id=vid, number=number, size=len(data), url=f"fake://{vid}",
                           created_at=datetime.fromtimestamp(when, UTC))

    def _file(self, node: _Node) -> File:
        versions = tuple(self._version(node, *v) for v in node.versions)
        return File(id=node.id, name=node.name, parent_id=node.parent_id,
                    size=versions[-1].size if versions else 0,
                    created_at=datetime.fromtimestamp(node.created, UTC),
                    updated_at=datetime.fromtimestamp(node.updated, UTC),
                    read_only=node.read_only, is_deleted=node.deleted,
                    checked_out_by=node.checked_out_by,
                    checked_out_until=datetime.fromtimestamp(node.checked_out_until, UTC)
                    if node.checked_out_until is not None else None,
                    versions=versions[-1:])

    def _folder(self, node: _Node, *, children: bool) -> Folder:
        kids = [n for n in self._nodes.values() if n.parent_id == node.id] if children else []
        return Folder(id=node.id, name=node.name, parent_id=node.parent_id,
                      updated_at=datetime.fromtimestamp(node.updated, UTC),
                      read_only=node.read_only, is_deleted=node.deleted,
                      is_recycle_bin=node.recycle_bin,
                      folders=tuple(self._folder(n, children=False) for n in kids
                                    if n.kind == "folder"),
                      files=tuple(self._file(n) for n in kids if n.kind == "file"))

    def _name_taken(self, scope: Scope, parent_id: int, name: str, but: int | None) -> bool:
        return any(n.parent_id == parent_id and n.name == name and not n.deleted
                   and n.id != but and n.scope == scope for n in self._nodes.values())

    # ------------------------------------------------------------ client API

    def me(self) -> User:
        self._check("me")
        return User(id=ME.id, login=ME.login, name=ME.name)

    def companies(self) -> list[Company]:
        self._check("companies")
        return [self.company]

    def projects(self, company_id: int) -> list[Project]:
        self._check("projects")
        return list(self.project_list) if company_id == self.company.id else []

    def root_folder(self, scope: Scope, *, priority: Priority = Priority.INTERACTIVE) -> Folder:
        self._check("root_folder", scope)
        with self._lock:
            return self._folder(self._nodes[self._roots[scope]], children=True)

    def folder(self, scope: Scope, folder_id: int, *,
               priority: Priority = Priority.INTERACTIVE) -> Folder:
        self._check("folder", scope)
        self.calls[f"folder:{folder_id}"] += 1
        if self.delay is not None:
            self.delay.wait(10)
        with self._lock:
            return self._folder(self._live(scope, folder_id, "folder"), children=True)

    def create_folder(self, scope: Scope, name: str, parent_id: int | None) -> Folder:
        self._check("create_folder", scope)
        with self._lock:
            pid = parent_id or self._roots[scope]
            self._live(scope, pid, "folder")
            if self._name_taken(scope, pid, name, None):
                raise ValidationFailed("name has already been taken", status=400)
            return self._folder(self._new(scope, "folder", name, pid), children=True)

    def _move(self, node: _Node, name: str | None, parent_id: int | None) -> None:
        pid = parent_id if parent_id is not None else node.parent_id
        new_name = name if name is not None else node.name
        assert pid is not None
        self._live(node.scope, pid, "folder")
        if self._name_taken(node.scope, pid, new_name, node.id):
            raise ValidationFailed("name has already been taken", status=400)
        node.name, node.parent_id = new_name, pid
        node.updated = self.clock.time()

    def update_folder(self, scope: Scope, folder_id: int, *, name: str | None = None,
                      parent_id: int | None = None) -> Folder:
        self._check("update_folder", scope)
        with self._lock:
            node = self._live(scope, folder_id, "folder")
            self._move(node, name, parent_id)
            return self._folder(node, children=True)

    def delete_folder(self, scope: Scope, folder_id: int) -> None:
        self._check("delete_folder", scope)
        with self._lock:
            node = self._live(scope, folder_id, "folder")
            node.deleted = True
            node.updated = self.clock.time()

    def file(self, scope: Scope, file_id: int) -> File:
        self._check("file", scope)
        with self._lock:
            return self._file(self._live(scope, file_id, "file"))

    def update_file(self, scope: Scope, file_id: int, *, name: str | None = None,
                    parent_id: int | None = None) -> File:
        self._check("update_file", scope)
        with self._lock:
            node = self._live(scope, file_id, "file")
            if node.checked_out_by is not None and node.checked_out_by.id != ME.id:
                raise Conflict("file is checked out", status=409)
            self._move(node, name, parent_id)
            return self._file(node)

    def delete_file(self, scope: Scope, file_id: int) -> None:
        self._check("delete_file", scope)
        with self._lock:
            node = self._live(scope, file_id, "file")
            node.deleted = True
            node.updated = self.clock.time()

    def documents(self, scope: Scope, *,
                  updated_between: tuple[datetime, datetime] | None = None,
                  folder_id: int | None = None, document_type: str | None = None,
                  in_recycle_bin: bool | None = False, per_page: int | None = None,
                  priority: Priority = Priority.BACKGROUND) -> Iterator[DocumentEntry]:
        self._check("documents", scope)
        with self._lock:
            rows = []
            for n in self._nodes.values():
                if n.scope != scope or n.id == self._roots[scope]:
                    continue
                if in_recycle_bin is not None and n.deleted != in_recycle_bin:
                    continue
                if updated_between is not None:
                    start, end = (t.timestamp() for t in updated_between)
                    if not int(start) <= int(n.updated) <= end:
                        continue
                version = None
                if n.kind == "file" and n.versions:
                    version = self._version(n, *n.versions[-1])
                rows.append(DocumentEntry(
                    id=n.id, document_type="file" if n.kind == "file" else "folder",
                    name=n.name, parent_id=n.parent_id, name_with_path=None,
                    created_at=datetime.fromtimestamp(n.created, UTC),
                    updated_at=datetime.fromtimestamp(int(n.updated), UTC),
                    is_deleted=n.deleted, is_recycle_bin=n.recycle_bin,
                    read_only=n.read_only, current_version=version,
                    checked_out_by=n.checked_out_by,
                    checked_out_until=datetime.fromtimestamp(n.checked_out_until, UTC)
                    if n.checked_out_until is not None else None))
        yield from rows

    def read_range(self, version: FileVersion, offset: int, length: int, *,
                   priority: Priority = Priority.INTERACTIVE) -> bytes:
        self._check("read_range")
        with self._lock:
            for node in self._nodes.values():
                for vid, data, _ in node.versions:
                    if vid == version.id:
                        self.ranges.append((version.id, offset, length, priority))
                        return data[offset:offset + length]
        raise NotFound("version not found", status=404)

    # ------------------------------------------------------ the write path

    def upload(self, scope: Scope, path: Path, *, filename: str, state: object = None,
               on_state: Callable[[object], object] | None = None,
               progress: Callable[[int, int], object] | None = None) -> str:
        self._check("upload", scope)
        data = Path(path).read_bytes()
        with self._lock:
            uuid = f"up-{self._id()}"
            self.uploads[uuid] = data
        if progress is not None:
            progress(len(data), len(data))
        return uuid

    def create_file(self, scope: Scope, name: str, parent_id: int | None,
                    upload_uuid: str) -> File:
        self._check("create_file", scope)
        with self._lock:
            parent = parent_id or self._roots[scope]
            if self._name_taken(scope, parent, name, None):
                raise ValidationFailed("name has already been taken", status=422)
            node = self._new(scope, "file", name, parent)
            node.versions.append((self._id(), self.uploads.pop(upload_uuid),
                                  self.clock.time()))
            return self._file(node)

    def create_version(self, scope: Scope, file_id: int, upload_uuid: str, *,
                       notes: str | None = None) -> FileVersion:
        self._check("create_version", scope)
        with self._lock:
            node = self._live(scope, file_id, "file")
            if node.checked_out_by is not None and node.checked_out_by.id != ME.id:
                raise Conflict("file is checked out", status=409)
            vid = self._id()
            now = self.clock.time()
            node.versions.append((vid, self.uploads.pop(upload_uuid), now))
            node.updated = now
            return self._version(node, *node.versions[-1])

