"""kill -9 of the mount at the points that matter, then a restart on the same cache.

Every file that was closed before the kill is committed exactly once with the right bytes,
finished upload parts are not sent again, nothing is created twice (the request log), and a
file still open at the kill is not committed (docs/semantics.md, the durability contract).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.mount.conftest import Mounted, MountFactory, wait_for
from tests.mount.control import log_mark, requests_since
from tests.mount.writing import FOLDER, bin_names, creates, item, sha, stopped, write_file

pytestmark = pytest.mark.mount

MiB = 1 << 20


def _status(mounted: Mounted) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        mounted.cli("status", "--json", str(mounted.path)).stdout)
    return result


def _restart(mount_factory: MountFactory, crashed: Mounted) -> Mounted:
    crashed.kill9()
    return mount_factory(workdir=crashed.workdir)


def _files_named(requests: list[dict[str, Any]]) -> int:
    return len([r for r in creates(requests) if r["status"] == 201])


def test_kill_while_writing_and_after_close_before_commit(
        mount_factory: MountFactory) -> None:
    # A long debounce: nothing is committed before the kill.
    mounted = mount_factory(extra=["--commit-debounce", "60"])
    d = mounted.path / FOLDER
    closed = {f"closed-{i}.txt": os.urandom(1000 + i * 7919) for i in range(5)}
    for name, data in closed.items():
        write_file(d / name, data)
    open_fd = os.open(d / "still-open.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(open_fd, b"half of it")                         # never closed
    existing = mounted.path / "02 Specifications" / "00 01 10 - Table of Contents.pdf"
    assert existing.exists()
    mark = log_mark(mounted.emulator)
    restarted = _restart(mount_factory, mounted)
    with pytest.raises(OSError):
        os.close(open_fd)                                    # the mount died under it
    # The restarted mount shows the journaled files before they are committed...
    for name, data in closed.items():
        assert (restarted.path / FOLDER / name).read_bytes() == data
    assert not (restarted.path / FOLDER / "still-open.txt").exists()
    remote = stopped(restarted)
    for name, data in closed.items():                          # ...and commits them once
        found = item(remote, f"{FOLDER}/{name}")
        assert remote.sha256(found) == sha(data)
        assert len(remote.versions(found.id)) == 1
    assert f"{FOLDER}/still-open.txt" not in remote.tree()
    assert _files_named(requests_since(restarted.emulator, mark)) == len(closed)


def test_kill_in_the_middle_of_a_100_mib_upload_resumes_without_resending_parts(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(extra=["--commit-debounce", "0"])
    # Slow part PUTs, so that the kill lands between parts.
    mounted.emulator.set_faults([{"action": "latency", "delay": 0.7, "origin": "storage",
                                  "method": "PUT"}])
    data = os.urandom(100 * MiB)
    path = mounted.path / FOLDER / "point-cloud.las"
    write_file(path, data)
    mark = log_mark(mounted.emulator)

    def parts_done() -> int:
        return len([r for r in requests_since(mounted.emulator, mark, origin="storage")
                    if r["method"] == "PUT" and r["status"] == 200])
    wait_for(lambda: parts_done() >= 2, 60, "two parts to be uploaded")
    before = parts_done()
    mounted.emulator.clear_faults()
    restarted = _restart(mount_factory, mounted)
    mark2 = log_mark(restarted.emulator)
    remote = stopped(restarted)
    found = item(remote, f"{FOLDER}/point-cloud.las")
    assert found.size == len(data) and remote.sha256(found) == sha(data)
    after = [r for r in requests_since(restarted.emulator, mark2, origin="storage")
             if r["method"] == "PUT"]
    parts = -(-len(data) // (16 * MiB))
    assert before >= 1 and len(after) < parts             # finished parts were not re-sent
    assert _files_named(requests_since(restarted.emulator, mark)) == 1
    assert len(remote.versions(found.id)) == 1


@pytest.mark.parametrize("action", ["stall", "lost"])
def test_kill_between_upload_and_create_creates_once(mount_factory: MountFactory,
                                                     action: str) -> None:
    """``stall``: killed while the create is on the wire, before Procore did it; ``lost``:
    Procore created the file but the answer never came back, then the kill."""
    mounted = mount_factory(extra=["--commit-debounce", "0"])
    mounted.emulator.set_faults([{"action": action, "delay": 60, "method": "POST",
                                  "path": "^/rest/v1.0/files$", "times": 1}])
    mark = log_mark(mounted.emulator)
    data = b"the bytes of a drawing " * 5000
    write_file(mounted.path / FOLDER / "create-once.dwg", data)
    wait_for(lambda: any(r["path"] == "/rest/v1.0/files" for r in
                         requests_since(mounted.emulator, mark)) or
             any(f["fired"] for f in mounted.emulator.faults()), 30, "the create call")
    restarted = _restart(mount_factory, mounted)
    restarted.emulator.clear_faults()
    remote = stopped(restarted)
    found = item(remote, f"{FOLDER}/create-once.dwg")
    assert remote.sha256(found) == sha(data)
    names = [p for p in remote.tree() if p.endswith("create-once.dwg")]
    assert names == [f"{FOLDER}/create-once.dwg"]           # not created twice
    assert not [n for n in bin_names(remote) if "create-once" in n]


def test_restart_offline_shows_what_was_cached_and_queued(
        mount_factory: MountFactory, tmp_path: Path) -> None:
    mounted = mount_factory(extra=["--commit-debounce", "60"])
    d = mounted.path / FOLDER
    listing = sorted(os.listdir(d))
    write_file(d / "offline-queued.txt", b"made before the crash")
    listed = time.time()
    # The mount writes what it learnt to disk with its status, a few times a second.
    wait_for(lambda: float(_status(mounted)["updated"]) > listed + 0.1, 10, "a status tick")
    emulator = mounted.emulator
    emulator.stop()
    try:
        mounted.kill9()
        restarted = mount_factory(workdir=mounted.workdir, token=mounted.token, allowed_log=[
            "cannot be reached", "mounting with what is cached", "not in Procore yet",
            "showing .* as last seen", "stay queued"])
        assert sorted(os.listdir(restarted.path / FOLDER)) == \
            sorted([*listing, "offline-queued.txt"])                    # from disk
        assert (restarted.path / FOLDER / "offline-queued.txt").read_bytes() == \
            b"made before the crash"
    finally:
        emulator.start()
    remote = stopped(restarted)
    assert remote.sha256(item(remote, f"{FOLDER}/offline-queued.txt")) == \
        sha(b"made before the crash")
