"""Browsing and reading the demo project through a real mount, compared with the API's view."""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
import subprocess
import unicodedata
from pathlib import Path

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import Mounted
from tests.mount.remote import Remote, RemoteItem

pytestmark = pytest.mark.mount


@pytest.fixture(scope="module")
def remote(demo_mount: Mounted) -> Remote:
    return demo_mount.remote()


@pytest.fixture(scope="module")
def tree(remote: Remote) -> dict[str, RemoteItem]:
    return remote.tree()


def _find(mountpoint: Path) -> dict[str, tuple[str, int, int]]:
    """``find`` of the mount: path -> (type letter, size, whole-second mtime)."""
    out = subprocess.run(["find", str(mountpoint), "-mindepth", "1", "-printf", r"%y %s %T@ %P\0"],
                         capture_output=True, check=True).stdout
    result = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        kind, size, mtime, path = record.split(b" ", 3)
        result[os.fsdecode(path)] = (kind.decode(), int(size), int(float(mtime)))
    return result


def test_find_matches_the_tree_procore_holds(demo_mount: Mounted,
                                             tree: dict[str, RemoteItem]) -> None:
    expected = {item.path: ("d" if item.kind == "dir" else "f",
                            item.size if item.kind == "file" else None, int(item.updated_at))
                for item in tree.values() if item.path}
    seen = _find(demo_mount.path)
    assert set(seen) == set(expected)
    for path, (kind, size, mtime) in seen.items():
        want_kind, want_size, want_mtime = expected[path]
        assert kind == want_kind, path
        if want_size is not None:
            assert size == want_size, path
        assert mtime == want_mtime, path


def test_ls_lR_lists_every_entry_with_sizes(demo_mount: Mounted,
                                            tree: dict[str, RemoteItem]) -> None:
    out = subprocess.run(["ls", "-lRn", "--time-style=+%s", str(demo_mount.path)],
                         capture_output=True, check=True, text=True).stdout
    files = [item for item in tree.values() if item.kind == "file"]
    # ls -l quotes nothing with -n and no tty; each file's name and size appear on its line.
    lines = out.splitlines()
    for item in files:
        name = item.path.rsplit("/", 1)[-1]
        assert any(line.endswith(" " + name) and f" {item.size} " in line for line in lines), \
            name
    assert sum(1 for line in lines if line.startswith("-")) == len(files)
    folders = [item for item in tree.values() if item.kind == "dir" and item.path]
    assert sum(1 for line in lines if line.startswith("d")) == len(folders)


