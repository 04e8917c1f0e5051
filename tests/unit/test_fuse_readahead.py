"""Finding this mount's device in mountinfo and raising its readahead (fuse/readahead.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from procorefs.adapters.fuse import readahead

MOUNTINFO = """\
22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
61 22 0:52 / /home/dana/My\\040Procore rw,nosuid,nodev shared:30 - fuse.procorefs procorefs rw
64 22 0:55 / /home/dana/My\\040Procore rw,nosuid,nodev shared:31 - fuse.procorefs procorefs rw
70 22 0:58 / /mnt/other rw - fuse.sshfs host: rw
"""


def _served(path: str) -> None:
    """Stands for the ``stat`` that waits for the kernel to take the init reply."""


def _tree(tmp_path: Path, device: str, value: str) -> tuple[Path, Path]:
    proc = tmp_path / "mountinfo"
    proc.write_text(MOUNTINFO)
    knob = tmp_path / "bdi" / device / "read_ahead_kb"
    knob.parent.mkdir(parents=True)
    knob.write_text(value + "\n")
    return proc, tmp_path / "bdi"


def test_the_device_is_the_last_mount_at_the_unescaped_path() -> None:
    assert readahead.mount_device("/home/dana/My Procore", MOUNTINFO) == "0:55"
    assert readahead.mount_device("/mnt/other", MOUNTINFO) == "0:58"
    assert readahead.mount_device("/home/dana/My\\040Procore", MOUNTINFO) is None
    assert readahead.mount_device("/nowhere", MOUNTINFO) is None


def test_the_kernels_128_kib_becomes_a_megabyte(tmp_path: Path) -> None:
    proc, sysfs = _tree(tmp_path, "0:55", "128")
    got = readahead.raise_readahead("/home/dana/My Procore", proc=proc, sysfs=sysfs,
                                     initialized=_served)
    assert got == 1024
    assert (sysfs / "0:55" / "read_ahead_kb").read_text().strip() == "1024"
    assert not (sysfs / "0:52").exists()  # the older mount at that path is not touched


def test_a_larger_window_set_by_an_administrator_is_never_lowered(tmp_path: Path) -> None:
    proc, sysfs = _tree(tmp_path, "0:58", "4096")
    assert readahead.raise_readahead("/mnt/other", proc=proc, sysfs=sysfs,
                                     initialized=_served) == 4096
    assert (sysfs / "0:58" / "read_ahead_kb").read_text().strip() == "4096"


def test_without_permission_the_window_stays_and_the_mount_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc, sysfs = _tree(tmp_path, "0:55", "128")

    def refuse(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    assert readahead.raise_readahead("/home/dana/My Procore", proc=proc, sysfs=sysfs,
                                     initialized=_served) == 128


def test_a_mount_that_never_shows_up_is_given_up_on(tmp_path: Path) -> None:
    proc, sysfs = _tree(tmp_path, "0:55", "128")
    assert readahead.raise_readahead("/not/mounted", proc=proc, sysfs=sysfs,
                                     timeout=0.1, initialized=_served) is None
    missing = tmp_path / "no-such-mountinfo"
    assert readahead.raise_readahead("/home/dana/My Procore", proc=missing,
                                     sysfs=sysfs, initialized=_served) is None


def test_the_window_is_raised_only_after_the_mount_answers(tmp_path: Path) -> None:
    proc, sysfs = _tree(tmp_path, "0:55", "128")
    knob = sysfs / "0:55" / "read_ahead_kb"
    seen: list[str] = []

    def initialized(path: str) -> None:
        seen.append(knob.read_text().strip())

    assert readahead.raise_readahead("/home/dana/My Procore", proc=proc, sysfs=sysfs,
                                     initialized=initialized) == 1024
    assert seen == ["128"]

    def hung_up(path: str) -> None:
        raise OSError(107, "Transport endpoint is not connected", path)

    knob.write_text("128\n")
    assert readahead.raise_readahead("/home/dana/My Procore", proc=proc, sysfs=sysfs,
                                     initialized=hung_up) is None
    assert knob.read_text().strip() == "128"
