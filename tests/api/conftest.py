"""Fixtures for the API tier: the client against the emulator over loopback.

Every test here gets a file-backed keyring of its own (the user's real keyring is never
touched) and isolated config/cache/state directories. ``connect`` builds a ``ProcoreClient``
signed in as a seeded user through the emulator's control API (no browser dance), with the
tokens in that keyring, exactly as ``procorefs login`` leaves them.

``EmulatorClock`` is a ``Clock`` whose ``sleep`` advances the emulator's clock instead of
waiting: rate-limit windows and Retry-After delays then pass in no real time, so a test of
pacing takes milliseconds and every wait the client decides on is visible in the emulator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import pytest

from procorefs.api import ProcoreClient, Scope
from procorefs.api.tokens import KeyringTokenStore, TokenSet
from procorefs.clock import Clock, SystemClock
from procorefs.config import Settings
from tests.api.keyrings import FileKeyring
from tests.support.emulator import Emulator

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def file_keyring(tmp_path: Path) -> Iterator[FileKeyring]:
    previous = keyring.get_keyring()
    backend = FileKeyring(tmp_path / "keyring.json")
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


class EmulatorClock:
    """Our time is the emulator's time; sleeping moves the emulator's clock forward."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._lock = threading.Lock()
        self.offset = float(emulator.control("GET", "clock").json()["offset"])
        self.slept: list[float] = []

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self.slept.append(seconds)
            self._emulator.advance_clock(seconds)
            self.offset += seconds

    def advance(self, seconds: float) -> None:
        """The world moves on without us sleeping (e.g. a token expires)."""
        with self._lock:
            self._emulator.advance_clock(seconds)
            self.offset += seconds


@dataclass
class World:
    emulator: Emulator
    info: dict[str, Any]
    company_id: int
    project_id: int
    project_root: int
    company_root: int
    client_id: str
    client_secret: str
    tmp_path: Path

    @property
    def project(self) -> Scope:
        return Scope(self.company_id, self.project_id)

    @property
    def company(self) -> Scope:
        return Scope(self.company_id)

    def settings(self, **kw: Any) -> Settings:
        base: dict[str, Any] = {
            "environment": "custom", "api_url": self.emulator.api_url,
            "login_url": self.emulator.api_url, "client_id": self.client_id,
            "client_secret": self.client_secret, "company_id": self.company_id,
            "config_dir": self.tmp_path / "config", "cache_dir": self.tmp_path / "cache",
            "state_dir": self.tmp_path / "state", "max_retries": 6}
        base.update(kw)
        return Settings(**base)

    def sign_in(self, settings: Settings, login: str | None = None, ttl: int | None = None,
                expires_at: float | None = None) -> TokenSet:
        """Store a token pair for ``login`` (the demo user by default) in the keyring."""
        grant = self.emulator.token(login, ttl)
        token = TokenSet.from_grant(grant, now=time.time(), grant="authorization_code",
                                    client_id=self.client_id, client_secret=self.client_secret)
        if expires_at is not None:
            token = TokenSet(**{**token.__dict__, "expires_at": expires_at})
        account = login or self.demo_login
        token = token.with_account(account)
        KeyringTokenStore(settings.token_namespace).save(token)
        return token

    @property
    def demo_login(self) -> str:
        demo = self.info["demo_user_id"]
        return str(next(u["login"] for u in self.info["users"] if u["id"] == demo))

    def connect(self, *, clock: Clock | None = None, login: str | None = None,
                **settings_kw: Any) -> ProcoreClient:
        settings = self.settings(**settings_kw)
        self.sign_in(settings, login)
        return ProcoreClient.from_settings(settings, clock=clock or SystemClock())


def _world(emulator: Emulator, tmp_path: Path) -> World:
    info = emulator.info()
    company = info["companies"][0]
    project = company["projects"][0]
    app = next(a for a in info["apps"] if a["service_user_id"] is None)
    return World(emulator=emulator, info=info, company_id=int(company["id"]),
                 project_id=int(project["id"]), project_root=int(project["root_folder_id"]),
                 company_root=int(company["root_folder_id"]), client_id=app["client_id"],
                 client_secret=app["client_secret"], tmp_path=tmp_path)


@pytest.fixture
def world(emulator: Emulator, tmp_path: Path) -> World:
    """The empty seed: one company, one project, empty Documents."""
    return _world(emulator, tmp_path)


@pytest.fixture
def demo_world(demo_emulator: Emulator, tmp_path: Path) -> World:
    return _world(demo_emulator, tmp_path)


def write_file(path: Path, size: int, seed: int = 1) -> Path:
    """A file of pseudo-random bytes, written in 1 MiB chunks (never whole in memory)."""
    import random
    rng = random.Random(seed)
    with path.open("wb") as fh:
        left = size
        while left > 0:
            n = min(MiB, left)
            fh.write(rng.randbytes(n))
            left -= n
    return path


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def log_when(emulator: Emulator, mark: int, ready: Callable[[list[dict[str, Any]]], bool],
             origin: str | None = None, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The emulator's request log since ``mark``, once ``ready`` says it is complete.

    The emulator appends an entry when it has finished a request, which can be a moment
    after the client got its last byte; so poll (with a deadline) instead of reading once.
    On timeout the log is returned as it is, for the caller's assertion to report."""
    deadline = time.monotonic() + timeout
    while True:
        log = emulator.requests(mark, origin)
        if ready(log) or time.monotonic() > deadline:
            return log
        time.sleep(0.01)


def count(method: str | None = None, path: str | None = None, status: int | None = None
          ) -> Callable[[list[dict[str, Any]]], int]:
    def n(log: list[dict[str, Any]]) -> int:
        return sum(1 for r in log if (method is None or r["method"] == method)
                   and (path is None or path in r["path"])
                   and (status is None or r["status"] == status))
    return n
