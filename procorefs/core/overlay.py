"""The local overlay: what the mount shows in front of Procore's listings while files are written.

This module owns the in-memory table of *local files* and *hidden Procore files*, keyed by
slot, and nothing else: no I/O, no API calls, no policy (``fs.py`` decides, ``localnames.py``
holds the save-pattern rules). A slot is ``((scope, folder_id), lookup_key(local name))``:
every folder is a Procore folder, so a local file always lives in one.

A ``LocalFile`` is shown at its slot instead of whatever Procore's listing has there:
- *local-only* (temp, lock and probe names, and set-aside files): never uploaded;
- *pending*: content staged for Procore (a new file, or a new version of ``base.file_id``),
  journaled once its writers have closed, until the commit queue reports it done.
Its content is ``staged`` (a ``StagedFile`` shared by every handle of it); ``staged`` is None
only for a file restored from the journal at start or a set-aside file not opened yet, which
the core materialises at its first open.

A *hidden* Procore file (deleted with its DELETE deferred, or set aside under a local-only name)
is left out of listings by id until the delete is done or the file is reclaimed/restored.

Handles hold a ``LocalFile`` itself, never its path, so renames (Word's ``X -> ~WRL0001.tmp``
while a handle is open) and unlinks keep them valid: a file unlinked while open is *detached*
(out of the table, alive for its handles, never committed).

Locking: ``Overlay._lock`` is a leaf guarding the tables. Fields of a ``LocalFile`` are written
under ``ProcoreFS._ns_lock`` (see the lock order in ``fs.py``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from procorefs.api import Scope
from procorefs.core.journal import Base
from procorefs.core.localnames import RemoteRef
from procorefs.core.remote import Item
from procorefs.core.staging import StagedFile

DirKey = tuple[Scope, int]
Slot = tuple[DirKey, str]


@dataclass(eq=False)
class LocalFile:
    """One file the overlay shows (see the module docstring)."""

    scope: Scope
    parent_id: int
    name: str                           # the local name, as shown
    local_only: bool
    mtime: float
    ctime: float
    staged: StagedFile | None = None
    base: Base | None = None            # the Procore file this content versions (None: new)
    aside: Item | None = None           # a set-aside: the Procore file shown under this name
    entry: int | None = None            # journal entry of the last stage
    staged_at: tuple[str, int] | None = None   # staged.state() when last staged
    held: bool = False                  # entry journaled "open" while a writer may write
    handles: int = 0
    writers: int = 0
    size_hint: int = 0                  # the size while ``staged`` is None
    detached: bool = False
    done: bool = False                  # the last staged content is in Procore
    inherits: bool = False              # the same file as ``base`` (opened on it), not a
                                        # new file landed on its id: its old handles see it
    path: str = ""                      # for status and logs only

    @property
    def dir_key(self) -> DirKey:
        return (self.scope, self.parent_id)

    @property
    def size(self) -> int:
        staged = self.staged
        return staged.size if staged is not None else self.size_hint

    @property
    def remote_id(self) -> int | None:
        if self.base is not None:
            return self.base.file_id
        return self.aside.id if self.aside is not None else None

    def ref(self) -> RemoteRef | None:
        """The Procore file this local file stands for, as the save rules see it."""
        if self.base is not None:
            return RemoteRef(self.base.file_id, self.base.version_id, self.base.version_number,
                             self.base.size, self.base.sha256)
        return None

    def changed_since_staged(self) -> bool:
        staged = self.staged
        return staged is not None and staged.state() != self.staged_at


@dataclass(frozen=True, slots=True)
class Hidden:
    """A Procore file the mount does not show at its own slot."""

    slot: Slot
    ref: RemoteRef
    why: str                            # "deleted" | "set aside"
    delete_id: int | None = None


class Overlay:
    """The tables (thread-safe; a leaf lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[Slot, LocalFile] = {}         # GUARDED_BY(_lock)
        self._by_dir: dict[DirKey, dict[str, LocalFile]] = {}   # GUARDED_BY(_lock)
        self._by_entry: dict[int, LocalFile] = {}       # GUARDED_BY(_lock)
        self._hidden: dict[int, Hidden] = {}            # GUARDED_BY(_lock) by file id

    # -- local files ----------------------------------------------------------------------

    def get(self, slot: Slot) -> LocalFile | None:
        with self._lock:
            return self._files.get(slot)

    def put(self, slot: Slot, local: LocalFile) -> None:
        with self._lock:
            self._files[slot] = local
            self._by_dir.setdefault(slot[0], {})[slot[1]] = local
            if local.entry is not None:
                self._by_entry[local.entry] = local

    def remove(self, slot: Slot, local: LocalFile) -> None:
        with self._lock:
            if self._files.get(slot) is local:
                del self._files[slot]
                in_dir = self._by_dir.get(slot[0])
                if in_dir is not None:
                    in_dir.pop(slot[1], None)
                    if not in_dir:
                        del self._by_dir[slot[0]]

    def note_entry(self, local: LocalFile, entry: int | None, old: int | None) -> None:
        with self._lock:
            if old is not None and self._by_entry.get(old) is local:
                del self._by_entry[old]
            if entry is not None:
                self._by_entry[entry] = local

    def by_entry(self, entry: int) -> LocalFile | None:
        with self._lock:
            return self._by_entry.get(entry)

    def forget_entry(self, entry: int) -> None:
        with self._lock:
            self._by_entry.pop(entry, None)

    def in_dir(self, key: DirKey) -> list[LocalFile]:
        with self._lock:
            return list(self._by_dir.get(key, {}).values())

    def by_remote_id(self, file_id: int) -> LocalFile | None:
        """A pending local file whose content becomes a version of ``file_id``."""
        with self._lock:
            for local in self._files.values():
                if local.base is not None and local.base.file_id == file_id \
                        and local.staged is not None and local.inherits:
                    return local
            return None

    def pending_for(self, file_id: int, but: LocalFile) -> LocalFile | None:
        """Another local file holding a journaled save of Procore file ``file_id``."""
        with self._lock:
            for local in self._files.values():
                if local is not but and local.entry is not None and local.base is not None \
                        and local.base.file_id == file_id:
                    return local
            return None

    def has_files(self) -> bool:
        return bool(self._files)

    def all(self) -> list[LocalFile]:
        with self._lock:
            return list(self._files.values())

    # -- hidden Procore files -------------------------------------------------------------

    def hide(self, hidden: Hidden) -> None:
        with self._lock:
            self._hidden[hidden.ref.file_id] = hidden

    def unhide(self, file_id: int) -> Hidden | None:
        with self._lock:
            return self._hidden.pop(file_id, None)

    def hidden(self, file_id: int) -> Hidden | None:
        with self._lock:
            return self._hidden.get(file_id)

    def hidden_ids(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._hidden)

    def hidden_in(self, key: DirKey) -> list[Hidden]:
        with self._lock:
            return [h for h in self._hidden.values() if h.slot[0] == key]

    def hidden_at(self, slot: Slot) -> list[Hidden]:
        with self._lock:
            return [h for h in self._hidden.values() if h.slot == slot]
