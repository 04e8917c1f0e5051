"""``ls -l`` of a folder costs its listing only: the kernel gets each entry's attributes with
the listing (readdirplus) and asks for no entry again.

The evidence is libfuse's own debug log (a mount with ``-vvv`` runs libfuse with ``debug``):
it names every request the kernel sent and every ``getattr`` the high-level library made into
the mount's Python (each one a call into the core), so counting its lines for the folder's
entries counts the per-entry calls, independently of any timing.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import MOUNT_READY_TIMEOUT, Mounted, finish, hermetic_env
from tests.mount.remote import RemoteItem

pytestmark = pytest.mark.mount

FILES = 1000  # more than one kernel buffer of readdirplus entries (about 780 here)
FOLDER = f"{seed.LISTING_FOLDER_PREFIX} {FILES}"
FILE_SIZE = 4096


def _debug_mount(emulator: Any, workdir: Path) -> Mounted:
    """conftest's ``start_mount``, with ``-vvv`` so that libfuse logs every request to the
    mount's stderr (``Mounted.output``)."""
    token = emulator.token(seed.DEMO_USER_LOGIN)["access_token"]
    mountpoint = workdir / "mnt"
    mountpoint.mkdir(parents=True)
    argv = [sys.executable, "-m", "procorefs", "-vvv", "mount", "--foreground",
            "--api-url", emulator.api_url, "--cache-dir", str(workdir / "cache"),
            "--project", str(seed.PROJECT_ID), "--company", str(seed.COMPANY_ID),
            "--ttl", "300", "--poll-budget", "0", "--", str(mountpoint)]
    output = workdir / "mount.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   env=hermetic_env(workdir, token), cwd=workdir)
    mounted = Mounted(mountpoint, process, workdir, emulator, emulator.api_url, token,
                      seed.COMPANY_ID, seed.PROJECT_ID, output)
    deadline = time.monotonic() + MOUNT_READY_TIMEOUT
    while not os.path.ismount(mountpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            mounted.stop()
            raise AssertionError(f"the mount did not come up (status {process.returncode}):\n"
                                 + output.read_text(errors="replace")[-3000:])
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.05)
    return mounted


@contextlib.contextmanager
def _mounted(emulator: Any, workdir: Path) -> Iterator[Mounted]:
    mounted = _debug_mount(emulator, workdir)
    try:
        yield mounted
    finally:
        finish(mounted)


class DebugLog:
    """libfuse's debug lines written since the mark."""

    def __init__(self, mounted: Mounted) -> None:
        self._path = mounted.output
        self._mark = self._path.stat().st_size

    def text(self) -> str:
        with open(self._path, "rb") as log:
            log.seek(self._mark)
            return log.read().decode("utf-8", errors="replace")

    def opcodes(self, name: str) -> int:
        return len(re.findall(rf"opcode: {name} \(", self.text()))

    def per_entry_calls(self, folder: str) -> list[str]:
        """Lookups and getattrs that libfuse made for the folder's entries."""
        prefix = re.escape(f"/{folder}/")
        return re.findall(rf"^(?:LOOKUP|getattr\[[^\]]*\]) {prefix}.*$", self.text(),
                          re.MULTILINE)


def _scandir_lstat(folder: Path) -> dict[str, os.stat_result]:
    """What ``ls -l`` does: read every name, then lstat each."""
    with os.scandir(folder) as entries:
        paths = [entry.path for entry in entries]
    return {os.path.basename(p): os.lstat(p) for p in paths}


def test_ls_l_of_a_big_folder_makes_no_call_per_entry(emulator_server: Any,
                                                      tmp_path: Path) -> None:
    emulator_server.start()
    emulator_server.reset("large", folders=0, files=0, folder_files=FILES,
                          file_size=FILE_SIZE)
    emulator_server.settings(rate_limit="1000000/100000")  # as mount_factory: not the topic
    with _mounted(emulator_server, tmp_path) as mounted:
        folder = mounted.path / FOLDER
        log = DebugLog(mounted)
        stats = _scandir_lstat(folder)
        assert len(stats) == FILES
        assert all(stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
                   and st.st_size == FILE_SIZE and st.st_uid == os.getuid()
                   for st in stats.values())
        # The log does show a per-entry lookup when one happens (a name the listing lacks):
        # the kernel's LOOKUP, and libfuse's getattr into the core for it.
        assert not (folder / "not listed.txt").exists()
        calls = log.per_entry_calls(FOLDER)
        assert calls == [f"LOOKUP /{FOLDER}/not listed.txt",
                         f"getattr[NULL] /{FOLDER}/not listed.txt"], calls[:6]
        assert log.opcodes("READDIRPLUS") >= 1
        # The kernel asked for readdirplus every time, never for plain readdir.
        assert log.opcodes("READDIR") == 0

        # Again (warm): the second listing's attributes replace the first's, and agree.
        log = DebugLog(mounted)
        again = _scandir_lstat(folder)
        assert log.per_entry_calls(FOLDER) == []
        assert {n: (st.st_mode, st.st_size, st.st_mtime_ns) for n, st in again.items()} == \
            {n: (st.st_mode, st.st_size, st.st_mtime_ns) for n, st in stats.items()}


@pytest.mark.parametrize("folder", ["02 Specifications", "10 CAD"])
def test_listed_attributes_are_what_procore_holds_read_only_included(
        demo_emulator: Any, tmp_path: Path, folder: str) -> None:
    demo_emulator.settings(rate_limit="1000000/100000")  # as mount_factory: not the topic
    with _mounted(demo_emulator, tmp_path) as mounted:
        tree = mounted.remote().tree()
        children: dict[str, RemoteItem] = {
            path.rsplit("/", 1)[1]: item for path, item in tree.items()
            if path.rsplit("/", 1)[0] == folder and "/" in path}
        read_only = {seed.READ_ONLY_FILE_PATH, seed.CHECKED_OUT_PATH}
        log = DebugLog(mounted)
        stats = _scandir_lstat(mounted.path / folder)
        assert log.per_entry_calls(folder) == []
        assert set(stats) == set(children)
        assert any(item.path in read_only for item in children.values())
        for name, st in stats.items():
            item = children[name]
            if item.kind == "dir":
                assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, name
                assert st.st_nlink == 2, name
            else:
                mode = 0o444 if item.path in read_only else 0o644
                assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == mode, name
                assert st.st_size == item.size, name
                assert st.st_blocks == (item.size + 511) // 512, name
            assert int(st.st_mtime) == int(item.updated_at), name
            assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), name
