"""``ProcoreFS``: the path-based, synchronous, thread-safe filesystem over Procore Documents.

It knows nothing of FUSE or WinFsp: adapters call these methods from their worker threads and
turn the frozen results (``EntryStat``, ``DirEntry``, ``StatFs``) and the ``FsError``
exceptions into their own protocol. This module owns the namespace: what the mount's root
shows for each ``Layout``, how a path resolves to a Procore folder or file, and the
reorganising operations (mkdir, rmdir, unlink, rename), all done server-side.

Layouts:
- ``project``: that project's Documents at the root.
- ``company``: the company's Documents at the root, plus one folder per project.
- ``all``: one folder per company the user can see, each holding its projects' folders and its
  company Documents.
Company and project folders are synthetic: named after the display name (a " [id]" suffix
when two collide, and they keep their name over a company Documents folder of the same name),
they cannot be renamed or removed (EPERM), and nothing moves between two scopes (EXDEV).

LOCK ORDER (the one place it is written down). Locks are only ever taken in this order, and
none of them is held across a call to the Procore client:
  1. ``ProcoreFS._handles_lock``      the handle table
  2. ``MetadataCache._flush_lock``    one flush at a time
  3. ``MetadataCache._lock``          listings, negative cache, scopes, watermarks
  4. ``ContentReader._lock``          blocks being fetched
  5. ``BlockStore._lock``             content entries, bitmaps, bytes used
  6. leaves: ``MetadataStore._lock``, ``BlockStore._db_lock``, ``ChangePoller._lock``,
     ``OpenFile.lock``
In practice the core never nests 1, 3, 4 and 5 either: each is taken, used and released.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from procorefs.api import Scope
from procorefs.api.models import Project
from procorefs.clock import Clock, SystemClock
from procorefs.core import xattrs
from procorefs.core.content import BlockStore
from procorefs.core.metadata import (
    DirKey,
    MetadataCache,
    company_dir_key,
    folder_dir_key,
)
from procorefs.core.metastore import MetadataStore
from procorefs.core.names import (
    NAME_MAX,
    NameCodec,
    NameRequest,
    PosixNameCodec,
    assign_local_names,
    is_canonical,
    lookup_key,
    too_long,
)
from procorefs.core.poller import ChangePoller
from procorefs.core.reader import ContentReader, OpenFile
from procorefs.core.remote import Item, Listing, RemoteClient
from procorefs.core.translate import api_call
from procorefs.core.types import DirEntry, EntryStat, StatFs
from procorefs.errors import (
    FsAccessDenied,
    FsBusy,
    FsCrossDevice,
    FsExists,
    FsInvalid,
    FsIsADirectory,
    FsNameTooLong,
    FsNoData,
    FsNotADirectory,
    FsNotEmpty,
    FsNotFound,
    FsNotPermitted,
    FsReadOnlyFs,
)

log = logging.getLogger("procorefs.core")

DEFAULT_API_URL = "https://api.procore.com"
_ACCMODE = getattr(os, "O_ACCMODE", os.O_RDONLY | os.O_WRONLY | os.O_RDWR)


@dataclass(frozen=True)
class Layout:
    """What the mount's root shows."""

    mode: Literal["project", "company", "all"]
    company_id: int | None = None
    project_id: int | None = None


@dataclass(frozen=True)
class CoreConfig:
    layout: Layout
    cache_dir: Path
    metadata_ttl: float = 30.0
    negative_ttl: float = 30.0
    content_cache_bytes: int = 2 * 2**30
    poll_interval: float = 30.0
    poll_budget_per_hour: int = 240
    prefetch_bytes: int = 16 * 2**20
    small_file_bytes: int = 4 * 2**20
    codec: NameCodec = field(default_factory=PosixNameCodec)
    # For user.procore.web_url; taken from the client's settings when not given.
    api_url: str | None = None
    prefetch_workers: int = 4


Role = Literal["top", "company", "project", "item"]


@dataclass(frozen=True, slots=True)
class Node:
    """What a path resolved to: a synthetic directory or a Procore folder or file."""

    kind: Literal["file", "dir"]
    role: Role
    scope: Scope | None = None
    item: Item | None = None
    is_scope_root: bool = False


