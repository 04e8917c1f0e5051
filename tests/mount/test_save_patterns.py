"""Every save dance of shared/save-patterns.md, replayed with os calls on a real mount.

After unmount (which sends the queue), Procore must hold exactly one new version of the SAME
file id per save, with the saved bytes, and no temp, lock or backup file in the folder or in
the recycle bin. docs/semantics.md cites these tests.
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.mount.conftest import Mounted, MountFactory, wait_for
from tests.mount.writing import FOLDER, bin_names, item, sha, stopped, write_file

pytestmark = pytest.mark.mount

V1 = b"original content " * 200
V2 = b"saved content v2 " * 230
V3 = b"saved content v3 " * 190


def _seed(mounted: Mounted, name: str, data: bytes) -> int:
    """A file that exists in Procore before the mount looks at the folder."""
    remote = mounted.remote()
    folder = item(remote, FOLDER).id
    response = mounted.emulator.control("POST", "remote/files", json={
        "project_id": mounted.project_id, "parent_id": folder, "name": name,
        "content_b64": base64.b64encode(data).decode()})
    assert response.status_code < 400, response.text
    return int(response.json()["id"])


def _saved(mounted: Mounted) -> int:
    status = json.loads(mounted.cli("status", "--json", str(mounted.path)).stdout)
    return int(status["counts"]["committed"]) + int(status["counts"]["unchanged"])


def _create(path: Path, data: bytes, *, excl: bool = True) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if excl else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _replay(mount_factory: MountFactory, name: str, saves: list[bytes],
            dance: Callable[[Path, bytes], None], *, seed_data: bytes = V1,
            extra_names: tuple[str, ...] = ()) -> None:
    """Seed ``name``, run ``dance`` once per save, unmount, and check Procore."""
    mounted = mount_factory(extra=["--commit-debounce", "0.3"])
    file_id = _seed(mounted, name, seed_data)
    remote = mounted.remote()
    before_bin = bin_names(remote)
    before = {p for p in remote.tree() if p.startswith(FOLDER + "/")}
    folder = mounted.path / FOLDER
    for done, data in enumerate(saves, 1):
        dance(folder, data)
        assert (folder / name).read_bytes() == data       # the mount shows the save at once
        # Saves come minutes apart in life; here each waits for the one before to be in
        # Procore (saves within the debounce second would be one version, by design).
        wait_for(lambda n=done: _saved(mounted) >= n, 30, f"save {done} to reach Procore")
    remote = stopped(mounted)
    after = item(remote, f"{FOLDER}/{name}")
    assert after.id == file_id                              # the same Procore file
    versions = remote.versions(file_id)
    distinct = [saves[0]] + [b for a, b in itertools.pairwise(saves) if a != b]
    assert len(versions) == 1 + len(distinct), [v["number"] for v in versions]
    assert remote.sha256(after) == sha(saves[-1])
    assert {p for p in remote.tree() if p.startswith(FOLDER + "/")} == before
    assert bin_names(remote) == before_bin                  # nothing went to the recycle bin
    for stray in extra_names:
        assert stray not in {p.rsplit("/", 1)[-1] for p in remote.tree()}


def test_word_save_with_delete(mount_factory: MountFactory) -> None:
    def word(d: Path, data: bytes) -> None:
        _create(d / "~$port.docx", b"Dana Demo")
        _create(d / "~WRD0000.tmp", data)
        os.unlink(d / "Report.docx")
        os.rename(d / "~WRD0000.tmp", d / "Report.docx")
        os.unlink(d / "~$port.docx")
    _replay(mount_factory, "Report.docx", [V2], word)


def test_word_save_with_set_aside_and_a_handle_open_across_the_renames(
        mount_factory: MountFactory) -> None:
    def word(d: Path, data: bytes) -> None:
        _create(d / "~$port.docx", b"Dana Demo")
        with open(d / "Report.docx", "rb") as held:           # Word keeps the old one open
            _create(d / "~WRD0001.tmp", data)
            os.rename(d / "Report.docx", d / "~WRL0001.tmp")
            os.rename(d / "~WRD0001.tmp", d / "Report.docx")
            assert held.read(8) == V1[:8]                      # still the old document
        os.unlink(d / "~WRL0001.tmp")
        os.unlink(d / "~$port.docx")
    _replay(mount_factory, "Report.docx", [V2], word)


def test_excel_save_then_a_no_change_save_makes_one_version(
        mount_factory: MountFactory) -> None:
    temps = iter(["4CCA4100", "7B3E01AF"])

    def excel(d: Path, data: bytes) -> None:
        (d / "Budget.xlsx").read_bytes()                       # the workbook was open
        temp = next(temps)
        _create(d / temp, data)
        os.unlink(d / "Budget.xlsx")
        os.rename(d / temp, d / "Budget.xlsx")
    _replay(mount_factory, "Budget.xlsx", [V2, V2], excel)


def test_powerpoint_save(mount_factory: MountFactory) -> None:
    def ppt(d: Path, data: bytes) -> None:
        _create(d / "~$Deck.pptx", b"Dana Demo")
        _create(d / "ppt1A2B.tmp", data)
        os.replace(d / "ppt1A2B.tmp", d / "Deck.pptx")
        os.unlink(d / "~$Deck.pptx")
    _replay(mount_factory, "Deck.pptx", [V2], ppt)


def test_autocad_full_saves(mount_factory: MountFactory) -> None:
    temps = iter(["atmp1234", "atmp1235"])

    def acad(d: Path, data: bytes) -> None:
        _create(d / "Plan.dwl", b"who", excl=False)
        _create(d / "Plan.dwl2", b"<xml/>", excl=False)
        temp = next(temps)
        _create(d / temp, data)
        if (d / "Plan.bak").exists():
            os.unlink(d / "Plan.bak")
        os.rename(d / "Plan.dwg", d / "Plan.bak")
        os.rename(d / temp, d / "Plan.dwg")
        os.unlink(d / "Plan.dwl")
        os.unlink(d / "Plan.dwl2")
    _replay(mount_factory, "Plan.dwg", [V2, V3], acad, extra_names=("Plan.bak",))


def test_autocad_incremental_saves(mount_factory: MountFactory) -> None:
    temps = iter(["atmp2001", "atmp2002"])

    def incremental(d: Path, data: bytes) -> None:
        temp = next(temps)
        with open(d / "Site.dwg", "rb") as src, open(d / temp, "wb") as dst:
            dst.write(src.read())                               # copy, then patch in place
        fd = os.open(d / temp, os.O_RDWR)
        for offset in range(0, len(data), 1000):               # changes at many offsets
            os.pwrite(fd, data[offset:offset + 500], offset)
        os.truncate(d / temp, len(data))
        for offset in range(500, len(data), 1000):
            os.pwrite(fd, data[offset:offset + 500], offset)
        os.close(fd)
        if (d / "Site.bak").exists():
            os.unlink(d / "Site.bak")
        os.rename(d / "Site.dwg", d / "Site.bak")
        os.rename(d / temp, d / "Site.dwg")
    _replay(mount_factory, "Site.dwg", [V2, V3], incremental, extra_names=("Site.bak",))


def test_libreoffice_new_file(mount_factory: MountFactory) -> None:
    """The traced sequence of ``soffice --convert-to`` onto a new name, with os calls."""
    mounted = mount_factory()
    d = mounted.path / FOLDER
    before_bin = bin_names(mounted.remote())
    lock = d / ".~lock.Minutes.docx#"
    _create(lock, b",Dana Demo,host,03.12.2026 20:00,file:///home/dana/.config/libreoffice4;")
    temp = d / "lu4821kq9z.tmp"
    _create(temp, b"")
    fd = os.open(temp, os.O_RDWR)
    os.pwrite(fd, V2, 0)
    os.close(fd)
    fd = os.open(d / "Minutes.docx", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, temp.read_bytes())
    os.close(fd)
    os.unlink(temp)
    fd = os.open(d / "Minutes.docx", os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.fsync(fd)                                                # in Procore when it returns
    fcntl.lockf(fd, fcntl.LOCK_UN)
    os.close(fd)
    lock.read_bytes()
    os.unlink(lock)
    remote = stopped(mounted)
    found = item(remote, f"{FOLDER}/Minutes.docx")
    assert len(remote.versions(found.id)) == 1 and remote.sha256(found) == sha(V2)
    names = {p.rsplit("/", 1)[-1] for p in remote.tree()}
    assert not {".~lock.Minutes.docx#", "lu4821kq9z.tmp"} & names
    assert bin_names(remote) == before_bin


def test_libreoffice_overwrite(mount_factory: MountFactory) -> None:
    def lo(d: Path, data: bytes) -> None:
        lock = d / ".~lock.Notes.odt#"
        _create(lock, b",Dana Demo,host,03.12.2026 20:00,;")
        temp = d / "lu77abc.tmp"
        _create(temp, b"")
        fd = os.open(temp, os.O_RDWR)
        os.pwrite(fd, data, 0)
        os.close(fd)
        with pytest.raises(FileExistsError):
            os.open(d / "Notes.odt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.rename(temp, d / "Notes.odt")
        os.chown(d / "Notes.odt", -1, os.getgid())
        os.chmod(d / "Notes.odt", 0o644)
        fd = os.open(d / "Notes.odt", os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.fsync(fd)
        os.close(fd)
        os.unlink(lock)
    _replay(mount_factory, "Notes.odt", [V2, V3], lo)


def test_vim_save(mount_factory: MountFactory) -> None:
    def vim(d: Path, data: bytes) -> None:
        _create(d / ".spec.txt.swp", b"swap", excl=False)
        _create(d / "4913", b"")
        os.unlink(d / "4913")
        os.rename(d / "spec.txt", d / "spec.txt~")
        _create(d / "spec.txt", data)
        os.unlink(d / "spec.txt~")
        os.unlink(d / ".spec.txt.swp")
    _replay(mount_factory, "spec.txt", [V2, V3], vim)


def test_gedit_save(mount_factory: MountFactory) -> None:
    def gedit(d: Path, data: bytes) -> None:
        _create(d / ".goutputstream-Q7ZK2X", data)
        os.rename(d / ".goutputstream-Q7ZK2X", d / "readme.md")
    _replay(mount_factory, "readme.md", [V2], gedit)


def test_rsync_update_of_an_existing_file(mount_factory: MountFactory) -> None:
    def rsync(d: Path, data: bytes) -> None:
        temp = d / ".sheet.csv.RbkzNC"
        _create(temp, b"")
        os.chmod(temp, 0o600)
        write_file(temp, data)
        os.utime(temp, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        os.chmod(temp, 0o644)
        os.rename(temp, d / "sheet.csv")
    _replay(mount_factory, "sheet.csv", [V2], rsync)


def test_a_temp_name_that_slips_the_patterns_never_reaches_procore(
        mount_factory: MountFactory) -> None:
    """An rsync temp with an all-lower-case suffix is not recognised as local-only; it is
    renamed before its commit's debounce ends, so only the final name is created."""
    mounted = mount_factory()
    d = mounted.path / FOLDER
    write_file(d / ".new.txt.abcdef", V2)
    os.rename(d / ".new.txt.abcdef", d / "new.txt")
    remote = stopped(mounted)
    names = {p.rsplit("/", 1)[-1] for p in remote.tree()}
    assert "new.txt" in names and ".new.txt.abcdef" not in names
    assert ".new.txt.abcdef" not in bin_names(remote)


def test_the_local_only_name_set_is_configurable(mount_factory: MountFactory) -> None:
    """``--local-only`` adds a pattern, ``--not-local-only`` takes a default one out."""
    mounted = mount_factory(extra=["--local-only", "scratch-*", "--not-local-only", "*.tmp"])
    d = mounted.path / FOLDER
    write_file(d / "scratch-1.txt", V2)     # local by configuration
    write_file(d / "notes.tmp", V3)         # local by default, uploaded by configuration
    write_file(d / "~$Report.docx", V1)     # the rest of the default set still holds
    assert (d / "scratch-1.txt").read_bytes() == V2   # visible on the mount all the same
    remote = stopped(mounted)
    names = {p.rsplit("/", 1)[-1] for p in remote.tree()}
    assert "notes.tmp" in names
    assert remote.sha256(item(remote, f"{FOLDER}/notes.tmp")) == sha(V3)
    assert "scratch-1.txt" not in names and "~$Report.docx" not in names
    assert not {"scratch-1.txt", "~$Report.docx"} & bin_names(remote)
