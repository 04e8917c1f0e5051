"""The pytest plugin that gives every test tier a running emulator over loopback.

One emulator process per test session (``emulator_server``), started as a child with
``--port 0 --storage-port 0 --control --ready-file`` and a data directory of its own; the
function-scoped fixtures reset it (``emulator``: the empty seed; ``demo_emulator``: the demo
seed), which also clears faults, rate-limit windows, uploads and the clock offset. The
process is always killed at the end of the session, even when a test fails.

``Emulator`` wraps the control API (``/_emulator/``) so tests say what they mean:
``emulator.token()``, ``emulator.advance_clock(3600)``, ``emulator.set_faults([...])``,
``emulator.requests(since=mark)``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 60.0


class EmulatorError(RuntimeError):
    """The emulator could not be started or refused a control call."""


class Emulator:
    """A child-process emulator with its control API."""

    def __init__(self, workdir: Path, *, extra_args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.ready_file = workdir / "ready.json"
        self.log_path = workdir / "emulator.log"
        self.extra_args = extra_args
        self.api_url = ""
        self.storage_url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(timeout=120.0)
        self._ports = (0, 0)

    # -- process ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start (or restart: same ports, same data) and wait for the ready file."""
        if self._process is not None and self._process.poll() is None:
            return
        self.ready_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "procorefs.cli.emulator", "serve",
                   "--port", str(self._ports[0]), "--storage-port", str(self._ports[1]),
                   "--control", "--ready-file", str(self.ready_file),
                   "--data", str(self.data_dir), "--seed", "empty", *self.extra_args]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             cwd=REPO_ROOT, env=env)
        deadline = time.monotonic() + START_DEADLINE
        while not self.ready_file.exists():
            if self._process.poll() is not None:
                raise EmulatorError(f"the emulator exited with {self._process.returncode}:\n"
                                    + self.log_tail())
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError("the emulator did not become ready in time:\n"
                                    + self.log_tail())
            time.sleep(0.02)
        ready = json.loads(self.ready_file.read_text("utf-8"))
        self.api_url = str(ready["api_url"])
        self.storage_url = str(ready["storage_url"])
        self._ports = (httpx.URL(self.api_url).port or 0,
                       httpx.URL(self.storage_url).port or 0)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL if it lingers); state stays on disk."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.ready_file.unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()
        self._client.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- control API --------------------------------------------------------------------------

    def control(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """A raw control call: ``control("GET", "info")``."""
        return self._client.request(method, f"{self.api_url}/_emulator/{path.lstrip('/')}",
                                    **kw)

    def _ok(self, method: str, path: str, **kw: Any) -> Any:
        response = self.control(method, path, **kw)
        if response.status_code >= 400:
            raise EmulatorError(f"{method} /_emulator/{path} -> {response.status_code}: "
                                f"{response.text}")
        return response.json()

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._ok("GET", "info")
        return result

    def reset(self, seed: str = "empty", **knobs: object) -> dict[str, Any]:
        result: dict[str, Any] = self._ok("POST", "reset", json={"seed": seed, **knobs})
        return result

    def token(self, login: str | None = None, ttl: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if login is not None:
            body["login"] = login
        if ttl is not None:
            body["ttl"] = ttl
        result: dict[str, Any] = self._ok("POST", "token", json=body)
        return result

    def advance_clock(self, seconds: float) -> None:
        self._ok("POST", "clock/advance", json={"seconds": seconds})

    def settings(self, **changes: object) -> dict[str, Any]:
        result: dict[str, Any] = self._ok("POST", "settings", json=changes)
        return result

    def log_mark(self) -> int:
        return int(self._ok("GET", "requests", params={"since": 1 << 62})["last_seq"])

    def requests(self, since: int = 0, origin: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if origin is not None:
            params["origin"] = origin
        result: list[dict[str, Any]] = self._ok("GET", "requests", params=params)["requests"]
        return result

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self._ok("PUT", "faults", json={"rules": rules})

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._ok("GET", "faults")["rules"]
        return result

    def clear_faults(self) -> None:
        self._ok("DELETE", "faults")


@pytest.fixture(scope="session")
def emulator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    server = Emulator(tmp_path_factory.mktemp("emulator"))
    atexit.register(server.close)
    try:
        server.start()
        yield server
    finally:
        server.close()
        with contextlib.suppress(Exception):
            atexit.unregister(server.close)


def _fresh(server: Emulator, seed: str) -> Emulator:
    # A test may have stopped it (offline tests); bring it back on the same ports and data.
    server.start()
    server.reset(seed)
    return server


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    """The session's emulator reset to the empty seed: no faults, clock offset 0."""
    return _fresh(emulator_server, "empty")


@pytest.fixture
def demo_emulator(emulator_server: Emulator) -> Emulator:
    """The session's emulator reset to the demo seed."""
    return _fresh(emulator_server, "demo")
