"""The on-disk copy of the metadata cache: ``<cache_dir>/.../metadata.sqlite``.

It lets a restarted mount answer at once, and offline, from what it saw last. It holds folder
listings (as JSON) and a few named values (scope roots, companies and projects, the poller's
watermarks, the signed-in user's id). Writes come in batches from ``MetadataCache.flush`` in
one transaction, so the poller's watermark is never on disk ahead of the listings it vouches
for. It is a cache: a database that cannot be opened or read is thrown away and recreated.

Only ``_lock`` guards the connection; it is a leaf lock (nothing else is taken under it).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("procorefs.core")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS listings (
    scope TEXT NOT NULL, folder_id INTEGER NOT NULL, fetched_wall REAL NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (scope, folder_id));
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, data TEXT NOT NULL);
"""
_FORMAT = "1"


class MetadataStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError:
            log.info("the saved metadata at %s is unreadable; starting afresh", path)
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT data FROM kv WHERE key='format'").fetchone()
            if row is None:
                db.execute("INSERT INTO kv VALUES ('format', ?)", (json.dumps(_FORMAT),))
            elif json.loads(row[0]) != _FORMAT:
                db.execute("DELETE FROM listings")
                db.execute("DELETE FROM kv")
                db.execute("INSERT INTO kv VALUES ('format', ?)", (json.dumps(_FORMAT),))
        except BaseException:
            db.close()
            raise
        self._path.chmod(0o600)
        return db

    def load_listings(self) -> list[tuple[str, int, float, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT scope, folder_id, fetched_wall, data FROM listings").fetchall()
        out = []
        for scope, folder_id, wall, data in rows:
            try:
                out.append((str(scope), int(folder_id), float(wall), json.loads(data)))
            except (ValueError, TypeError):
                continue
        return out

    def load_values(self) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT key, data FROM kv").fetchall()
        out: dict[str, Any] = {}
        for key, data in rows:
            try:
                out[str(key)] = json.loads(data)
            except ValueError:
                continue
        return out

    def write(self, listings: Iterable[tuple[str, int, float, Any]],
              dropped: Iterable[tuple[str, int]], values: dict[str, Any]) -> None:
        """Upsert ``listings``, delete ``dropped``, set ``values``, all in one transaction."""
        rows = [(s, f, w, json.dumps(d, separators=(",", ":"))) for s, f, w, d in listings]
        kv = [(k, json.dumps(v, separators=(",", ":"))) for k, v in values.items()]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO listings VALUES (?, ?, ?, ?)", rows)
                self._db.executemany(
                    "DELETE FROM listings WHERE scope=? AND folder_id=?", list(dropped))
                self._db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", kv)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def clear_listings(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM listings")

    def close(self) -> None:
        with self._lock:
            self._db.close()
