"""The durable journal of pending commits and deferred deletes (SQLite, WAL, synchronous=FULL).

This module owns ``<cache_dir>/journal.sqlite3`` (and its lock file). One *entry* per sealed
staged file says what it is and where its commit stands; one *delete* per remote file whose
Procore DELETE waits out the save-pattern grace period. Every write is one SQLite transaction
committed with ``synchronous=FULL`` in WAL mode: when a method returns, the change survives a
crash or a power cut (docs/adr/0003-write-path.md says why SQLite and not an append-only log).

Entry life cycle (``state``)::

    open -- a journaled file reopened for writing in place; not committable until sealed again
    waiting -- sealed at close; due at ``not_before`` (debounce, then backoff after failures);
        a large file's ``upload_state`` may already be there: its upload is made during the
        debounce, and only the create/version call waits for it
    uploading -- claimed by a worker; ``upload_state`` holds the client's resumable UploadState
    uploaded -- the upload is complete (``upload_uuid``); the create/version call is next
    committed -- Procore confirmed (``result_*``); the spool may go, then the row is deleted
    failed -- gave up until ``retry_failed`` (``failure`` says why)

What is known of the spool's hashes travels with the entry: ``digests`` (``staging.Digests``
as JSON: per upload part and of the whole, with the spool's modification time when they were
taken; trusted only while that time is unchanged) and ``sha256`` (set by the commit worker
once it verified or computed it). NULL means "not known": the commit computes it.

A ``key`` (the caller's tag, normally the local path) is stored for status and logs only.

Only ``core/commits.py`` writes entries once they are added; the core adds them through
``CommitQueue.stage``. The journal is owned by one process at a time: ``open`` takes an
exclusive file lock and raises ``FsBusy`` when another mount holds the same cache directory.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import filelock

from procorefs.clock import Clock, SystemClock
from procorefs.errors import FsBusy, FsError, FsIOError, FsNoSpace

JOURNAL_NAME = "journal.sqlite3"

STATES = ("open", "waiting", "uploading", "uploaded", "committed", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id INTEGER NOT NULL,
    project_id INTEGER,
    parent_id INTEGER,
    name TEXT NOT NULL,
    key TEXT NOT NULL DEFAULT '',
    file_id INTEGER,
    base_version_id INTEGER,
    base_version_number INTEGER,
    base_size INTEGER,
    base_sha256 TEXT,
    after_id INTEGER,
    spool TEXT NOT NULL,
    size INTEGER NOT NULL,
    holes TEXT NOT NULL DEFAULT '[]',
    dirty INTEGER NOT NULL DEFAULT 1,
    sha256 TEXT,
    digests TEXT,
    state TEXT NOT NULL,
    upload_state TEXT,
    upload_uuid TEXT,
    upload_started REAL,
    result_file_id INTEGER,
    result_version_id INTEGER,
    result_version_number INTEGER,
    result_name TEXT,
    outcome TEXT,
    failure TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deletes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id INTEGER NOT NULL,
    project_id INTEGER,
    file_id INTEGER NOT NULL,
    parent_id INTEGER,
    name TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL DEFAULT '',
    version_id INTEGER,
    version_number INTEGER,
    size INTEGER NOT NULL DEFAULT 0,
    due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    failure TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

SCHEMA_VERSION = "1"

# Columns added since a journal could first be written: (name, SQL type). An older journal
# gets them at open (NULL in existing rows, which means "not known").
_ADDED_COLUMNS = (("digests", "TEXT"),)


@dataclass(frozen=True, slots=True)
class Target:
    """Where the bytes go in Procore: scope, parent folder and (Procore) name."""

    company_id: int
    project_id: int | None
    parent_id: int | None
    name: str


@dataclass(frozen=True, slots=True)
class Base:
    """The remote version a staged file derives from (None in an entry: a new file)."""

    file_id: int
    version_id: int | None
    version_number: int | None
    size: int
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    company_id: int
    project_id: int | None
    parent_id: int | None
    name: str
    key: str
    file_id: int | None
    base_version_id: int | None
    base_version_number: int | None
    base_size: int | None
    base_sha256: str | None
    after_id: int | None
    spool: str
    size: int
    holes: str
    dirty: int
    sha256: str | None
    digests: str | None             # staging.Digests as JSON: the hashes known of the spool
    state: str
    upload_state: str | None
    upload_uuid: str | None
    upload_started: float | None
    result_file_id: int | None
    result_version_id: int | None
    result_version_number: int | None
    result_name: str | None
    outcome: str | None
    failure: str | None
    attempts: int
    not_before: float
    cancelled: int
    created_at: float
    updated_at: float

    @property
    def target(self) -> Target:
        return Target(self.company_id, self.project_id, self.parent_id, self.name)

    @property
    def base(self) -> Base | None:
        if self.file_id is None:
            return None
        return Base(self.file_id, self.base_version_id, self.base_version_number,
                    self.base_size or 0, self.base_sha256)

    def hole_ranges(self) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in json.loads(self.holes)]


@dataclass(frozen=True, slots=True)
class PendingDelete:
    id: int
    company_id: int
    project_id: int | None
    file_id: int
    parent_id: int | None
    name: str
    key: str
    version_id: int | None
    version_number: int | None
    size: int
    due_at: float
    attempts: int
    failure: str | None
    created_at: float


_ENTRY_COLUMNS = tuple(f.name for f in fields(Entry))
_DELETE_COLUMNS = tuple(f.name for f in fields(PendingDelete))
_MUTABLE = frozenset(_ENTRY_COLUMNS) - {"id", "created_at"}


class Journal:
    """Thread-safe; every method is one durable transaction. Use ``Journal.open``."""

    def __init__(self, conn: sqlite3.Connection, lock: filelock.BaseFileLock, path: Path,
                 clock: Clock) -> None:
        self._conn = conn
        self._file_lock = lock
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def open(cls, cache_dir: Path, *, clock: Clock | None = None) -> Journal:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = cache_dir / JOURNAL_NAME
        lock = filelock.FileLock(str(path) + ".lock")
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise FsBusy(f"{cache_dir} is used by another running mount") from None
        try:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            have = {row[1] for row in conn.execute("PRAGMA table_info(entries)")}
            for column, kind in _ADDED_COLUMNS:
                if column not in have:
                    conn.execute(f"ALTER TABLE entries ADD COLUMN {column} {kind}")
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?)",
                         (SCHEMA_VERSION,))
            path.chmod(0o600)
        except sqlite3.Error as exc:
            lock.release()
            raise FsIOError(f"cannot open the write journal {path}: {exc}") from exc
        return cls(conn, lock, path, clock or SystemClock())

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._file_lock.release()

    # -- entries --------------------------------------------------------------------------

    def add(self, target: Target, *, spool: str, size: int, holes: Sequence[tuple[int, int]],
            dirty: bool, base: Base | None, after_id: int | None = None, key: str = "",
            not_before: float = 0.0, state: str = "waiting",
            digests: str | None = None) -> int:
        now = self._clock.time()
        values: dict[str, Any] = {
            "company_id": target.company_id, "project_id": target.project_id,
            "parent_id": target.parent_id, "name": target.name, "key": key,
            "file_id": base.file_id if base else None,
            "base_version_id": base.version_id if base else None,
            "base_version_number": base.version_number if base else None,
            "base_size": base.size if base else None,
            "base_sha256": base.sha256 if base else None,
            "after_id": after_id, "spool": spool, "size": size,
            "holes": json.dumps([list(h) for h in holes]), "dirty": int(dirty),
            "digests": digests, "state": state, "not_before": not_before, "created_at": now,
            "updated_at": now,
        }
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self._write(f"INSERT INTO entries({cols}) VALUES({marks})",
                          tuple(values.values()))
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def get(self, entry_id: int) -> Entry | None:
        rows = self._read(f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM entries WHERE id = ?",
                          (entry_id,))
        return Entry(*rows[0]) if rows else None

    def entries(self, states: Iterable[str] | None = None) -> list[Entry]:
        sql = f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM entries"
        args: tuple[Any, ...] = ()
        if states is not None:
            wanted = tuple(states)
            sql += f" WHERE state IN ({', '.join('?' for _ in wanted)})"
            args = wanted
        return [Entry(*row) for row in self._read(sql + " ORDER BY id", args)]

    def update(self, entry_id: int, **changes: Any) -> None:
        """Change some columns of one entry (``updated_at`` is set too)."""
        bad = set(changes) - _MUTABLE
        if bad:
            raise ValueError(f"not journal columns: {sorted(bad)}")
        changes["updated_at"] = self._clock.time()
        if "holes" in changes and not isinstance(changes["holes"], str):
            changes["holes"] = json.dumps([list(h) for h in changes["holes"]])
        sets = ", ".join(f"{k} = ?" for k in changes)
        self._write(f"UPDATE entries SET {sets} WHERE id = ?",
                    (*changes.values(), entry_id))

    def update_if(self, entry_id: int, states: Iterable[str], **changes: Any) -> bool:
        """``update`` only while the entry is in one of ``states``; True when it was."""
        wanted = tuple(states)
        changes["updated_at"] = self._clock.time()
        bad = set(changes) - _MUTABLE
        if bad:
            raise ValueError(f"not journal columns: {sorted(bad)}")
        if "holes" in changes and not isinstance(changes["holes"], str):
            changes["holes"] = json.dumps([list(h) for h in changes["holes"]])
        sets = ", ".join(f"{k} = ?" for k in changes)
        marks = ", ".join("?" for _ in wanted)
        cur = self._write(
            f"UPDATE entries SET {sets} WHERE id = ? AND state IN ({marks})",
            (*changes.values(), entry_id, *wanted))
        return cur.rowcount == 1

    def remove(self, entry_id: int) -> None:
        self._write("DELETE FROM entries WHERE id = ?", (entry_id,))

    def spool_names(self) -> set[str]:
        return {row[0] for row in self._read("SELECT spool FROM entries", ())}

    # -- deferred deletes -----------------------------------------------------------------

    def add_delete(self, company_id: int, project_id: int | None, file_id: int, *,
                   due_at: float, parent_id: int | None = None, name: str = "",
                   key: str = "", version_id: int | None = None,
                   version_number: int | None = None, size: int = 0) -> int:
        cur = self._write(
            "INSERT INTO deletes(company_id, project_id, file_id, parent_id, name, key, "
            "version_id, version_number, size, due_at, created_at) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (company_id, project_id, file_id, parent_id, name, key, version_id,
             version_number, size, due_at, self._clock.time()))
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def deletes(self) -> list[PendingDelete]:
        rows = self._read(f"SELECT {', '.join(_DELETE_COLUMNS)} FROM deletes ORDER BY due_at, id",
                          ())
        return [PendingDelete(*row) for row in rows]

    def get_delete(self, delete_id: int) -> PendingDelete | None:
        rows = self._read(f"SELECT {', '.join(_DELETE_COLUMNS)} FROM deletes WHERE id = ?",
                          (delete_id,))
        return PendingDelete(*rows[0]) if rows else None

    def update_delete(self, delete_id: int, *, due_at: float, attempts: int,
                      failure: str | None) -> None:
        self._write("UPDATE deletes SET due_at = ?, attempts = ?, failure = ? WHERE id = ?",
                    (due_at, attempts, failure, delete_id))

    def remove_delete(self, delete_id: int) -> bool:
        return self._write("DELETE FROM deletes WHERE id = ?", (delete_id,)).rowcount == 1

    # -- plumbing -------------------------------------------------------------------------

    def _write(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    cur = self._conn.execute(sql, args)
                    self._conn.execute("COMMIT")
                except BaseException:
                    # A COMMIT that failed (disk full) leaves the transaction open.
                    if self._conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    raise
                return cur
            except sqlite3.DatabaseError as exc:
                raise _journal_error(exc) from exc

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, args).fetchall())
            except sqlite3.OperationalError as exc:
                raise FsIOError(f"write journal failed: {exc}") from exc


def _journal_error(exc: sqlite3.Error) -> FsError:
    # SQLite reports a full disk as SQLITE_FULL, "database or disk is full".
    if getattr(exc, "sqlite_errorcode", None) == 13 or "full" in str(exc):
        return FsNoSpace(f"the write journal cannot grow: the local disk is full ({exc})")
    return FsIOError(f"write journal failed: {exc}")
