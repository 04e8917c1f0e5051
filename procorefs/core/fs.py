"""``ProcoreFS``: the path-based, synchronous, thread-safe filesystem over Procore Documents.

It knows nothing of FUSE or WinFsp: adapters call these methods from their worker threads and
turn the frozen results (``EntryStat``, ``DirEntry``, ``StatFs``) and the ``FsError``
exceptions into their own protocol. This module owns the namespace: what the mount's root
shows for each ``Layout``, how a path resolves to a Procore folder or file, the
reorganising operations (mkdir, rmdir, unlink, rename), all done server-side, and the write
path's front half: handles that write, the local overlay (``overlay.py``) laid over Procore's
listings, the save-pattern rules (``localnames.py``) applied to every create, unlink and
rename, staging (``staging.py``) and the durable commit queue (``journal.py``,
``commits.py``), whose outcomes update the metadata cache.

Writing, in one paragraph (docs/adr/0003-write-path.md has the reasons): every file opened for
writing gets a ``LocalFile`` in the overlay whose content is a ``StagedFile`` shared by all its
handles. A FUSE flush (each close()) seals the staged file and journals it (held, so it is not
committed while a writer is open) and freezes it, so a spool the journal names is never
changed in place; before it takes the namespace lock it lets the staged file finish hashing
what was written, so that the commit needs no pass over the file. The last writer's release
lets the entry go after the debounce (a large file's upload starts at once; only its create
waits). fsync journals and waits for Procore. Local-only names stay in the overlay; a
committed event drops the overlay entry once no handle uses it, and the metadata cache then
shows the new version.

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
  0. ``ProcoreFS._ns_lock``          the overlay's decisions and ``LocalFile`` fields; held
     across local disk work (seal, journal) but released around every Procore call
  1. ``ProcoreFS._handles_lock``      the handle table
  2. ``MetadataCache._flush_lock``    one flush at a time
  3. ``MetadataCache._lock``          listings, negative cache, scopes, watermarks
  4. ``ContentReader._lock``          blocks being fetched
  5. ``BlockStore._lock``             content entries, bitmaps, bytes used
  6. leaves: ``MetadataStore._lock``, ``BlockStore._db_lock``, ``ChangePoller._lock``,
     ``OpenFile.lock``
Write path, under 0: ``StagedFile._lock`` -> ``CommitQueue._lock`` -> ``Journal._lock``;
``Overlay._lock`` is a leaf. The queue calls ``_on_commit`` holding none of its locks.
In practice the core never nests 1, 3, 4 and 5 either: each is taken, used and released.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from procorefs.api import Scope
from procorefs.api.models import FileVersion, Project
from procorefs.clock import Clock, SystemClock
from procorefs.core import xattrs
from procorefs.core.commits import CommitEvent, CommitQueue, UploadLayout
from procorefs.core.content import BlockStore
from procorefs.core.journal import Base, Entry, Journal, Target
from procorefs.core.localnames import (
    DEFAULT_GRACE,
    DeferDelete,
    DeleteNow,
    Land,
    LocalNamePolicy,
    LocalOnly,
    MoveLocal,
    Reclaim,
    RemoteRef,
    RemoteRename,
    Restore,
    SaveRules,
    SetAside,
)
from procorefs.core.metadata import (
    DirKey as CacheDirKey,
)
from procorefs.core.metadata import (
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
    assign_names_in,
    is_canonical,
    lookup_key,
    too_long,
)
from procorefs.core.overlay import DirKey, Hidden, LocalFile, Overlay, Slot
from procorefs.core.poller import ChangePoller
from procorefs.core.reader import ContentReader, OpenFile
from procorefs.core.remote import Item, Listing, RemoteClient
from procorefs.core.staging import PART_SIZE, Fill, Snapshot, StagedFile, StagingArea
from procorefs.core.translate import api_call
from procorefs.core.types import DirEntry, EntryStat, StatFs
from procorefs.errors import (
    FsAccessDenied,
    FsBusy,
    FsCrossDevice,
    FsError,
    FsExists,
    FsInvalid,
    FsIOError,
    FsIsADirectory,
    FsNameTooLong,
    FsNoData,
    FsNoSpace,
    FsNotADirectory,
    FsNotEmpty,
    FsNotFound,
    FsNotPermitted,
)

log = logging.getLogger("procorefs.core")

DEFAULT_API_URL = "https://api.procore.com"
# How long a close() may spend finishing the hashes of what was written before it seals
# (about 0.7 GiB behind the writes here); past that, the commit hashes the rest.
_HASH_WAIT = 2.0
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
    # A sequential reader's window grows to this (core/reader.py): 4 ranges of 16 MiB in
    # flight, as the direct client's parallel download keeps.
    prefetch_bytes: int = 64 * 2**20
    small_file_bytes: int = 4 * 2**20
    codec: NameCodec = field(default_factory=PosixNameCodec)
    # For user.procore.web_url; taken from the client's settings when not given.
    api_url: str | None = None
    prefetch_workers: int = 4
    # The write path (docs/adr/0003-write-path.md).
    commit_debounce: float = 1.0          # seconds after the last close before a commit
    commit_workers: int = 2
    delete_grace: float = DEFAULT_GRACE   # 0: deletes reach Procore at once (no save dances)
    local_names: LocalNamePolicy = field(default_factory=LocalNamePolicy)
    unmount_timeout: float = 60.0         # how long close() waits for queued commits
    seed_cache_bytes: int = 16 * 2**20    # our own commits up to this size go to the cache


Role = Literal["top", "company", "project", "item", "local"]


@dataclass(frozen=True, slots=True)
class Node:
    """What a path resolved to: a synthetic directory, a Procore folder or file, or a file of
    the local overlay (``local``)."""

    kind: Literal["file", "dir"]
    role: Role
    scope: Scope | None = None
    item: Item | None = None
    is_scope_root: bool = False
    local: LocalFile | None = None


@dataclass(eq=False)
class LocalHandle:
    """One open handle of a file of the overlay (every handle opened for writing is one)."""

    handle: int
    local: LocalFile
    writable: bool
    append: bool


def _wants_write(flags: int) -> bool:
    return flags & _ACCMODE != os.O_RDONLY or bool(flags & (os.O_TRUNC | os.O_APPEND))


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
        self._local_handles: dict[int, LocalHandle] = {}
        self._last_version: dict[int, int] = {}
        self._next_handle = itertools.count(1)
        self._started = self._clock.time()
        self._project_scope: Scope | None = None
        self._closed = False
        # The write path. The journal's file lock makes a second mount of the same cache
        # directory fail here (FsBusy) instead of racing this one's commits.
        self._ns_lock = threading.RLock()
        self._overlay = Overlay()
        self._rules = SaveRules(config.local_names, clock=self._clock,
                                grace=config.delete_grace)
        self._versions: dict[tuple[int, int], FileVersion] = {}   # GUARDED_BY(_ns_lock)
        self._known_sha: dict[tuple[int, int], str] = {}         # GUARDED_BY(_ns_lock)
        self.counts: dict[str, int] = dict.fromkeys(
            ("committed", "unchanged", "conflict", "failed", "deleted", "bytes"), 0)
        self._journal = Journal.open(self._root_dir, clock=self._clock)
        try:
            # Staged files hash their upload parts as they are written, in the client's part
            # size, so that a commit needs no hashing pass over the file.
            uploads = _client_upload_layout(client)
            self._staging = StagingArea(
                self._root_dir, part_size=uploads.part_size if uploads else PART_SIZE)
            self._queue = CommitQueue(
                self._journal, self._staging, client, clock=self._clock,
                workers=config.commit_workers, debounce=config.commit_debounce,
                on_event=self._on_commit, fill_for=self._fill_for_entry,
                base_sha256=self._base_sha256, upload_layout=uploads)
            self._restore()
        except BaseException:
            self._journal.close()
            raise
        self._commits_started = False

    # ---------------------------------------------------------------- life

    def start(self) -> None:
        """Start the commit workers and the change poller (it first learns who is signed in,
        for check-outs)."""
        self.start_commits()
        self.poller.start()

    def start_commits(self) -> None:
        """Start the background commits alone (tests that drive the poller themselves)."""
        if not self._commits_started:
            self._commits_started = True
            self._queue.start()

    def close(self, *, drain: float | None = None) -> None:
        """Stop: wait up to ``drain`` seconds (default ``unmount_timeout``) for queued commits
        and deletes to reach Procore, say what stays queued, then release everything."""
        if self._closed:
            return
        self._closed = True
        self.poller.stop()
        if self._commits_started:
            self.drain(self.config.unmount_timeout if drain is None else drain)
        # A commit still on the wire (offline retries) resumes at the next start: do not
        # wait for it here.
        self._queue.close(timeout=1.0)
        self._reader.close()
        with self._handles_lock:
            handles = list(self._handles.values())
            self._handles.clear()
            local_handles = list(self._local_handles.values())
            self._local_handles.clear()
        for of in handles:
            if of.entry is not None:
                self._blocks.unpin(of.entry)
        with self._ns_lock:
            for local in {id(lh.local): lh.local for lh in local_handles}.values():
                if local.detached and local.staged is not None:
                    local.staged.discard()
            for local in self._overlay.all():
                if local.staged is None:
                    continue
                # Local-only files live in memory; pending ones stay in the journal.
                if local.local_only and local.entry is None:
                    local.staged.discard()
                else:
                    local.staged.close()
        self._journal.close()
        self.metadata.flush()
        self._meta_store.close()
        self._blocks.close()

    def drain(self, timeout: float) -> list[str]:
        """Send every queued commit and delete now and wait for them (unmount); answers what
        is still queued at the deadline (it is committed at the next mount)."""
        queued = self._queue.expedite()
        if queued:
            log.info("waiting up to %.0f s for %d queued change(s) to reach Procore",
                     timeout, queued)
        deadline = time.monotonic() + timeout
        while self._queue.busy() and time.monotonic() < deadline:
            self._queue.wait_idle(min(0.5, max(0.0, deadline - time.monotonic())))
        left = [f"{e.key or e.name} ({e.state}{': ' + e.failure if e.failure else ''})"
                for e in self._queue.pending()]
        left += [f"delete of {d.key or d.name}" for d in self._queue.pending_deletes()]
        if left:
            log.warning("%d change(s) are not in Procore yet; they stay queued in %s and are "
                        "sent at the next mount: %s", len(left), self._root_dir,
                        "; ".join(left[:20]) + (" ..." if len(left) > 20 else ""))
        return left

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

    def _dir_key(self, node: Node) -> CacheDirKey | None:
        if node.role == "item" and node.item is not None and node.scope is not None:
            return folder_dir_key(node.scope, node.item.id)
        if node.role == "project" and node.scope is not None:
            root = self.metadata.root_id(node.scope)
            return folder_dir_key(node.scope, root) if root is not None else None
        if node.role == "company" and node.scope is not None:
            return company_dir_key(node.scope.company_id)
        return ("top",)

    def _slot_dir(self, node: Node) -> DirKey | None:
        """The Procore folder that files created in ``node`` go into, without a request
        (None: not known yet, or the top of an all-companies mount)."""
        if node.scope is None or node.kind != "dir":
            return None
        if node.role == "item" and node.item is not None:
            return (node.scope, node.item.id)
        if node.role in ("project", "company"):
            root = self.metadata.root_id(node.scope)
            return (node.scope, root) if root is not None else None
        return None

    def _slot(self, dkey: DirKey, name: str) -> Slot:
        return (dkey, lookup_key(self._codec, name))

    def _child(self, node: Node, name: str, path: str) -> Node:
        sdir = self._slot_dir(node)
        if sdir is not None:
            local = self._overlay.get(self._slot(sdir, name))
            if local is not None:
                return Node("file", "local", local.scope, local=local)
        dkey = self._dir_key(node)
        if dkey is not None and self.metadata.is_negative(dkey, name):
            raise FsNotFound("no such file or folder", path)
        child = self._lookup(node, name, path)
        if child is not None and child.kind == "file" and child.item is not None and \
                self._overlay.hidden(child.item.id) is not None:
            # Deleted (its DELETE deferred) or set aside: gone from here, for now.
            raise FsNotFound("no such file or folder", path)
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
            names = assign_names_in(self._codec, (
                NameRequest(c.name, c.id, False, (0, c.id)) for c in companies), folder=path)
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
        names = assign_names_in(self._codec, requests, folder=path)
        out = [(names[-(i + 1)], Node("dir", "project", Scope(company_id, p.id)))
               for i, p in enumerate(projects)]
        if docs is not None:
            out += [(names[item.id], self._item_node(docs.scope, item))
                    for item in docs.children.values()]
        return sorted(out, key=lambda pair: pair[0])

    def _children(self, node: Node, path: str) -> list[tuple[str, Node]]:
        if node.role in ("item", "project"):
            listing = self._listing_of(node, path)
            out = [(name, self._item_node(listing.scope, item))
                   for name, item in listing.entries()]
        else:
            out = self._synthetic_children(node, path)
        sdir = self._slot_dir(node)
        hidden = self._overlay.hidden_ids()
        locals_ = self._overlay.in_dir(sdir) if sdir is not None else []
        if not hidden and not locals_:
            return out
        shadowed = {lookup_key(self._codec, local.name) for local in locals_}
        out = [(name, child) for name, child in out
               if not (child.kind == "file" and child.item is not None
                       and child.item.id in hidden)
               and lookup_key(self._codec, name) not in shadowed]
        out += [(local.name, Node("file", "local", local.scope, local=local))
                for local in locals_]
        return sorted(out, key=lambda pair: pair[0])

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
        if node.local is not None:
            return self._local_stat(node.local)
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

    def _local_stat(self, local: LocalFile) -> EntryStat:
        version = None
        if local.base is not None:
            version = local.base.version_number
        elif local.aside is not None:
            version = local.aside.version_number
        return EntryStat(kind="file", size=local.size, mtime=local.mtime, ctime=local.ctime,
                         birthtime=local.ctime, read_only=False, remote_id=local.remote_id,
                         version=version)

    def getattr(self, path: str) -> EntryStat:
        return self._stat(self._resolve(path))

    def getattr_handle(self, handle: int) -> EntryStat:
        """The stat of an open file, also once its name is gone (fstat after unlink)."""
        with self._handles_lock:
            lh = self._local_handles.get(handle)
            of = self._handles.get(handle) if lh is None else None
        if lh is not None:
            return self._local_stat(lh.local)
        if of is None:
            raise FsInvalid(f"no open file with handle {handle}")
        return self._stat(Node("file", "item", of.scope, of.item))

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
        if node.local is not None and scope is not None:
            local = node.local
            rid = local.remote_id
            if rid is not None:
                values[xattrs.ID] = str(rid)
                values[xattrs.WEB_URL] = xattrs.web_url(
                    self._api_url, scope.company_id, scope.project_id, file_id=rid)
            version = self._local_stat(local).version
            if version is not None:
                values[xattrs.VERSION] = str(version)
            values[xattrs.STATE] = self._local_state(local)
            return values
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
        if node.local is not None:
            with self._ns_lock:
                if not node.local.detached:
                    return self._attach(node.local, flags, path)
            # Settled meanwhile (its commit finished): it is a plain Procore file now.
            return self.open(path, flags)
        item = node.item
        assert item is not None and node.scope is not None
        if _wants_write(flags):
            return self._open_for_write(node, flags, path)
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
        with self._handles_lock:
            lh = self._local_handles.get(handle)
        if lh is not None:
            staged = lh.local.staged
            assert staged is not None
            return staged.read(offset, size)
        of = self._handle(handle)
        if self._overlay.has_files():
            # Opened before another handle started writing: read what was written.
            local = self._overlay.by_remote_id(of.item.id)
            staged = local.staged if local is not None else None
            if staged is not None:
                try:
                    return staged.read(offset, size)
                except FsIOError:
                    if not staged.closed:
                        raise
                    # Committed and settled meanwhile: Procore has those bytes now.
        return self._reader.read(of, offset, size)

    def read_extent(self, handle: int, offset: int, size: int) -> bytes | tuple[int, int, int]:
        """``read``, but bytes of a Procore version come back as where they lie in the content
        cache: ``(fd, offset, length)``, present, the fd open (never close it) until this
        handle's ``release``. Bytes being written (staged) come back as ``bytes``."""
        with self._handles_lock:
            writing = handle in self._local_handles
        if writing:
            return self.read(handle, offset, size)
        of = self._handle(handle)
        if self._overlay.has_files():
            local = self._overlay.by_remote_id(of.item.id)
            if local is not None and local.staged is not None:
                return self.read(handle, offset, size)  # another handle is writing it
        extent = self._reader.extent(of, offset, size)
        return b"" if extent is None else extent

    def release(self, handle: int) -> None:
        with self._handles_lock:
            of = self._handles.pop(handle, None)
            lh = self._local_handles.pop(handle, None) if of is None else None
        if of is not None and of.entry is not None:
            self._blocks.unpin(of.entry)
        if lh is not None:
            self._release_local(lh)

    def keep_kernel_cache(self, handle: int) -> bool:
        with self._handles_lock:
            if handle in self._local_handles:
                return False
        return self._handle(handle).keep_cache

    # ------------------------------------------------------------- writing

    def _local_state(self, local: LocalFile) -> str:
        if local.local_only:
            return "local-only"
        if local.entry is not None:
            entry = self._journal.get(local.entry)
            if entry is not None and entry.state == "failed":
                return "failed"
        return "pending"

    def _remember_version(self, file_id: int, version: FileVersion) -> None:
        with self._ns_lock:
            self._versions[(file_id, version.id)] = version

    def _base_of(self, item: Item) -> Base:
        version = item.version
        if version is None:
            return Base(item.id, None, None, 0)
        self._remember_version(item.id, version)
        sha = self._known_sha.get((item.id, version.id))
        return Base(item.id, version.id, version.number, version.size, sha)

    def _base_of_ref(self, ref: RemoteRef) -> Base:
        sha = ref.sha256
        if sha is None and ref.version_id is not None:
            sha = self._known_sha.get((ref.file_id, ref.version_id))
        return Base(ref.file_id, ref.version_id, ref.version_number, ref.size, sha)

    @staticmethod
    def _ref_of(item: Item) -> RemoteRef:
        v = item.version
        return RemoteRef(item.id, v.id if v else None, v.number if v else None,
                         v.size if v else item.size)

    def _read_version(self, scope: Scope, file_id: int, version: FileVersion, offset: int,
                      length: int, path: str) -> bytes:
        """Bytes of a Procore version through the content cache (offline: from the cache)."""
        entry = self._blocks.pin(file_id, version.id, version.size)
        try:
            stub = Item(kind="file", id=file_id, name="", parent_id=None, size=version.size,
                        created=None, updated=None, version=version)
            of = OpenFile(0, path, scope, stub, version, entry, False)
            return self._reader.read(of, offset, length)
        finally:
            self._blocks.unpin(entry)

    def _find_version(self, scope: Scope, file_id: int, version_id: int,
                      path: str) -> FileVersion:
        with self._ns_lock:
            known = self._versions.get((file_id, version_id))
        if known is not None:
            return known
        item = self.metadata.find_item(scope, file_id)
        if item is not None and item.version is not None and item.version.id == version_id:
            return item.version
        with api_call("read", path):
            remote = self._client.file(scope, file_id)
        for version in remote.versions:
            self._remember_version(file_id, version)
        with self._ns_lock:
            known = self._versions.get((file_id, version_id))
        if known is None:
            raise FsIOError("the version this file was edited from is gone from Procore", path)
        return known

    def _fill_for_base(self, scope: Scope, base: Base | None, path: str) -> Fill | None:
        """Reads the base version's bytes where a staged file has not written (lazily)."""
        if base is None or not base.size or base.version_id is None:
            return None
        file_id, version_id = base.file_id, base.version_id

        def fill(offset: int, length: int) -> bytes:
            version = self._find_version(scope, file_id, version_id, path)
            return self._read_version(scope, file_id, version, offset, length, path)
        return fill

    def _fill_for_entry(self, entry: Entry) -> Fill:
        fill = self._fill_for_base(Scope(entry.company_id, entry.project_id), entry.base,
                                   entry.key or entry.name)
        if fill is None:
            raise FsIOError("a staged file has holes but no version to fill them from")
        return fill

    def _base_sha256(self, base: Base) -> str | None:
        """The sha256 of a base version, for "identical bytes make no version": from our own
        commits, from the content cache when it holds the whole version, or read (small
        files only: cheaper than a version nobody wanted). None: unknown."""
        if base.size == 0:
            return hashlib.sha256(b"").hexdigest()
        if base.version_id is None:
            return None
        with self._ns_lock:
            known = self._known_sha.get((base.file_id, base.version_id))
            version = self._versions.get((base.file_id, base.version_id))
        if known is not None:
            return known
        entry = self._blocks.pin(base.file_id, base.version_id, base.size)
        try:
            if not self._blocks.complete(entry):
                if version is None or base.size > self.config.seed_cache_bytes:
                    return None
                stub = Item(kind="file", id=base.file_id, name="", parent_id=None,
                            size=base.size, created=None, updated=None, version=version)
                of = OpenFile(0, "(base)", Scope(0), stub, version, entry, False)
                try:
                    self._reader.read(of, 0, base.size)
                except FsError:
                    return None
            digest = hashlib.sha256()
            pos = 0
            while pos < base.size:
                chunk = self._blocks.read(entry, pos, min(8 << 20, base.size - pos))
                if not chunk:
                    return None
                digest.update(chunk)
                pos += len(chunk)
        finally:
            self._blocks.unpin(entry)
        sha = digest.hexdigest()
        with self._ns_lock:
            self._known_sha[(base.file_id, base.version_id)] = sha
        return sha

    def _target(self, local: LocalFile) -> Target:
        return Target(local.scope.company_id, local.scope.project_id, local.parent_id,
                      self._codec.to_remote(local.name))

    def _new_local(self, scope: Scope, parent_id: int, name: str, path: str, *,
                   local_only: bool, base: Base | None = None, aside: Item | None = None,
                   staged: StagedFile | None = None) -> LocalFile:
        now = self._clock.time()
        return LocalFile(scope, parent_id, name, local_only, now, now, staged=staged,
                         base=base, aside=aside, path=path)

    def _refuse_write(self, item: Item, path: str) -> None:
        by = item.checked_out_by
        if by is not None and self._checked_out_by_other(item):
            holder = f"{by.name} <{by.login}>" if by.name and by.login else \
                (by.name or by.login or f"user {by.id}")
            until = (f" until {xattrs.iso(item.checked_out_until)}"
                     if item.checked_out_until is not None else "")
            log.warning("cannot write %r: it is checked out in Procore by %s%s", path, holder,
                        until)
            raise FsAccessDenied(f"checked out by {holder}", path)
        log.info("cannot write %r: it is read-only in Procore", path)
        raise FsAccessDenied("the file is read-only in Procore", path)

    def _open_for_write(self, node: Node, flags: int, path: str) -> int:
        item, scope = node.item, node.scope
        assert item is not None and scope is not None
        if self._read_only(item):
            self._refuse_write(item, path)
        parent_id = item.parent_id if item.parent_id is not None else \
            self.metadata.root_id(scope)
        if parent_id is None:
            raise FsIOError("the file's folder is unknown", path)
        _, name = _parent_and_name(path)
        slot = self._slot((scope, parent_id), name)
        with self._ns_lock:
            local = self._overlay.get(slot)
            if local is None:
                if self._overlay.hidden(item.id) is not None:
                    raise FsNotFound("no such file or folder", path)
                base = self._base_of(item)
                staged = self._staging.create(
                    base_size=base.size, fill=self._fill_for_base(scope, base, path))
                local = self._new_local(scope, parent_id, name, path, local_only=False,
                                        base=base, staged=staged)
                local.mtime = item.updated or local.mtime
                local.ctime = item.created or local.mtime
                local.inherits = True
                self._overlay.put(slot, local)
            return self._attach(local, flags, path)

    def _materialise(self, local: LocalFile) -> StagedFile:
        """The staged file of a local file restored from the journal or set aside (lock held)."""
        if local.staged is not None:
            return local.staged
        staged: StagedFile
        entry = self._journal.get(local.entry) if local.entry is not None else None
        if entry is not None:
            fill = self._fill_for_base(local.scope, entry.base, local.path)
            staged = self._staging.reopen(
                Snapshot(entry.spool, entry.size, tuple(entry.hole_ranges()),
                         bool(entry.dirty), 0), fill)
            staged.freeze()          # the journal owns that spool: write into a copy
            local.staged_at = staged.state()
        elif local.aside is not None and local.aside.version is not None:
            base = self._base_of(local.aside)
            staged = self._staging.create(
                base_size=base.size, fill=self._fill_for_base(local.scope, base, local.path))
        else:
            staged = self._staging.create()
        local.staged = staged
        return staged

    def _attach(self, local: LocalFile, flags: int, path: str) -> int:
        """A new handle on a local file (``_ns_lock`` held)."""
        if local.detached:
            raise FsNotFound("no such file or folder", path)
        write = _wants_write(flags)
        staged = self._materialise(local)
        if write:
            if staged.broken:
                raise FsNoSpace(f"cannot write: {staged.broken}", path)
            if local.writers == 0 and local.entry is not None and not local.held:
                # A close/reopen burst: keep the pending commit until this writer closes.
                local.held = self._queue.reopen(local.entry)
            if flags & os.O_TRUNC and staged.size:
                staged.truncate(0)
                local.mtime = self._clock.time()
        handle = next(self._next_handle)
        with self._handles_lock:
            self._local_handles[handle] = LocalHandle(handle, local, write,
                                                      bool(flags & os.O_APPEND))
        local.handles += 1
        if write:
            local.writers += 1
            local.done = False
        return handle

    def _local_handle(self, handle: int) -> LocalHandle:
        with self._handles_lock:
            lh = self._local_handles.get(handle)
        if lh is None:
            with self._handles_lock:
                known = handle in self._handles
            if known:
                raise FsInvalid("the file is not open for writing")
            raise FsInvalid(f"no open file with handle {handle}")
        return lh

    def create(self, path: str, flags: int) -> int:
        """Create a file and open it (``flags`` as for open; O_EXCL honoured)."""
        parent_path, name = _parent_and_name(path)
        parent = self._resolve(parent_path)
        scope, parent_id = self._container(parent, parent_path)
        self._check_new_name(name, path)
        if parent.role == "item" and parent.item is not None and parent.item.read_only:
            raise FsAccessDenied("the folder is read-only in Procore", path)
        existing = self._existing(parent, name, path)
        if existing is not None:
            if flags & os.O_EXCL:
                raise FsExists("already exists", path)
            if existing.kind == "dir":
                raise FsIsADirectory("a folder cannot be opened as a file", path)
            return self.open(path, flags)
        dkey: DirKey = (scope, parent_id)
        slot = self._slot(dkey, name)
        listing = self.metadata.cached(scope, parent_id)

        def sibling(other: str) -> bool:
            if self._overlay.get(self._slot(dkey, other)) is not None:
                return True
            found = listing.lookup(other) if listing is not None else None
            return found is not None and self._overlay.hidden(found.id) is None

        with self._ns_lock:
            local = self._overlay.get(slot)
            if local is not None:       # created meanwhile by another thread
                if flags & os.O_EXCL:
                    raise FsExists("already exists", path)
                return self._attach(local, flags, path)
            decision = self._rules.create(slot, sibling)
            base = None
            if isinstance(decision, Reclaim):
                base = self._reclaim(decision.ref, decision.cancel_delete, path)
            staged = self._staging.create()
            if base is not None:
                staged.mark_dirty()     # it starts empty, unlike the version it follows
            local = self._new_local(scope, parent_id, name, path,
                                    local_only=isinstance(decision, LocalOnly), base=base,
                                    staged=staged)
            self._overlay.put(slot, local)
            self._forget_negative(parent, name)
            handle = self._attach(local, flags & ~os.O_TRUNC, path)
        log.debug("created %r (%s)", path, type(decision).__name__)
        return handle

    def _reclaim(self, ref: RemoteRef, cancel_delete: int | None, path: str) -> Base | None:
        """A new file lands where a deleted or set-aside file was: it becomes its next version
        (lock held). None when the delete already left: the content becomes a new file."""
        if cancel_delete is not None and not self._queue.cancel_delete(cancel_delete):
            log.info("%r: the delete of the previous file is already on its way; saving as a "
                     "new file", path)
            return None
        self._overlay.unhide(ref.file_id)
        return self._base_of_ref(ref)

    def write(self, handle: int, offset: int, data: bytes) -> int:
        lh = self._local_handle(handle)
        if not lh.writable:
            raise FsInvalid("the file is not open for writing")
        staged = lh.local.staged
        assert staged is not None
        if lh.append:
            staged.append(data)
        else:
            staged.write(offset, data)
        lh.local.mtime = self._clock.time()
        return len(data)

    def truncate(self, path: str, size: int, handle: int | None = None) -> None:
        """truncate(2) by path, or ftruncate(2) when the handle is given."""
        if size < 0:
            raise FsInvalid("negative size", path)
        if handle is not None:
            with self._handles_lock:
                lh = self._local_handles.get(handle)
            if lh is not None and lh.writable:
                staged = lh.local.staged
                assert staged is not None
                staged.truncate(size)
                lh.local.mtime = self._clock.time()
                return
        opened = self.open(path, os.O_WRONLY)
        try:
            lh = self._local_handle(opened)
            staged = lh.local.staged
            assert staged is not None
            if staged.size != size:
                staged.truncate(size)
                lh.local.mtime = self._clock.time()
            self.flush(opened)
        finally:
            self.release(opened)

    def utimens(self, path: str, mtime: float | None) -> None:
        """Set the modification time a local file shows until Procore sets its own (on
        commit); a no-op for files in Procore, which keeps no times of ours."""
        node = self._resolve(path)
        if node.local is not None and mtime is not None:
            with self._ns_lock:
                node.local.mtime = mtime

    def flush(self, handle: int) -> None:
        """A close(2) of a descriptor: what was written becomes durable and journaled before
        close returns (ENOSPC from a full cache disk is reported here)."""
        with self._handles_lock:
            lh = self._local_handles.get(handle)
        if lh is None or not lh.writable:
            return
        local = lh.local
        self._finish_hashing(local)
        with self._ns_lock:
            if self._usable_staged(local) is None:
                return
            if local.local_only or local.detached or not self._worth_staging(local):
                return
            self._stage(local, hold=True)

    @staticmethod
    def _finish_hashing(local: LocalFile) -> None:
        """Before a seal: let the staged file finish hashing what was written, outside the
        namespace lock. It costs the close() what the background hasher is behind the writes
        (bounded), and spares the commit a pass over the file before its upload."""
        staged = local.staged
        if staged is not None:
            staged.catch_up(_HASH_WAIT)

    def fsync(self, handle: int) -> None:
        """Durable locally, then wait until Procore holds it (raises what went wrong)."""
        with self._handles_lock:
            lh = self._local_handles.get(handle)
        if lh is None:
            return
        local = lh.local
        if lh.writable:
            self._finish_hashing(local)
        with self._ns_lock:
            staged = self._usable_staged(local)
            if staged is None:
                return
            if local.local_only or local.detached:
                staged.make_durable()
                return
            if lh.writable and self._worth_staging(local):
                self._stage(local, hold=False)
            entry = local.entry if not local.held else None
        if entry is not None:
            self._queue.wait(entry)

    @staticmethod
    def _usable_staged(local: LocalFile) -> StagedFile | None:
        """The content being written, if any; one a full disk broke answers ENOSPC."""
        staged = local.staged
        if staged is not None and staged.broken:
            raise FsNoSpace(f"cannot save: {staged.broken}", local.path)
        return staged

    def _worth_staging(self, local: LocalFile) -> bool:
        """False for an existing file opened for writing and never changed."""
        staged = local.staged
        return staged is not None and (local.entry is not None or local.base is None
                                       or staged.dirty or local.aside is not None)

    def _stage(self, local: LocalFile, *, hold: bool) -> None:
        """Seal and journal a local file's content (``_ns_lock`` held); then freeze it, so the
        spool the journal names is never written in place again."""
        staged = local.staged
        assert staged is not None
        if local.entry is not None and not local.changed_since_staged() and \
                (hold or not local.held):
            return
        snap = staged.seal()
        old = local.entry
        entry = self._queue.stage(self._target(local), snap, local.base, key=local.path,
                                  previous=local.entry, hold=hold)
        staged.freeze()
        local.entry = entry
        local.staged_at = (snap.spool, snap.generation)
        local.held = hold
        local.done = False
        self._overlay.note_entry(local, entry, old)

    def _release_local(self, lh: LocalHandle) -> None:
        local = lh.local
        with self._ns_lock:
            local.handles -= 1
            if lh.writable:
                local.writers -= 1
            try:
                if lh.writable and local.writers == 0:
                    self._after_last_writer(local)
            except FsError as exc:
                # release(2) has no caller to tell: the flush before it did, or the log does.
                log.warning("cannot save %r: %s", local.path, exc.strerror)
            finally:
                if local.handles == 0:
                    self._settle(local)

    def _after_last_writer(self, local: LocalFile) -> None:
        staged = local.staged
        if staged is None or local.detached:
            return
        if staged.broken:
            self._drop_broken(local)
            return
        if local.local_only or not self._worth_staging(local):
            return
        self._stage(local, hold=False)

    def _drop_broken(self, local: LocalFile) -> None:
        """A write failed on the local disk: nothing of it may reach Procore."""
        staged = local.staged
        assert staged is not None
        if local.entry is not None and local.held and local.staged_at is not None \
                and local.staged_at[0] != staged.spool:
            # The journaled content (the last close) is intact: let it go.
            self._queue.unhold(local.entry)
        elif local.entry is not None:
            self._queue.cancel(local.entry)
        log.warning("the changes to %r were not saved: %s", local.path, staged.broken)
        self._remove_local(self._slot(local.dir_key, local.name), local, cancel=False)

    def _settle(self, local: LocalFile) -> None:
        """No handle is open any more (lock held): forget what needs no overlay entry."""
        staged = local.staged
        if local.detached:
            if staged is not None:
                staged.discard()
            return
        if local.local_only or staged is None:
            return
        slot = self._slot(local.dir_key, local.name)
        if local.entry is None and local.base is not None and not staged.dirty \
                and local.aside is None:
            staged.discard()     # opened for writing, never changed
            self._overlay.remove(slot, local)
            local.detached = True
        elif local.done and not local.changed_since_staged():
            staged.close()
            self._overlay.remove(slot, local)
            local.detached = True

    def _remove_local(self, slot: Slot, local: LocalFile, *, cancel: bool = True) -> None:
        """Take a local file out of the overlay (lock held); its handles keep working."""
        if cancel and local.entry is not None:
            self._queue.cancel(local.entry)
        if local.entry is not None:
            self._overlay.forget_entry(local.entry)
        local.entry = None
        self._overlay.remove(slot, local)
        local.detached = True
        if local.handles == 0 and local.staged is not None:
            local.staged.discard()

    def _on_commit(self, event: CommitEvent) -> None:
        """The queue's outcomes: show them in the metadata cache and settle the overlay."""
        scope = Scope(event.target.company_id, event.target.project_id)
        if event.kind == "deleted":
            if event.file_id is not None:
                self._overlay.unhide(event.file_id)
                self.metadata.note_removed_id(scope, event.file_id)
                self._blocks.drop_versions(event.file_id)
            self.counts["deleted"] += 1
            return
        if event.kind in self.counts:
            self.counts[event.kind] += 1
        file, version = event.file, event.version
        if event.kind in ("committed", "conflict") and file is not None:
            parent = file.parent_id if file.parent_id is not None else event.target.parent_id
            if parent is not None:
                self.metadata.note_created(scope, parent, Item.of_file(file))
            if version is not None:
                self.counts["bytes"] += event.size
                self._remember_version(file.id, version)
                with self._handles_lock:
                    # The kernel's cache holds what was written, which is this version.
                    self._last_version[file.id] = version.id
                if event.sha256 is not None:
                    with self._ns_lock:
                        self._known_sha[(file.id, version.id)] = event.sha256
            if event.kind == "conflict" and event.target.parent_id is not None:
                self.metadata.invalidate(scope, event.target.parent_id)
        if event.entry_id is None or event.kind in ("failed", "cancelled"):
            return
        with self._ns_lock:
            local = self._overlay.by_entry(event.entry_id)
            if local is None or local.entry != event.entry_id:
                return
            self._overlay.forget_entry(event.entry_id)
            if event.kind == "committed" and file is not None and version is not None:
                local.base = Base(file.id, version.id, version.number, event.size,
                                  event.sha256)
                self._seed_cache(local, file.id, version)
            if local.local_only or local.changed_since_staged():
                return
            local.done = True
            if local.handles == 0:
                self._settle(local)

    def _seed_cache(self, local: LocalFile, file_id: int, version: FileVersion) -> None:
        """Put the bytes just committed into the content cache: reading them back costs no
        download (lock held; small files only)."""
        staged = local.staged
        if staged is None or local.changed_since_staged() or staged.holes() or \
                staged.size != version.size or version.size > self.config.seed_cache_bytes \
                or version.size == 0:
            return
        try:
            data = staged.read(0, version.size)
            entry = self._blocks.pin(file_id, version.id, version.size)
            try:
                self._blocks.write(entry, 0, data)
            finally:
                self._blocks.unpin(entry)
        except (OSError, ValueError) as exc:
            log.debug("could not cache the committed bytes of %r: %s", local.path, exc)

    def _restore(self) -> None:
        """At start: show what the journal still holds (pending files, hidden deletes)."""
        self._queue.recover()
        for entry in self._queue.pending():
            if entry.parent_id is None:
                continue
            scope = Scope(entry.company_id, entry.project_id)
            name = self._codec.to_local(entry.name)
            slot = self._slot((scope, entry.parent_id), name)
            local = self._overlay.get(slot)
            if local is None:
                local = LocalFile(scope, entry.parent_id, name, False, entry.updated_at,
                                  entry.created_at, base=entry.base, path=entry.key)
                self._overlay.put(slot, local)
            elif local.base is None:
                local.base = entry.base
            old = local.entry
            local.entry = entry.id
            local.size_hint = entry.size
            self._overlay.note_entry(local, entry.id, old)
        for d in self._queue.pending_deletes():
            scope = Scope(d.company_id, d.project_id)
            slot = self._slot((scope, d.parent_id or 0), self._codec.to_local(d.name))
            ref = RemoteRef(d.file_id, d.version_id, d.version_number, d.size)
            self._overlay.hide(Hidden(slot, ref, "deleted", d.id))
            self._rules.restore_delete(slot, ref, d.id, d.due_at)
        pending = len(self._queue.pending())
        if pending or self._queue.pending_deletes():
            log.info("the write journal holds %d file(s) and %d delete(s) not yet in Procore; "
                     "sending them", pending, len(self._queue.pending_deletes()))

    def _defer_delete(self, decision: DeferDelete, slot: Slot, path: str) -> None:
        """Hide a Procore file now and journal its DELETE for the end of the grace period."""
        ref = decision.ref
        hidden = self._overlay.hidden(ref.file_id)
        home = hidden.slot if hidden is not None else slot
        (scope, parent_id), _ = home
        name = self._remote_name_of(scope, ref.file_id, home)
        target = Target(scope.company_id, scope.project_id, parent_id, name)
        did = self._queue.schedule_delete(ref, target, decision.due, key=path)
        self._rules.note_delete_journaled(ref, did)
        self._overlay.hide(Hidden(home, ref, "deleted", did))

    def _remote_name_of(self, scope: Scope, file_id: int, slot: Slot) -> str:
        item = self.metadata.find_item(scope, file_id)
        return item.name if item is not None else self._codec.to_remote(slot[1])

    def _flush_deletes(self, hidden: list[Hidden]) -> None:
        """Send deferred deletes now (the folder is removed, or the name is needed)."""
        for h in hidden:
            if h.delete_id is not None:
                self._queue.delete_now(h.delete_id)

    def status(self, *, live: bool = True) -> dict[str, Any]:
        """What ``procorefs status`` shows for this mount (``live=False``: without asking
        the client for its rate-limit figures, for the last status of a stopping mount)."""
        data = self._queue.status().as_dict()
        limit = getattr(self._client, "rate_limit", None)
        budget: dict[str, Any] | None = None
        if callable(limit) and live:
            try:
                rl = limit()
                budget = {"limit": rl.limit, "remaining": rl.remaining, "reset": rl.reset}
            except Exception as exc:  # status must never fail because of the client
                log.debug("no rate-limit figures: %s", exc)
        data["rate_limit"] = budget
        data["offline"] = self.metadata.offline
        data["local_only"] = sorted(local.path for local in self._overlay.all()
                                    if local.local_only)
        data["counts"] = dict(self.counts)
        return data

    def persist(self) -> None:
        """Write what the metadata cache learnt to disk now (the status publisher calls it a
        few times a second at most), so a mount killed with -9 restarts offline from it."""
        self.metadata.flush()

    def retry_failed(self) -> int:
        """``procorefs queue retry``: failed commits and deletes again, and everything queued
        now rather than at its backoff time."""
        n = self._queue.retry_failed()
        self._queue.expedite()
        return n

    def wait_for_change(self, timeout: float) -> None:
        """Block until the commit queue changes (something staged, sent or failed), or
        ``timeout`` passes (the status publisher)."""
        self._queue.wait_idle(timeout)

    def run_commits(self) -> int:
        """Commit everything queued now, in this thread, skipping debounce and grace periods
        (tests with a manual clock, and tools that write without a mount); answers how many
        commits and deletes were handled."""
        self._queue.expedite()
        return self._queue.run_pending()

    def wait_for_commits(self, timeout: float) -> bool:
        """Wait until nothing is queued (tests, benchmarks); True when that happened."""
        self._queue.expedite()
        deadline = time.monotonic() + timeout
        while self._queue.busy():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._queue.wait_idle(min(0.5, left))
        return True

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
        if parent.role == "item" and parent.item is not None and parent.item.read_only:
            raise FsAccessDenied("the folder is read-only in Procore", path)
        if self._existing(parent, name, path) is not None:
            raise FsExists("already exists", path)
        self._flush_deletes(self._overlay.hidden_at(self._slot((scope, parent_id), name)))
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
        dkey: DirKey = (scope, item.id)
        if any(not local.detached for local in self._overlay.in_dir(dkey)):
            raise FsNotEmpty("the folder is not empty", path)
        # Files deleted in it wait for their grace period: Procore must see them go first.
        self._flush_deletes(self._overlay.hidden_in(dkey))
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
        _, name = _parent_and_name(path)
        if node.local is not None:
            local = node.local
            with self._ns_lock:
                slot = self._slot(local.dir_key, local.name)
                if self._overlay.get(slot) is not local:
                    raise FsNotFound("no such file or folder", path)
                ref = None if local.local_only else local.ref()
                decision = self._rules.unlink(slot, ref)
                self._remove_local(slot, local)
                if isinstance(decision, DeferDelete):
                    self._defer_delete(decision, slot, path)
            log.debug("removed %r (%s)", path, type(decision).__name__)
            return
        scope, item = self._remote_item(node, path, "removed")
        if self._read_only(item):
            raise FsAccessDenied("the file is checked out by someone else or read-only", path)
        if self.config.delete_grace <= 0:
            self._remove_file(scope, item, path)
            return
        parent_id = item.parent_id if item.parent_id is not None else \
            self.metadata.root_id(scope)
        assert parent_id is not None
        slot = self._slot((scope, parent_id), name)
        with self._ns_lock:
            decision = self._rules.unlink(slot, self._ref_of(item))
            if isinstance(decision, DeferDelete):
                self._defer_delete(decision, slot, path)
        log.debug("deleting %r in Procore after %.0f s unless a save puts it back", path,
                  self.config.delete_grace)

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
        if src.local is not None or (src.kind == "file" and self.config.delete_grace > 0):
            self._rename_file(old, new, src_parent, src, dst_parent, new_parent_path,
                              old_name, new_name, replace)
            return
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
            if existing.local is not None:
                if item.kind == "dir":
                    raise FsNotADirectory("cannot replace a file with a folder", new)
                self.unlink(new)
            else:
                self._clear_target(existing, item, new)
        if item.kind == "file":
            dkey: DirKey = (scope, dst_parent_id)
            self._flush_deletes(self._overlay.hidden_at(self._slot(dkey, new_name)))
        self._patch(scope, item, remote_name, dst_parent_id, old)
        self._forget_negative(dst_parent, new_name)
        log.debug("renamed %r to %r (Procore id %d)", old, new, item.id)

    def _patch(self, scope: Scope, item: Item, remote_name: str, parent_id: int,
               what: str) -> Item:
        """Rename and/or move a Procore item (one PATCH; nothing when nothing changes)."""
        name_arg = remote_name if remote_name != item.name else None
        parent_arg = parent_id if parent_id != item.parent_id else None
        if name_arg is None and parent_arg is None:
            return item
        with api_call("rename", what):
            if item.kind == "dir":
                after = Item.of_folder(self._client.update_folder(
                    scope, item.id, name=name_arg, parent_id=parent_arg))
            else:
                after = Item.of_file(self._client.update_file(
                    scope, item.id, name=name_arg, parent_id=parent_arg))
        merged = after.merged_into_old(item)
        self.metadata.note_moved(scope, item, merged)
        return merged

    def _rename_file(self, old: str, new: str, src_parent: Node, src: Node, dst_parent: Node,
                     new_parent_path: str, old_name: str, new_name: str,
                     replace: bool) -> None:
        """A file renamed: through the save-pattern rules (set-aside, land, local-only)."""
        scope = src.scope
        assert scope is not None
        src_item = src.item if src.local is None else None
        if src_item is not None:
            self._remote_item(src, old, "renamed or moved")
            if self._read_only(src_item):
                raise FsAccessDenied("the item is checked out by someone else or read-only",
                                     old)
        if dst_parent.role == "top" or dst_parent.scope != scope:
            raise FsCrossDevice("Procore cannot move items between projects or companies",
                                new)
        _, dst_parent_id = self._container(dst_parent, new_parent_path)
        remote_name = self._check_new_name(new_name, new)
        src_dkey = self._slot_dir(src_parent)
        assert src_dkey is not None
        src_slot = self._slot(src_dkey, old_name)
        dst_dkey: DirKey = (scope, dst_parent_id)
        dst_slot = self._slot(dst_dkey, new_name)
        existing = self._existing(dst_parent, new_name, new)
        if existing is not None:
            same = (existing.local is not None and existing.local is src.local) or (
                existing.local is None and src_item is not None and existing.item is not None
                and existing.item.id == src_item.id)
            if same and src_slot == dst_slot:
                if src.local is not None:
                    with self._ns_lock:
                        src.local.name = new_name
                    return
                existing = None
            elif same:
                existing = None
            elif not replace:
                raise FsExists("the target exists", new)
            elif existing.kind == "dir":
                raise FsIsADirectory("cannot replace a folder with a file", new)
            elif existing.local is None and existing.item is not None and \
                    self._read_only(existing.item):
                raise FsAccessDenied("the target is checked out by someone else or read-only",
                                     new)
        dst_local = existing.local if existing is not None else None
        remote_after: list[tuple[str, Any]] = []
        src_local = src.local
        self._ns_lock.acquire()
        if (src_local is not None and src_local.detached) or \
                (dst_local is not None and dst_local.detached):
            # A commit settled one of them meanwhile: they are plain Procore files now.
            self._ns_lock.release()
            self.rename(old, new, replace=replace)
            return
        try:
            src_ref: RemoteRef | None
            if src_local is None:
                assert src_item is not None
                src_ref = self._ref_of(src_item)
            elif src_local.local_only:
                src_ref = None
            else:
                src_ref = src_local.ref()
            dst_ref: RemoteRef | None = None
            if existing is not None:
                if dst_local is None:
                    assert existing.item is not None
                    dst_ref = self._ref_of(existing.item)
                elif not dst_local.local_only:
                    dst_ref = dst_local.ref()
            plan = self._rules.rename(src_slot, dst_slot, src_ref, dst_ref)
            log.debug("rename %r -> %r: %s, %s", old, new, type(plan.replaced).__name__,
                      type(plan.moved).__name__)
            replaced, moved = plan.replaced, plan.moved
            # What the rename replaces.
            if isinstance(replaced, DeferDelete):
                self._defer_delete(replaced, dst_slot, new)
            elif isinstance(replaced, DeleteNow):
                remote_after.append(("delete", replaced.ref))
            previous = None
            if dst_local is not None and dst_local is not src_local:
                if isinstance(moved, Land) and not dst_local.local_only and \
                        dst_local.entry is not None:
                    # The landed content takes over the destination's pending commit (its
                    # spool goes when the queue swaps it in).
                    previous = dst_local.entry
                    self._overlay.forget_entry(previous)
                    dst_local.entry = None
                    self._overlay.remove(dst_slot, dst_local)
                    dst_local.detached = True
                    if dst_local.handles == 0 and dst_local.staged is not None:
                        dst_local.staged.close()
                else:
                    self._remove_local(dst_slot, dst_local)
            # What happens to the source.
            if isinstance(moved, MoveLocal):
                self._move_local(src_slot, dst_slot, new_name, new, src_local)
            elif isinstance(moved, SetAside):
                self._set_aside(src_slot, dst_slot, new_name, new, src_local, src_item,
                                moved.ref)
            elif isinstance(moved, Restore):
                self._restore_aside(src_slot, dst_slot, new_name, new, src_local, moved.ref)
            elif isinstance(moved, LocalOnly):
                assert src_local is not None
                if src_local.entry is not None:
                    self._queue.cancel(src_local.entry)
                    self._overlay.forget_entry(src_local.entry)
                    src_local.entry = None
                src_local.local_only = True
                src_local.base = None
                self._move_local(src_slot, dst_slot, new_name, new, src_local)
            elif isinstance(moved, Land):
                fallback = self._land(src_slot, dst_slot, new_name, new, src_local, moved,
                                      previous)
                if fallback is not None:
                    remote_after.append(("publish", fallback))
            elif isinstance(moved, RemoteRename):
                remote_after.append(("rename", moved.ref))
        finally:
            self._ns_lock.release()
        for action, arg in remote_after:
            if action == "delete":
                ref: RemoteRef = arg
                victim = existing.item if existing is not None and existing.item is not None \
                    and existing.item.id == ref.file_id else self.metadata.find_item(
                        scope, ref.file_id)
                if victim is not None:
                    self._remove_file(scope, victim, new)
            elif action == "rename":
                self._remote_rename(scope, arg, src_slot, dst_slot, new_name, remote_name,
                                    dst_parent_id, old, new, src_local)
            else:
                self._publish_late(scope, arg, remote_name, dst_parent_id, new)
        self._forget_negative(dst_parent, new_name)

    def _move_local(self, src_slot: Slot, dst_slot: Slot, name: str, path: str,
                    local: LocalFile | None) -> None:
        """An overlay-only rename (lock held)."""
        assert local is not None
        self._overlay.remove(src_slot, local)
        local.parent_id = dst_slot[0][1]
        local.name = name
        local.path = path
        self._overlay.put(dst_slot, local)
        if local.entry is not None and not local.local_only:
            self._queue.retarget(local.entry, self._target(local))

    def _set_aside(self, src_slot: Slot, dst_slot: Slot, name: str, path: str,
                   local: LocalFile | None, item: Item | None, ref: RemoteRef) -> None:
        """A Procore file renamed to a local-only name: shown there, hidden at home, and
        Procore is not told (lock held)."""
        if local is None:
            assert item is not None
            local = self._new_local(src_slot[0][0], dst_slot[0][1], name, path,
                                    local_only=True, aside=item)
            local.mtime = item.updated or local.mtime
            local.ctime = item.created or local.mtime
            local.size_hint = item.size
        else:
            self._overlay.remove(src_slot, local)
            local.parent_id = dst_slot[0][1]
            local.name = name
            local.path = path
            local.local_only = True
            if local.aside is None:
                local.aside = item or self.metadata.find_item(local.scope, ref.file_id)
        self._overlay.put(dst_slot, local)
        self._overlay.hide(Hidden(src_slot, ref, "set aside"))

    def _restore_aside(self, src_slot: Slot, dst_slot: Slot, name: str, path: str,
                       local: LocalFile | None, ref: RemoteRef) -> None:
        """A set-aside file renamed back to its own name (lock held)."""
        self._overlay.unhide(ref.file_id)
        if local is None:
            return
        staged = local.staged
        if staged is not None and staged.dirty:
            # Written while set aside: that content is its next version.
            local.local_only = False
            local.base = self._base_of_ref(ref)
            local.aside = None
            self._overlay.remove(src_slot, local)
            local.parent_id, local.name, local.path = dst_slot[0][1], name, path
            self._overlay.put(dst_slot, local)
            if local.writers == 0:
                self._stage(local, hold=False)
            return
        self._remove_local(src_slot, local, cancel=False)

    def _land(self, src_slot: Slot, dst_slot: Slot, name: str, path: str,
              local: LocalFile | None, land: Land, previous: int | None) -> LocalFile | None:
        """The source's bytes become the content at the destination (lock held): a new
        version of ``land.target``, or a new file. Answers a local file whose pending commit
        was already on its way under its old name (the caller renames it in Procore)."""
        assert local is not None
        base: Base | None = None
        if land.target is not None:
            if land.cancel_delete is not None and \
                    not self._queue.cancel_delete(land.cancel_delete):
                log.info("%r: the delete of the previous file is already on its way; saving "
                         "as a new file", path)
            else:
                self._overlay.unhide(land.target.file_id)
                base = self._base_of_ref(land.target)
        staged = self._materialise(local)
        if land.source is not None:
            # A reclaimed set-aside moved on: its bytes are the old version's.
            staged.complete()
            staged.mark_dirty()
        elif base is not None:
            staged.mark_dirty()
        self._overlay.remove(src_slot, local)
        local.parent_id, local.name, local.path = dst_slot[0][1], name, path
        local.local_only = False
        local.aside = None
        if previous is None and base is not None:
            # A save of the same file still queued (its holder was set aside since, as AutoCAD
            # does with X.dwg -> X.bak): this one replaces it in the queue, or follows it.
            holder = self._overlay.pending_for(base.file_id, local)
            if holder is not None and holder.entry is not None:
                previous = holder.entry
                self._overlay.forget_entry(previous)
                holder.entry = None
        own = local.entry
        if own is not None and previous is None:
            if self._queue.retarget(own, self._target(local), base):
                local.base = base
                self._overlay.put(dst_slot, local)
                return None
            # Committed (or being committed) under the source name already.
            self._overlay.put(dst_slot, local)
            return local
        if own is not None:
            # The destination had pending content of its own: this replaces it in the queue.
            self._queue.cancel(own)
            self._overlay.forget_entry(own)
            staged.fork_now()
        local.entry = previous
        local.held = False
        local.staged_at = None
        local.base = base
        self._overlay.put(dst_slot, local)
        if previous is not None:
            self._overlay.note_entry(local, previous, None)
        if local.writers == 0:
            self._stage(local, hold=False)
        return None

    def _remote_rename(self, scope: Scope, ref: RemoteRef, src_slot: Slot, dst_slot: Slot,
                       new_name: str, remote_name: str, parent_id: int, old: str, new: str,
                       local: LocalFile | None) -> None:
        """A Procore file renamed to an ordinary name: one PATCH (outside the lock)."""
        self._flush_deletes(self._overlay.hidden_at(dst_slot))
        item = (local.aside if local is not None and local.aside is not None else None) or \
            self.metadata.find_item(scope, ref.file_id)
        if item is None:
            with api_call("rename", old):
                item = Item.of_file(self._client.file(scope, ref.file_id))
        self._patch(scope, item, remote_name, parent_id, old)
        with self._ns_lock:
            self._overlay.unhide(ref.file_id)
            if local is None:
                return
            if local.aside is not None and local.local_only:
                # An unclaimed set-aside renamed to an ordinary name: the file itself moved.
                self._remove_local(src_slot, local, cancel=False)
                return
            self._overlay.remove(src_slot, local)
            local.parent_id, local.name, local.path = dst_slot[0][1], new_name, new
            self._overlay.put(dst_slot, local)
            if local.entry is not None:
                self._queue.retarget(local.entry, self._target(local))

    def _publish_late(self, scope: Scope, local: LocalFile, remote_name: str, parent_id: int,
                      new: str) -> None:
        """A pending new file renamed after its commit started: wait for it, then rename
        the created file in Procore (outside the lock)."""
        entry = local.entry
        if entry is not None:
            self._queue.wait(entry)
        with self._ns_lock:
            base = local.base
        if base is None:
            return
        self._flush_deletes(self._overlay.hidden_at(self._slot((scope, parent_id),
                                                               local.name)))
        item = self.metadata.find_item(scope, base.file_id)
        if item is None:
            with api_call("rename", new):
                item = Item.of_file(self._client.file(scope, base.file_id))
        self._patch(scope, item, remote_name, parent_id, new)

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


def _client_upload_layout(client: RemoteClient) -> UploadLayout | None:
    """How the client uploads (its settings), or None for a client that does not say."""
    settings = getattr(client, "settings", None)
    part_size = getattr(settings, "upload_part_size", None)
    small_max = getattr(settings, "small_upload_max", None)
    if isinstance(part_size, int) and isinstance(small_max, int) and part_size > 0:
        return UploadLayout(part_size, small_max)
    return None


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

