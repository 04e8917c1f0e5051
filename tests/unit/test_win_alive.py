"""Telling whether a mount process still runs, on Windows (the Windows workflow runs this;
the Linux check, with zombies, is in test_fuse_app.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from procorefs import app

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="Windows process handles")


def test_a_windows_mount_process_is_alive_until_it_exits() -> None:
    # os.kill(pid, 0) would terminate it on Windows: status and unmount must ask without it.
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    assert app._alive(child.pid) is True
    assert child.stdin is not None
    child.stdin.close()
    child.wait(timeout=30)
    assert app._alive(child.pid) is False
    assert app._alive(os.getpid()) is True
