"""Save-pattern rules: which names never reach Procore, and what a save dance means to Procore.

This module owns the rules of ``shared/save-patterns.md`` as pure logic. It makes no I/O and no
API call: it answers *decisions* that the core carries out (with the commit queue in
``core/commits.py``). Everything here is tested alone with a ``ManualClock``.

Two pieces:

``LocalNamePolicy``
    ``is_local_only(name, sibling_exists=...)`` over a configurable pattern set: temp, lock and
    shell-probe names (Word ``~$*``, ``~WRD*.tmp``, ``*.tmp``, Excel's 8-hex temps,
    ``.~lock.*#``, AutoCAD ``*.dwl``/``*.dwl2``/``*.sv$``/``*.ac$``/``atmpNNNN``, ``X.bak``
    beside ``X.dwg`` unless ``upload_dwg_backups``, ``.goutputstream-*``, ``*.swp``, ``*~``,
    rsync ``.X.XXXXXX``, vim's ``4913`` probe, ``.fuse_hidden*``, ``desktop.ini``,
    ``Thumbs.db``, ``.DS_Store``, ``._*``, ``*.sb-*``). Such names live only in the local
    overlay: visible on the mount, never uploaded.

``SaveRules``
    A small state machine over *slots* (``Slot = (dir_key, name)``; ``dir_key`` is whatever
    hashable the core uses for a folder, e.g. ``(company_id, project_id, folder_id)``). It
    remembers, for ``grace`` seconds, the remote files that were deleted or *set aside* (a
    remote file renamed to a local-only name is hidden under that name, never renamed in
    Procore), so that a new file landing on such a slot -- a temp renamed onto it, or a fresh
    create -- becomes a new version of the ORIGINAL file id and the pending delete is cancelled.

How the core calls ``SaveRules`` (one call per namespace operation, under the core's
namespace lock, before it touches Procore):

- ``create(slot)`` when a file is created at a slot that holds nothing visible. Answer:
  ``LocalOnly`` (keep in the overlay), ``NewFile`` (stage; commit as a new Procore file) or
  ``Reclaim(ref, cancel_delete)`` (stage, starting EMPTY; commit as a new version of
  ``ref.file_id`` on base ``ref``; cancel the journaled delete ``cancel_delete`` if not None).
- ``unlink(slot, ref)`` with the slot's remote identity (``None`` for a local-only or
  never-committed file). Answer: ``DropLocal`` (forget it locally, cancel any pending commit of
  it, no Procore call) or ``DeferDelete(ref, due)`` (hide it at once; journal a delete due at
  wall time ``due``; then ``note_delete_journaled(slot, delete_id)`` so that a reclaim can
  cancel it).
- ``rename(src, dst, src_ref, dst_ref)`` with both slots' remote identities. Answer: a
  ``RenamePlan(replaced, moved)``; ``replaced`` says what happens to the previous occupant of
  ``dst`` (``None``, ``DropLocal``, ``Superseded(ref)`` -- its id lives on as the target of the
  moved content --, ``DeferDelete`` or ``DeleteNow``), ``moved`` what happens to the source:
  ``MoveLocal`` (overlay-only rename), ``SetAside(ref)``, ``Restore(ref)`` (a set-aside renamed
  back home: no call), ``RemoteRename(ref)`` (PATCH name/parent), ``Land(target, source)``
  (the source's bytes become the content at ``dst``: a new version of ``target`` when it is not
  None -- cancelling ``cancel_delete`` --, else a new file; ``source`` is None when the bytes are
  the staged content of the source, or the ``RemoteRef`` of an old version whose bytes must be
  copied, for a set-aside that was already reclaimed), or ``LocalOnly`` (a pending new file
  renamed to a local-only name: cancel its commit).
- ``restore_delete(slot, ref, delete_id, due)`` at start, for each delete still pending in the
  journal, so that reclaims keep working across a restart.

Set-asides are kept in memory only: after a crash the remote file shows again under its Procore
name, which loses nothing. Deferred deletes are journaled by the caller.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from procorefs.clock import Clock, SystemClock

Slot = tuple[Hashable, str]
"""(dir_key, local name): where a name lives. ``dir_key`` is opaque to this module."""

DEFAULT_GRACE = 10.0
"""Seconds a deleted or set-aside remote file waits before Procore hears of it."""

# vim probes 4913 first, then steps by 123 while that name exists (vim's fileio.c).
_VIM_PROBES = frozenset(str(4913 + 123 * k) for k in range(64))

DEFAULT_GLOBS: tuple[str, ...] = (
    "~$*",              # Word/Excel/PowerPoint owner files
    "~*.tmp",           # ~WRD0000.tmp, ~WRL0001.tmp
    "*.tmp",            # ppt1234.tmp, lu12345abc.tmp, AutoCAD temps
    ".~lock.*#",        # LibreOffice lock files
    "*.dwl", "*.dwl2",  # AutoCAD "who has it open"
    "*.sv$", "*.ac$",   # AutoCAD autosave and temp
    ".goutputstream-*",  # gedit / GIO
    "*.swp", "*.swo", "*.swx",  # vim swap files
    "*~",               # vim, emacs backups
    ".fuse_hidden*",    # libfuse's stand-in for an unlinked open file
    "desktop.ini", "thumbs.db", ".ds_store", "autorun.inf",
    "._*",              # macOS AppleDouble
    "*.sb-*",           # macOS safe-save temp folders/files
)
"""fnmatch globs, matched case-insensitively against the whole name."""

DEFAULT_REGEXES: tuple[str, ...] = (
    r"[0-9A-Fa-f]{8}",                # Excel's extension-less temps, e.g. 4CCA4100
    r"atmp\d+",                       # AutoCAD save temps
    # rsync's ".X.XXXXXX": mkstemp suffix of 6 chars from [A-Za-z0-9]. An all-lowercase suffix
    # is left out on purpose (".bashrc.backup" is a real file); such an rsync temp that slips
    # through is still never uploaded under its temp name, because a pending commit that is
    # renamed before its debounce ends is simply retargeted (see commits.py).
    r"\..+\.(?![a-z]{6}$)[A-Za-z0-9]{6}",
)
"""Regexes that must match the whole name (``re.fullmatch``)."""


@dataclass(frozen=True)
class LocalNamePolicy:
    """Which names stay in the local overlay. Configurable: add or remove globs and regexes."""

    globs: tuple[str, ...] = DEFAULT_GLOBS
    regexes: tuple[str, ...] = DEFAULT_REGEXES
    exact: frozenset[str] = _VIM_PROBES
    upload_dwg_backups: bool = False
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patterns = [re.compile(fnmatch.translate(g.lower()), re.DOTALL) for g in self.globs]
        patterns += [re.compile(r"(?:" + r + r")\Z", re.DOTALL) for r in self.regexes]
        object.__setattr__(self, "_compiled", tuple(patterns))

    @classmethod
    def with_changes(cls, *, add_globs: Iterable[str] = (), remove_globs: Iterable[str] = (),
                     add_regexes: Iterable[str] = (), upload_dwg_backups: bool = False
                     ) -> LocalNamePolicy:
        """The default set adjusted from configuration (``remove_globs`` compares exactly)."""
        removed = set(remove_globs)
        globs = tuple(g for g in DEFAULT_GLOBS if g not in removed) + tuple(add_globs)
        return cls(globs=globs, regexes=DEFAULT_REGEXES + tuple(add_regexes),
                   upload_dwg_backups=upload_dwg_backups)

    def is_local_only(self, name: str,
                      sibling_exists: Callable[[str], bool] | None = None) -> bool:
        """True when ``name`` must never be uploaded.

        ``sibling_exists(other_name)`` answers whether a file ``other_name`` exists in the same
        folder; it is only asked about ``X.dwg`` for a name ``X.bak``. During a rename the core
        passes a function that also counts the rename's source as existing, so that AutoCAD's
        ``X.dwg -> X.bak`` is recognised.
        """
        if name in self.exact:
            return True
        if name in (".", ".."):
            return False
        lowered = name.lower()
        for pattern in self._compiled:
            # Globs were lowered, so they see the lowered name; the regexes see the real case
            # too (rsync's suffix rule depends on it).
            if pattern.match(lowered) or pattern.match(name):
                return True
        if not self.upload_dwg_backups and lowered.endswith(".bak") and sibling_exists:
            stem = name[:-4]
            for ext in (".dwg", ".DWG", ".Dwg"):
                if sibling_exists(stem + ext):
                    return True
        return False


@dataclass(frozen=True, slots=True)
class RemoteRef:
    """A Procore file as it was when the rule fired: the base for any later version."""

    file_id: int
    version_id: int | None
    version_number: int | None
    size: int
    sha256: str | None = None


# ---- decisions -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LocalOnly:
    """Keep in the local overlay; never upload. For a pending new file: cancel its commit."""


@dataclass(frozen=True, slots=True)
class NewFile:
    """Stage and commit as a new Procore file at the slot."""


@dataclass(frozen=True, slots=True)
class Reclaim:
    """The new content at the slot is a new version of ``ref.file_id`` (base ``ref``)."""

    ref: RemoteRef
    cancel_delete: int | None


@dataclass(frozen=True, slots=True)
class DropLocal:
    """Forget the slot locally (cancel any pending commit of it); no Procore call."""


@dataclass(frozen=True, slots=True)
class DeferDelete:
    """Hide at once; DELETE ``ref.file_id`` in Procore at wall time ``due`` unless reclaimed."""

    ref: RemoteRef
    due: float


@dataclass(frozen=True, slots=True)
class DeleteNow:
    """DELETE ``ref.file_id`` before the rename (Procore refuses a second file of one name)."""

    ref: RemoteRef


@dataclass(frozen=True, slots=True)
class Superseded:
    """The occupant's id lives on: the moved content becomes its next version."""

    ref: RemoteRef


