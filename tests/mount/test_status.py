"""``procorefs status``, ``procorefs queue retry`` and what ``procorefs unmount`` says."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.mount.conftest import Mounted, MountFactory, wait_for
from tests.mount.writing import FOLDER, item, sha, stopped, write_file

pytestmark = pytest.mark.mount


def _status(mounted: Mounted) -> dict[str, object]:
    result: dict[str, object] = json.loads(
        mounted.cli("status", "--json", str(mounted.path)).stdout)
    return result


@pytest.mark.allow_log("cannot save /03 Submittals/refused.txt to Procore: no permission",
                       "Procore says you do not have permission")
def test_a_failed_save_shows_with_its_reason_and_queue_retry_sends_it(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(extra=["--commit-debounce", "0.2"])
    mounted.emulator.set_faults([{"action": "status", "status": 403, "method": "POST",
                                  "path": "^/rest/v1.0/files$"}])
    write_file(mounted.path / FOLDER / "refused.txt", b"keep me")
    wait_for(lambda: bool(_status(mounted)["failed"]), 20, "the save to fail")
    failed = _status(mounted)["failed"]
    assert isinstance(failed, list) and failed[0]["path"] == f"/{FOLDER}/refused.txt"
    assert "permission" in failed[0]["failure"]
    human = mounted.cli("status", str(mounted.path)).stdout
    assert "failed:" in human and "refused.txt" in human and "queue retry" in human
    assert os.getxattr(mounted.path / FOLDER / "refused.txt", "user.procore.state") == \
        b"failed"
    mounted.emulator.clear_faults()
    answer = mounted.cli("queue", "retry", str(mounted.path)).stdout
    assert "1 failed save(s) queued again" in answer
    wait_for(lambda: _status(mounted)["counts"]["committed"] == 1, 20,  # type: ignore[index]
             "the retried save")
    remote = stopped(mounted)
    assert remote.sha256(item(remote, f"{FOLDER}/refused.txt")) == sha(b"keep me")


def test_status_shows_an_upload_in_progress_with_a_bar_and_the_rate_limit(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(extra=["--commit-debounce", "0"])
    mounted.emulator.set_faults([{"action": "latency", "delay": 3.0, "origin": "storage",
                                  "method": "PUT"}])
    write_file(mounted.path / FOLDER / "big.bin", os.urandom(40 << 20))
    wait_for(lambda: "uploading:" in mounted.cli("status").stdout, 30, "the upload")
    human = mounted.cli("status").stdout                       # every running mount
    assert re.search(r"uploading: /03 Submittals/big\.bin +\[[#.]{24}\] +\d+%", human), human
    assert "rate limit:" in human
    mounted.emulator.clear_faults()


@pytest.mark.allow_log("cannot be reached", "as last seen", "not in Procore yet",
                       "stay queued")
def test_unmount_says_what_stays_queued_and_the_next_mount_sends_it(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(extra=["--unmount-wait", "1"], allowed_log=[
        "cannot be reached", "as last seen", "not in Procore yet", "stay queued"])
    os.listdir(mounted.path / FOLDER)
    mounted.emulator.stop()
    try:
        write_file(mounted.path / FOLDER / "later.txt", b"next time")
        done = mounted.cli("unmount", str(mounted.path), check=False)
        assert done.returncode == 0, done.stderr
        assert "1 change(s) are not in Procore yet" in done.stderr
        assert "later.txt" in done.stderr
        assert mounted.process.wait(30) == 0
    finally:
        mounted.emulator.start()
        mounted.emulator.settings(rate_limit="1000000/100000")
    again = mount_factory(workdir=mounted.workdir)
    remote = stopped(again)
    assert remote.sha256(item(remote, f"{FOLDER}/later.txt")) == sha(b"next time")
