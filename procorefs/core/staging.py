"""Staged files: the local spool that holds the complete new content of one Procore file.

This module owns ``<cache_dir>/staging/`` and everything written there. A ``StagedFile`` is
the content of one file being written through the mount: a sparse spool file on local disk
plus the map of which byte ranges of the *base* (the remote version the edit derives from)
are not local yet. It never holds a whole file in memory.

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

How the core calls this (one ``StagingArea`` per mount; it is created with the mount's
``cache_dir`` and lives as long as the core):
- open for write of a path with no live ``StagedFile``:
  ``staged = area.create(base_size=remote.size, fill=reader_of(version))`` for an existing
  file (``base_size=0, fill=None`` for a new file or a reclaim); with ``O_TRUNC`` then
  ``staged.truncate(0)``. Further opens of the same path (read or write) ``staged.retain()``
  and share it; every handle ``staged.release()`` on close.
- read/write/truncate on any handle of the path: ``staged.read/write/append/truncate``.
- last release (``staged.release() == 0``): ``snap = staged.seal()`` then hand ``snap`` to the
  journal (``CommitQueue.stage``) BEFORE answering close(); an ``FsNoSpace`` from ``seal``
  is close()'s answer and nothing is journaled (``staged.discard()``).
- reopen for write while its entry is in flight (``CommitQueue.reopen`` answered False):
  ``staged.freeze()`` before the first write.
- at start: ``area.remove_orphans(journal.spool_names())``.

Lock order: ``StagedFile._lock`` is taken alone, except that it is held across the ``fill``
callback (a network read): ``fill`` must never call back into staging. It is per file, never
global.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import sys
import threading
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from procorefs.errors import FsError, FsInvalid, FsIOError, FsNoSpace

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
_COPY_CHUNK = 1 << 20
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


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
class Snapshot:
    """A sealed, durable state of a staged file: what the journal records at close."""

    spool: str                      # file name inside the staging directory
    size: int
    holes: tuple[Range, ...]        # ranges still to fetch from the base before upload
    dirty: bool                     # written or truncated since it was staged from its base
    generation: int = 0             # mutations so far: equal snapshots of one file, same bytes


def _raise_local(exc: OSError, what: str) -> FsError:
    if exc.errno in _NO_SPACE:
        return FsNoSpace(f"local staging disk is full while {what}")
    return FsIOError(f"local staging I/O failed while {what}: {exc.strerror or exc}")


class StagingArea:
    """The staging directory of one mount: creates, reopens and removes spool files."""

    def __init__(self, cache_dir: Path) -> None:
        self.dir = Path(cache_dir) / "staging"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._dir_synced = False
        self._lock = threading.Lock()

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
        area.mark_dir_dirty()

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
        """Make durable and describe the current content for the journal."""
        with self._lock:
            self.make_durable()
            return Snapshot(self._spool, self._size, self._holes.as_tuple(), self._dirty,
                            self._generation)

    def freeze(self) -> None:
        """The sealed spool belongs to an upload now: the next mutation works on a copy."""
        with self._lock:
            self._frozen = True

    def discard(self) -> None:
        """Close and delete the spool (a broken file, or a never-journaled local-only one)."""
        with self._lock:
            self.close()
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
            raise _raise_local(exc, "writing a staged file") from exc
        self._holes.remove(offset, offset + done)
        self._size = max(self._size, offset + done)
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
        self._spool = name
        self._frozen = False
        self._area.mark_dir_dirty()


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