@dataclass(frozen=True, slots=True)
class MoveLocal:
    """Rename inside the overlay only."""


@dataclass(frozen=True, slots=True)
class SetAside:
    """Show ``ref`` under the local-only destination name; Procore is not told."""

    ref: RemoteRef


@dataclass(frozen=True, slots=True)
class Restore:
    """A set-aside file renamed back to its own name: visible again, no Procore call."""

    ref: RemoteRef


@dataclass(frozen=True, slots=True)
class RemoteRename:
    """PATCH ``ref.file_id`` to the destination name/folder."""

    ref: RemoteRef


@dataclass(frozen=True, slots=True)
class Land:
    """The moved bytes become the destination's content.

    ``target`` not None: commit them as a new version of ``target.file_id`` (base ``target``),
    cancelling the journaled delete ``cancel_delete``. ``target`` None: a new file.
    ``source`` None: the bytes are the source's staged content (retarget its pending commit, or
    seal its staged file and journal it). ``source`` a ``RemoteRef``: the bytes are that
    version's, to be copied (a reclaimed set-aside, e.g. ``mv X.bak X.dwg``).
    """

    target: RemoteRef | None
    cancel_delete: int | None = None
    source: RemoteRef | None = None


CreateDecision = LocalOnly | NewFile | Reclaim
UnlinkDecision = DropLocal | DeferDelete
ReplacedDecision = DropLocal | Superseded | DeferDelete | DeleteNow
MovedDecision = MoveLocal | SetAside | Restore | RemoteRename | Land | LocalOnly


