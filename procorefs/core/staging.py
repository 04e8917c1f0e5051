"""Staged files: the local spool that holds the complete new content of one Procore file.

This module owns ``<cache_dir>/staging/`` and everything written there. A ``StagedFile`` is
the content of one file being written through the mount: a sparse spool file on local disk
plus the map of which byte ranges of the *base* (the remote version the edit derives from)
are not local yet, and the hashes of what was written so far. It never holds a whole file in
memory.

Semantics
- ``write(offset, data)`` anywhere (holes read as zeros), ``append(data)`` (O_APPEND: at the
  current end, atomically), ``truncate(n)`` up and down, ``read(offset, size)`` sees every
  write at once (read-your-writes, for every handle: they share one ``StagedFile``).
- Lazy base: a staged file opened on an existing Procore file starts sparse at the base's
  size; a range of the base that is read, or that must be uploaded, is fetched once through
  ``fill(offset, length) -> bytes`` and written into the spool. Writes never fetch. Bytes past
  a truncation point never come back from the base (they are zeros if the file grows again).
  The holes left at close are persisted by the journal and filled by the commit worker with
  ``complete_spool()`` before hashing, so an append or a partial write never uploads holes,
  and ``close()`` never waits for a download (it works offline).
- Disk full: an ``ENOSPC``/``EDQUOT`` from the local disk raises ``FsNoSpace`` and marks the
  staged file ``broken``; ``seal()`` then refuses (``FsNoSpace``), so nothing half-written is
  ever journaled or committed. Other local I/O errors do the same with ``FsIOError``.
- ``seal()`` makes the spool durable (fsync of the file, and of the staging directory the
  first time) and returns a ``Snapshot`` to journal. ``freeze()`` makes the next mutation
  continue in a copy of the spool (``fork``), leaving the sealed spool to an upload that is
  already reading it.
- Hashes as written: what is written in order from offset 0 is hashed behind the writes by
  the area's hasher thread (SHA-256 and MD5 of every upload part of ``part_size``, SHA-256 of
  the whole), so that a commit needs no pass over the file before its upload. Any change of
  bytes already hashed (an overwrite, a truncation) drops the hashes that covered them; a
  write past a gap, or a spool reopened after a restart, is not hashed here at all. The
  ``Snapshot`` carries what is known (``Digests``, with the spool's modification time), never a
  hash of other bytes; the commit computes the rest (``hash_parts``). ``catch_up(seconds)``
  finishes the hashing in the caller's thread (a close, before it seals).

How the core calls this (one ``StagingArea`` per mount; it is created with the mount's
``cache_dir`` and lives as long as the core):
- open for write of a path with no live ``StagedFile``:
  ``staged = area.create(base_size=remote.size, fill=reader_of(version))`` for an existing
  file (``base_size=0, fill=None`` for a new file or a reclaim); with ``O_TRUNC`` then
  ``staged.truncate(0)``. Further opens of the same path (read or write) ``staged.retain()``
  and share it; every handle ``staged.release()`` on close.
- read/write/truncate on any handle of the path: ``staged.read/write/append/truncate``.
- a close (FUSE flush) of a writing handle: ``staged.catch_up(seconds)`` without any core
  lock held, then, under the core's lock, ``seal`` and journal as below.
- last release (``staged.release() == 0``): ``snap = staged.seal()`` then hand ``snap`` to the
  journal (``CommitQueue.stage``) BEFORE answering close(); an ``FsNoSpace`` from ``seal``
  is close()'s answer and nothing is journaled (``staged.discard()``).
- reopen for write while its entry is in flight (``CommitQueue.reopen`` answered False):
  ``staged.freeze()`` before the first write.
- at start: ``area.remove_orphans(journal.spool_names())``.

Lock order: ``StagedFile._lock`` is taken alone, except that it is held across the ``fill``
callback (a network read): ``fill`` must never call back into staging, and that the hasher's
queue lock (a leaf) is taken under it. It is per file, never global; hashing itself happens
outside it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import sys
import threading
import time
import uuid
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procorefs.errors import FsError, FsInvalid, FsIOError, FsNoSpace

log = logging.getLogger(__name__)

# Positional I/O: os.pread/os.pwrite do not exist on Windows, where a seek and a read under one
# process-wide lock stand in (spool descriptors are private to this module, so nothing else
# moves their offsets).
if sys.platform == "win32":
    _POSITION_LOCK = threading.Lock()

    def _pread(fd: int, size: int, offset: int) -> bytes:
        with _POSITION_LOCK:
            os.lseek(fd, offset, os.SEEK_SET)
            return os.read(fd, size)

    def _pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
        with _POSITION_LOCK:
            os.lseek(fd, offset, os.SEEK_SET)
            return os.write(fd, data)
else:
    _pread = os.pread
    _pwrite = os.pwrite

# Hole-aware copying where the OS has it (Linux, macOS); a plain copy elsewhere.
_SEEK_DATA: int | None = getattr(os, "SEEK_DATA", None)
_SEEK_HOLE: int | None = getattr(os, "SEEK_HOLE", None)

Fill = Callable[[int, int], bytes]
"""``fill(offset, length)``: exactly ``length`` bytes of the base version at ``offset``."""

Range = tuple[int, int]
"""Half-open ``[start, end)`` byte range."""

SPOOL_SUFFIX = ".spool"
FILL_BLOCK = 1 << 20          # reads fetch the base in 1 MiB aligned blocks
PART_SIZE = 16 << 20          # upload part size when the mount does not say (the client's default)
_COPY_CHUNK = 1 << 20
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_HASH_CHUNK = 1 << 20         # the background hasher reads and hashes this much per step
# seal() finishes the hashing itself when the hasher is at most this far behind the writes;
# further behind (a disk far faster than hashing), the rest is left to the commit so that a
# close() never waits long for hashes.
_SEAL_CATCH_UP = 64 << 20
_HASHER_IDLE = 5.0            # seconds before an idle hasher thread ends
# seal() also finishes the whole-file hash when it is at most this far behind (small files);
# a larger one is finished by the hasher thread while the upload runs (it is needed after).
_SEAL_WHOLE = 4 << 20


class RangeSet:
    """Disjoint, sorted half-open ranges (the parts of the base that are still remote)."""

    __slots__ = ("_r",)

    def __init__(self, ranges: Iterable[Range] = ()) -> None:
        self._r: list[Range] = []
        for start, end in ranges:
            self.add(start, end)

    def __iter__(self) -> Iterator[Range]:
        return iter(list(self._r))

    def as_tuple(self) -> tuple[Range, ...]:
        return tuple(self._r)

    def __bool__(self) -> bool:
        return bool(self._r)

    def total(self) -> int:
        return sum(e - s for s, e in self._r)

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        out: list[Range] = []
        for s, e in self._r:
            if e < start or s > end:
                out.append((s, e))
            else:
                start, end = min(s, start), max(e, end)
        out.append((start, end))
        out.sort()
        self._r = out

    def remove(self, start: int, end: int) -> None:
        if end <= start:
            return
        out: list[Range] = []
        for s, e in self._r:
            if e <= start or s >= end:
                out.append((s, e))
                continue
            if s < start:
                out.append((s, start))
            if e > end:
                out.append((end, e))
        self._r = out

    def clip(self, limit: int) -> None:
        self.remove(limit, max(limit, self._r[-1][1]) if self._r else limit)

    def within(self, start: int, end: int) -> list[Range]:
        """The parts of ``[start, end)`` covered by this set."""
        out: list[Range] = []
        i = max(0, bisect_left(self._r, (start, start)) - 1)
        for s, e in self._r[i:]:
            if s >= end:
                break
            lo, hi = max(s, start), min(e, end)
            if lo < hi:
                out.append((lo, hi))
        return out


@dataclass(frozen=True, slots=True)
class PartHash:
    """The digests of one upload part, as a segmented upload declares them."""

    size: int
    sha256: str
    md5: str                        # hex


@dataclass(frozen=True, slots=True)
class Digests:
    """What is known of a spool's hashes: per upload part of ``part_size``, and of the whole.

    Computed from the bytes as they were written (``StagedFile``) or read (``hash_parts``);
    ``mtime_ns`` is the spool's modification time then: a spool whose time differs has changed
    since, and its digests must not be trusted (they are computed again).
    """

    part_size: int
    size: int
    mtime_ns: int
    sha256: str | None              # of the whole content; None: not known
    parts: tuple[tuple[int, PartHash], ...] = ()   # (index, digests), only those known

    @property
    def part_count(self) -> int:
        return -(-self.size // self.part_size)

    def part_map(self) -> dict[int, PartHash]:
        return dict(self.parts)

    def complete(self) -> bool:
        """Every part and the whole are known."""
        return self.sha256 is not None and len(self.parts) == self.part_count

    def without(self, ranges: Iterable[Range]) -> Digests:
        """These digests once ``ranges`` were written: parts touching them, and the whole, go."""
        spans = [(s, e) for s, e in ranges if e > s]
        if not spans:
            return self
        ps = self.part_size
        kept = tuple((i, h) for i, h in self.parts
                     if not any(s < i * ps + h.size and e > i * ps for s, e in spans))
        return Digests(self.part_size, self.size, self.mtime_ns, None, kept)

    def to_json(self) -> str:
        return json.dumps({"v": 1, "part_size": self.part_size, "size": self.size,
                           "mtime_ns": self.mtime_ns, "sha256": self.sha256,
                           "parts": [[i, h.size, h.sha256, h.md5] for i, h in self.parts]},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Digests | None:
        """The digests a journal entry holds; None when there are none or they are unreadable
        (then they are computed again)."""
        if not text:
            return None
        try:
            data: Any = json.loads(text)
            if data.get("v") != 1:
                return None
            parts = tuple((int(i), PartHash(int(n), str(sha), str(md5)))
                          for i, n, sha, md5 in data["parts"])
            sha = data["sha256"]
            return cls(int(data["part_size"]), int(data["size"]), int(data["mtime_ns"]),
                       None if sha is None else str(sha), parts)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A sealed, durable state of a staged file: what the journal records at close."""

    spool: str                      # file name inside the staging directory
    size: int
    holes: tuple[Range, ...]        # ranges still to fetch from the base before upload
    dirty: bool                     # written or truncated since it was staged from its base
    generation: int = 0             # mutations so far: equal snapshots of one file, same bytes
    digests: Digests | None = None  # hashes of the bytes known at seal (see Digests)


