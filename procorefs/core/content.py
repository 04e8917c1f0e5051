"""The content cache: file bytes on local disk, keyed by (file id, version id), LRU by bytes.

Layout under ``<cache_dir>/.../content/``: one sparse data file per cached version
(``data/<file id>-<version id>-<nonce>``, as long as the version) and ``index.sqlite`` with one
row per version: its size, a bitmap of the fixed-size blocks that are present, and when it was
last used. Why this and not diskcache: see ``docs/adr/0002-content-cache.md``.

Bytes come in through a ``BlockWriter``: a sink for one run of blocks that the download
streams into, writing the network chunks in place as they come (gathered into one
``pwritev`` per 256 KiB) and marking each block present as soon as its last byte is
written, so a reader waiting for one block of a long range is served without waiting for
the rest, and nothing is held in memory but a few chunks.

Rules it keeps:
- A version's bytes never change, so a block once present is final; a new version is a new
  key and can never serve the old bytes.
- Data is written (``pwrite``) before its block is marked present, so the index never claims
  bytes the file does not hold after a crash of this process; a run that breaks off midway
  leaves exactly its complete blocks present (the partly written block is fetched again).
  A crash of the machine could lose written pages, so the index carries a "clean" flag: set
  only after a clean ``close`` that fsynced what it wrote; at start an unclean cache is
  emptied instead of trusted.
- The bitmap is kept in memory and its sqlite row is written when the version's last pin is
  released and at ``close`` (before the clean flag), not once per block: the rows are only
  ever trusted after a clean close, and every row written is a bitmap of blocks already in
  the file, so a row that lags behind claims less, never more.
- ``budget`` bounds the bytes held; when a write goes over it, whole versions are evicted in
  least-recently-used order, but never a version that is pinned (open, or being prefetched).
  A pinned version may therefore take the cache over budget for as long as it is open; it is
  trimmed back when released.

Bytes go out either as ``bytes`` (``read``) or as an ``Extent`` (``extent``): where present
bytes lie in the entry's open data file, for a caller that copies them itself (the FUSE
adapter lets libfuse splice them to the kernel). An extent is valid for as long as its entry
stays pinned: a pinned entry keeps its descriptor open and is never evicted, and present
blocks never change.

Concurrency: ``_lock`` guards the entries, their bitmaps and the byte count (never held
across network I/O or a data write: a ``BlockWriter`` writes first, then takes it to mark);
``_db_lock`` guards the sqlite connection and is a leaf. Reading a present block needs no
lock: present blocks are immutable and a pinned entry is never evicted. A ``BlockWriter``
belongs to one thread (the one that owns the fetch of its blocks).
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from procorefs.clock import Clock

log = logging.getLogger("procorefs.core")

BLOCK_SIZE = 1 << 20
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines
# Windows has no pwritev (nor pwrite): its writes go one by one under the entry's lock.
_HAVE_PWRITEV = sys.platform != "win32" and hasattr(os, "pwritev")
_MAX_IOV = 256  # chunks gathered at most per pwritev (Linux allows 1024)
# Bytes gathered per write. Not a whole block: ext4 sizes a new page-cache folio by the
# write, and on a machine whose memory is fragmented (a big page cache) 1 MiB folios cost
# direct compaction; 256 KiB measured best (cold read 365 MB/s, against 290 at 1 MiB and
# 340 at 64 KiB, in the same runs).
_GATHER = 256 << 10

# An index row: file id, version id, size, block size, nonce, bitmap, last used.
_Row = tuple[int, int, int, int, str, bytes, float]


class Extent(NamedTuple):
    """``length`` present bytes of a cached version at ``offset`` of its data file ``fd``.

    ``fd`` belongs to the entry (never close it) and stays open while the entry is pinned.
    A plain ``(fd, offset, length)`` tuple to whoever does not import this module."""

    fd: int
    offset: int
    length: int


@dataclass(eq=False)
class CacheEntry:
    """One cached version. ``pins`` > 0 keeps it from eviction; ``fd`` is open while pinned."""

    file_id: int
    version_id: int
    size: int
    nonce: str
    bitmap: bytearray
    last_used: float
    pins: int = 0
    fd: int | None = None
    present: int = 0  # bytes present
    written: bool = False  # written to in this session (fsync before the clean close)
    dirty: bool = False  # its sqlite row lags behind the bitmap or last_used
    path: Path = field(default_factory=Path)
    io_lock: threading.Lock = field(default_factory=threading.Lock)  # Windows only: seek+io

    @property
    def key(self) -> tuple[int, int]:
        return (self.file_id, self.version_id)


def _blocks(size: int, block_size: int) -> int:
    return (size + block_size - 1) // block_size


def _pwrite(entry: CacheEntry, fd: int, data: bytes | memoryview, offset: int) -> int:
    if sys.platform == "win32":  # no pwrite: seek and write under the entry's lock
        with entry.io_lock:
            os.lseek(fd, offset, os.SEEK_SET)
            return os.write(fd, data)
    return os.pwrite(fd, data, offset)


def _pread(entry: CacheEntry, fd: int, size: int, offset: int) -> bytes:
    if sys.platform == "win32":
        with entry.io_lock:
            os.lseek(fd, offset, os.SEEK_SET)
            return os.read(fd, size)
    return os.pread(fd, size, offset)


class BlockStore:
    def __init__(self, root: Path, budget: int, clock: Clock, *,
                 block_size: int = BLOCK_SIZE) -> None:
        self.block_size = block_size
        self.budget = budget
        self._clock = clock
        self._root = root
        self._data = root / "data"
        self._data.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._entries: dict[tuple[int, int], CacheEntry] = {}
        self._used = 0
        self._db = self._open_index(root / "index.sqlite")
        self._load()

    # ----------------------------------------------------------------- index

    def _open_index(self, path: Path) -> sqlite3.Connection:
        try:
            return self._connect(path)
        except sqlite3.DatabaseError:
            log.info("the content cache index is unreadable; emptying the content cache")
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            return self._connect(path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript("""
                CREATE TABLE IF NOT EXISTS entries (
                    file_id INTEGER NOT NULL, version_id INTEGER NOT NULL,
                    size INTEGER NOT NULL, block_size INTEGER NOT NULL, nonce TEXT NOT NULL,
                    bitmap BLOB NOT NULL, last_used REAL NOT NULL,
                    PRIMARY KEY (file_id, version_id));
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """)
        except BaseException:
            db.close()
            raise
        path.chmod(0o600)
        return db

    def _load(self) -> None:
        with self._db_lock:
            clean = self._db.execute("SELECT value FROM meta WHERE key='clean'").fetchone()
            rows = self._db.execute(
                "SELECT file_id, version_id, size, block_size, nonce, bitmap, last_used "
                "FROM entries").fetchall()
        known: set[str] = set()
        if clean is not None and clean[0] == "1":
            for file_id, version_id, size, bsize, nonce, bitmap, last_used in rows:
                entry = CacheEntry(int(file_id), int(version_id), int(size), str(nonce),
                                   bytearray(bitmap), float(last_used))
                entry.path = self._path_of(entry)
                if bsize != self.block_size or len(entry.bitmap) != self._bitmap_len(size) \
                        or not entry.path.exists():
                    self._delete_row(entry)
                    continue
                entry.present = self._count_present(entry)
                self._entries[entry.key] = entry
                self._used += entry.present
                known.add(entry.path.name)
        elif rows:
            log.info("the content cache was not closed cleanly; emptying it")
            with self._db_lock:
                self._db.execute("DELETE FROM entries")
        for stray in self._data.iterdir():
            if stray.name not in known:
                stray.unlink(missing_ok=True)
        with self._db_lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '0')")

    def _path_of(self, entry: CacheEntry) -> Path:
        return self._data / f"{entry.file_id}-{entry.version_id}-{entry.nonce}"

    def _bitmap_len(self, size: int) -> int:
        return (_blocks(size, self.block_size) + 7) // 8

    def _count_present(self, entry: CacheEntry) -> int:
        total = 0
        for block in range(_blocks(entry.size, self.block_size)):
            if entry.bitmap[block >> 3] & (1 << (block & 7)):
                total += self._block_bytes(entry, block)
        return total

    def _block_bytes(self, entry: CacheEntry, block: int) -> int:
        return min(self.block_size, entry.size - block * self.block_size)

    def _row(self, entry: CacheEntry) -> _Row:
        """The row of an entry as it is now (caller holds ``_lock``)."""
        entry.dirty = False
        return (entry.file_id, entry.version_id, entry.size, self.block_size, entry.nonce,
                bytes(entry.bitmap), entry.last_used)

    def _save_rows(self, rows: list[_Row]) -> None:
        if not rows:
            return
        with self._db_lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _delete_row(self, entry: CacheEntry) -> None:
        with self._db_lock:
            self._db.execute("DELETE FROM entries WHERE file_id=? AND version_id=?",
                             (entry.file_id, entry.version_id))

    # --------------------------------------------------------------- entries

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    def pin(self, file_id: int, version_id: int, size: int) -> CacheEntry:
        """The entry for a version, created empty if new, pinned until ``unpin``."""
        with self._lock:
            entry = self._entries.get((file_id, version_id))
            if entry is None or entry.size != size:
                if entry is not None:  # a size that disagrees with the cache: start over
                    self._forget(entry)
                entry = CacheEntry(file_id, version_id, size, secrets.token_hex(4),
                                   bytearray(self._bitmap_len(size)), self._clock.time())
                entry.path = self._path_of(entry)
                self._entries[entry.key] = entry
                new = True
            else:
                new = False
            entry.pins += 1
            entry.last_used = self._clock.time()
            entry.dirty = True  # its row is written when the last pin goes (or at close)
            if entry.fd is None:
                fd = os.open(entry.path, os.O_RDWR | os.O_CREAT | _O_BINARY, 0o600)
                if new:
                    os.ftruncate(fd, size)
                entry.fd = fd
        return entry

    def repin(self, entry: CacheEntry) -> None:
        """One more pin on an entry that is already pinned (a prefetch in flight, say)."""
        with self._lock:
            assert entry.pins > 0
            entry.pins += 1

    def unpin(self, entry: CacheEntry) -> None:
        victims: list[CacheEntry] = []
        rows: list[_Row] = []
        with self._lock:
            entry.pins -= 1
            entry.last_used = self._clock.time()
            entry.dirty = True
            if entry.pins == 0:
                if entry.fd is not None:
                    os.close(entry.fd)
                    entry.fd = None
                victims = self._over_budget()
                # The last user is gone: write the row once for everything since the pin
                # (a prefetch releasing its pin while the file stays open writes nothing).
                if self._entries.get(entry.key) is entry:
                    rows.append(self._row(entry))
        self._save_rows(rows)
        self._remove_files(victims)

    def has(self, entry: CacheEntry, block: int) -> bool:
        return bool(entry.bitmap[block >> 3] & (1 << (block & 7)))

    def missing(self, entry: CacheEntry, first: int, last: int) -> list[int]:
        with self._lock:
            return [b for b in range(first, last + 1) if not self.has(entry, b)]

    def complete(self, entry: CacheEntry) -> bool:
        with self._lock:
            return entry.present == entry.size

    def writer(self, entry: CacheEntry, first_block: int, last_block: int, *,
               on_present: Callable[[int, int], object] | None = None) -> BlockWriter:
        """A sink for the bytes of blocks ``first_block``..``last_block``, in order.

        ``on_present(first, last)`` is called (outside the locks) each time blocks become
        present, as their last byte is written."""
        assert entry.fd is not None and entry.pins > 0, "write to an entry that is not pinned"
        return BlockWriter(self, entry, first_block, last_block, on_present)

    def write(self, entry: CacheEntry, first_block: int, data: bytes) -> None:
        """Store ``data`` starting at ``first_block``; it must end on a block edge or at EOF."""
        offset = first_block * self.block_size
        end = offset + len(data)
        if end != entry.size and len(data) % self.block_size:
            raise ValueError("a cache write must end on a block boundary or at end of file")
        if not data:
            return
        sink = self.writer(entry, first_block, _blocks(end, self.block_size) - 1)
        view = memoryview(data)
        for start in range(0, len(data), 8 << 20):
            sink.write(view[start:start + (8 << 20)])

    def _mark(self, entry: CacheEntry, first: int, last: int) -> None:
        """Blocks ``first``..``last`` are in the file now: mark them present."""
        with self._lock:
            for block in range(first, last + 1):
                if not self.has(entry, block):
                    entry.bitmap[block >> 3] |= 1 << (block & 7)
                    bytes_ = self._block_bytes(entry, block)
                    entry.present += bytes_
                    if entry.key in self._entries:
                        self._used += bytes_
            entry.written = entry.dirty = True
            victims = self._over_budget()
        self._remove_files(victims)

    def read(self, entry: CacheEntry, offset: int, size: int) -> bytes:
        """Bytes of present blocks (the caller made sure they are present)."""
        fd = entry.fd
        assert fd is not None, "read from an entry that is not pinned"
        size = max(0, min(size, entry.size - offset))
        chunks: list[bytes] = []
        done = 0
        while done < size:
            chunk = _pread(entry, fd, size - done, offset + done)
            if not chunk:
                break
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)

    def extent(self, entry: CacheEntry, offset: int, size: int) -> Extent:
        """Where ``read`` would read (the caller made sure the blocks are present), for a
        caller that reads the file itself while it holds a pin on the entry."""
        fd = entry.fd
        assert fd is not None, "read from an entry that is not pinned"
        return Extent(fd, offset, max(0, min(size, entry.size - offset)))

    def drop_versions(self, file_id: int, keep: int | None = None) -> None:
        """Evict the unpinned versions of a file (all, or all but ``keep``)."""
        with self._lock:
            victims = [e for e in self._entries.values()
                       if e.file_id == file_id and e.version_id != keep and e.pins == 0]
            for entry in victims:
                self._forget(entry)
        self._remove_files(victims)

    # -------------------------------------------------------------- eviction

    def _forget(self, entry: CacheEntry) -> None:
        """Remove from the index in memory (caller holds ``_lock``); files go later."""
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
            self._used -= entry.present

    def _over_budget(self) -> list[CacheEntry]:
        if self._used <= self.budget:
            return []
        victims: list[CacheEntry] = []
        for entry in sorted(self._entries.values(), key=lambda e: e.last_used):
            if self._used <= self.budget:
                break
            if entry.pins == 0:
                self._forget(entry)
                victims.append(entry)
        return victims

    def _remove_files(self, victims: list[CacheEntry]) -> None:
        for entry in victims:
            self._delete_row(entry)
            entry.path.unlink(missing_ok=True)
            log.debug("evicted file %d version %d from the content cache",
                      entry.file_id, entry.version_id)

    def close(self) -> None:
        """Make what was written durable, write the rows that lag behind, then mark the
        cache clean for the next start."""
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            if entry.written and entry.path.exists():
                fd = os.open(entry.path, os.O_RDWR | _O_BINARY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            if entry.fd is not None:
                os.close(entry.fd)
                entry.fd = None
        with self._lock:
            rows = [self._row(e) for e in entries
                    if e.dirty and self._entries.get(e.key) is e]
        self._save_rows(rows)
        with self._db_lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '1')")
            self._db.close()


class BlockWriter:
    """Streams the bytes of one run of blocks into an entry's data file, in order.

    Network chunks are gathered up to ``_GATHER`` bytes or the end of a block, then written
    with one ``pwritev`` (no copy in Python, a quarter of the system calls and GIL hand-offs
    of a write per 64 KiB chunk), and the blocks now whole are marked present at once. A run
    that stops early (a broken download) leaves its complete blocks present and the partial
    one not: it is fetched again whole. Gathered chunks are held until written, so they
    must not change: pass ``bytes``."""

    def __init__(self, store: BlockStore, entry: CacheEntry, first_block: int,
                 last_block: int, on_present: Callable[[int, int], object] | None) -> None:
        bs = store.block_size
        self._store = store
        self._entry = entry
        self._bs = bs
        self.start = first_block * bs
        self.end = min(entry.size, (last_block + 1) * bs)
        self.position = self.start  # bytes before this are in the file
        self._pending: list[bytes | memoryview] = []
        self._pending_bytes = 0
        self._unmarked = first_block  # the first block of the run not yet marked present
        self._on_present = on_present

    @property
    def complete(self) -> bool:
        return self.position == self.end

    @property
    def received(self) -> int:
        """Bytes handed to ``write`` so far (written or about to be)."""
        return self.position + self._pending_bytes - self.start

    def write(self, data: bytes | memoryview, /) -> None:
        n = len(data)
        reached = self.position + self._pending_bytes + n
        if reached > self.end:
            raise ValueError(f"{n} bytes at {reached - n} run past the end of the blocks "
                             f"asked for ({self.end})")
        if not n:
            return
        self._pending.append(data)
        self._pending_bytes += n
        if self._pending_bytes >= _GATHER or reached // self._bs > self.position // self._bs \
                or reached == self.end or len(self._pending) >= _MAX_IOV:
            self._flush()

    def _flush(self) -> None:
        entry, fd = self._entry, self._entry.fd
        assert fd is not None, "write to an entry that is not pinned"
        chunks, total = self._pending, self._pending_bytes
        self._pending, self._pending_bytes = [], 0
        data: bytes | memoryview
        if sys.platform != "win32" and _HAVE_PWRITEV and len(chunks) > 1:
            done = os.pwritev(fd, chunks, self.position)
            data = b"".join(chunks) if done < total else b""
        else:
            done = 0
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if done < total:  # a short write (rare on a local file): go on from where it stopped
            view = memoryview(data)
            while done < total:
                done += _pwrite(entry, fd, view[done:], self.position + done)
        self.position += total
        # Blocks now whole: those ending at or before the position (the last one at EOF).
        through = self.position // self._bs - 1 if self.position < entry.size \
            else (entry.size - 1) // self._bs
        if through >= self._unmarked:
            first, self._unmarked = self._unmarked, through + 1
            self._store._mark(entry, first, through)
            if self._on_present is not None:
                self._on_present(first, through)
