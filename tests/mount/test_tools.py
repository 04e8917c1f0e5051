"""Real programs copy a tree onto the mount: afterwards Procore holds exactly the local tree.

``cp -r``, ``tar x``, ``rsync -a`` and ``git clone`` each write a small tree (nested folders,
empty files and folders, odd sizes, a binary file) into a fresh folder of the mount; after
unmount the oracle compares Procore's tree, byte for byte, with the local one, and checks that
no temp or lock name (rsync's ``.X.XXXXXX``, git's ``*.lock``) reached Procore or its bin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.mount.conftest import MountFactory
from tests.mount.control import log_mark, requests_since
from tests.mount.writing import bin_names, creates, local_tree, remote_tree, stopped

pytestmark = pytest.mark.mount


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    (root / "docs" / "deep" / "deeper").mkdir(parents=True)
    (root / "empty folder").mkdir()
    (root / "README.md").write_text("# Tower\n")
    (root / "docs" / "spec.txt").write_bytes(b"x" * 12345)
    (root / "docs" / "deep" / "empty.txt").write_bytes(b"")
    (root / "docs" / "deep" / "deeper" / "data.bin").write_bytes(os.urandom(300_001))
    (root / "docs" / "notes (2).txt").write_text("odd name, spaces and parentheses\n")
    return root


def _check(mount_factory: MountFactory, source: Path, name: str,
           command: list[str] | None = None, *, compare: Path | None = None) -> None:
    mounted = mount_factory(extra=["--commit-debounce", "0.3"])
    target = mounted.path / name
    mark = log_mark(mounted.emulator)
    if command is None:
        shutil.copytree(source, target)
    else:
        subprocess.run([c.replace("{target}", str(target)) for c in command], check=True,
                       cwd=source.parent, capture_output=True)
    expected = local_tree(compare or source)
    assert local_tree(target) == expected                    # the mount shows it at once
    remote = stopped(mounted)
    assert remote_tree(remote, name) == expected
    names = {p.rsplit("/", 1)[-1] for p in remote.tree()} | bin_names(remote)
    assert not [n for n in names if n.endswith(".lock") or n.startswith(".fuse_hidden")]
    files = [v for v in expected.values() if v != "dir"]
    made = creates(requests_since(mounted.emulator, mark))
    assert len([r for r in made if r["status"] == 201]) == len(files)   # each created once


def test_shutil_copytree(mount_factory: MountFactory, source: Path) -> None:
    _check(mount_factory, source, "copytree")


def test_cp_r(mount_factory: MountFactory, source: Path) -> None:
    _check(mount_factory, source, "cp", ["cp", "-r", str(source), "{target}"])


def test_tar_x(mount_factory: MountFactory, source: Path, tmp_path: Path) -> None:
    archive = tmp_path / "tree.tar"
    subprocess.run(["tar", "cf", str(archive), "-C", str(source), "."], check=True)
    mounted_name = "untarred"

    def untar(target: Path) -> None:
        target.mkdir()
        subprocess.run(["tar", "xf", str(archive), "-C", str(target)], check=True)

    mounted = mount_factory(extra=["--commit-debounce", "0.3"])
    untar(mounted.path / mounted_name)
    expected = local_tree(source)
    assert local_tree(mounted.path / mounted_name) == expected
    remote = stopped(mounted)
    assert remote_tree(remote, mounted_name) == expected


def test_rsync_a(mount_factory: MountFactory, source: Path) -> None:
    assert shutil.which("rsync"), "rsync is missing: run scripts/ensure-libreoffice"
    _check(mount_factory, source, "synced",
           ["rsync", "-a", str(source) + "/", "{target}/"])


def test_git_clone(mount_factory: MountFactory, source: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(source, repo)
    git = ["git", "-c", "user.name=Dana", "-c", "user.email=dana@example.test",
           "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "-m", "tree"], check=True)
    mounted = mount_factory(extra=["--commit-debounce", "0.3"])
    target = mounted.path / "clone"
    subprocess.run([*git, "clone", "-q", "--no-hardlinks", str(repo), str(target)],
                   check=True, capture_output=True)
    assert subprocess.run([*git, "-C", str(target), "status", "--porcelain"], check=True,
                          capture_output=True, text=True).stdout == ""
    expected = local_tree(target)
    remote = stopped(mounted)
    assert remote_tree(remote, "clone") == expected
    names = {p.rsplit("/", 1)[-1] for p in remote.tree()} | bin_names(remote)
    assert not [n for n in names if n.endswith(".lock")]
    # The worktree itself is exactly the source tree (git does not keep empty folders).
    worktree = {k: v for k, v in expected.items() if not k.startswith(".git")}
    assert worktree == {k: v for k, v in local_tree(source).items() if "empty folder" not in k}