def _raise_local(exc: OSError, what: str) -> FsError:
    if exc.errno in _NO_SPACE:
        return FsNoSpace(f"local staging disk is full while {what}")
    return FsIOError(f"local staging I/O failed while {what}: {exc.strerror or exc}")


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)


class _Lane:
    """One stream of hashes over a staged file's bytes, in order (see ``_SeqHash``).

    ``cur`` holds the running hashes of the current part (``new_part()`` makes them),
    ``whole`` the running SHA-256 of everything (lanes that keep one), ``done`` the hex
    digests of every whole part hashed. The invariant: ``whole`` covers the spool's bytes
    ``[0, pos)``, ``cur`` those of ``[part_start(pos), pos)``, each of ``done`` its part, as the
    spool holds them now; None (or absent) when not known.
    """

    __slots__ = ("claimed", "cur", "done", "epoch", "keeps_whole", "new_part", "pos", "whole")

    def __init__(self, new_part: Callable[[], list[Any]], keeps_whole: bool) -> None:
        self.new_part = new_part
        self.keeps_whole = keeps_whole
        self.epoch = 0
        self.claimed: int | None = None     # a chunk [pos, claimed) is being hashed
        self.reset()

    def reset(self) -> None:
        self.epoch += 1             # a chunk still claimed is thrown away by its claimer
        self.pos = 0
        self.cur: list[Any] | None = self.new_part()
        self.whole: Any = hashlib.sha256() if self.keeps_whole else None
        self.done: dict[int, tuple[str, ...]] = {}

    def changed(self, start: int, end: int, part_size: int) -> None:
        claimed = self.claimed
        if end <= start or start >= (claimed if claimed is not None else self.pos):
            return                  # not hashed yet: the lane reads the new bytes later
        if claimed is not None and end > self.pos:
            self.epoch += 1         # the chunk in flight read stale bytes: hash it again
        if start >= self.pos:
            return
        self.whole = None
        last = (min(end, self.pos) - 1) // part_size
        for index in range(start // part_size, last + 1):
            self.done.pop(index, None)
        if last >= self.pos // part_size:
            self.cur = None         # the current part: it is computed at commit
            self.epoch += 1         # and a chunk in flight went on from it

    def next_chunk(self, seq_end: int, part_size: int) -> tuple[int, int] | None:
        if self.cur is None:
            # The current part changed after it was partly hashed: leave it to the commit and
            # go on at the next part (the whole-file hash is gone with it).
            if self.pos % part_size:
                self.pos = (self.pos // part_size + 1) * part_size
            self.cur = self.new_part()
        if self.pos >= seq_end or (not self.cur and self.whole is None):
            return None             # (a lane of the whole hash that lost it has nothing to do)
        return self.pos, min(seq_end, self.pos + _HASH_CHUNK,
                             (self.pos // part_size + 1) * part_size)

    def objects(self) -> list[Any]:
        assert self.cur is not None
        return [*self.cur, *([self.whole] if self.whole is not None else [])]

    def hashed(self, end: int, part_size: int, objects: list[Any] | None = None) -> None:
        """The chunk up to ``end`` is in ``objects`` (copies made at the claim; None: in the
        lane's own, hashed under the lock)."""
        if objects is not None:
            assert self.cur is not None
            self.cur = objects[:len(self.cur)]
            if self.whole is not None:      # (None: an earlier byte changed meanwhile)
                self.whole = objects[len(self.cur)]
        self.pos = end
        if end % part_size == 0 and self.cur is not None:
            self.done[end // part_size - 1] = tuple(h.hexdigest() for h in self.cur)
            self.cur = self.new_part()

    def tail(self, size: int) -> tuple[str, ...] | None:
        """The digests of a last, short part ending at ``size``, if this lane has them."""
        if self.pos != size or self.cur is None:
            return None
        return tuple(h.copy().hexdigest() for h in self.cur)


class _SeqHash:
    """The hashes of a staged file computed behind its sequential writes.

    Three lanes, so that two threads can hash one file and the hashes an upload must declare
    before it starts come first: MD5 of each part, SHA-256 of each part (``PARTS``), and the
    SHA-256 of the whole file (``WHOLE``), which is needed only once the upload is done and is
    hashed when the part lanes have caught up. Everything here is guarded by the owning
    ``StagedFile._lock``. A thread *claims* a chunk of a lane ``[pos, claimed)`` and hashes
    it outside the lock (so writes never wait for hashing) into copies of the lane's hash
    objects, which replace them if nothing changed meanwhile: a change of the bytes it reads
    bumps the lane's ``epoch``, and the result is thrown away.
    """

    __slots__ = ("lanes", "part_size", "seq_end", "stopped")

    PARTS = (0, 1)
    WHOLE = 2

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self.lanes = (_Lane(lambda: [_md5()], keeps_whole=False),
                      _Lane(lambda: [hashlib.sha256()], keeps_whole=False),
                      _Lane(list, keeps_whole=True))
        self.reset()

    def reset(self) -> None:
        """The content is empty again (truncate to 0): start over."""
        self.seq_end = 0            # [0, seq_end): written from offset 0 on, with no gap
        self.stopped = False        # no more background hashing (too far behind)
        for lane in self.lanes:
            lane.reset()

    def wrote(self, start: int, end: int) -> None:
        self.changed(start, end)
        if start <= self.seq_end:
            self.seq_end = max(self.seq_end, end)

    def changed(self, start: int, end: int) -> None:
        """Bytes ``[start, end)`` of the spool changed: drop every hash that covered them."""
        for lane in self.lanes:
            lane.changed(start, end, self.part_size)

    def truncated(self, old: int, new: int) -> None:
        if new == 0:
            self.reset()
            return
        self.changed(new, max(old, new))
        self.seq_end = min(self.seq_end, new)

    def next_chunk(self, lane: _Lane) -> tuple[int, int] | None:
        """The next range ``lane`` may hash (lock held), or None when there is none."""
        if self.stopped:
            return None
        return lane.next_chunk(self.seq_end, self.part_size)

    def behind(self, lanes: Iterable[int] = PARTS) -> int:
        return max(self.seq_end - self.lanes[i].pos for i in lanes)

    def whole_due(self) -> bool:
        """Whether the whole-file lane should run now: the part lanes have caught up."""
        whole = self.lanes[self.WHOLE]
        return (not self.stopped and whole.claimed is None and whole.whole is not None
                and whole.pos < self.seq_end and self.behind() < _HASH_CHUNK)

    def digests(self, size: int, mtime_ns: int) -> Digests:
        """What is known of the first ``size`` bytes (lock held)."""
        ps = self.part_size
        md5s, shas, everything = self.lanes
        parts = {i: PartHash(ps, shas.done[i][0], md5s.done[i][0])
                 for i in md5s.done.keys() & shas.done.keys() if (i + 1) * ps <= size}
        if size % ps:
            md5_tail, sha_tail = md5s.tail(size), shas.tail(size)
            if md5_tail is not None and sha_tail is not None:
                parts[size // ps] = PartHash(size % ps, sha_tail[0], md5_tail[0])
        whole = None
        if everything.pos == size and everything.whole is not None:
            whole = everything.whole.copy().hexdigest()
        return Digests(ps, size, mtime_ns, whole, tuple(sorted(parts.items())))


class _Hasher:
    """The background thread of a staging area that hashes staged files behind their writes.

    A staged file that a write left at least one chunk behind is queued (``kick``); the
    thread hashes one chunk of it at a time (round robin between files; the file picks the
    lane, parts first: ``hash_some``) and ends after a few idle seconds. One thread: on a
    small machine a second one takes the CPU the writes need (the close that seals a file
    hashes alongside it). Its lock is a leaf: it is taken under a ``StagedFile._lock``
    (``kick``) and never held while a staged file is hashed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._todo: deque[StagedFile] = deque()
        self._queued: set[int] = set()      # id() of the queued files (the deque holds them)
        self._thread: threading.Thread | None = None

    def kick(self, staged: StagedFile) -> None:
        with self._cond:
            if id(staged) in self._queued:
                return
            self._queued.add(id(staged))
            self._todo.append(staged)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="procorefs-hash",
                                                daemon=True)
                self._thread.start()
            else:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._todo:
                    if not self._cond.wait(_HASHER_IDLE) and not self._todo:
                        self._thread = None
                        return
                staged = self._todo.popleft()
                self._queued.discard(id(staged))
            try:
                more = staged.hash_some()
            except Exception:   # hashing is an optimisation: the commit hashes what is missing
                log.debug("background hashing of a staged file stopped", exc_info=True)
                more = False
            if more:
                self.kick(staged)


class StagingArea:
    """The staging directory of one mount: creates, reopens and removes spool files.

    ``part_size`` is the upload part size of the mount's client: staged files hash their
    parts of that size as they are written (``Snapshot.digests``).
    """

    def __init__(self, cache_dir: Path, *, part_size: int = PART_SIZE) -> None:
        if part_size <= 0:
            raise FsInvalid("the upload part size must be positive")
        self.dir = Path(cache_dir) / "staging"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.part_size = part_size
        self.hasher = _Hasher()
        self._dir_synced = False
        self._lock = threading.Lock()
        # The staged file writing each spool, for the whole-file hash it finishes after its
        # seal (sha256_of).
        self._live: weakref.WeakValueDictionary[str, StagedFile] = \
            weakref.WeakValueDictionary()   # GUARDED_BY(_lock)

    def note_live(self, spool: str, staged: StagedFile, old: str | None = None) -> None:
        with self._lock:
            if old is not None and self._live.get(old) is staged:
                del self._live[old]
            self._live[spool] = staged

    def sha256_of(self, spool: str, generation: int) -> str | None:
        """The SHA-256 of ``spool`` as it was sealed at ``generation``, from the staged file
        that wrote it (finishing that hash in this thread if need be); None when it does not
        know (another process wrote it, it changed since, or bytes were not hashed in order):
        then the caller reads the spool."""
        with self._lock:
            staged = self._live.get(spool)
        return staged.whole_sha256(spool, generation) if staged is not None else None

    def path_of(self, spool: str) -> Path:
        if "/" in spool or "\\" in spool or not spool.endswith(SPOOL_SUFFIX):
            raise FsInvalid(f"not a spool name: {spool!r}")
        return self.dir / spool

    def create(self, *, base_size: int = 0, fill: Fill | None = None,
               fill_block: int = FILL_BLOCK) -> StagedFile:
        """A new staged file; with ``fill``, derived lazily from a base of ``base_size``."""
        if base_size and fill is None:
            raise FsInvalid("a staged file with a base needs a fill callback")
        name = uuid.uuid4().hex + SPOOL_SUFFIX
        path = self.dir / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o600)
        except OSError as exc:
            raise _raise_local(exc, "creating a staged file") from exc
        try:
            if base_size:
                os.ftruncate(fd, base_size)     # sparse: no blocks until written or filled
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise _raise_local(exc, "creating a staged file") from exc
        holes = RangeSet([(0, base_size)] if base_size else [])
        return StagedFile(self, name, fd, size=base_size, holes=holes, fill=fill,
                          fill_block=fill_block)

    def reopen(self, snap: Snapshot, fill: Fill | None) -> StagedFile:
        """A staged file over a journaled spool (at start, so reads see the pending bytes)."""
        path = self.path_of(snap.spool)
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise _raise_local(exc, "reopening a staged file") from exc
        return StagedFile(self, snap.spool, fd, size=snap.size, holes=RangeSet(snap.holes),
                          fill=fill, dirty=snap.dirty)

    def remove(self, spool: str) -> None:
        """Delete a spool file (after Procore confirmed it, or when it was superseded)."""
        # Windows refuses while a handle is open; remove_orphans() catches it at next start.
        with contextlib.suppress(OSError):
            self.path_of(spool).unlink(missing_ok=True)

    def spools(self) -> set[str]:
        return {p.name for p in self.dir.iterdir() if p.name.endswith(SPOOL_SUFFIX)}

    def remove_orphans(self, keep: Iterable[str]) -> list[str]:
        """Delete every spool the journal does not reference (files never closed)."""
        wanted = set(keep)
        gone = sorted(self.spools() - wanted)
        for name in gone:
            self.remove(name)
        return gone

    def sync_dir(self) -> None:
        """fsync the staging directory, so that new spool names survive a power cut."""
        with self._lock:
            if self._dir_synced:
                return
            if os.name != "nt":
                fd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self._dir_synced = True

    def mark_dir_dirty(self) -> None:
        with self._lock:
            self._dir_synced = False


class StagedFile:
    """The new content of one Procore file while it is written; shared by all its handles."""

    def __init__(self, area: StagingArea, spool: str, fd: int, *, size: int, holes: RangeSet,
                 fill: Fill | None, fill_block: int = FILL_BLOCK, dirty: bool = False) -> None:
        self._area = area
        self._lock = threading.RLock()
        self._spool = spool
        self._fd = fd
        self._size = size
        self._holes = holes                 # GUARDED_BY(_lock)
        self._fill = fill
        self._fill_block = fill_block
        self._refs = 1
        self._dirty = dirty
        self._generation = 0
        self._frozen = False
        self._broken: str | None = None
        self._closed = False
        # Hashes of what is written from offset 0 on, computed behind the writes by the
        # area's hasher thread; a reopened spool starts with none (its old bytes were never
        # seen here, so nothing of them is trusted).
        self._hash = _SeqHash(area.part_size)     # GUARDED_BY(_lock), see _SeqHash
        self._hashed = threading.Condition(self._lock)
        area.mark_dir_dirty()
        area.note_live(spool, self)

    # -- properties -----------------------------------------------------------------------

    @property
    def spool(self) -> str:
        with self._lock:
            return self._spool

    @property
    def size(self) -> int:
        with self._lock:
            return self._size

    @property
    def dirty(self) -> bool:
        with self._lock:
            return self._dirty

    @property
    def broken(self) -> str | None:
        """Why this staged file may not be committed (a local disk error), or None."""
        with self._lock:
            return self._broken

    def holes(self) -> tuple[Range, ...]:
        with self._lock:
            return self._holes.as_tuple()

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    @property
    def generation(self) -> int:
        """Bumped by every mutation: (spool, generation) names one content state."""
        with self._lock:
            return self._generation

    def state(self) -> tuple[str, int]:
        """``(spool, generation)`` now: equal to a ``Snapshot``'s when nothing changed since."""
        with self._lock:
            return self._spool, self._generation

    def fork_now(self) -> None:
        """Continue in a fresh copy of the spool now (the old one belongs to a cancelled or
        superseded journal entry that may remove it)."""
        with self._lock:
            self._check_open()
            self._fork()
            self._generation += 1

    def mark_dirty(self) -> None:
        """The content differs from the base even though nothing was written (a copy of
        another version was put in place): it must be committed."""
        with self._lock:
            self._dirty = True
            self._generation += 1

    # -- handles --------------------------------------------------------------------------

    def retain(self) -> None:
        with self._lock:
            self._refs += 1

    def release(self) -> int:
        """Drop one handle; answers how many remain (0: the caller seals or discards)."""
        with self._lock:
            self._refs = max(0, self._refs - 1)
            return self._refs

    @property
    def refs(self) -> int:
        with self._lock:
            return self._refs

    # -- data -----------------------------------------------------------------------------

    def read(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0:
            raise FsInvalid("negative offset or size")
        with self._lock:
            self._check_open()
            end = min(self._size, offset + size)
            if offset >= end:
                return b""
            self._fill_range(offset, end)
            try:
                return _pread_all(self._fd, end - offset, offset)
            except OSError as exc:
                raise _raise_local(exc, "reading a staged file") from exc

    def write(self, offset: int, data: bytes) -> int:
        if offset < 0:
            raise FsInvalid("negative offset")
        with self._lock:
            self._mutate()
            return self._write_locked(offset, data)

    def append(self, data: bytes) -> int:
        """O_APPEND: write at the current end; answers the offset written at."""
        with self._lock:
            self._mutate()
            offset = self._size
            self._write_locked(offset, data)
            return offset

    def truncate(self, size: int) -> None:
        if size < 0:
            raise FsInvalid("negative size")
        with self._lock:
            self._mutate()
            try:
                os.ftruncate(self._fd, size)
            except OSError as exc:
                self._broken = "local staging disk full" if exc.errno in _NO_SPACE else str(exc)
                raise _raise_local(exc, "truncating a staged file") from exc
            self._holes.clip(size)
            self._hash.truncated(self._size, size)
            self._size = size

    def complete(self) -> None:
        """Fetch every remaining base range into the spool (the worker uses complete_spool)."""
        with self._lock:
            self._check_open()
            self._fill_range(0, self._size)

    # -- durability -----------------------------------------------------------------------

    def make_durable(self) -> None:
        """fsync the spool file and (once) the staging directory."""
        with self._lock:
            self._check_open()
            if self._broken:
                raise FsNoSpace(f"staged file is unusable: {self._broken}")
            try:
                os.fsync(self._fd)
                self._area.sync_dir()
            except OSError as exc:
                self._broken = str(exc)
                raise _raise_local(exc, "making a staged file durable") from exc

    def seal(self) -> Snapshot:
        """Make durable and describe the current content for the journal, with the hashes
        of the bytes written so far (the commit computes what is missing)."""
        with self._lock:
            self.make_durable()
            self._catch_up()
            try:
                mtime_ns = os.fstat(self._fd).st_mtime_ns
            except OSError as exc:
                raise _raise_local(exc, "making a staged file durable") from exc
            return Snapshot(self._spool, self._size, self._holes.as_tuple(), self._dirty,
                            self._generation, self._hash.digests(self._size, mtime_ns))

    # -- hashing ---------------------------------------------------------------------------

    def hash_some(self) -> bool:
        """Hash the next chunk behind the writes (the hasher thread): of a part lane if one
        is free and behind, else of the whole-file lane once the part lanes caught up; True:
        there is more to do."""
        with self._lock:
            seq = self._hash
            if self._closed or self._broken or seq.stopped:
                return False
            order = [*seq.PARTS, *((seq.WHOLE,) if seq.whole_due() else ())]
            index = next((i for i in order if seq.lanes[i].claimed is None
                          and seq.next_chunk(seq.lanes[i]) is not None), None)
        if index is None:
            return False
        self.hash_step(index)
        with self._lock:
            return not seq.stopped and (
                any(seq.lanes[i].claimed is None and seq.lanes[i].pos < seq.seq_end
                    for i in seq.PARTS) or seq.whole_due())

    def hash_step(self, index: int) -> bool:
        """Hash the next chunk of one lane behind the writes, outside the lock; True: that
        lane has more to do."""
        with self._lock:
            seq = self._hash
            lane = seq.lanes[index]
            if self._closed or self._broken or lane.claimed is not None:
                return False
            chunk = seq.next_chunk(lane)
            if chunk is None:
                return False
            start, end = chunk
            try:
                # Its own descriptor: a fork or close may close ours while this one reads.
                fd = os.dup(self._fd)
            except OSError:
                seq.stopped = True
                return False
            epoch = lane.epoch
            objects = [h.copy() for h in lane.objects()]
            lane.claimed = end
        data: bytes | None = None
        try:
            data = _pread_all(fd, end - start, start)
            for h in objects:
                h.update(data)
        except OSError:
            data = None
        finally:
            os.close(fd)
        with self._lock:
            lane.claimed = None
            if data is None:
                seq.stopped = True
            elif epoch == lane.epoch:
                lane.hashed(end, seq.part_size, objects)
            self._hashed.notify_all()
            return not seq.stopped and lane.pos < seq.seq_end

    def catch_up(self, seconds: float) -> None:
        """Hash the parts of what was written in order so far, in this thread (a close,
        before the namespace lock is taken) alongside the hasher thread, for up to
        ``seconds``; past them, the commit hashes the rest. The whole-file hash is left to the
        hasher thread (``whole_sha256``). Writes of other handles go on meanwhile: the lock
        is taken per chunk."""
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                seq = self._hash
                free = None
                while free is None:
                    if self._closed or self._broken or seq.stopped:
                        return
                    pending = [i for i in seq.PARTS if seq.lanes[i].claimed is not None
                               or seq.next_chunk(seq.lanes[i])]
                    if not pending:
                        if seq.whole_due():
                            self._area.hasher.kick(self)
                        return
                    free = next((i for i in pending if seq.lanes[i].claimed is None), None)
                    if free is None:
                        self._hashed.wait()         # the threads are on every lane
                if time.monotonic() > deadline:
                    seq.stopped = True
                    return
            self.hash_step(free)

    def _catch_up(self) -> None:
        """Finish the hashing of what was written in order, in this thread (lock held)."""
        seq = self._hash
        while any(lane.claimed is not None for lane in seq.lanes):
            self._hashed.wait()
        if seq.behind() > _SEAL_CATCH_UP:
            seq.stopped = True      # far behind: the commit hashes the rest
            return
        lanes = list(seq.PARTS)
        if seq.behind((seq.WHOLE,)) <= _SEAL_WHOLE:
            lanes.append(seq.WHOLE)
        elif seq.whole_due():
            self._area.hasher.kick(self)
        for lane in (seq.lanes[i] for i in lanes):
            while (chunk := seq.next_chunk(lane)) is not None:
                start, end = chunk
                try:
                    data = _pread_all(self._fd, end - start, start)
                except OSError:
                    seq.stopped = True
                    return
                for h in lane.objects():
                    h.update(data)
                lane.hashed(end, seq.part_size)

    def whole_sha256(self, spool: str, generation: int) -> str | None:
        """The SHA-256 of the content sealed as ``(spool, generation)``, finishing the hash
        in this thread where the hasher thread has not; None when this staged file cannot
        tell (it moved on to other bytes, or they were not all hashed in order)."""
        seq = self._hash
        lane = seq.lanes[seq.WHOLE]
        while True:
            with self._lock:
                if (self._spool, self._generation) != (spool, generation) or \
                        self._closed or self._broken:
                    return None
                if lane.claimed is not None:
                    self._hashed.wait()
                    continue
                if lane.whole is not None and lane.pos == self._size:
                    return str(lane.whole.copy().hexdigest())
                if seq.next_chunk(lane) is None:
                    return None
            self.hash_step(seq.WHOLE)

    def _note_write(self, start: int, end: int) -> None:
        seq = self._hash
        seq.wrote(start, end)
        if seq.stopped:
            return
        if seq.behind() >= _HASH_CHUNK or \
                (seq.whole_due() and seq.behind((seq.WHOLE,)) >= _HASH_CHUNK):
            self._area.hasher.kick(self)

    def freeze(self) -> None:
        """The sealed spool belongs to an upload now: the next mutation works on a copy."""
        with self._lock:
            self._frozen = True

    def discard(self) -> None:
        """Close and delete the spool (a broken file, or a never-journaled local-only one)."""
        with self._lock:
            self.close()
            # A chunk being hashed reads through a descriptor of its own, which keeps the
            # spool's blocks allocated after the unlink: on a full disk, the space must be
            # back when this returns. (Closed, the file starts no new chunk.)
            while any(lane.claimed is not None for lane in self._hash.lanes):
                self._hashed.wait()
            self._area.remove(self._spool)

    def close(self) -> None:
        """Close the spool's descriptor; the spool file stays for the journal."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    # -- internals (lock held) ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise FsIOError("staged file is closed")

    def _mutate(self) -> None:
        self._check_open()
        if self._broken:
            raise FsNoSpace(f"staged file is unusable: {self._broken}")
        if self._frozen or _unlinked(self._fd):
            # The sealed spool belongs to a commit (or was already removed after one).
            self._fork()
        self._dirty = True
        self._generation += 1

    def _write_locked(self, offset: int, data: bytes) -> int:
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                n = _pwrite(self._fd, view[done:], offset + done)
                if n <= 0:
                    raise OSError(errno.EIO, "short write")
                done += n
        except OSError as exc:
            self._broken = "local staging disk full" if exc.errno in _NO_SPACE else str(exc)
            self._hash.changed(offset, offset + len(view))
            raise _raise_local(exc, "writing a staged file") from exc
        self._holes.remove(offset, offset + done)
        self._size = max(self._size, offset + done)
        self._note_write(offset, offset + done)
        return done

    def _fill_range(self, start: int, end: int) -> None:
        missing = self._holes.within(start, end)
        if not missing:
            return
        if self._fill is None:
            raise FsIOError("staged file has holes but no base to fill them from")
        block = self._fill_block
        for lo, hi in missing:
            # Align to blocks so that small reads do not cost one ranged GET each.
            a = lo - lo % block
            b = min(hi + (-hi) % block, self._size)
            for s, e in self._holes.within(a, b):
                pos = s
                while pos < e:
                    n = min(e - pos, max(block, _COPY_CHUNK))
                    data = self._fill(pos, n)
                    if len(data) != n:
                        raise FsIOError(f"base returned {len(data)} bytes for {n} at {pos}")
                    try:
                        _pwrite_all(self._fd, data, pos)
                    except OSError as exc:
                        self._broken = ("local staging disk full" if exc.errno in _NO_SPACE
                                        else str(exc))
                        raise _raise_local(exc, "filling a staged file") from exc
                    self._holes.remove(pos, pos + n)
                    self._hash.changed(pos, pos + n)
                    pos += n

    def _fork(self) -> None:
        name = uuid.uuid4().hex + SPOOL_SUFFIX
        path = self._area.dir / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o600)
        except OSError as exc:
            raise _raise_local(exc, "copying a staged file") from exc
        try:
            copy_sparse(self._fd, fd, self._size)
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise _raise_local(exc, "copying a staged file") from exc
        os.close(self._fd)      # the old spool now belongs to the journal entry alone
        self._fd = fd
        old, self._spool = self._spool, name
        self._frozen = False
        self._area.mark_dir_dirty()
        self._area.note_live(name, self, old)


# ---- helpers shared with the commit worker ----------------------------------------------------

def _unlinked(fd: int) -> bool:
    try:
        return os.fstat(fd).st_nlink == 0
    except OSError:
        return False


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        chunk = _pread(fd, size, offset)
        if not chunk:
            # Past the spool's physical end: sparse tail, reads as zeros.
            parts.append(bytes(size))
            break
        parts.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = _pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def copy_sparse(src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes between descriptors keeping holes (SEEK_DATA where supported)."""
    os.ftruncate(dst, size)
    extents: list[Range]
    try:
        if _SEEK_DATA is None or _SEEK_HOLE is None:
            raise AttributeError("no SEEK_DATA")
        extents = []
        pos = 0
        while pos < size:
            try:
                start = os.lseek(src, pos, _SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break
                raise
            end = min(os.lseek(src, start, _SEEK_HOLE), size)
            if start >= size:
                break
            extents.append((start, end))
            pos = end
    except (AttributeError, OSError):
        extents = [(0, size)]
    for start, end in extents:
        pos = start
        while pos < end:
            n = min(_COPY_CHUNK, end - pos)
            data = _pread(src, n, pos)
            if not data:
                break
            if data.count(0) != len(data):
                _pwrite_all(dst, data, pos)
            pos += len(data)


def complete_spool(path: Path, holes: Iterable[Range], fill: Fill,
                   on_filled: Callable[[Range], None] | None = None) -> None:
    """Fill the base ranges ``holes`` into a sealed spool and fsync it (worker side).

    ``on_filled`` is told each range once it is in the spool, so the journal can shrink its
    hole list and a crash never refetches what is already local.
    """
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        for start, end in holes:
            pos = start
            while pos < end:
                n = min(_COPY_CHUNK * 4, end - pos)
                data = fill(pos, n)
                if len(data) != n:
                    raise FsIOError(f"base returned {len(data)} bytes for {n} at {pos}")
                try:
                    _pwrite_all(fd, data, pos)
                except OSError as exc:
                    raise _raise_local(exc, "filling a staged file") from exc
                pos += n
            os.fsync(fd)
            if on_filled:
                on_filled((start, end))
    finally:
        os.close(fd)


def hash_spool(path: Path, size: int) -> str:
    """SHA-256 of the first ``size`` bytes of a spool, streamed (never the whole in memory)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        pos = 0
        while pos < size:
            n = min(_COPY_CHUNK * 4, size - pos)
            chunk = _pread_all(fd, n, pos)
            digest.update(chunk)
            pos += n
    finally:
        os.close(fd)
    return digest.hexdigest()


def hash_parts(path: Path, size: int, part_size: int, known: Mapping[int, PartHash], *,
               whole: bool, parts: bool) -> tuple[str | None, dict[int, PartHash]]:
    """What ``known`` lacks, in one streamed pass over the spool: the SHA-256 of the first
    ``size`` bytes (``whole``) and, with ``parts``, SHA-256 and MD5 of every part not known.
    Parts that are known and not needed for the whole are not read at all."""
    digest = hashlib.sha256() if whole else None
    out = dict(known)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        for index in range(-(-size // part_size)):
            start = index * part_size
            end = min(size, start + part_size)
            need = parts and index not in out
            if not need and digest is None:
                continue
            sha, md5 = (hashlib.sha256(), _md5()) if need else (None, None)
            pos = start
            while pos < end:
                n = min(_COPY_CHUNK * 4, end - pos)
                chunk = _pread_all(fd, n, pos)
                for h in (digest, sha, md5):
                    if h is not None:
                        h.update(chunk)
                pos += n
            if sha is not None and md5 is not None:
                out[index] = PartHash(end - start, sha.hexdigest(), md5.hexdigest())
    finally:
        os.close(fd)
    if digest is None:
        return None, out
    return digest.hexdigest(), out
