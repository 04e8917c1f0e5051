"""Fixtures for driving ``ProcoreFS`` against the emulator, without a kernel.

``core_env`` (demo seed) and ``core_env_empty`` (empty seed) give a real ``ProcoreClient``
signed in with a token minted by the emulator, a ``ManualClock`` for the core's TTLs (started
at the real time, so Procore's timestamps and ours agree), and ``env.fs(...)`` to build cores
that are closed at the end of the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from procorefs.api import ProcoreClient, Scope
from procorefs.clock import ManualClock, SystemClock
from procorefs.config import Settings
from procorefs.core.fs import CoreConfig, Layout, ProcoreFS
from procorefs.emulator import seed
from tests.support.emulator import Emulator


@dataclass
class CoreEnv:
    emulator: Emulator
    tmp: Path
    clock: ManualClock = field(default_factory=lambda: ManualClock(start=time.time()))
    cores: list[ProcoreFS] = field(default_factory=list)
    clients: list[ProcoreClient] = field(default_factory=list)

    company_id: int = seed.COMPANY_ID
    project_id: int = seed.PROJECT_ID

    @property
    def project(self) -> Scope:
        return Scope(self.company_id, self.project_id)

    def client(self, login: str | None = None, **settings_kw: Any) -> ProcoreClient:
        token = self.emulator.token(login)["access_token"]
        settings = Settings(environment="custom", api_url=self.emulator.api_url,
                            login_url=self.emulator.api_url, access_token=token,
                            company_id=self.company_id, config_dir=self.tmp / "config",
                            cache_dir=self.tmp / "client-cache", state_dir=self.tmp / "state",
                            **settings_kw)
        client = ProcoreClient.from_settings(settings, clock=SystemClock())
        self.clients.append(client)
        return client

    def fs(self, layout: Layout | None = None, *, client: ProcoreClient | None = None,
           cache: str = "cache", **kw: Any) -> ProcoreFS:
        config = CoreConfig(layout=layout or Layout("project", self.company_id,
                                                    self.project_id),
                            cache_dir=self.tmp / cache, **kw)
        core = ProcoreFS(client or self.client(), config, clock=self.clock)
        self.cores.append(core)
        return core

    def mark(self) -> int:
        return self.emulator.log_mark()

    def api_requests(self, since: int) -> list[dict[str, Any]]:
        return self.emulator.requests(since=since, origin="api")

    def remote(self, method: str, path: str, **body: Any) -> dict[str, Any]:
        """A change made "as another user" through the control API."""
        response = self.emulator.control(method, f"remote/{path}", json=body)
        assert response.status_code < 400, response.text
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        for core in self.cores:
            core.close()
        for client in self.clients:
            client.close()


@pytest.fixture
def core_env(demo_emulator: Emulator, tmp_path: Path) -> Iterator[CoreEnv]:
    env = CoreEnv(demo_emulator, tmp_path)
    yield env
    env.close()


@pytest.fixture
def core_env_empty(emulator: Emulator, tmp_path: Path) -> Iterator[CoreEnv]:
    env = CoreEnv(emulator, tmp_path)
    yield env
    env.close()
