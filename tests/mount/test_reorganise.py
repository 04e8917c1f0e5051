"""Reorganising through the mount: what Procore holds afterwards, read over plain HTTP."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
from pathlib import Path

import pytest

from tests.mount.conftest import MountFactory, wait_for
from tests.mount.remote import RemoteItem

pytestmark = pytest.mark.mount

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old: Path, new: Path, flags: int) -> None:
    if _libc.renameat2(_AT_FDCWD, os.fsencode(old), _AT_FDCWD, os.fsencode(new), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(new))


def _under(tree: dict[str, RemoteItem], prefix: str) -> dict[str, RemoteItem]:
    return {path[len(prefix) + 1:]: item for path, item in tree.items()
            if path.startswith(prefix + "/")}


def test_a_folder_with_children_renamed_and_moved_keeps_its_ids(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    remote = mounted.remote()
    before = remote.tree()
    old, new = "01 Drawings/Structural", "02 Specifications/Structural (moved)"
    children = _under(before, old)
    assert children, "the demo folder should have children"

    os.rename(mounted.path / old, mounted.path / new)

    assert not (mounted.path / old).exists()
    assert sorted(os.listdir(mounted.path / new)) == sorted(
        p for p in children if "/" not in p)
    after = remote.tree()
    assert old not in after
    assert after[new].id == before[old].id
    assert after[new].parent_id == before["02 Specifications"].id
    assert after[new].name == "Structural (moved)"
    moved = _under(after, new)
    assert {p: i.id for p, i in moved.items()} == {p: i.id for p, i in children.items()}


def test_a_file_renamed_and_moved_keeps_its_id_and_bytes(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    remote = mounted.remote()
    before = remote.tree()
    old = "01 Drawings/Architectural/A-201 Exterior Elevations.pdf"
    new = "04 RFIs/Elevations (for RFI).pdf"
    digest = remote.sha256(before[old])

    os.rename(mounted.path / old, mounted.path / new)

    after = remote.tree()
    assert old not in after
    assert after[new].id == before[old].id
    assert after[new].parent_id == before["04 RFIs"].id
    assert after[new].version_id == before[old].version_id  # moved, not re-uploaded
    assert hashlib.sha256((mounted.path / new).read_bytes()).hexdigest() == digest


def test_mkdir_rmdir_and_unlink_show_up_in_procore(mount_factory: MountFactory) -> None:
    # A deleted file's DELETE waits out the save-pattern grace period (1 s here).
    mounted = mount_factory(extra=["--delete-grace", "1"])
    remote = mounted.remote()
    victim = "07 Meeting Minutes/Café Tenant Fit-Out Kickoff.docx"
    victim_id = remote.tree()[victim].id

    os.mkdir(mounted.path / "New Folder")
    os.mkdir(mounted.path / "New Folder" / "Inner")
    tree = remote.tree()
    assert tree["New Folder"].kind == "dir"
    assert tree["New Folder/Inner"].parent_id == tree["New Folder"].id

    os.rmdir(mounted.path / "New Folder" / "Inner")
    os.unlink(mounted.path / victim)

    assert not (mounted.path / victim).exists()            # hidden at once
    tree = remote.tree()
    assert "New Folder/Inner" not in tree and "New Folder" in tree
    wait_for(lambda: remote.file(victim_id)["is_deleted"] is True, 20,
             "the deferred delete")                        # in the recycle bin, not gone
    assert victim not in remote.tree()
    assert not (mounted.path / victim).exists()
    assert os.listdir(mounted.path / "New Folder") == []


def test_rmdir_of_a_folder_with_children_is_enotempty(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    with pytest.raises(OSError) as excinfo:
        os.rmdir(mounted.path / "01 Drawings")
    assert excinfo.value.errno == errno.ENOTEMPTY
    assert "01 Drawings" in mounted.remote().tree()


def test_mkdir_over_an_existing_name_is_eexist(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    with pytest.raises(FileExistsError):
        os.mkdir(mounted.path / "01 Drawings")


def test_rename_over_an_existing_file_replaces_it(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    remote = mounted.remote()
    folder = "08 Schedules"
    names = sorted(p for p in os.listdir(mounted.path / folder)
                   if (mounted.path / folder / p).is_file())
    assert len(names) >= 2
    source, target = f"{folder}/{names[0]}", f"{folder}/{names[1]}"
    before = remote.tree()
    source_digest = remote.sha256(before[source])

    os.replace(mounted.path / source, mounted.path / target)

    assert not (mounted.path / source).exists()
    assert hashlib.sha256((mounted.path / target).read_bytes()).hexdigest() == source_digest
    after = remote.tree()
    assert source not in after
    assert remote.sha256(after[target]) == source_digest
    assert [p for p in after if p.startswith(folder + "/")].count(target) == 1


def test_renameat2_noreplace_refuses_an_existing_target(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    folder = mounted.path / "08 Schedules"
    first, second = sorted(p for p in os.listdir(folder) if (folder / p).is_file())[:2]
    size_before = (folder / second).stat().st_size
    with pytest.raises(OSError) as excinfo:
        renameat2(folder / first, folder / second, RENAME_NOREPLACE)
    assert excinfo.value.errno == errno.EEXIST
    assert (folder / first).exists() and (folder / second).stat().st_size == size_before

    renameat2(folder / first, folder / "Fresh Name.xlsx", RENAME_NOREPLACE)
    assert (folder / "Fresh Name.xlsx").exists() and not (folder / first).exists()
    assert "08 Schedules/Fresh Name.xlsx" in mounted.remote().tree()


def test_renameat2_exchange_is_refused_not_faked(mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    folder = mounted.path / "08 Schedules"
    first, second = sorted(p for p in os.listdir(folder) if (folder / p).is_file())[:2]
    sizes = ((folder / first).stat().st_size, (folder / second).stat().st_size)
    with pytest.raises(OSError) as excinfo:
        renameat2(folder / first, folder / second, RENAME_EXCHANGE)
    assert excinfo.value.errno == errno.EINVAL
    assert ((folder / first).stat().st_size, (folder / second).stat().st_size) == sizes


def test_unlinking_an_open_file_keeps_its_descriptor_and_deletes_it_after_the_last_close(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    remote = mounted.remote()
    rel = "07 Meeting Minutes/Café Tenant Fit-Out Kickoff.docx"
    file_id = remote.tree()[rel].id
    path = mounted.path / rel
    with open(path, "rb") as fh:
        head = fh.read(100)
        os.unlink(path)
        assert not path.exists()
        # libfuse keeps the open file as .fuse_hidden*: local-only, never uploaded.
        hidden = [n for n in os.listdir(path.parent) if n.startswith(".fuse_hidden")]
        assert len(hidden) == 1
        assert os.fstat(fh.fileno()).st_size > 100          # no ESTALE
        fh.seek(0)
        assert fh.read(100) == head
        assert remote.file(file_id)["is_deleted"] is False  # not while it is open
    wait_for(lambda: not [n for n in os.listdir(path.parent) if n.startswith(".fuse_hidden")],
             10, "libfuse to drop the hidden name after the last close")
    mounted.stop()
    assert remote.file(file_id)["is_deleted"] is True       # sent by the unmount at the latest
    assert not [p for p in remote.tree() if ".fuse_hidden" in p]
    assert not [r for r in remote.recycle_bin() if ".fuse_hidden" in str(r["name"])]
