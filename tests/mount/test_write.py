"""Writing through a real mount: every kind of write, read-your-writes, durability, cost.

Each test writes with plain ``os`` calls, unmounts (which sends the queue) and asserts on
Procore's side through the independent oracle (``remote.py``). docs/semantics.md cites these.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import Mounted, MountFactory, wait_for
from tests.mount.control import log_mark, requests_since
from tests.mount.writing import (
    FOLDER,
    bin_names,
    creates,
    item,
    sha,
    stopped,
    versions_created,
    write_file,
)

pytestmark = pytest.mark.mount


def test_every_kind_of_write_reaches_procore(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    d = mounted.path / FOLDER
    write_file(d / "new.txt", b"hello")                               # create
    with open(d / "new.txt", "ab") as fh:                            # O_APPEND
        fh.write(b" world")
    fd = os.open(d / "sparse.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.pwrite(fd, b"end", 1 << 20)                                   # a hole, then bytes
    os.pwrite(fd, b"start", 0)
    os.close(fd)
    write_file(d / "shrink.txt", b"0123456789")
    os.truncate(d / "shrink.txt", 4)                                  # truncate down
    with open(d / "grow.txt", "wb") as fh:
        fh.write(b"ab")
        fh.truncate(6)                                               # ftruncate up
    write_file(d / "zero.txt", b"")                                   # 0 bytes
    with pytest.raises(FileExistsError):                              # O_EXCL
        os.open(d / "zero.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    sparse = b"start" + b"\0" * ((1 << 20) - 5) + b"end"
    assert (d / "sparse.bin").read_bytes() == sparse                  # before any commit
    remote = stopped(mounted)
    expect = {"new.txt": b"hello world", "sparse.bin": sparse, "shrink.txt": b"0123",
              "grow.txt": b"ab\0\0\0\0", "zero.txt": b""}
    for name, data in expect.items():
        found = item(remote, f"{FOLDER}/{name}")
        assert (found.size, remote.sha256(found)) == (len(data), sha(data)), name
        assert len(remote.versions(found.id)) == 1, name


def test_overwriting_an_existing_file_is_one_new_version_of_the_same_id(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    path = mounted.path / seed.MULTI_VERSION_PATHS[0]
    before = item(mounted.remote(), seed.MULTI_VERSION_PATHS[0])
    versions = len(mounted.remote().versions(before.id))
    old = path.read_bytes()
    fd = os.open(path, os.O_RDWR)                                     # write in the middle
    os.pwrite(fd, b"EDIT", 100)
    assert os.pread(fd, 8, 98) == old[98:100] + b"EDIT" + old[104:106]
    other = os.open(path, os.O_RDONLY)                                # another handle sees it
    assert os.pread(other, 4, 100) == b"EDIT"
    os.close(other)
    os.close(fd)
    remote = stopped(mounted)
    after = item(remote, seed.MULTI_VERSION_PATHS[0])
    assert after.id == before.id
    assert len(remote.versions(after.id)) == versions + 1
    assert remote.sha256(after) == sha(old[:100] + b"EDIT" + old[104:])


def test_o_trunc_replaces_the_content_atomically(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    path = mounted.path / seed.MULTI_VERSION_PATHS[0]
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    assert os.fstat(fd).st_size == 0
    os.write(fd, b"short")
    os.close(fd)
    assert path.read_bytes() == b"short"
    remote = stopped(mounted)
    assert remote.sha256(item(remote, seed.MULTI_VERSION_PATHS[0])) == sha(b"short")


def test_close_is_durable_and_the_commit_follows_in_the_background(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    path = mounted.path / FOLDER / "background.txt"
    write_file(path, b"queued")
    # close() returned: the journal holds it, and the status shows it until it is in Procore.
    wait_for(lambda: "background.txt" in {
        i.name for i in mounted.remote().tree().values()}, 20, "the background commit")
    assert os.getxattr(path, "user.procore.version") == b"1"         # the cache shows it
    wait_for(lambda: '"committed": 1' in mounted.cli("status", "--json",
                                                      str(mounted.path)).stdout,
             10, "the status to count the commit")


def test_fsync_returns_once_procore_holds_the_bytes(mount_factory: MountFactory) -> None:
    mounted = mount_factory(extra=["--commit-debounce", "30"])       # no commit without fsync
    path = mounted.path / FOLDER / "synced.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"in Procore now")
    os.fsync(fd)
    found = item(mounted.remote(), f"{FOLDER}/synced.txt")
    assert mounted.remote().sha256(found) == sha(b"in Procore now")
    os.close(fd)


def _committed(mounted: Mounted) -> int:
    status = json.loads(mounted.cli("status", "--json", str(mounted.path)).stdout)
    return int(status["counts"]["committed"])


def test_api_calls_per_save(mount_factory: MountFactory) -> None:
    """The figures of docs/semantics.md: a new small file costs two API requests (start the
    upload, create the file) and one storage POST; a new version of an existing file three
    (start the upload, read the file to detect a conflict, create the version)."""
    mounted = mount_factory(poll_budget=0)
    d = mounted.path / FOLDER
    os.listdir(d)
    mark = log_mark(mounted.emulator)
    write_file(d / "cost.txt", b"x" * 1000)
    wait_for(lambda: _committed(mounted) == 1, 20, "the commit")
    # The change poller (GET /documents) is not part of a save.
    new_file = [r for r in requests_since(mounted.emulator, mark, origin=None)
                if not r["path"].endswith("/documents")]
    api = [r for r in new_file if r["origin"] == "api"]
    assert len(creates(api)) == 1 and len(api) == 2, api
    assert len([r for r in new_file if r["origin"] == "storage"]) == 1
    mark = log_mark(mounted.emulator)
    write_file(d / "cost.txt", b"y" * 1000)
    wait_for(lambda: _committed(mounted) == 2, 20, "the second commit")
    version = [r for r in requests_since(mounted.emulator, mark)
               if not r["path"].endswith("/documents")]
    assert len(versions_created(version)) == 1 and len(version) == 3, version


@pytest.mark.allow_log("cannot write .*: it is checked out in Procore by Alex Other")
def test_a_file_checked_out_by_someone_else_is_eacces_and_the_log_says_by_whom(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    path = mounted.path / seed.CHECKED_OUT_PATH
    with pytest.raises(PermissionError):
        os.open(path, os.O_WRONLY)
    with pytest.raises(PermissionError):
        os.truncate(path, 0)
    wait_for(lambda: "checked out in Procore by Alex Other" in mounted.log_text(), 5, "log")


def test_an_open_new_file_survives_unlink_and_nothing_of_it_is_uploaded(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    d = mounted.path / FOLDER
    fd = os.open(d / "doomed.txt", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"scratch")
    os.unlink(d / "doomed.txt")
    assert os.fstat(fd).st_size == 7                  # the descriptor keeps working
    os.write(fd, b" more")
    assert os.pread(fd, 100, 0) == b"scratch more"
    os.close(fd)
    wait_for(lambda: not [n for n in os.listdir(d) if n.startswith(".fuse_hidden")], 10,
             "the hidden name to go")
    remote = stopped(mounted)
    assert f"{FOLDER}/doomed.txt" not in remote.tree()
    assert not [p for p in remote.tree() if ".fuse_hidden" in p]
    assert not {"doomed.txt"} & bin_names(remote)
    assert not [n for n in bin_names(remote) if n.startswith(".fuse_hidden")]


def test_a_deleted_file_is_hidden_at_once_and_in_the_recycle_bin_after_unmount(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    victim = seed.MULTI_VERSION_PATHS[1]
    file_id = item(mounted.remote(), victim).id
    os.unlink(mounted.path / victim)
    assert not (mounted.path / victim).exists()
    remote = stopped(mounted)
    assert victim not in remote.tree()
    assert remote.file(file_id)["is_deleted"] is True


def test_utimens_shows_on_a_file_until_procore_sets_its_own(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(extra=["--commit-debounce", "30"])
    path = mounted.path / FOLDER / "stamped.txt"
    write_file(path, b"x")
    os.utime(path, ns=(0, 1_000_000_000_000_000_000))
    assert os.stat(path).st_mtime_ns == 1_000_000_000_000_000_000
    subprocess.run(["touch", "-a", str(path)], check=True)             # UTIME_OMIT for mtime
    assert os.stat(path).st_mtime_ns == 1_000_000_000_000_000_000


def test_reads_of_a_pending_file_by_many_handles_agree(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    path = mounted.path / FOLDER / "shared.bin"
    data = os.urandom(3 << 20)
    writer = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.write(writer, data)
    readers = [os.open(path, os.O_RDONLY) for _ in range(3)]
    for i, fd in enumerate(readers):
        assert os.pread(fd, 4096, i * 1000) == data[i * 1000:i * 1000 + 4096]
        os.close(fd)
    os.close(writer)
    remote = stopped(mounted)
    assert remote.sha256(item(remote, f"{FOLDER}/shared.bin")) == sha(data)


def test_errors_of_writing_where_nothing_can_be_written(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    with pytest.raises(OSError) as excinfo:
        os.open(mounted.path / "no such folder" / "x.txt", os.O_WRONLY | os.O_CREAT)
    assert excinfo.value.errno == errno.ENOENT
    with pytest.raises(IsADirectoryError):
        os.open(mounted.path / FOLDER, os.O_WRONLY)


@pytest.mark.allow_log("conflict: ")
def test_a_save_over_someone_elses_newer_version_becomes_a_conflict_copy(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(extra=["--commit-debounce", "0.2"])
    rel = seed.MULTI_VERSION_PATHS[0]
    path = mounted.path / rel
    before = item(mounted.remote(), rel)
    fd = os.open(path, os.O_RDWR)            # the edit starts on the version we see now
    mine = b"my edit " * 64
    os.ftruncate(fd, 0)
    os.pwrite(fd, mine, 0)
    # Meanwhile somebody else saves a new version in Procore.
    mounted.emulator.control("POST", f"remote/files/{before.id}/versions",
                             json={"size": 4096, "notes": "their save"}).raise_for_status()
    theirs = mounted.remote().sha256(item(mounted.remote(), rel))
    os.close(fd)

    def conflicts() -> list[dict[str, str]]:
        status = json.loads(mounted.cli("status", "--json", str(mounted.path)).stdout)
        found: list[dict[str, str]] = status["conflicts"]
        return found

    wait_for(lambda: bool(conflicts()), 30, "the conflict to show in the status")
    (conflict,) = conflicts()
    copy_name = conflict["conflict_name"]
    stem, ext = os.path.splitext(os.path.basename(rel))
    assert copy_name.startswith(f"{stem} (conflict ") and copy_name.endswith(f"){ext}")
    assert "conflict:" in mounted.cli("status", str(mounted.path)).stdout
    assert "conflict" in mounted.log_text()
    remote = stopped(mounted)
    after = item(remote, rel)
    assert after.id == before.id and remote.sha256(after) == theirs   # theirs is kept
    folder = os.path.dirname(rel)
    copy = item(remote, f"{folder}/{copy_name}")
    assert remote.sha256(copy) == sha(mine)                           # mine is beside it
