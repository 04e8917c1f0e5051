"""Keyring backends for tests: the user's real keyring is never touched.

``MemoryKeyring`` for one process; ``FileKeyring`` (a JSON file guarded by a file lock) when
several processes must share one token store, as in the concurrent-refresh test. Install one
with ``keyring.set_keyring``; the ``keyring_memory`` / ``keyring_file`` fixtures in
``tests/api/conftest.py`` do so and restore the previous backend afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import filelock
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.data.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self, path: Path | str | None = None) -> None:
        super().__init__()
        self.path = Path(path) if path is not None else Path("keyring.json")
        self._lock = filelock.FileLock(str(self.path) + ".lock")

    def _read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def _write(self, data: dict[str, str]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            return self._read().get(f"{service}\x00{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            data = self._read()
            data[f"{service}\x00{username}"] = password
            self._write(data)

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            data = self._read()
            if data.pop(f"{service}\x00{username}", None) is None:
                raise PasswordDeleteError(username)
            self._write(data)