def test_stat_reports_times_modes_and_owner(demo_mount: Mounted,
                                            tree: dict[str, RemoteItem]) -> None:
    item = tree[seed.MULTI_VERSION_PATHS[0]]
    st = os.stat(demo_mount.path / item.path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert st.st_size == item.size
    assert int(st.st_mtime) == int(item.updated_at)
    assert item.created_at is not None and int(st.st_ctime) == int(item.created_at)
    assert st.st_ctime < st.st_mtime  # the demo file has versions added after its creation
    folder = os.stat(demo_mount.path / "01 Drawings")
    assert stat.S_ISDIR(folder.st_mode) and stat.S_IMODE(folder.st_mode) == 0o755


def test_every_file_reads_back_the_emulators_bytes(demo_mount: Mounted, remote: Remote,
                                                   tree: dict[str, RemoteItem]) -> None:
    files = [item for item in tree.values() if item.kind == "file"]
    assert any(item.size > 64 * 2**20 for item in files), "the demo seed lost its big file"
    for item in files:
        digest = hashlib.sha256()
        with open(demo_mount.path / item.path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        assert digest.hexdigest() == remote.sha256(item), item.path


def test_cat_cp_and_sha256sum_agree_with_the_emulator(demo_mount: Mounted, remote: Remote,
                                                      tree: dict[str, RemoteItem],
                                                      tmp_path: Path) -> None:
    big = tree[seed.BIG_FILE_PATH]
    small = tree[seed.MULTI_VERSION_PATHS[0]]
    for item in (small, big):
        source = demo_mount.path / item.path
        copy = tmp_path / "copy.bin"
        subprocess.run(["cp", str(source), str(copy)], check=True)
        assert copy.stat().st_size == item.size
        summed = subprocess.run(["sha256sum", str(source)], capture_output=True, check=True,
                                text=True).stdout.split()[0]
        assert summed == remote.sha256(item) == _sha256_file(copy), item.path
        catted = subprocess.run(f"cat {_q(source)} | sha256sum", shell=True, check=True,
                                capture_output=True, text=True).stdout.split()[0]
        assert catted == summed


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _q(path: Path) -> str:
    return shlex.quote(str(path))


def test_random_reads_of_the_big_file_match(demo_mount: Mounted, remote: Remote,
                                            tree: dict[str, RemoteItem]) -> None:
    big = tree[seed.BIG_FILE_PATH]
    whole = hashlib.sha256()
    with open(demo_mount.path / big.path, "rb") as fh:
        tail = os.pread(fh.fileno(), 4096, big.size - 1000)
        assert len(tail) == 1000
        head = os.pread(fh.fileno(), 100, 0)
        middle = os.pread(fh.fileno(), 3 * 2**20, big.size // 2)
        while chunk := fh.read(1 << 22):
            whole.update(chunk)
    assert whole.hexdigest() == remote.sha256(big)
    with open(demo_mount.path / big.path, "rb") as fh:
        data = fh.read()
    assert data[:100] == head
    assert data[-1000:] == tail
    assert data[big.size // 2: big.size // 2 + 3 * 2**20] == middle


def test_extended_attributes_name_the_procore_item(demo_mount: Mounted,
                                                   tree: dict[str, RemoteItem]) -> None:
    item = tree[seed.MULTI_VERSION_PATHS[0]]
    path = demo_mount.path / item.path
    names = os.listxattr(path)
    assert {"user.procore.id", "user.procore.version", "user.procore.web_url"} <= set(names)
    assert os.getxattr(path, "user.procore.id") == str(item.id).encode()
    assert os.getxattr(path, "user.procore.version").strip() == b"3"
    assert os.getxattr(path, "user.procore.web_url").startswith(b"http")
    folder = tree["01 Drawings"]
    assert os.getxattr(demo_mount.path / "01 Drawings", "user.procore.id") == \
        str(folder.id).encode()
    with pytest.raises(OSError) as excinfo:
        os.getxattr(path, "security.selinux")
    assert excinfo.value.errno == 61  # ENODATA


def test_a_file_checked_out_by_someone_else_is_read_only_and_says_by_whom(
        demo_mount: Mounted) -> None:
    path = demo_mount.path / seed.CHECKED_OUT_PATH
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert os.access(path, os.R_OK) and not os.access(path, os.W_OK)
    holder = [n for n in os.listxattr(path) if "checked_out" in n]
    assert holder, os.listxattr(path)
    values = b" ".join(os.getxattr(path, n) for n in holder)
    assert seed.OTHER_USER_LOGIN.encode() in values or seed.OTHER_USER_NAME.encode() in values


def test_names_windows_forbids_and_non_ascii_names_are_reachable(
        demo_mount: Mounted, remote: Remote, tree: dict[str, RemoteItem]) -> None:
    for rel in (*seed.FORBIDDEN_NAME_PATHS, *seed.NON_ASCII_PATHS):
        item = tree[rel]
        with open(demo_mount.path / rel, "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == remote.sha256(item), rel


def test_nfd_spelling_reaches_the_same_file(demo_mount: Mounted) -> None:
    nfc = next(p for p in seed.NON_ASCII_PATHS if "é" in p)
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert os.stat(demo_mount.path / nfd).st_size == os.stat(demo_mount.path / nfc).st_size


def test_a_path_longer_than_260_characters_works(demo_mount: Mounted, remote: Remote,
                                                 tree: dict[str, RemoteItem]) -> None:
    path = demo_mount.path / seed.LONG_PATH
    assert len(seed.LONG_PATH) > 260
    assert path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == remote.sha256(tree[seed.LONG_PATH])


def test_deleted_items_and_the_recycle_bin_are_hidden(demo_mount: Mounted) -> None:
    assert not (demo_mount.path / seed.DELETED_FILE_PATH).exists()
    assert not (demo_mount.path / seed.DELETED_FOLDER_PATH).exists()
    names = {entry.lower() for entry in os.listdir(demo_mount.path)}
    assert not any("recycle" in name for name in names)


def test_probes_for_missing_names_answer_enoent(demo_mount: Mounted) -> None:
    for probe in ("desktop.ini", ".DS_Store", ".hidden", "autorun.inf"):
        assert not (demo_mount.path / probe).exists()
        assert not (demo_mount.path / "01 Drawings" / probe).exists()
