"""The content cache: file bytes on local disk, keyed by (file id, version id), LRU by bytes.

Layout under ``<cache_dir>/.../content/``: one sparse data file per cached version
(``data/<file id>-<version id>-<nonce>``, as long as the version) and ``index.sqlite`` with one
row per version: its size, a bitmap of the fixed-size blocks that are present, and when it was
last used. Why this and not diskcache: see ``docs/adr/0002-content-cache.md``.

Rules it keeps:
- A version's bytes never change, so a block once present is final; a new version is a new
  key and can never serve the old bytes.
- Data is written (``pwrite``) before its block is marked present, so the index never claims
  bytes the file does not hold after a crash of this process. A crash of the machine could
  lose written pages, so the index carries a "clean" flag: set only after a clean ``close``
  that fsynced what it wrote; at start an unclean cache is emptied instead of trusted.
- ``budget`` bounds the bytes held; when a write goes over it, whole versions are evicted in
  least-recently-used order, but never a version that is pinned (open, or being prefetched).
  A pinned version may therefore take the cache over budget for as long as it is open; it is
  trimmed back when released.

Concurrency: ``_lock`` guards the entries, their bitmaps and the byte count (never held
across network I/O; the caller fetches first, then calls ``write``); ``_db_lock`` guards the
sqlite connection and is a leaf. Reading a present block needs no lock: present blocks are
immutable and a pinned entry is never evicted.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from procorefs.clock import Clock

log = logging.getLogger("procorefs.core")

BLOCK_SIZE = 1 << 20
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines


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
    path: Path = field(default_factory=Path)
    io_lock: threading.Lock = field(default_factory=threading.Lock)  # Windows only: seek+io

    @property
    def key(self) -> tuple[int, int]:
        return (self.file_id, self.version_id)


def _blocks(size: int, block_size: int) -> int:
    return (size + block_size - 1) // block_size


def _pwrite(entry: CacheEntry, fd: int, data: bytes, offset: int) -> int:
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

    def _save_row(self, entry: CacheEntry) -> None:
        with self._db_lock:
            self._db.execute(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (entry.file_id, entry.version_id, entry.size, self.block_size, entry.nonce,
                 bytes(entry.bitmap), entry.last_used))

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
            if entry.fd is None:
                fd = os.open(entry.path, os.O_RDWR | os.O_CREAT | _O_BINARY, 0o600)
                if new:
                    os.ftruncate(fd, size)
                entry.fd = fd
        if new:
            self._save_row(entry)
        return entry

    def repin(self, entry: CacheEntry) -> None:
        """One more pin on an entry that is already pinned (a prefetch in flight, say)."""
        with self._lock:
            assert entry.pins > 0
            entry.pins += 1

    def unpin(self, entry: CacheEntry) -> None:
        victims: list[CacheEntry] = []
        with self._lock:
            entry.pins -= 1
            entry.last_used = self._clock.time()
            if entry.pins == 0:
                if entry.fd is not None:
                    os.close(entry.fd)
                    entry.fd = None
                victims = self._over_budget()
            persist = entry.key in self._entries
        if persist:
            self._save_row(entry)
        self._remove_files(victims)

    def has(self, entry: CacheEntry, block: int) -> bool:
        return bool(entry.bitmap[block >> 3] & (1 << (block & 7)))

    def missing(self, entry: CacheEntry, first: int, last: int) -> list[int]:
        with self._lock:
            return [b for b in range(first, last + 1) if not self.has(entry, b)]

    def complete(self, entry: CacheEntry) -> bool:
        with self._lock:
            return entry.present == entry.size

    def write(self, entry: CacheEntry, first_block: int, data: bytes) -> None:
        """Store ``data`` starting at ``first_block``; it must end on a block edge or at EOF."""
        offset = first_block * self.block_size
        end = offset + len(data)
        if end != entry.size and len(data) % self.block_size:
            raise ValueError("a cache write must end on a block boundary or at end of file")
        fd = entry.fd
        assert fd is not None and entry.pins > 0, "write to an entry that is not pinned"
        done = 0
        while done < len(data):
            done += _pwrite(entry, fd, data[done:done + (8 << 20)], offset + done)
        last = _blocks(end, self.block_size) - 1
        with self._lock:
            for block in range(first_block, last + 1):
                if not self.has(entry, block):
                    entry.bitmap[block >> 3] |= 1 << (block & 7)
                    bytes_ = self._block_bytes(entry, block)
                    entry.present += bytes_
                    if entry.key in self._entries:
                        self._used += bytes_
            entry.written = True
            victims = self._over_budget()
            persist = entry.key in self._entries
        if persist:
            self._save_row(entry)
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
        """Make what was written durable, then mark the cache clean for the next start."""
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
        with self._db_lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '1')")
            self._db.close()
