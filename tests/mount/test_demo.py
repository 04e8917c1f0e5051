"""``procorefs demo`` (what ``make demo`` runs): emulator up, project mounted, Ctrl-C cleans up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mount.conftest import force_unmount, hermetic_env, in_mount_table

pytestmark = pytest.mark.mount

READY_TIMEOUT = 60.0


def _ctrl_c_reaches_it() -> None:
    # A test runner may start us with SIGINT ignored, and children inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_demo_mounts_the_demo_project_and_ctrl_c_undoes_everything(tmp_path: Path) -> None:
    mountpoint = tmp_path / "demo-mount"
    env = hermetic_env(tmp_path, None)
    env["HOME"] = str(tmp_path / "home")
    demo = subprocess.Popen([sys.executable, "-m", "procorefs", "demo", "--mountpoint",
                             str(mountpoint)], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_ctrl_c_reaches_it)
    assert demo.stdout is not None
    output: list[str] = []
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not any("Press Ctrl-C" in line for line in output):
            line = demo.stdout.readline()
            assert line or demo.poll() is None, "".join(output)
            output.append(line)
            assert time.monotonic() < deadline, "".join(output)
        text = "".join(output)
        emulator_url = re.search(r"API (http://127\.0\.0\.1:\d+)", text)
        assert emulator_url is not None, text
        assert f"at {mountpoint}" in text
        assert os.path.ismount(mountpoint)
        assert (mountpoint / "01 Drawings" / "Architectural").is_dir()

        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        assert demo.returncode == 0, rest
        assert "Unmounted" in rest and "Emulator stopped" in rest
        assert not in_mount_table(mountpoint)
        assert not mountpoint.exists()  # the demo made it, the demo removes it
        refused = subprocess.run([sys.executable, "-c",
                                  "import httpx, sys; httpx.get(sys.argv[1], timeout=5)",
                                  emulator_url.group(1)], capture_output=True, check=False)
        assert refused.returncode != 0  # the emulator is gone
    finally:
        if demo.poll() is None:
            demo.terminate()  # SIGTERM runs the same cleanup as Ctrl-C
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
        force_unmount(mountpoint)