def _split(path: str) -> list[str]:
    if not path.startswith("/"):
        raise FsInvalid("paths are absolute", path)
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if too_long(part):
            raise FsNameTooLong(f"a name longer than {NAME_MAX} bytes", path)
        if part in (".", ".."):
            raise FsInvalid("'.' and '..' are resolved before the core", path)
    return parts


def _parent_and_name(path: str) -> tuple[str, str]:
    parts = _split(path)
    if not parts:
        raise FsBusy("the mount's root", path)
    return "/" + "/".join(parts[:-1]), parts[-1]


class ProcoreFS:
    def __init__(self, client: RemoteClient, config: CoreConfig, *,
                 clock: Clock | None = None) -> None:
        layout = config.layout
        if layout.mode == "company" and layout.company_id is None:
            raise ValueError("a company layout needs a company id")
        if layout.mode == "project" and layout.project_id is None:
            raise ValueError("a project layout needs a project id")
        self._client = client
        self.config = config
        self._clock = clock or SystemClock()
        self._codec = config.codec
        self._api_url = config.api_url or _client_api_url(client) or DEFAULT_API_URL
        self._root_dir = _private_dir(config.cache_dir, self._api_url, layout)
        self._meta_store = MetadataStore(self._root_dir / "metadata.sqlite")
        self.metadata = MetadataCache(
            client, self._clock, self._codec, ttl=config.metadata_ttl,
            negative_ttl=config.negative_ttl, store=self._meta_store)
        self._blocks = BlockStore(self._root_dir / "content", config.content_cache_bytes,
                                  self._clock)
        self._reader = ContentReader(client, self._blocks,
                                     small_file_bytes=config.small_file_bytes,
                                     prefetch_bytes=config.prefetch_bytes,
                                     workers=config.prefetch_workers)
        self.poller = ChangePoller(client, self.metadata, self._clock,
                                   interval=config.poll_interval,
                                   budget_per_hour=config.poll_budget_per_hour)
        self._handles_lock = threading.Lock()
        self._handles: dict[int, OpenFile] = {}
        self._last_version: dict[int, int] = {}
        self._next_handle = itertools.count(1)
        self._started = self._clock.time()
        self._project_scope: Scope | None = None
        self._closed = False

    # ---------------------------------------------------------------- life

    def start(self) -> None:
        """Start the change poller (it first learns who is signed in, for check-outs)."""
        self.poller.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.poller.stop()
        self._reader.close()
        with self._handles_lock:
            handles = list(self._handles.values())
            self._handles.clear()
        for of in handles:
            if of.entry is not None:
                self._blocks.unpin(of.entry)
        self.metadata.flush()
        self._meta_store.close()
        self._blocks.close()

    def whoami(self) -> int | None:
        """The signed-in user's Procore id (fetched once, then kept); None when unknown."""
        return self.metadata.me()

    def poll_changes(self) -> int:
        """Poll the scopes that are due now (the background poller does this by itself)."""
        return self.poller.poll_due()

    @property
    def cache_root(self) -> Path:
        return self._root_dir

    # ----------------------------------------------------------- namespace

    def _scope_of_project(self) -> Scope:
        layout = self.config.layout
        assert layout.project_id is not None
        if layout.company_id is not None:
            return Scope(layout.company_id, layout.project_id)
        if self._project_scope is None:
            for company in self.metadata.companies("/"):
                if any(p.id == layout.project_id
                       for p in self.metadata.projects(company.id, "/")):
                    self._project_scope = Scope(company.id, layout.project_id)
                    break
            else:
                raise FsNotFound(f"project {layout.project_id} is not visible to this user", "/")
        return self._project_scope

    def _root(self) -> Node:
        layout = self.config.layout
        if layout.mode == "project":
            scope = self._scope_of_project()
            listing = self.metadata.listing(scope, None, what="/")
            return Node("dir", "item", scope, listing.folder, is_scope_root=True)
        if layout.mode == "company":
            assert layout.company_id is not None
            return Node("dir", "company", Scope(layout.company_id))
        return Node("dir", "top")

    def _resolve(self, path: str) -> Node:
        parts = _split(path)
        node = self._root()
        for i, part in enumerate(parts):
            if node.kind != "dir":
                raise FsNotADirectory("a file is not a folder", path)
            node = self._child(node, part, "/" + "/".join(parts[:i + 1]))
        return node

    def _dir_key(self, node: Node) -> DirKey | None:
        if node.role == "item" and node.item is not None and node.scope is not None:
            return folder_dir_key(node.scope, node.item.id)
        if node.role == "project" and node.scope is not None:
            root = self.metadata.root_id(node.scope)
            return folder_dir_key(node.scope, root) if root is not None else None
        if node.role == "company" and node.scope is not None:
            return company_dir_key(node.scope.company_id)
        return ("top",)

    def _child(self, node: Node, name: str, path: str) -> Node:
        dkey = self._dir_key(node)
        if dkey is not None and self.metadata.is_negative(dkey, name):
            raise FsNotFound("no such file or folder", path)
        child = self._lookup(node, name, path)
        if child is None:
            if dkey is not None:
                self.metadata.add_negative(dkey, name)
            raise FsNotFound("no such file or folder", path)
        return child

    def _lookup(self, node: Node, name: str, path: str) -> Node | None:
        parent_path = path.rsplit("/", 1)[0] or "/"
        if node.role in ("item", "project"):
            listing = self._listing_of(node, parent_path)
            item = listing.lookup(name)
            return self._item_node(listing.scope, item) if item is not None else None
        key = lookup_key(self._codec, name)
        for local, child in self._synthetic_children(node, parent_path):
            if lookup_key(self._codec, local) == key:
                return child
        return None

    def _listing_of(self, node: Node, path: str, *, refresh: bool = False) -> Listing:
        assert node.scope is not None
        if node.role == "project":
            return self.metadata.listing(node.scope, None, what=path, refresh=refresh)
        assert node.item is not None
        return self.metadata.listing(node.scope, node.item.id, what=path, refresh=refresh)

    @staticmethod
    def _item_node(scope: Scope, item: Item) -> Node:
        return Node(item.kind, "item", scope, item)

    def _synthetic_children(self, node: Node, path: str) -> list[tuple[str, Node]]:
        if node.role == "top":
            companies = self.metadata.companies(path)
            names = assign_local_names(self._codec, (
                NameRequest(c.name, c.id, False, (0, c.id)) for c in companies))
            return sorted(((names[c.id], Node("dir", "company", Scope(c.id)))
                           for c in companies), key=lambda pair: pair[0])
        assert node.role == "company" and node.scope is not None
        company_id = node.scope.company_id
        projects = self.metadata.projects(company_id, path)
        docs = self.metadata.optional_root(node.scope, path)
        requests = [NameRequest(_project_name(p), -(i + 1), False, (0, p.id), tag=p.id)
                    for i, p in enumerate(projects)]
        if docs is not None:
            requests += [NameRequest(item.name, item.id, item.kind == "file", (1, item.id))
                         for item in docs.children.values()]
        names = assign_local_names(self._codec, requests)
        out = [(names[-(i + 1)], Node("dir", "project", Scope(company_id, p.id)))
               for i, p in enumerate(projects)]
        if docs is not None:
            out += [(names[item.id], self._item_node(docs.scope, item))
                    for item in docs.children.values()]
        return sorted(out, key=lambda pair: pair[0])

    def _children(self, node: Node, path: str) -> list[tuple[str, Node]]:
        if node.role in ("item", "project"):
            listing = self._listing_of(node, path)
            return [(name, self._item_node(listing.scope, item))
                    for name, item in listing.entries()]
        return self._synthetic_children(node, path)

    # --------------------------------------------------------------- stats

    def _checked_out_by_other(self, item: Item) -> bool:
        if item.checked_out_by is None:
            return False
        if item.checked_out_until is not None and item.checked_out_until <= self._clock.time():
            return False
        me = self.metadata.me()
        return me is None or item.checked_out_by.id != me

    def _read_only(self, item: Item) -> bool:
        return item.read_only or self._checked_out_by_other(item)

    def _stat(self, node: Node) -> EntryStat:
        item = node.item
        if item is None:
            return EntryStat(kind="dir", size=0, mtime=self._started, ctime=self._started,
                             birthtime=self._started, read_only=False, remote_id=None,
                             version=None)
        updated = item.updated if item.updated is not None else (item.created or 0.0)
        created = item.created if item.created is not None else updated
        return EntryStat(kind=item.kind, size=item.size if item.kind == "file" else 0,
                         mtime=updated, ctime=created, birthtime=created,
                         read_only=self._read_only(item), remote_id=item.id,
                         version=item.version_number)

    def getattr(self, path: str) -> EntryStat:
        return self._stat(self._resolve(path))

    def readdir(self, path: str) -> list[DirEntry]:
        node = self._resolve(path)
        if node.kind != "dir":
            raise FsNotADirectory("not a folder", path)
        return [DirEntry(name, self._stat(child)) for name, child in self._children(node, path)]

    def statfs(self) -> StatFs:
        # Procore has no quota a client can read: report a large, constant capacity.
        block = 4096
        blocks = 2**50 // block
        return StatFs(block_size=block, blocks=blocks, blocks_free=blocks, files=2**32,
                      files_free=2**32, name_max=NAME_MAX)

    def invalidate(self, path: str | None = None) -> None:
        if path is None or path == "/":
            self.metadata.invalidate()
            return
        try:
            node = self._resolve(path)
        except FsNotFound:
            parent, _ = _parent_and_name(path)
            self.invalidate(parent)
            return
        if node.role == "item" and node.item is not None and node.scope is not None:
            folder = node.item.id if node.kind == "dir" else node.item.parent_id
            self.metadata.invalidate(node.scope, folder)
        elif node.scope is not None:
            self.metadata.invalidate(node.scope)
        else:
            self.metadata.invalidate()

    # -------------------------------------------------------------- xattrs

    def _xattr_values(self, node: Node) -> dict[str, str]:
        values: dict[str, str] = {}
        scope = node.scope
        if node.role == "company" and scope is not None:
            values[xattrs.COMPANY_ID] = str(scope.company_id)
            values[xattrs.WEB_URL] = xattrs.web_url(self._api_url, scope.company_id, None)
        elif node.role == "project" and scope is not None:
            values[xattrs.COMPANY_ID] = str(scope.company_id)
            values[xattrs.PROJECT_ID] = str(scope.project_id)
            values[xattrs.WEB_URL] = xattrs.web_url(self._api_url, scope.company_id,
                                                    scope.project_id)
        elif node.item is not None and scope is not None:
            item = node.item
            values[xattrs.ID] = str(item.id)
            if item.kind == "file":
                if item.version is not None:
                    values[xattrs.VERSION] = str(item.version.number)
                values[xattrs.WEB_URL] = xattrs.web_url(
                    self._api_url, scope.company_id, scope.project_id, file_id=item.id)
            else:
                values[xattrs.WEB_URL] = xattrs.web_url(
                    self._api_url, scope.company_id, scope.project_id, folder_id=item.id)
            by = item.checked_out_by
            if by is not None and (item.checked_out_until is None
                                   or item.checked_out_until > self._clock.time()):
                label = by.name or by.login or str(by.id)
                if by.name and by.login:
                    label = f"{by.name} <{by.login}>"
                values[xattrs.CHECKED_OUT_BY] = label
                if item.checked_out_until is not None:
                    values[xattrs.CHECKED_OUT_UNTIL] = xattrs.iso(item.checked_out_until)
        return values

    def getxattr(self, path: str, name: str) -> bytes:
        if xattrs.is_os_namespace(name):
            raise FsNoData("no such attribute", path)
        value = self._xattr_values(self._resolve(path)).get(name)
        if value is None:
            raise FsNoData("no such attribute", path)
        return value.encode("utf-8")

    def listxattr(self, path: str) -> list[str]:
        return sorted(self._xattr_values(self._resolve(path)))

    # ------------------------------------------------------------- reading

    def open(self, path: str, flags: int) -> int:
        node = self._resolve(path)
        if node.kind == "dir":
            raise FsIsADirectory("a folder cannot be opened as a file", path)
        item = node.item
        assert item is not None and node.scope is not None
        if flags & _ACCMODE != os.O_RDONLY or flags & (os.O_TRUNC | os.O_APPEND):
            if self._read_only(item):
                raise FsAccessDenied("the file is checked out by someone else or read-only",
                                     path)
            log.warning("cannot write %r: this version of procorefs mounts Procore read-only "
                        "for file contents (folders can be created, renamed and removed)", path)
            raise FsReadOnlyFs("writing file contents is not supported yet", path)
        version = item.version
        entry = None
        if version is not None and version.size > 0:
            entry = self._blocks.pin(item.id, version.id, version.size)
            self._blocks.drop_versions(item.id, keep=version.id)
        handle = next(self._next_handle)
        with self._handles_lock:
            previous = self._last_version.get(item.id)
            vid = version.id if version is not None else None
            keep = previous is not None and previous == vid
            if vid is not None:
                self._last_version[item.id] = vid
            self._handles[handle] = OpenFile(handle, path, node.scope, item, version, entry,
                                             keep)
        return handle

    def _handle(self, handle: int) -> OpenFile:
        with self._handles_lock:
            of = self._handles.get(handle)
        if of is None:
            raise FsInvalid(f"no open file with handle {handle}")
        return of

    def read(self, handle: int, offset: int, size: int) -> bytes:
        return self._reader.read(self._handle(handle), offset, size)

    def release(self, handle: int) -> None:
        with self._handles_lock:
            of = self._handles.pop(handle, None)
        if of is not None and of.entry is not None:
            self._blocks.unpin(of.entry)

    def keep_kernel_cache(self, handle: int) -> bool:
        return self._handle(handle).keep_cache

    # -------------------------------------------------------- reorganising

    def _check_new_name(self, name: str, path: str) -> str:
        if not is_canonical(self._codec, name):
            raise FsInvalid("a name with a quoted look-alike that Procore cannot hold "
                            "(see docs/semantics.md)", path)
        return self._codec.to_remote(name)

    def _container(self, node: Node, path: str) -> tuple[Scope, int]:
        """The scope and Procore folder id that new children of ``node`` go into."""
        if node.kind != "dir":
            raise FsNotADirectory("not a folder", path)
        if node.role == "top":
            raise FsNotPermitted("companies cannot be created or moved here", path)
        assert node.scope is not None
        if node.role == "item":
            assert node.item is not None
            return node.scope, node.item.id
        listing = self.metadata.listing(node.scope, None, what=path)
        return node.scope, listing.folder.id

    def _existing(self, parent: Node, name: str, path: str) -> Node | None:
        try:
            return self._child(parent, name, path)
        except FsNotFound:
            return None

    def mkdir(self, path: str) -> None:
        parent_path, name = _parent_and_name(path)
        parent = self._resolve(parent_path)
        scope, parent_id = self._container(parent, parent_path)
        remote = self._check_new_name(name, path)
        if self._existing(parent, name, path) is not None:
            raise FsExists("already exists", path)
        with api_call("create folder", path):
            folder = self._client.create_folder(scope, remote, parent_id)
        self.metadata.note_created(scope, parent_id, Item.of_folder(folder))
        self._forget_negative(parent, name)

    def _forget_negative(self, parent: Node, name: str) -> None:
        dkey = self._dir_key(parent)
        if dkey is not None:
            self.metadata.drop_negative(dkey, name)

    def _remote_item(self, node: Node, path: str, what: str) -> tuple[Scope, Item]:
        if node.role != "item" or node.item is None or node.scope is None:
            raise FsNotPermitted(f"company and project folders cannot be {what}", path)
        if node.is_scope_root:
            raise FsBusy("the mount's root", path)
        return node.scope, node.item

    def rmdir(self, path: str) -> None:
        node = self._resolve(path)
        if node.kind != "dir":
            raise FsNotADirectory("not a folder", path)
        scope, item = self._remote_item(node, path, "removed")
        if item.read_only:
            raise FsAccessDenied("the folder is read-only in Procore", path)
        self._remove_folder(scope, item, path)

    def _remove_folder(self, scope: Scope, item: Item, path: str) -> None:
        fresh = self.metadata.listing(scope, item.id, what=path, refresh=True)
        if fresh.children:
            raise FsNotEmpty("the folder is not empty", path)
        with api_call("remove folder", path):
            self._client.delete_folder(scope, item.id)
        self.metadata.note_removed(scope, item)

    def unlink(self, path: str) -> None:
        node = self._resolve(path)
        if node.kind == "dir":
            raise FsIsADirectory("use rmdir for folders", path)
        scope, item = self._remote_item(node, path, "removed")
        self._remove_file(scope, item, path)

    def _remove_file(self, scope: Scope, item: Item, path: str) -> None:
        if self._read_only(item):
            raise FsAccessDenied("the file is checked out by someone else or read-only", path)
        with api_call("delete", path):
            self._client.delete_file(scope, item.id)
        self.metadata.note_removed(scope, item)
        self._blocks.drop_versions(item.id)

    def rename(self, old: str, new: str, *, replace: bool = True) -> None:
        old_parts = [lookup_key(self._codec, p) for p in _split(old)]
        new_parts = [lookup_key(self._codec, p) for p in _split(new)]
        # Both parents first, then the source: the order (and so the errno) of rename(2).
        old_parent_path, old_name = _parent_and_name(old)
        new_parent_path, new_name = _parent_and_name(new)
        src_parent = self._resolve(old_parent_path)
        if src_parent.kind != "dir":
            raise FsNotADirectory("not a folder", old_parent_path)
        dst_parent = self._resolve(new_parent_path)
        if dst_parent.kind != "dir":
            raise FsNotADirectory("not a folder", new_parent_path)
        src = self._child(src_parent, old_name, old)
        scope, item = self._remote_item(src, old, "renamed or moved")
        if item.kind == "dir" and new_parts[:len(old_parts)] == old_parts and \
                len(new_parts) > len(old_parts):
            raise FsInvalid("a folder cannot move into itself", new)
        if dst_parent.role == "top" or dst_parent.scope != scope:
            raise FsCrossDevice("Procore cannot move items between projects or companies",
                                new)
        _, dst_parent_id = self._container(dst_parent, new_parent_path)
        remote_name = self._check_new_name(new_name, new)
        if self._read_only(item):
            raise FsAccessDenied("the item is checked out by someone else or read-only", old)
        existing = self._existing(dst_parent, new_name, new)
        if existing is not None and existing.item is not None and existing.item.id == item.id \
                and existing.scope == scope:
            existing = None  # the same item under another spelling of its name
        elif existing is not None:
            if not replace:
                raise FsExists("the target exists", new)
            self._clear_target(existing, item, new)
        name_arg = remote_name if remote_name != item.name else None
        parent_arg = dst_parent_id if dst_parent_id != item.parent_id else None
        if name_arg is None and parent_arg is None:
            return
        with api_call("rename", old):
            if item.kind == "dir":
                after = Item.of_folder(self._client.update_folder(
                    scope, item.id, name=name_arg, parent_id=parent_arg))
            else:
                after = Item.of_file(self._client.update_file(
                    scope, item.id, name=name_arg, parent_id=parent_arg))
        self.metadata.note_moved(scope, item, after.merged_into_old(item))
        self._forget_negative(dst_parent, new_name)
        log.debug("renamed %r to %r (Procore id %d)", old, new, item.id)

    def _clear_target(self, target: Node, src: Item, path: str) -> None:
        """Send what a rename would replace to the recycle bin, as POSIX rename replaces it."""
        if target.role != "item" or target.item is None or target.scope is None:
            raise FsNotPermitted("company and project folders cannot be replaced", path)
        victim = target.item
        if src.kind == "dir" and victim.kind == "file":
            raise FsNotADirectory("cannot replace a file with a folder", path)
        if src.kind == "file" and victim.kind == "dir":
            raise FsIsADirectory("cannot replace a folder with a file", path)
        if victim.kind == "dir":
            if victim.read_only:
                raise FsAccessDenied("the folder is read-only in Procore", path)
            self._remove_folder(target.scope, victim, path)
        else:
            self._remove_file(target.scope, victim, path)


def _project_name(project: Project) -> str:
    return project.display_name or project.name


def _client_api_url(client: RemoteClient) -> str | None:
    settings = getattr(client, "settings", None)
    url = getattr(settings, "api_url", None)
    return url if isinstance(url, str) else None


def _private_dir(cache_dir: Path, api_url: str, layout: Layout) -> Path:
    """This mount's own directory in the cache, 0700; one per (server, layout)."""
    digest = hashlib.sha256(
        f"{api_url}|{layout.mode}|{layout.company_id}|{layout.project_id}".encode()
    ).hexdigest()[:16]
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = cache_dir / f"core-{digest}"
    root.mkdir(exist_ok=True, mode=0o700)
    root.chmod(0o700)
    return root

