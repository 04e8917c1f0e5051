"""The commit queue: journal entries become Procore files and versions, exactly once.

This module owns the background half of the write path: a small worker pool that takes
journaled staged files (``core/journal.py``) once their debounce has passed, uploads them with
the API client's resumable uploader and creates the new file or version; the deferred deletes
of the save-pattern rules; retries with backoff; conflict copies; the status snapshot shown by
``procorefs status``. It never holds its lock across network I/O.

Commit of one entry (every step is journaled before the next one starts)::

    fill holes from the base -> hashes -> unchanged? -> upload (UploadState after every part)
    -> uploaded(uuid) -> create_file / create_version (or a conflict copy) -> committed
    -> rebase dependents -> remove the spool -> delete the row

Rules worth knowing:
- Hashes: the entry's sha256 and, for a segmented upload, every part's SHA-256 and MD5 come
  from what staging hashed as the bytes were written (``Snapshot.digests``, journaled as
  ``digests``), trusted only while the spool's modification time is the one they were taken
  at; what is missing is read once (``hash_parts``), and the client is handed the parts'
  digests so that it makes no pass of its own.
- Uploading during the debounce (``upload_layout`` given): an entry that will be a segmented
  upload, fresh from a close and with all its bytes local, is uploaded while its debounce
  runs (``_prepare``), in a worker that has nothing due; the create/version call still waits
  for the debounce. The entry stays ``waiting`` meanwhile, so a reopen, a rename, a new
  stage or a cancel within the debounce coalesce exactly as without it: each moves the
  entry's ``_epoch``, after which the early upload journals nothing and stops at its next
  part (a stage with other bytes, a rename to another name or scope, and a cancel drop it; a
  reopen takes it off the journal and a stage that finds nothing written gives it back). At
  worst the early upload is wasted: its create and PATCH calls, never a file or a version.
- Identical bytes make no version: an entry whose staged file was never written or truncated
  since it was staged from its base (``dirty`` false), or whose size and sha256 equal the
  base's, ends ``unchanged`` with no API call. The API has no remote hash, so the base's
  sha256 is known only when the core put it in the entry (its content cache hashed that
  version when it was fully read, or this queue reported it after committing it: every
  ``CommitEvent`` carries the sha256 of the committed version), or when the ``base_sha256``
  hook (the core's content cache) can answer at commit time. Unknown means "commit".
- Conflicts: after the upload, ``file()`` is read; if the current version moved past the base
  (someone else saved meanwhile), or the file is checked out by someone else (409), the bytes
  are committed beside it as ``NAME (conflict YYYY-MM-DD HHMM).EXT`` (local time) and
  reported (log WARNING, status, ``CommitEvent(kind="conflict")``). Nothing is overwritten.
- Crash safety: an entry found ``uploading`` resumes with its journaled UploadState (finished
  parts are not sent again); one found ``uploaded``, or any entry that already made an
  attempt at the final call, first looks in Procore for its own result (a file of that name in
  the parent, or a version past the base, of the same size, created after the upload began,
  and -- up to ``verify_bytes`` -- the same sha256) before creating anything. The client's
  ``create_file`` also guards a lost answer.
- Errors: offline, 5xx, 429 and unreadable answers retry with capped exponential backoff, the
  entry staying staged; a refused sign-in, a permission error or a vanished parent folder make
  the entry ``failed`` with its reason until ``retry_failed()``. Staged data is removed only
  after Procore confirmed.

How the core calls this (``queue = CommitQueue(journal, area, client, ...)``, ``queue.start()``
once at mount, ``queue.close()`` at unmount):
- last release of a written file: ``snap = staged.seal()``;
  ``eid = queue.stage(target, snap, base, key=path, previous=eid_of_path)`` before close()
  returns (``previous``: the id this path's staged file was last staged under, or None).
  The ``on_event`` callback then reports the outcome; on ``committed``/``conflict`` the core
  updates its metadata cache with ``event.file``/``event.version`` and drops the staged file
  when no handle is open.
- open for write of a path whose entry is pending: ``if not queue.reopen(eid):
  staged.freeze()``. (A held entry may be written in place: reopen takes its hashes and
  early upload off the journal, so a crash meanwhile commits what the spool then holds.)
- fsync on a handle: ``snap = staged.seal(); eid = queue.stage(..., previous=eid);
  staged.freeze(); queue.wait(eid)`` (raises the ``FsError`` of a failure).
- rename of a path with a pending entry: ``queue.retarget(eid, target, base)``; False means the
  file is already in Procore (or about to be: ``wait`` first) and the core renames it there.
- unlink of a path with a pending entry: ``queue.cancel(eid)``.
- ``DeferDelete`` from the save rules: ``did = queue.schedule_delete(ref, target, due)`` then
  ``rules.note_delete_journaled(ref, did)``; a ``Reclaim``/``Land`` with ``cancel_delete``:
  ``queue.cancel_delete(did)``.
- at start: ``queue.pending()`` lists the journaled entries (the core shows their sizes and
  serves their bytes from ``area.reopen(...)``); ``queue.pending_deletes()`` the hidden files
  (feed ``rules.restore_delete``).
- ``procorefs status``: ``queue.status().as_dict()``; ``procorefs queue retry``:
  ``queue.retry_failed()``.

Lock order: ``CommitQueue._lock`` (a Condition) may be taken while calling ``Journal`` methods
(the journal's own lock is a leaf). It is never held across a client call, a fill, a hash or
an ``on_event`` callback.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import random
import threading
import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from procorefs.api import File, FileVersion, Folder, PartDigest, Scope, UploadState
from procorefs.api.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    InvalidResponse,
    NetworkError,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from procorefs.clock import Clock, SystemClock
from procorefs.core.journal import Base, Entry, Journal, PendingDelete, Target
from procorefs.core.localnames import RemoteRef
from procorefs.core.staging import (
    Digests,
    Fill,
    PartHash,
    Snapshot,
    StagingArea,
    complete_spool,
    hash_parts,
)
from procorefs.core.translate import translate
from procorefs.errors import FsError, FsIOError, FsNoSpace, FsTimedOut

log = logging.getLogger(__name__)

EventKind = Literal["committed", "unchanged", "conflict", "failed", "cancelled", "deleted"]

_FLIGHT = ("uploading", "uploaded")
_OUTCOMES_KEPT = 10_000      # finished entries remembered for wait() and stage(previous=)
_CLAIMABLE = ("waiting", "uploading", "uploaded")


@dataclass(frozen=True, slots=True)
class UploadLayout:
    """How the client uploads: a file larger than ``small_max`` goes in parts of
    ``part_size`` (the client's ``upload_part_size`` and ``small_upload_max``)."""

    part_size: int
    small_max: int


class _Abandoned(Exception):
    """An upload made ahead of its commit is no longer wanted (the bytes or name changed)."""


class CommitClient(Protocol):
    """The part of ``procorefs.api.ProcoreClient`` the queue uses (fakes implement this)."""

    def upload(self, scope: Any, path: Path, *, filename: str, state: Any = None,
               on_state: Callable[[Any], None] | None = None,
               progress: Callable[[int, int], None] | None = None) -> str: ...

    def create_file(self, scope: Any, name: str, parent_id: int | None,
                    upload_uuid: str) -> File: ...

    def create_version(self, scope: Any, file_id: int, upload_uuid: str, *,
                       notes: str | None = None) -> FileVersion: ...

    def file(self, scope: Any, file_id: int) -> File: ...

    def folder(self, scope: Any, folder_id: int) -> Folder: ...

    def root_folder(self, scope: Any) -> Folder: ...

    def delete_file(self, scope: Any, file_id: int) -> None: ...

    def read_range(self, version: FileVersion, offset: int, length: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class CommitEvent:
    """What happened to one entry (or deferred delete); given to ``on_event`` and ``wait``."""

    kind: EventKind
    entry_id: int | None
    key: str
    target: Target
    file: File | None = None            # the Procore file now holding the bytes
    version: FileVersion | None = None  # the version created (or the base, when unchanged)
    size: int = 0
    sha256: str | None = None
    reason: str | None = None           # failure reason, or what the conflict was
    conflict_name: str | None = None
    file_id: int | None = None          # deferred deletes: the Procore file deleted


@dataclass(frozen=True)
class BackoffPolicy:
    """Delay before attempt ``n`` (n >= 1 failures): base * 2**(n-1), capped, +-jitter."""

    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.1
    max_invalid: int = 5            # unreadable answers give up after this many attempts

    def delay(self, attempts: int, rng: random.Random, hint: float | None = None) -> float:
        raw = min(self.cap, self.base * (2.0 ** max(0, attempts - 1)))
        raw *= 1.0 + rng.uniform(-self.jitter, self.jitter)
        return max(raw, hint or 0.0)


@dataclass(frozen=True, slots=True)
class ItemStatus:
    entry_id: int
    key: str
    name: str
    state: str
    size: int
    attempts: int
    failure: str | None
    bytes_done: int = 0
    bytes_total: int = 0
    rate: float = 0.0               # bytes/s since the upload (re)started
    next_attempt_in: float = 0.0


@dataclass(frozen=True, slots=True)
class QueueStatus:
    waiting: tuple[ItemStatus, ...]
    uploading: tuple[ItemStatus, ...]
    failed: tuple[ItemStatus, ...]
    conflicts: tuple[CommitEvent, ...]
    deletes_pending: int

    def as_dict(self) -> dict[str, Any]:
        def item(s: ItemStatus) -> dict[str, Any]:
            return {"id": s.entry_id, "path": s.key, "name": s.name, "state": s.state,
                    "size": s.size, "attempts": s.attempts, "failure": s.failure,
                    "bytes_done": s.bytes_done, "bytes_total": s.bytes_total,
                    "rate": round(s.rate, 1), "next_attempt_in": round(s.next_attempt_in, 1)}
        return {
            "waiting": [item(s) for s in self.waiting],
            "uploading": [item(s) for s in self.uploading],
            "failed": [item(s) for s in self.failed],
            "conflicts": [{"path": c.key, "name": c.target.name,
                           "conflict_name": c.conflict_name, "reason": c.reason}
                          for c in self.conflicts],
            "deletes_pending": self.deletes_pending,
        }


def conflict_name(name: str, when: float, n: int = 1) -> str:
    """``NAME (conflict YYYY-MM-DD HHMM).EXT`` in local time; ``n > 1`` adds `` n``."""
    stem, ext = os.path.splitext(name)
    if not stem:            # ".bashrc": splitext says no extension, keep it so
        stem, ext = name, ""
    stamp = datetime.fromtimestamp(when).strftime("%Y-%m-%d %H%M")
    extra = f" {n}" if n > 1 else ""
    return f"{stem} (conflict {stamp}{extra}){ext}"


class _Retry(Exception):
    def __init__(self, reason: str, hint: float | None = None,
                 error: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.error = error


class _Fail(Exception):
    def __init__(self, reason: str, error: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


def _default_scope(company_id: int, project_id: int | None) -> Scope:
    return Scope(company_id=company_id, project_id=project_id)


def _encode_state(state: Any) -> str:
    return str(state.to_json())


def _decode_state(text: str) -> UploadState:
    return UploadState.from_json(text)


def _default_translate(exc: BaseException, action: str, path: str | None) -> FsError:
    if isinstance(exc, FsError):
        return exc
    if isinstance(exc, ApiError):
        return translate(exc, action, path)
    return FsIOError(f"cannot {action}: {exc}", path)


class CommitQueue:
    """Durable, resumable commits of staged files, with a small worker pool."""

    def __init__(self, journal: Journal, staging: StagingArea, client: CommitClient, *,
                 clock: Clock | None = None, workers: int = 2, debounce: float = 1.0,
                 on_event: Callable[[CommitEvent], None] | None = None,
                 fill_for: Callable[[Entry], Fill] | None = None,
                 base_sha256: Callable[[Base], str | None] | None = None,
                 backoff: BackoffPolicy | None = None,
                 scope_for: Callable[[int, int | None], Any] = _default_scope,
                 state_codec: tuple[Callable[[Any], str], Callable[[str], Any]] | None = None,
                 translate: Callable[[BaseException, str, str | None], FsError]
                 = _default_translate,
                 verify_bytes: int = 8 << 20, rng: random.Random | None = None,
                 conflict_history: int = 100,
                 upload_layout: UploadLayout | None = None) -> None:
        self.journal = journal
        self.staging = staging
        self.client = client
        self.clock = clock or SystemClock()
        self.debounce = debounce
        self._n_workers = workers
        self._on_event = on_event
        self._fill_for = fill_for or self._fill_from_client
        self._base_sha256 = base_sha256
        self._backoff = backoff or BackoffPolicy()
        self._scope_for = scope_for
        self._codec = state_codec
        self._translate = translate
        self._verify_bytes = verify_bytes
        self._rng = rng or random.Random()
        self._lock = threading.Condition()
        self._busy: set[int] = set()                       # GUARDED_BY(_lock) entry ids
        self._busy_deletes: set[int] = set()               # GUARDED_BY(_lock)
        self._finalizing: set[int] = set()                 # GUARDED_BY(_lock)
        self._outcomes: dict[int, CommitEvent] = {}        # GUARDED_BY(_lock)
        self._errors: dict[int, tuple[int, BaseException]] = {}  # GUARDED_BY(_lock)
        self._progress: dict[int, tuple[int, int, float]] = {}   # GUARDED_BY(_lock)
        self._staged_gen: dict[int, tuple[str, int]] = {}  # GUARDED_BY(_lock)
        # Uploads made during the debounce (large files only: see _prepare). ``_epoch`` moves
        # whenever an entry's bytes, name or hold change, which abandons such an upload.
        self._layout = upload_layout
        self._preparing: set[int] = set()                  # GUARDED_BY(_lock)
        self._prepared: dict[int, int] = {}                # GUARDED_BY(_lock) id -> epoch
        self._epoch: dict[int, int] = {}                   # GUARDED_BY(_lock)
        self._epochs = itertools.count(1)    # epochs are never reused, even across entries
        # What reopen() took off an entry it held (hashes, upload), given back when the
        # entry is staged again unchanged.
        self._held: dict[int, dict[str, Any]] = {}         # GUARDED_BY(_lock)
        self._conflicts: deque[CommitEvent] = deque(maxlen=conflict_history)
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._recovered = False

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Recover the journal, then start the workers (idempotent)."""
        self.recover()
        with self._lock:
            if self._threads:
                return
            self._stopping = False
            for i in range(self._n_workers):
                t = threading.Thread(target=self._worker, name=f"procorefs-commit-{i}",
                                     daemon=True)
                self._threads.append(t)
                t.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the workers; an entry in the middle of a commit resumes at the next start."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            threads, self._threads = self._threads, []
        for t in threads:
            t.join(timeout)

    def recover(self) -> list[Entry]:
        """Replay the journal after a start (or crash): what to finish, resume or drop."""
        with self._lock:
            if self._recovered:
                return self.journal.entries()
            self._recovered = True
        for entry in self.journal.entries():
            if entry.state == "committed":
                self._finish_committed(entry)
            elif entry.state == "open":
                # Reopened in place when the mount stopped: its content is what the file held
                # at that moment, as on a local disk; commit it.
                self.journal.update(entry.id, state="waiting", not_before=self.clock.time())
        removed = self.staging.remove_orphans(self.journal.spool_names())
        if removed:
            log.info("removed %d staged file(s) that were never closed", len(removed))
        return self.journal.entries()

    # ---- the core's calls -----------------------------------------------------------------

    def stage(self, target: Target, snap: Snapshot, base: Base | None, *, key: str = "",
              previous: int | None = None, hold: bool = False) -> int:
        """Journal a sealed staged file (durable on return); due after the debounce.

        ``previous``: the entry this path's staged file was last staged under. A pending one is
        updated in place (close/reopen bursts coalesce); one already on its way gets this entry
        queued after it (committed after it, on top of its result); a finished one gives this
        entry its base (its result), whatever the caller believed.

        ``hold``: journal it in state ``open`` (durable, but not committed while a handle may
        still write in place: the FUSE flush of a close() that is not the last one); a later
        ``stage`` without ``hold`` releases it. At start, recovery commits held entries.
        """
        due = self.clock.time() + self.debounce
        snap_id = (snap.spool, snap.generation)
        state = "open" if hold else "waiting"
        digests = snap.digests.to_json() if snap.digests is not None else None
        with self._lock:
            prev = self.journal.get(previous) if previous is not None else None
            if prev is not None and previous is not None:
                same = self._staged_gen.get(previous) == snap_id
                if previous not in self._busy and prev.state in ("open", "waiting", "failed"):
                    if same:
                        extra: dict[str, Any] = {}
                        if not hold:
                            # Not written since reopen() held it: what it took off holds.
                            stash = self._held.pop(previous, None)
                            if stash is not None and stash.pop("spool") == prev.spool:
                                extra.update(stash)
                        if target.name != prev.name:
                            extra.update(self._drop_early_upload(prev))
                        self.journal.update(previous, state=state, not_before=due,
                                            name=target.name, parent_id=target.parent_id,
                                            **extra)
                    else:
                        self._held.pop(previous, None)
                        self._bump(previous)
                        self.journal.update(
                            previous, spool=snap.spool, size=snap.size, holes=snap.holes,
                            dirty=int(snap.dirty or prev.dirty), sha256=None, state=state,
                            not_before=due, attempts=0, failure=None, upload_state=None,
                            upload_uuid=None, upload_started=None, name=target.name,
                            parent_id=target.parent_id, key=key or prev.key,
                            digests=digests)
                        if prev.spool != snap.spool:
                            self.staging.remove(prev.spool)
                    self._staged_gen[previous] = snap_id
                    self._lock.notify_all()
                    return previous
                if same:
                    return previous          # nothing changed since it was staged
            after = previous if prev is not None and prev.state != "committed" else None
            if prev is None and previous is not None:
                done = self._outcomes.get(previous)
                if done is not None and done.kind in ("committed", "conflict", "unchanged"):
                    if self._staged_gen.get(previous) == snap_id:
                        return previous
                    base = _event_base(done) or base
            eid = self.journal.add(target, spool=snap.spool, size=snap.size, holes=snap.holes,
                                   dirty=snap.dirty, base=base, after_id=after, key=key,
                                   not_before=due, state=state, digests=digests)
            self._staged_gen[eid] = snap_id
            self._lock.notify_all()
        log.debug("staged %s (%d bytes) as commit %d", key or target.name, snap.size, eid)
        return eid

    def reopen(self, entry_id: int) -> bool:
        """A handle opens the file again for writing. True: the pending entry is held (state
        ``open``) and the staged file may be written in place; False: the entry is already on
        its way (the core must ``staged.freeze()``), or gone."""
        with self._lock:
            if entry_id in self._busy:
                return False
            entry = self.journal.get(entry_id)
            if entry is None or entry.state not in ("waiting", "failed"):
                return False
            # Written in place, the spool would no longer match its hashes or its upload: they
            # come off the journal now (a crash while held commits with fresh ones) and are
            # given back by a stage() that finds nothing written.
            derived = {"sha256": entry.sha256, "digests": entry.digests,
                       "upload_state": entry.upload_state, "upload_uuid": entry.upload_uuid}
            if not self.journal.update_if(entry_id, ("waiting", "failed"), state="open",
                                          **dict.fromkeys(derived)):
                return False
            self._held[entry_id] = {"spool": entry.spool, **derived}
            self._bump(entry_id)
            return True

    def retarget(self, entry_id: int, target: Target, base: Base | Literal["keep"] | None
                 = "keep") -> bool:
        """Point a pending entry (and its pending predecessors) at another name/parent and,
        unless ``base`` is "keep", another Procore identity (None: a new file). False, with
        nothing changed, when part of the chain is committed or is being committed (the core
        then waits for it and renames in Procore)."""
        with self._lock:
            chain = self._chain(entry_id)
            if not chain:
                return False
            for entry in chain:
                if entry.state == "committed" or entry.id in self._finalizing:
                    return False
            for entry in chain:
                changes: dict[str, Any] = {"name": target.name, "parent_id": target.parent_id,
                                           "company_id": target.company_id,
                                           "project_id": target.project_id}
                if (target.name, target.company_id, target.project_id) != \
                        (entry.name, entry.company_id, entry.project_id):
                    changes.update(self._drop_early_upload(entry))
                # The oldest is committed first; the others are rebased on its result.
                if base != "keep" and entry.id == chain[0].id:
                    changes.update(_base_columns(base))
                self.journal.update(entry.id, **changes)
            return True

    def cancel(self, entry_id: int) -> bool:
        """The file was deleted before it was committed: drop the entry (and its chain).

        If a worker is on it, it stops before creating anything, or deletes what it created.
        """
        removed = False
        with self._lock:
            for entry in self._chain(entry_id):
                self._bump(entry.id)
                self._held.pop(entry.id, None)
                if entry.id in self._busy:
                    self.journal.update(entry.id, cancelled=1)
                    continue
                if entry.state == "committed":
                    continue
                self.journal.remove(entry.id)
                self.staging.remove(entry.spool)
                self._forget(entry.id)
                self._outcomes[entry.id] = CommitEvent("cancelled", entry.id, entry.key,
                                                       entry.target, size=entry.size)
                removed = True
            self._lock.notify_all()
        return removed

    def wait(self, entry_id: int, timeout: float | None = None) -> CommitEvent | None:
        """Block until the entry is in Procore (fsync). Skips its debounce.

        Answers the final event (None when it finished before this process started); raises
        the ``FsError`` of a permanent failure, or of the first failed attempt after the call
        (the entry stays queued and keeps retrying), or ``FsTimedOut``.
        """
        deadline = None if timeout is None else _time.monotonic() + timeout
        with self._lock:
            seen = self._errors.get(entry_id, (0, None))[0]
            for entry in self._chain(entry_id):
                self.journal.update_if(entry.id, _CLAIMABLE, not_before=self.clock.time())
            self._lock.notify_all()
            while True:
                outcome = self._outcomes.get(entry_id)
                if outcome is not None:
                    if outcome.kind == "failed":
                        error = self._errors.get(entry_id, (0, None))[1]
                        raise self._translate(error or FsIOError(outcome.reason or ""),
                                              "save", outcome.key or None)
                    return outcome
                attempt, error = self._errors.get(entry_id, (0, None))
                if attempt > seen and error is not None:
                    raise self._translate(error, "save", None)
                row = self.journal.get(entry_id)
                if row is None:
                    return None
                if row.state == "failed":       # failed before this process started
                    raise FsIOError(f"cannot save: {row.failure}", row.key or None)
                remaining = None if deadline is None else deadline - _time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise FsTimedOut("the save is not in Procore yet")
                self._lock.wait(0.5 if remaining is None else min(remaining, 0.5))

    def schedule_delete(self, ref: RemoteRef, where: Target, due: float, *,
                        key: str = "") -> int:
        """Journal a deferred delete (durable on return)."""
        with self._lock:
            did = self.journal.add_delete(
                where.company_id, where.project_id, ref.file_id, due_at=due,
                parent_id=where.parent_id, name=where.name, key=key,
                version_id=ref.version_id, version_number=ref.version_number, size=ref.size)
            self._lock.notify_all()
            return did

    def cancel_delete(self, delete_id: int) -> bool:
        """A reclaim: the file lives on. False when the DELETE is already being sent."""
        with self._lock:
            if delete_id in self._busy_deletes:
                return False
            return self.journal.remove_delete(delete_id)

    def pending(self) -> list[Entry]:
        return [e for e in self.journal.entries() if e.state != "committed"]

    def pending_deletes(self) -> list[PendingDelete]:
        return self.journal.deletes()

    def retry_failed(self) -> int:
        """Queue every failed entry again, at once; answers how many."""
        with self._lock:
            n = 0
            for entry in self.journal.entries(("failed",)):
                self.journal.update(entry.id, state="waiting", not_before=self.clock.time(),
                                    attempts=0, failure=None)
                self._outcomes.pop(entry.id, None)
                self._errors.pop(entry.id, None)
                n += 1
            for d in self.journal.deletes():
                if d.failure:
                    self.journal.update_delete(d.id, due_at=self.clock.time(), attempts=0,
                                               failure=None)
                    n += 1
            self._lock.notify_all()
        return n

    def expedite(self) -> int:
        """Make every queued entry and deferred delete due now (unmount, ``queue retry``);
        answers how many there are. Failed entries stay failed."""
        now = self.clock.time()
        with self._lock:
            n = 0
            for entry in self.journal.entries(("waiting", "uploading", "uploaded")):
                if entry.not_before > now:
                    self.journal.update(entry.id, not_before=now)
                n += 1
            for d in self.journal.deletes():
                if d.due_at > now:
                    self.journal.update_delete(d.id, due_at=now, attempts=d.attempts,
                                               failure=d.failure)
                n += 1
            self._lock.notify_all()
        return n

    def delete_now(self, delete_id: int) -> None:
        """Send a deferred delete at once, in this thread (an rmdir of its folder, a name
        needed again); raises ``FsError`` if Procore refused or cannot be reached."""
        with self._lock:
            while delete_id in self._busy_deletes:
                self._lock.wait(0.5)
            if self.journal.get_delete(delete_id) is None:
                return
            self._busy_deletes.add(delete_id)
        self._run(("delete", delete_id))
        left = self.journal.get_delete(delete_id)
        if left is not None:
            raise FsIOError(f"cannot delete {left.key or left.name} in Procore yet: "
                            f"{left.failure}", left.key or None)

    def busy(self) -> bool:
        """Whether anything is queued that a worker will still do (failed entries excluded)."""
        with self._lock:
            if self._busy or self._busy_deletes:
                return True
            if self.journal.deletes():
                return True
            return any(e.state in _CLAIMABLE for e in self.journal.entries())

    def wait_idle(self, timeout: float) -> None:
        """Sleep until the queue changes (an entry finished, failed or was staged) or
        ``timeout`` passes."""
        with self._lock:
            self._lock.wait(timeout)

    def unhold(self, entry_id: int) -> bool:
        """Let a held (``open``) entry be committed with the content it was journaled with."""
        with self._lock:
            # What reopen() took off is not given back: the caller cannot say that nothing
            # was written in place meanwhile, so the commit hashes the spool again.
            self._held.pop(entry_id, None)
            done = self.journal.update_if(entry_id, ("open",), state="waiting",
                                          not_before=self.clock.time() + self.debounce)
            self._lock.notify_all()
            return done

    def wake(self) -> None:
        """Re-check due work now (after a ManualClock moved, or the network came back)."""
        with self._lock:
            self._lock.notify_all()

    def status(self) -> QueueStatus:
        now = self.clock.time()
        waiting: list[ItemStatus] = []
        uploading: list[ItemStatus] = []
        failed: list[ItemStatus] = []
        with self._lock:
            entries = self.journal.entries()
            progress = dict(self._progress)
            conflicts = tuple(self._conflicts)
            deletes = len(self.journal.deletes())
        mono = _time.monotonic()
        for e in entries:
            done, total, started = progress.get(e.id, (0, e.size, mono))
            elapsed = max(1e-6, mono - started)
            item = ItemStatus(e.id, e.key, e.name, e.state, e.size, e.attempts, e.failure,
                              done, total or e.size, done / elapsed if done else 0.0,
                              max(0.0, e.not_before - now))
            if e.state == "failed":
                failed.append(item)
            elif e.state in _FLIGHT or e.id in progress:
                uploading.append(item)
            elif e.state != "committed":
                waiting.append(item)
        return QueueStatus(tuple(waiting), tuple(uploading), tuple(failed), conflicts, deletes)

    # ---- synchronous driving (tests, and the workers' body) --------------------------------

    def run_pending(self, limit: int = 1000) -> int:
        """Process every due entry and delete in this thread; answers how many were handled."""
        self.recover()
        n = 0
        while n < limit:
            job = self._claim()
            if job is None:
                return n
            self._run(job)
            n += 1
        return n

    def next_due(self) -> float | None:
        """Wall time of the next due entry or delete (None: nothing queued)."""
        with self._lock:
            return self._next_due_locked()

    # ---- workers --------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
            job = self._claim()
            if job is None:
                with self._lock:
                    if self._stopping:
                        return
                    nxt = self._next_due_locked()
                    delay = 1.0 if nxt is None else max(0.0, nxt - self.clock.time())
                    # A ManualClock does not move on its own: cap the wait so that a moved
                    # clock is noticed; wake(), stage() and finished work notify at once.
                    self._lock.wait(min(max(delay, 0.01), 1.0))
                continue
            self._run(job)

    def _ready(self) -> list[Entry]:
        """Claimable entries not blocked by an unfinished predecessor, nor by an upload
        being made for them ahead of the commit (lock held)."""
        entries = self.journal.entries()
        unfinished = {e.id for e in entries if e.state != "committed"}
        return [e for e in entries if e.state in _CLAIMABLE and e.id not in self._busy
                and e.id not in self._preparing
                and (e.after_id is None or e.after_id not in unfinished)]

    def _claim(self) -> tuple[str, int] | None:
        now = self.clock.time()
        with self._lock:
            ready = self._ready()
            for e in ready:
                if e.not_before > now:
                    continue
                self._busy.add(e.id)
                return ("entry", e.id)
            for d in self.journal.deletes():
                if d.id in self._busy_deletes or d.due_at > now:
                    continue
                self._busy_deletes.add(d.id)
                return ("delete", d.id)
            for e in ready:             # nothing is due: upload what will be
                if self._preparable(e, now):
                    self._preparing.add(e.id)
                    self._prepared[e.id] = self._epoch_of(e.id)
                    return ("prepare", e.id)
        return None

    def _next_due_locked(self) -> float | None:
        times = [e.not_before for e in self._ready()]
        times += [d.due_at for d in self.journal.deletes() if d.id not in self._busy_deletes]
        return min(times) if times else None

    def _run(self, job: tuple[str, int]) -> None:
        kind, ident = job
        try:
            if kind == "entry":
                self._run_entry(ident)
            elif kind == "prepare":
                self._prepare(ident)
            else:
                self._run_delete(ident)
        finally:
            with self._lock:
                if kind == "prepare":
                    self._preparing.discard(ident)
                else:
                    (self._busy if kind == "entry" else self._busy_deletes).discard(ident)
                    self._finalizing.discard(ident)
                self._progress.pop(ident, None)
                self._lock.notify_all()

    # ---- uploading during the debounce ---------------------------------------------------

    def _preparable(self, e: Entry, now: float) -> bool:
        """Whether to upload ``e`` now, before its commit is due (lock held).

        Only a large file (a segmented upload: the part digests are known from staging, and
        the upload is most of the commit's time), fresh from a close (no attempt yet, nothing
        uploaded), whose bytes are all local. The create/version call still waits for the
        debounce, so a reopen, a rename or a delete within it coalesce as before; they only
        make the early upload wasted (see _epoch).
        """
        layout = self._layout
        return (layout is not None and self._codec is None and e.state == "waiting"
                and e.not_before > now and e.size > layout.small_max and not e.cancelled
                and e.attempts == 0 and e.upload_state is None and e.upload_uuid is None
                and e.holes == "[]" and bool(e.dirty or e.file_id is None)
                and self._prepared.get(e.id) != self._epoch_of(e.id))

    def _bump(self, entry_id: int) -> None:
        """The entry's bytes, name or hold changed: an upload being made ahead for it stops
        and journals nothing more (lock held)."""
        self._epoch[entry_id] = next(self._epochs)

    def _epoch_of(self, entry_id: int) -> int:
        """The entry's epoch (lock held); an entry gone from the journal has none, so no
        epoch taken before matches it any more."""
        epoch = self._epoch.get(entry_id)
        if epoch is None:
            epoch = self._epoch[entry_id] = next(self._epochs)
        return epoch

    def _drop_early_upload(self, entry: Entry) -> dict[str, Any]:
        """The columns that drop an upload made during the debounce when the entry takes
        another name or scope (lock held): the upload carries the name it was made for (the
        filename and content type storage serves). An upload of a commit already attempted
        is kept, as it always was."""
        self._bump(entry.id)
        if entry.attempts or entry.upload_uuid is not None or \
                entry.state not in ("waiting", "open"):
            return {}
        stash = self._held.get(entry.id)
        if stash is not None:
            stash["upload_state"] = None
        return {"upload_state": None, "upload_started": None}

    def _wanted(self, entry_id: int, epoch: int, spool: str) -> Entry | None:
        """The entry, if an upload started for it at ``epoch`` still fits it (lock held)."""
        if self._stopping or self._epoch.get(entry_id) != epoch:
            return None
        entry = self.journal.get(entry_id)
        if entry is None or entry.spool != spool or entry.state != "waiting" or \
                entry.cancelled:
            return None
        return entry

    def _prepare(self, entry_id: int) -> None:
        """Upload a large entry's bytes while its debounce runs; the commit then finds the
        upload complete in ``upload_state`` and only creates the file or version.

        Everything it journals is checked under the lock against the entry as it is then:
        once the entry changed (``_epoch``), nothing more is written and the upload stops at
        its next part. It never fails the entry: whatever goes wrong, the commit does it all
        again in the ordinary way.
        """
        with self._lock:
            epoch = self._prepared.get(entry_id, -1)     # as it was when claimed
            entry = self.journal.get(entry_id)
            if entry is not None:
                entry = self._wanted(entry_id, epoch, entry.spool)
        if entry is None or self._layout is None:
            return
        spool = entry.spool
        path = self.staging.path_of(spool)
        try:
            sha, parts, digests = self._hashes(entry, path, self._trusted_digests(entry, path))
            with self._lock:
                if self._wanted(entry_id, epoch, spool) is None:
                    return
                self.journal.update(entry_id, sha256=sha, digests=digests)
            entry = replace(entry, sha256=sha, digests=digests)
            if parts is None or (sha is not None and self._unchanged(entry)):
                return              # the commit ends it without an upload
            state = self._fresh_state(entry, path, parts)
            started = self.clock.time()
            mono = _time.monotonic()

            def on_state(new: UploadState) -> None:
                with self._lock:
                    if self._wanted(entry_id, epoch, spool) is None:
                        raise _Abandoned()
                    self.journal.update(entry_id, upload_state=new.to_json(),
                                        upload_started=started)

            def progress(done: int, total: int) -> None:
                with self._lock:
                    if self._stopping or self._epoch.get(entry_id) != epoch:
                        raise _Abandoned()
                    self._progress[entry_id] = (done, total, mono)

            scope = self._scope_for(entry.company_id, entry.project_id)
            self.client.upload(scope, path, filename=entry.name, state=state,
                               on_state=on_state, progress=progress)
            if sha is None:
                sha = self._whole_sha256(entry, path)
                with self._lock:
                    if self._wanted(entry_id, epoch, spool) is not None:
                        self.journal.update(entry_id, sha256=sha)
            log.debug("uploaded %s ahead of its commit", entry.key or entry.name)
        except _Abandoned:
            log.debug("the early upload of %s is not wanted any more", entry.key or entry.name)
        except Exception as exc:    # the commit does it again; nothing is lost
            log.info("uploading %s ahead of its commit failed (%s); the commit will try "
                     "again", entry.key or entry.name, exc)

    # ---- one entry ------------------------------------------------------------------------

    def _run_entry(self, entry_id: int) -> None:
        entry = self.journal.get(entry_id)
        if entry is None:
            return
        try:
            event = self._commit(entry)
        except _Retry as r:
            self._retry(entry_id, r.reason, r.hint, r.error)
            return
        except _Fail as f:
            self._fail(entry_id, f.reason, f.error)
            return
        except Exception as exc:  # a bug must not kill the worker nor lose the entry
            if self._stopping:
                # The mount stopped under a commit that was still on the wire: the journal is
                # closed; the entry resumes at the next start.
                log.debug("commit of %s interrupted by the stop: %s", entry.key or entry.name,
                          exc)
                return
            log.exception("commit of %s failed unexpectedly", entry.key or entry.name)
            self._fail(entry_id, f"internal error: {exc}", exc)
            return
        if event is not None:
            self._emit(event)

    def _commit(self, entry: Entry) -> CommitEvent | None:
        if entry.cancelled:
            return self._drop_cancelled(entry)
        path = self.staging.path_of(entry.spool)
        scope = self._scope_for(entry.company_id, entry.project_id)
        # Hashes taken before the holes are filled: they speak of the spool as it was then.
        digests = self._trusted_digests(entry, path)
        holes = entry.hole_ranges()
        if holes:
            entry = self._fill(entry, path, holes)
            if digests is not None:
                digests = digests.without(holes)
        try:
            sha, parts, known = self._hashes(entry, path, digests)
        except OSError as exc:
            raise _Fail(f"the staged copy is unreadable: {exc}", exc) from exc
        if (sha, known) != (entry.sha256, entry.digests):
            self.journal.update(entry.id, sha256=sha, digests=known)
            entry = replace(entry, sha256=sha, digests=known)
        if entry.sha256 is not None and self._unchanged(entry):
            return self._finish(entry, "unchanged", None, None)

        uuid = entry.upload_uuid
        resumed = entry.state == "uploaded" or entry.attempts > 0
        if uuid is None:
            uuid = self._upload(entry, scope, path, parts)
            if entry.sha256 is None:        # not needed before the upload: see _hashes
                try:
                    entry = replace(entry, sha256=self._whole_sha256(entry, path))
                except OSError as exc:
                    raise _Fail(f"the staged copy is unreadable: {exc}", exc) from exc
            self.journal.update(entry.id, state="uploaded", upload_uuid=uuid,
                                sha256=entry.sha256)
        with self._lock:
            self._finalizing.add(entry.id)
        fresh = self.journal.get(entry.id)     # a rename may have retargeted it meanwhile
        if fresh is None:
            return None
        entry = fresh
        if entry.cancelled:
            return self._drop_cancelled(entry)
        # A lost answer must not create twice: every later attempt (attempts > 0, or state
        # "uploaded" found at start) looks for its own result first.
        try:
            if entry.file_id is None:
                return self._create_new(entry, scope, uuid, resumed)
            return self._create_version(entry, scope, uuid, resumed)
        except ApiError as exc:
            raise self._classify(exc, "commit") from exc

    def _fill(self, entry: Entry, path: Path, holes: list[tuple[int, int]]) -> Entry:
        left = list(holes)
        try:
            fill = self._fill_for(entry)

            def done(r: tuple[int, int]) -> None:
                left.remove(r)
                self.journal.update(entry.id, holes=left)
            complete_spool(path, holes, fill, on_filled=done)
        except ApiError as exc:
            raise self._classify(exc, "read the original") from exc
        except FsNoSpace as exc:
            raise _Retry("the local disk is full", None, exc) from exc
        except FsError as exc:
            raise _Retry(f"cannot read the original: {exc.strerror}", None, exc) from exc
        except OSError as exc:
            raise _Fail(f"the staged copy is unusable: {exc}", exc) from exc
        return replace(entry, holes="[]")

    def _unchanged(self, entry: Entry) -> bool:
        base = entry.base
        if base is None:
            return False
        if not entry.dirty and not entry.upload_uuid:
            return True
        if entry.size != base.size:
            return False
        sha = base.sha256
        if sha is None and self._base_sha256 is not None:
            sha = self._base_sha256(base)
        return sha is not None and sha == entry.sha256

    # ---- hashes ---------------------------------------------------------------------------

    def _trusted_digests(self, entry: Entry, path: Path) -> Digests | None:
        """The entry's journaled digests, if they still speak of the spool's bytes: same size,
        and the spool not modified since they were taken. When in doubt, none."""
        digests = Digests.from_json(entry.digests)
        if digests is None or digests.size != entry.size:
            return None
        try:
            mtime_ns = os.stat(path).st_mtime_ns
        except OSError:
            return None
        if mtime_ns != digests.mtime_ns:
            log.debug("%s changed since it was hashed; hashing it again",
                      entry.key or entry.name)
            return None
        return digests

    def _hashes(self, entry: Entry, path: Path, digests: Digests | None
                ) -> tuple[str | None, tuple[PartHash, ...] | None, str | None]:
        """The entry's SHA-256 and, when its upload will be segmented and is not under way
        yet, the digests of every part; what staging hashed as the bytes were written is
        reused, the rest is read once. Also the digests to journal (JSON).

        The SHA-256 is None when it is not needed before that upload (the bytes cannot equal
        the base's: there is none, or its size differs): it is taken once the upload is done
        (``_whole_sha256``), while staging may still be hashing it.
        """
        layout = self._layout
        need_parts = (layout is not None and entry.size > layout.small_max
                      and not entry.upload_state and entry.upload_uuid is None)
        part_size = layout.part_size if layout is not None else \
            (digests.part_size if digests is not None else self.staging.part_size)
        known = digests.part_map() if digests is not None and \
            digests.part_size == part_size else {}
        sha = entry.sha256 or (digests.sha256 if digests is not None else None)
        base = entry.base
        need_whole = sha is None and (not need_parts or
                                      (base is not None and base.size == entry.size))
        count = -(-entry.size // part_size)
        if need_whole or (need_parts and len(known) < count):
            mtime_ns = os.stat(path).st_mtime_ns        # before the bytes are read
            whole, known = hash_parts(path, entry.size, part_size, known,
                                      whole=need_whole, parts=need_parts)
            sha = sha or whole
            digests = Digests(part_size, entry.size, mtime_ns, sha, tuple(sorted(known.items())))
        parts = tuple(known[i] for i in range(count)) if need_parts else None
        return sha, parts, digests.to_json() if digests is not None else entry.digests

    def _whole_sha256(self, entry: Entry, path: Path) -> str:
        """The entry's SHA-256 after its upload: from the staged file that wrote the spool,
        if that one sealed exactly this content (it finishes the hash the close left to it),
        else by reading the spool."""
        with self._lock:
            sealed = self._staged_gen.get(entry.id)
        if sealed is not None and sealed[0] == entry.spool:
            sha = self.staging.sha256_of(*sealed)
            if sha is not None:
                return sha
        whole, _ = hash_parts(path, entry.size, self.staging.part_size, {}, whole=True,
                              parts=False)
        assert whole is not None
        return whole

    def _fresh_state(self, entry: Entry, path: Path, parts: tuple[PartHash, ...]
                     ) -> UploadState:
        """A segmented upload not created yet, with the parts' digests already known: the
        client skips its own hashing pass."""
        assert self._layout is not None
        return UploadState(uuid=None, company_id=entry.company_id, project_id=entry.project_id,
                           filename=entry.name, size=entry.size,
                           mtime_ns=os.stat(path).st_mtime_ns,
                           part_size=self._layout.part_size,
                           parts=tuple(PartDigest(p.size, p.sha256, p.md5) for p in parts),
                           etags=(None,) * len(parts))

    def _upload(self, entry: Entry, scope: Any, path: Path,
                parts: tuple[PartHash, ...] | None = None) -> str:
        encode, decode = self._codec or (_encode_state, _decode_state)
        state = None
        if entry.upload_state:
            try:
                state = decode(entry.upload_state)
            except ValueError:
                log.info("ignoring an unreadable upload state of %s", entry.key or entry.name)
        if state is None and parts is not None and self._codec is None:
            try:
                state = self._fresh_state(entry, path, parts)
            except OSError as exc:
                raise _Fail(f"the staged copy is unreadable: {exc}", exc) from exc
        started = entry.upload_started or self.clock.time()
        self.journal.update(entry.id, state="uploading", upload_started=started)
        mono = _time.monotonic()

        def on_state(new: Any) -> None:
            self.journal.update(entry.id, upload_state=encode(new))

        def progress(done: int, total: int) -> None:
            with self._lock:
                self._progress[entry.id] = (done, total, mono)
        with self._lock:
            self._progress[entry.id] = (0, entry.size, mono)
        try:
            return self.client.upload(scope, path, filename=entry.name, state=state,
                                      on_state=on_state, progress=progress)
        except Gone as exc:
            # The upload expired: start a fresh one next time.
            self.journal.update(entry.id, upload_state=None)
            raise _Retry("the upload expired; starting it again", None, exc) from exc
        except ApiError as exc:
            raise self._classify(exc, "upload") from exc
        except OSError as exc:
            raise _Fail(f"the staged copy is unreadable: {exc}", exc) from exc

    def _create_new(self, entry: Entry, scope: Any, uuid: str, resumed: bool) -> CommitEvent:
        if resumed:
            mine = self._find_own_file(entry, scope, entry.name)
            if mine is not None:
                return self._finish(entry, "committed", mine, mine.current_version)
        try:
            created = self.client.create_file(scope, entry.name, entry.parent_id, uuid)
            return self._finish(entry, "committed", created, created.current_version)
        except ValidationFailed as exc:
            if self._name_taken(scope, entry.parent_id, entry.name) is None:
                raise _Fail(f"Procore refused the file: {exc.message}", exc) from exc
        return self._conflict_copy(entry, scope, uuid, entry.parent_id,
                                   "a file of that name appeared in Procore meanwhile")

    def _create_version(self, entry: Entry, scope: Any, uuid: str,
                        resumed: bool) -> CommitEvent:
        assert entry.file_id is not None
        try:
            current = self.client.file(scope, entry.file_id)
        except NotFound:
            current = None
        if current is None or current.is_deleted:
            # Deleted in Procore meanwhile: the local bytes come back as a file of that name.
            if resumed:
                mine = self._find_own_file(entry, scope, entry.name)
                if mine is not None:
                    return self._finish(entry, "committed", mine, mine.current_version)
            if self._name_taken(scope, entry.parent_id, entry.name) is None:
                created = self.client.create_file(scope, entry.name, entry.parent_id, uuid)
                return self._finish(entry, "conflict", created, created.current_version,
                                    reason="the file was deleted in Procore meanwhile",
                                    conflict_name=entry.name)
            return self._conflict_copy(entry, scope, uuid, entry.parent_id,
                                       "the file was replaced in Procore meanwhile")
        head = current.current_version
        base_no = entry.base_version_number
        moved = head is not None and base_no is not None and head.number > base_no
        if moved and head is not None and resumed and self._is_ours(entry, head):
            return self._finish(entry, "committed", current, head)
        if moved:
            who = head.created_by.name if head and head.created_by else None
            reason = (f"{current.name} changed in Procore since it was opened"
                      + (f" (saved by {who})" if who else ""))
            return self._conflict_copy(entry, scope, uuid, current.parent_id, reason)
        try:
            version = self.client.create_version(scope, entry.file_id, uuid)
        except Conflict as exc:
            holder = current.checked_out_by.name if current.checked_out_by else None
            reason = "the file is checked out" + (f" by {holder}" if holder else "")
            log.debug("create_version refused: %s", exc)
            return self._conflict_copy(entry, scope, uuid, current.parent_id, reason)
        updated = _with_version(current, version)
        return self._finish(entry, "committed", updated, version)

    def _conflict_copy(self, entry: Entry, scope: Any, uuid: str, parent_id: int | None,
                       reason: str) -> CommitEvent:
        when = entry.created_at
        for n in range(1, 50):
            name = conflict_name(entry.name, when, n)
            existing = self._name_taken(scope, parent_id, name)
            if existing is not None:
                if self._is_ours(entry, existing.current_version):
                    return self._finish(entry, "conflict", existing, existing.current_version,
                                        reason=reason, conflict_name=name)
                continue
            try:
                created = self.client.create_file(scope, name, parent_id, uuid)
            except ValidationFailed:
                continue
            return self._finish(entry, "conflict", created, created.current_version,
                                reason=reason, conflict_name=name)
        raise _Fail("no free name for a conflict copy")

    # ---- finding our own result after a crash or a lost answer -----------------------------

    def _listing(self, scope: Any, parent_id: int | None) -> Folder:
        if parent_id is None:
            return self.client.root_folder(scope)
        return self.client.folder(scope, parent_id)

    def _name_taken(self, scope: Any, parent_id: int | None, name: str) -> File | None:
        folded = name.casefold()
        for f in self._listing(scope, parent_id).files:
            if f.name.casefold() == folded and not f.is_deleted:
                return f
        return None

    def _find_own_file(self, entry: Entry, scope: Any, name: str) -> File | None:
        found = self._name_taken(scope, entry.parent_id, name)
        if found is not None and self._is_ours(entry, found.current_version):
            return found
        return None

    def _is_ours(self, entry: Entry, version: FileVersion | None) -> bool:
        """Whether ``version`` holds exactly this entry's bytes, uploaded by this entry."""
        if version is None or version.size != entry.size:
            return False
        started = entry.upload_started or entry.created_at
        if version.created_at is not None and version.created_at.timestamp() < started - 600:
            return False
        if entry.size <= self._verify_bytes and entry.sha256 is not None:
            data = self.client.read_range(version, 0, entry.size) if entry.size else b""
            return hashlib.sha256(data).hexdigest() == entry.sha256
        return True

    # ---- outcomes -------------------------------------------------------------------------

    def _finish(self, entry: Entry, kind: EventKind, file: File | None,
                version: FileVersion | None, *, reason: str | None = None,
                conflict_name: str | None = None) -> CommitEvent:
        if kind == "unchanged":
            result_file, result_vid, result_no = entry.file_id, entry.base_version_id, \
                entry.base_version_number
        else:
            result_file = file.id if file else None
            result_vid = version.id if version else None
            result_no = version.number if version else None
        event = CommitEvent(kind, entry.id, entry.key, entry.target, file, version,
                            entry.size, entry.sha256, reason, conflict_name)
        with self._lock:
            self.journal.update(entry.id, state="committed", outcome=kind,
                                result_file_id=result_file, result_version_id=result_vid,
                                result_version_number=result_no,
                                result_name=(file.name if file else entry.name))
            cancelled = bool((self.journal.get(entry.id) or entry).cancelled)
            # Known before the row goes, so that wait() never finds neither.
            self._outcomes[entry.id] = event
        fresh = self.journal.get(entry.id)
        if fresh is not None:
            self._finish_committed(fresh)
        if cancelled and kind != "unchanged" and file is not None and entry.file_id is None:
            # A new file deleted locally while its commit was on the wire: delete what was
            # created. (An existing file's own delete is the save rules' deferred delete.)
            self.schedule_delete(RemoteRef(file.id, result_vid, result_no, entry.size),
                                 entry.target, self.clock.time(), key=entry.key)
        if kind == "unchanged":
            log.info("%s is unchanged; no new version", entry.key or entry.name)
        elif kind == "conflict":
            log.warning("conflict: %s; your version was saved as %r", reason, conflict_name)
        else:
            log.info("saved %s to Procore (file %s, version %s)", entry.key or entry.name,
                     result_file, result_no)
        return event

    def _finish_committed(self, entry: Entry) -> None:
        """After ``committed`` is durable: rebase dependents, drop the spool, delete the row."""
        with self._lock:
            base = self._result_base(entry)
            for dep in self.journal.entries():
                if dep.after_id == entry.id:
                    cols = _base_columns(base) if base is not None else {}
                    self.journal.update(dep.id, after_id=None, **cols)
            self.staging.remove(entry.spool)
            self.journal.remove(entry.id)
            self._forget(entry.id)
            self._lock.notify_all()

    def _forget(self, entry_id: int) -> None:
        """An entry is gone from the journal: drop what was kept in memory for it (lock
        held). An upload still being made for it finds no row and stops."""
        for kept in (self._epoch, self._prepared, self._held):
            kept.pop(entry_id, None)

    def _result_base(self, entry: Entry) -> Base | None:
        if entry.result_file_id is None:
            return entry.base
        sha = entry.sha256
        return Base(entry.result_file_id, entry.result_version_id, entry.result_version_number,
                    entry.size, sha)

    def _drop_cancelled(self, entry: Entry) -> CommitEvent:
        with self._lock:
            for dep in self.journal.entries():
                if dep.after_id == entry.id:
                    self.journal.update(dep.id, after_id=None)
            self.journal.remove(entry.id)
            self.staging.remove(entry.spool)
            self._forget(entry.id)
        return CommitEvent("cancelled", entry.id, entry.key, entry.target, size=entry.size)

    def _emit(self, event: CommitEvent) -> None:
        with self._lock:
            if event.entry_id is not None:
                self._outcomes[event.entry_id] = event
                if event.kind != "failed":
                    self._errors.pop(event.entry_id, None)
                while len(self._outcomes) > _OUTCOMES_KEPT:
                    old = next(iter(self._outcomes))
                    del self._outcomes[old]
                    self._staged_gen.pop(old, None)
            if event.kind == "conflict":
                self._conflicts.append(event)
            self._lock.notify_all()
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("the commit listener failed")
            with self._lock:
                self._lock.notify_all()     # what the listener changed is visible now

    def _retry(self, entry_id: int, reason: str, hint: float | None,
               error: BaseException | None) -> None:
        with self._lock:
            entry = self.journal.get(entry_id)
            if entry is None:
                return
            attempts = entry.attempts + 1
            if isinstance(error, InvalidResponse) and attempts >= self._backoff.max_invalid:
                pass
            else:
                delay = self._backoff.delay(attempts, self._rng, hint)
                state = "uploaded" if entry.upload_uuid else "waiting"
                # The next attempt hashes from the bytes again: digests carried over from the
                # writes are an optimisation, never a reason for an upload to fail twice.
                self.journal.update(entry_id, attempts=attempts, failure=reason, state=state,
                                    not_before=self.clock.time() + delay, digests=None)
                self._errors[entry_id] = (self._errors.get(entry_id, (0, None))[0] + 1,
                                          error or FsIOError(reason))
                self._lock.notify_all()
                log.info("saving %s to Procore failed (%s); retrying in %.0f s",
                         entry.key or entry.name, reason, delay)
                return
        self._fail(entry_id, reason, error)

    def _fail(self, entry_id: int, reason: str, error: BaseException | None) -> None:
        with self._lock:
            entry = self.journal.get(entry_id)
            if entry is None:
                return
            # `queue retry` starts from the bytes: fresh hashes, and a fresh upload unless
            # one was completed (its parts were accepted).
            fresh = {} if entry.upload_uuid else {"upload_state": None, "upload_started": None}
            self.journal.update(entry_id, state="failed", failure=reason,
                                attempts=entry.attempts + 1, digests=None, **fresh)
            self._errors[entry_id] = (self._errors.get(entry_id, (0, None))[0] + 1,
                                      error or FsIOError(reason))
        log.error("cannot save %s to Procore: %s (kept locally; `procorefs queue retry` "
                  "tries again)", entry.key or entry.name, reason)
        self._emit(CommitEvent("failed", entry_id, entry.key, entry.target, size=entry.size,
                               sha256=entry.sha256, reason=reason))

    def _classify(self, exc: ApiError, what: str) -> _Retry | _Fail:
        if isinstance(exc, RateLimited):
            return _Retry("Procore's request limit is used up", exc.retry_after, exc)
        if isinstance(exc, NetworkError):
            return _Retry("Procore cannot be reached", None, exc)
        if isinstance(exc, ServerError):
            return _Retry(f"Procore is failing ({exc.message})", None, exc)
        if isinstance(exc, InvalidResponse):
            return _Retry(f"Procore sent an unreadable answer to {what}", None, exc)
        if isinstance(exc, Unauthorized):
            return _Fail("Procore no longer accepts the sign-in (run `procorefs login`)", exc)
        if isinstance(exc, Forbidden):
            return _Fail(f"no permission to {what} in Procore", exc)
        if isinstance(exc, NotFound):
            return _Fail("the folder no longer exists in Procore", exc)
        return _Fail(f"Procore refused to {what}: {exc.message}", exc)

    # ---- deferred deletes -----------------------------------------------------------------

    def _run_delete(self, delete_id: int) -> None:
        d = self.journal.get_delete(delete_id)
        if d is None:
            return
        scope = self._scope_for(d.company_id, d.project_id)
        target = Target(d.company_id, d.project_id, d.parent_id, d.name)
        try:
            self.client.delete_file(scope, d.file_id)
        except NotFound:
            pass                       # already gone: the goal is met
        except ApiError as exc:
            problem = self._classify(exc, "delete")
            attempts = d.attempts + 1
            hint = problem.hint if isinstance(problem, _Retry) else None
            delay = self._backoff.delay(attempts, self._rng, hint)
            with self._lock:
                self.journal.update_delete(delete_id, due_at=self.clock.time() + delay,
                                           attempts=attempts, failure=problem.reason)
            level = logging.INFO if isinstance(problem, _Retry) else logging.ERROR
            log.log(level, "cannot delete %s in Procore yet: %s", d.key or d.name,
                    problem.reason)
            return
        with self._lock:
            self.journal.remove_delete(delete_id)
        log.info("deleted %s in Procore", d.key or d.name)
        self._emit(CommitEvent("deleted", None, d.key, target, size=d.size, file_id=d.file_id))

    # ---- helpers --------------------------------------------------------------------------

    def _chain(self, entry_id: int) -> list[Entry]:
        """The entry and its unfinished predecessors, oldest first (lock held)."""
        out: list[Entry] = []
        seen: set[int] = set()
        current = self.journal.get(entry_id)
        while current is not None and current.id not in seen:
            out.append(current)
            seen.add(current.id)
            current = self.journal.get(current.after_id) if current.after_id else None
        out.reverse()
        return out

    def _fill_from_client(self, entry: Entry) -> Fill:
        """Default base reader: the base version through the client (no content cache)."""
        scope = self._scope_for(entry.company_id, entry.project_id)
        assert entry.file_id is not None
        remote = self.client.file(scope, entry.file_id)
        version = next((v for v in remote.versions if v.id == entry.base_version_id),
                       None)
        if version is None:
            raise FsIOError("the version this file was edited from is gone from Procore")
        client = self.client
        return lambda offset, length: client.read_range(version, offset, length)


def _base_columns(base: Base | None) -> dict[str, Any]:
    if base is None:
        return {"file_id": None, "base_version_id": None, "base_version_number": None,
                "base_size": None, "base_sha256": None}
    return {"file_id": base.file_id, "base_version_id": base.version_id,
            "base_version_number": base.version_number, "base_size": base.size,
            "base_sha256": base.sha256}


def _event_base(event: CommitEvent) -> Base | None:
    if event.file is None or event.version is None:
        return None
    return Base(event.file.id, event.version.id, event.version.number, event.size,
                event.sha256)


def _with_version(file: File, version: FileVersion) -> File:
    versions = (*(v for v in file.versions if v.id != version.id), version)
    return replace(file, versions=tuple(sorted(versions, key=lambda v: v.number)),
                   size=version.size)


__all__ = [
    "BackoffPolicy",
    "CommitClient",
    "CommitEvent",
    "CommitQueue",
    "ItemStatus",
    "QueueStatus",
    "conflict_name",
]
