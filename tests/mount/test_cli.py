"""``procorefs mount`` / ``unmount`` as a user runs them: background start, signals, errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import (
    MountFactory,
    force_unmount,
    hermetic_env,
    in_mount_table,
    wait_for,
)

pytestmark = pytest.mark.mount


def _procorefs(args: list[str], env: dict[str, str], cwd: Path,
               timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "procorefs", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _connection(emulator: Any) -> list[str]:
    return ["--api-url", emulator.api_url, "--project", str(seed.PROJECT_ID)]


def _one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("procorefs: ") and needle in lines[0], lines[0]


def test_background_mount_returns_once_ready_and_unmount_stops_it(
        demo_emulator: Any, tmp_path: Path) -> None:
    token = demo_emulator.token(seed.DEMO_USER_LOGIN)["access_token"]
    env = hermetic_env(tmp_path, token)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    try:
        # Without --company: the mount finds the project's company itself.
        started = _procorefs(["mount", str(mountpoint), *_connection(demo_emulator)], env,
                             tmp_path)
        assert started.returncode == 0, started.stderr
        assert os.path.ismount(mountpoint)  # ready when the command returned, not later
        assert (mountpoint / "01 Drawings").is_dir()
        # The live-mount record; its ``.status.json`` sibling is what ``procorefs status`` reads.
        records = [p for p in (tmp_path / "state" / "mounts").glob("*.json")
                   if not p.name.endswith(".status.json")]
        assert len(records) == 1
        logs = list((tmp_path / "state" / "logs").glob("mount-*.log"))
        assert logs and "mounted project" in logs[0].read_text()

        stopped = _procorefs(["unmount", str(mountpoint)], env, tmp_path)
        assert stopped.returncode == 0, stopped.stderr
        assert not in_mount_table(mountpoint)
        # unmount waits for the mount process, which removes its record as it exits
        assert not records[0].exists()
    finally:
        force_unmount(mountpoint)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_unmounts_a_foreground_mount_cleanly(
        mount_factory: MountFactory, sig: signal.Signals) -> None:
    mounted = mount_factory()
    mounted.process.send_signal(sig)
    assert mounted.process.wait(20) == 0
    assert not in_mount_table(mounted.path)


def test_a_missing_mountpoint_is_a_one_line_error(demo_emulator: Any, tmp_path: Path) -> None:
    env = hermetic_env(tmp_path, "unused-token")
    result = _procorefs(["mount", str(tmp_path / "nope"), *_connection(demo_emulator)], env,
                        tmp_path)
    _one_line_error(result, "does not exist")


def test_a_non_empty_mountpoint_is_a_one_line_error(demo_emulator: Any, tmp_path: Path) -> None:
    env = hermetic_env(tmp_path, "unused-token")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "precious.txt").write_text("mine")
    for mode in ([], ["--foreground"]):
        result = _procorefs(["mount", str(occupied), *mode, *_connection(demo_emulator)], env,
                            tmp_path)
        _one_line_error(result, "not empty")
    assert (occupied / "precious.txt").read_text() == "mine"


def test_an_already_mounted_mountpoint_is_a_one_line_error(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    env = hermetic_env(mounted.workdir, mounted.token)
    result = _procorefs(["mount", str(mounted.path), *_connection(mounted.emulator)], env,
                        mounted.workdir)
    _one_line_error(result, "already a mount point")


def test_unmount_of_a_busy_mount_says_so_and_leaves_it_mounted(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    env = hermetic_env(mounted.workdir, mounted.token)
    with open(mounted.path / seed.MULTI_VERSION_PATHS[0], "rb"):
        result = _procorefs(["unmount", str(mounted.path)], env, mounted.workdir)
        _one_line_error(result, "busy")
        assert os.path.ismount(mounted.path)
    result = _procorefs(["unmount", str(mounted.path)], env, mounted.workdir)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: mounted.process.poll() is not None, 20, "the mount process to exit")


def test_unmount_of_something_not_mounted_is_a_one_line_error(tmp_path: Path) -> None:
    env = hermetic_env(tmp_path, None)
    result = _procorefs(["unmount", str(tmp_path)], env, tmp_path)
    _one_line_error(result, "not mounted")


def test_a_bad_token_fails_before_mounting(demo_emulator: Any, tmp_path: Path) -> None:
    env = hermetic_env(tmp_path, "not-a-valid-token")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    try:
        result = _procorefs(["mount", str(mountpoint), "--company", str(seed.COMPANY_ID),
                             *_connection(demo_emulator)], env, tmp_path)
        _one_line_error(result, "not signed in")
        assert not in_mount_table(mountpoint)
    finally:
        force_unmount(mountpoint)


def test_a_project_that_does_not_exist_fails_before_mounting(
        demo_emulator: Any, tmp_path: Path) -> None:
    token = demo_emulator.token(seed.DEMO_USER_LOGIN)["access_token"]
    env = hermetic_env(tmp_path, token)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    try:
        for company in ([], ["--company", str(seed.COMPANY_ID)]):
            result = _procorefs(["mount", str(mountpoint), "--api-url", demo_emulator.api_url,
                                 "--project", "999999", *company], env, tmp_path)
            _one_line_error(result, "999999")
            assert not in_mount_table(mountpoint)
    finally:
        force_unmount(mountpoint)
