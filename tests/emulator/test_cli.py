"""Contract tests: ``procorefs emulator serve`` as a process (loopback only, ready file,
--data persistence, temporary data removed at exit, clean stop on SIGTERM)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from procorefs.cli.emulator import main
from procorefs.emulator.seed import COMPANY_ID, PROJECT_ID
from tests.support.emulator import REPO_ROOT

DEADLINE = 60.0


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "example.com", "::"])
def test_non_loopback_hosts_are_refused(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", host, "--port", "0", "--storage-port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "loopback" in err and host in err


def test_bad_options_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--rate-limit", "lots"]) == 2
    assert "HOURLY/SPIKE" in capsys.readouterr().err
    assert main(["serve", "--seed", "demo", "--large-files", "3"]) == 2
    assert "--large-*" in capsys.readouterr().err


class Served:
    def __init__(self, tmp: Path, *args: str) -> None:
        self.ready = tmp / f"ready-{time.monotonic_ns()}.json"
        self.log = (tmp / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "procorefs.cli.emulator", "serve", "--port", "0",
             "--storage-port", "0", "--control", "--ready-file", str(self.ready), *args],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        deadline = time.monotonic() + DEADLINE
        while not self.ready.exists():
            assert self.process.poll() is None, "the emulator exited early"
            assert time.monotonic() < deadline, "the emulator did not become ready"
            time.sleep(0.02)
        self.info = json.loads(self.ready.read_text("utf-8"))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.log.close()

    def token(self) -> str:
        answer = httpx.post(f"{self.info['api_url']}/_emulator/token", json={})
        return str(answer.json()["access_token"])

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.info["api_url"], headers={
            "Authorization": f"Bearer {self.token()}", "Procore-Company-Id": str(COMPANY_ID)})


def test_data_directory_survives_restarts_until_reset(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Served(tmp_path, "--data", str(data), "--seed", "empty")
    try:
        assert first.info["pid"] == first.process.pid
        assert first.info["api_url"].startswith("http://127.0.0.1:")
        with first.client() as client:
            made = client.post("/rest/v1.0/folders", params={"project_id": PROJECT_ID},
                               json={"folder": {"name": "Kept"}})
            assert made.status_code == 201
    finally:
        assert first.stop() == 0
    assert not first.ready.exists()
    second = Served(tmp_path, "--data", str(data), "--seed", "empty")
    try:
        with second.client() as client:
            names = [f["name"] for f in client.get(
                "/rest/v1.0/folders", params={"project_id": PROJECT_ID}).json()["folders"]]
        assert names == ["Kept"]
    finally:
        second.stop()
    third = Served(tmp_path, "--data", str(data), "--seed", "empty", "--reset",
                   "--rate-limit", "7/3", "--token-ttl", "99")
    try:
        with third.client() as client:
            answer = client.get("/rest/v1.0/folders", params={"project_id": PROJECT_ID})
        assert answer.json()["folders"] == []
        assert answer.headers["X-Rate-Limit-Limit"] == "3"
        token = httpx.post(f"{third.info['api_url']}/_emulator/token", json={}).json()
        assert token["expires_in"] == 99
    finally:
        third.stop()


def test_without_data_a_temporary_directory_is_removed_at_exit(tmp_path: Path) -> None:
    served = Served(tmp_path, "--seed", "empty")
    data_dir = Path(served.info["data_dir"])
    assert (data_dir / "emulator.sqlite3").exists()
    assert served.stop() == 0
    assert not data_dir.exists()


def test_control_api_is_off_unless_asked(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    with (tmp_path / "log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "procorefs.cli.emulator", "serve", "--port", "0",
             "--storage-port", "0", "--seed", "empty", "--ready-file", str(ready)],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        try:
            deadline = time.monotonic() + DEADLINE
            while not ready.exists():
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            api_url = json.loads(ready.read_text("utf-8"))["api_url"]
            assert httpx.get(f"{api_url}/_emulator/info").status_code == 404
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    banner = (tmp_path / "log").read_text("utf-8")
    assert "client_id=procorefs-demo" in banner
    assert "demo user:" in banner