@dataclass(frozen=True, slots=True)
class RenamePlan:
    replaced: ReplacedDecision | None
    moved: MovedDecision


@dataclass(slots=True)
class _Tombstone:
    ref: RemoteRef
    at: float                   # monotonic
    delete_id: int | None       # journal id of the pending delete, if any


@dataclass(slots=True)
class _SetAside:
    ref: RemoteRef
    home: Slot
    reclaimed: bool = False


class SaveRules:
    """The save-pattern state machine (thread-safe; decisions only, no I/O).

    A set-aside reclaims its home at any age (Procore still holds the file under the home
    name, so anything new there can only be its next version); a deleted file reclaims only
    within ``grace`` seconds, after which its delete is due.
    """

    def __init__(self, policy: LocalNamePolicy | None = None, *, clock: Clock | None = None,
                 grace: float = DEFAULT_GRACE) -> None:
        self.policy = policy or LocalNamePolicy()
        self.grace = grace
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._tombs: dict[Slot, _Tombstone] = {}      # deleted remote files, by their slot
        self._aside: dict[Slot, _SetAside] = {}       # set-asides, by their local-only slot

    # -- queries --------------------------------------------------------------------------

    def is_local_only(self, slot: Slot,
                      sibling_exists: Callable[[str], bool] | None = None) -> bool:
        return self.policy.is_local_only(slot[1], sibling_exists)

    def set_aside_at(self, slot: Slot) -> RemoteRef | None:
        """The remote file shown (bytes of ``ref``'s version) under a local-only slot."""
        with self._lock:
            rec = self._aside.get(slot)
            return rec.ref if rec else None

    def hidden(self, slot: Slot) -> RemoteRef | None:
        """The remote file at ``slot`` that must not be shown (deleted or set aside), if any."""
        with self._lock:
            rec = self._home_aside(slot)
            if rec is not None:
                return rec.ref
            tomb = self._live_tomb(slot)
            return tomb.ref if tomb else None

    # -- events ---------------------------------------------------------------------------

    def create(self, slot: Slot,
               sibling_exists: Callable[[str], bool] | None = None) -> CreateDecision:
        with self._lock:
            if self.policy.is_local_only(slot[1], sibling_exists):
                return LocalOnly()
            claimed = self._claim(slot)
            if claimed is not None:
                return Reclaim(*claimed)
            return NewFile()

    def unlink(self, slot: Slot, ref: RemoteRef | None) -> UnlinkDecision:
        """``ref``: the slot's own Procore file; for a set-aside slot the rules know it."""
        with self._lock:
            rec = self._aside.pop(slot, None)
            if rec is not None:
                if rec.reclaimed:
                    return DropLocal()
                # Deleting an unclaimed set-aside deletes the file it stands for; a new file
                # landing at its home within the grace still reclaims it.
                return self._defer(rec.home, rec.ref)
            if ref is None:
                return DropLocal()
            return self._defer(slot, ref)

    def note_delete_journaled(self, ref: RemoteRef, delete_id: int) -> None:
        """Remember the journal id of a ``DeferDelete`` so a reclaim can cancel it."""
        with self._lock:
            for tomb in self._tombs.values():
                if tomb.ref.file_id == ref.file_id and tomb.delete_id is None:
                    tomb.delete_id = delete_id

    def restore_delete(self, slot: Slot, ref: RemoteRef, delete_id: int, due: float) -> None:
        """At start: a delete still pending in the journal keeps its reclaim window."""
        remaining = max(0.0, due - self._clock.time())
        with self._lock:
            self._tombs[slot] = _Tombstone(
                ref, self._clock.monotonic() - (self.grace - remaining), delete_id)

    def rename(self, src: Slot, dst: Slot, src_ref: RemoteRef | None,
               dst_ref: RemoteRef | None) -> RenamePlan:
        """Plan a rename. ``src_ref``/``dst_ref``: the slots' own Procore files (None: none).

        For a set-aside source pass ``src_ref=None``: the rules know what it stands for.
        """
        src_name = src[1]

        def exists_with_src(name: str) -> bool:
            return name == src_name and src[0] == dst[0]

        with self._lock:
            dst_local = self.policy.is_local_only(dst[1], exists_with_src)
            src_aside = self._aside.pop(src, None)
            replaced = self._replace(dst, dst_ref, dst_local)
            if src_aside is not None:
                moved = self._move_set_aside(src_aside, dst, dst_ref, dst_local)
                return RenamePlan(replaced, moved)
            if dst_local:
                if src_ref is None:
                    # A temp renamed to another temp, or a pending new file hidden again.
                    local_src = self.policy.is_local_only(src_name)
                    return RenamePlan(replaced, MoveLocal() if local_src else LocalOnly())
                self._aside[dst] = _SetAside(src_ref, src)
                return RenamePlan(replaced, SetAside(src_ref))
            if src_ref is None:
                return RenamePlan(replaced, self._land(dst, dst_ref, None))
            # A committed Procore file renamed to an ordinary name: a plain PATCH. Whatever
            # occupied the destination must go first: Procore refuses two files of one name.
            if isinstance(replaced, Superseded):
                replaced = DeleteNow(replaced.ref)
            return RenamePlan(replaced, RemoteRename(src_ref))

    # -- internals (lock held) ------------------------------------------------------------

    def _defer(self, slot: Slot, ref: RemoteRef) -> DeferDelete:
        self._tombs[slot] = _Tombstone(ref, self._clock.monotonic(), None)
        return DeferDelete(ref, self._clock.time() + self.grace)

    def _replace(self, dst: Slot, dst_ref: RemoteRef | None,
                 dst_local: bool) -> ReplacedDecision | None:
        rec = self._aside.pop(dst, None)
        if rec is not None:
            if rec.reclaimed:
                return DropLocal()
            return self._defer(rec.home, rec.ref)
        if dst_ref is None:
            return None
        if dst_local:
            return self._defer(dst, dst_ref)
        return Superseded(dst_ref)

    def _land(self, dst: Slot, dst_ref: RemoteRef | None, source: RemoteRef | None) -> Land:
        if dst_ref is not None:
            self._tombs.pop(dst, None)
            return Land(dst_ref, None, source)
        claimed = self._claim(dst)
        if claimed is not None:
            return Land(claimed[0], claimed[1], source)
        return Land(None, None, source)

    def _move_set_aside(self, rec: _SetAside, dst: Slot, dst_ref: RemoteRef | None,
                        dst_local: bool) -> MovedDecision:
        if dst_local:
            self._aside[dst] = rec
            return MoveLocal()
        if not rec.reclaimed:
            if dst == rec.home and dst_ref is None:
                return Restore(rec.ref)
            return RemoteRename(rec.ref)
        # Its id already lives on under the home name: only its old bytes move.
        return self._land(dst, dst_ref, rec.ref)

    def _home_aside(self, slot: Slot) -> _SetAside | None:
        for rec in self._aside.values():
            if rec.home == slot and not rec.reclaimed:
                return rec
        return None

    def _live_tomb(self, slot: Slot) -> _Tombstone | None:
        tomb = self._tombs.get(slot)
        if tomb is not None and self._clock.monotonic() - tomb.at > self.grace:
            del self._tombs[slot]
            return None
        return tomb

    def _claim(self, slot: Slot) -> tuple[RemoteRef, int | None] | None:
        """The remote file whose id a new file at ``slot`` continues, and the delete to cancel."""
        rec = self._home_aside(slot)
        if rec is not None:
            rec.reclaimed = True
            return rec.ref, None
        tomb = self._live_tomb(slot)
        if tomb is None:
            return None
        del self._tombs[slot]
        return tomb.ref, tomb.delete_id
