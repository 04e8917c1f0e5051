"""The POSIX corners a document store answers its own way; docs/semantics.md cites these tests."""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import Mounted

pytestmark = pytest.mark.mount

FILE = seed.MULTI_VERSION_PATHS[0]


@pytest.fixture(scope="module")
def mp(demo_mount: Mounted) -> Path:
    return demo_mount.path


def _errno(call: Callable[[], object]) -> int | None:
    try:
        call()
    except OSError as exc:
        return exc.errno
    return None


def test_chmod_chown_and_utime_succeed_and_change_nothing(mp: Path) -> None:
    path = mp / FILE
    before = os.stat(path)
    os.chmod(path, 0o600)
    os.chown(path, -1, os.getgid())
    os.utime(path, (0, 0))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert stat.S_IMODE(after.st_mode) == 0o644
    assert after.st_mtime_ns == before.st_mtime_ns
    assert (after.st_uid, after.st_gid) == (os.getuid(), os.getgid())


def test_rsync_style_touch_and_chmod_commands_succeed(mp: Path) -> None:
    path = str(mp / FILE)
    subprocess.run(["touch", "-c", "-m", "-d", "2001-01-01", path], check=True)
    subprocess.run(["chmod", "a-w", path], check=True)


def test_hard_links_and_symlinks_are_eperm(mp: Path) -> None:
    assert _errno(lambda: os.link(mp / FILE, mp / "01 Drawings" / "hard")) == errno.EPERM
    assert _errno(lambda: os.symlink("x", mp / "01 Drawings" / "soft")) == errno.EPERM
    assert _errno(lambda: os.mkfifo(mp / "01 Drawings" / "fifo")) == errno.EPERM


def test_user_xattrs_are_read_only_and_others_absent(mp: Path) -> None:
    path = mp / FILE
    assert _errno(lambda: os.setxattr(path, "user.mine", b"1")) == errno.ENOTSUP
    assert _errno(lambda: os.removexattr(path, "user.procore.id")) == errno.ENOTSUP
    assert _errno(lambda: os.getxattr(path, "security.capability")) == errno.ENODATA
    assert _errno(lambda: os.getxattr(path, "system.posix_acl_access")) == errno.ENODATA
    assert all(name.startswith("user.") for name in os.listxattr(path))


def test_locks_work_between_local_processes(mp: Path) -> None:
    path = mp / FILE
    with open(path, "rb") as first, open(path, "rb") as second:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert _errno(lambda: fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)) in (
            errno.EAGAIN, errno.EWOULDBLOCK)
        fcntl.flock(first, fcntl.LOCK_UN)
        fcntl.flock(second, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.lockf(first, fcntl.LOCK_SH | fcntl.LOCK_NB)  # POSIX read lock
    probe = ("import fcntl, sys\n"
             "f = open(sys.argv[1], 'rb')\n"
             "fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB)\n")
    with open(path, "rb") as holder:
        fcntl.lockf(holder, fcntl.LOCK_SH | fcntl.LOCK_NB)
        subprocess.run(["python3", "-c", probe, str(path)], check=True)


def test_mmap_reads_the_same_bytes_as_read(mp: Path) -> None:
    path = mp / FILE
    data = path.read_bytes()
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ) as mapped:
        assert mapped[:] == data


def test_reading_does_not_move_atime(mp: Path) -> None:
    path = mp / FILE
    before = os.stat(path)
    path.read_bytes()
    after = os.stat(path)
    assert after.st_atime_ns == before.st_atime_ns == before.st_mtime_ns


def test_names_are_case_sensitive(mp: Path) -> None:
    assert (mp / "01 Drawings").is_dir()
    assert not (mp / "01 DRAWINGS").exists()


def test_statfs_answers(mp: Path) -> None:
    info = os.statvfs(mp)
    assert info.f_namemax >= 255
    assert info.f_bsize > 0
    subprocess.run(["df", "-h", str(mp)], check=True, capture_output=True)


def test_only_the_mounting_user_can_enter_a_private_mount(mp: Path) -> None:
    with open("/proc/self/mounts", encoding="utf-8") as table:
        options = next(line.split()[3] for line in table if line.split()[1] == str(mp))
    assert "allow_other" not in options
    assert "default_permissions" not in options
    assert f"user_id={os.getuid()}" in options
