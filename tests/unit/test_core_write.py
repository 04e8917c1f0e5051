"""The write path of ``ProcoreFS`` over a fake Procore, with a manual clock.

Commits are driven synchronously (``fs.run_commits()``), so every assertion on the fake's side
is deterministic: what Procore holds, how many versions, which calls were made. The same
behaviours are replayed through a real kernel mount against the emulator in
``tests/mount/test_write*.py`` and ``tests/mount/test_save_patterns.py``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procorefs.api import Scope
from procorefs.clock import ManualClock
from procorefs.core.fs import CoreConfig, Layout, ProcoreFS
from procorefs.errors import FsAccessDenied, FsExists, FsNotFound, FsOffline
from tests.core.fakeclient import OTHER, FakeClient

CO, P1 = 10, 100
S1 = Scope(CO, P1)
WR = os.O_WRONLY
RW = os.O_RDWR


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_750_000_000.0)


@pytest.fixture
def client(clock: ManualClock) -> FakeClient:
    c = FakeClient(clock, company_id=CO, projects=(P1,))
    docs = c.add_folder(S1, "Docs")
    c.add_file(S1, "Report.docx", b"report v1 " * 300, docs)
    c.add_file(S1, "Book.xlsx", b"book v1 " * 500, docs)
    c.add_file(S1, "Empty.txt", b"", docs)
    return c


def _make(tmp_path: Path, client: FakeClient, clock: ManualClock, **kw: object) -> ProcoreFS:
    config = CoreConfig(layout=Layout("project", CO, P1), cache_dir=tmp_path / "cache",
                        **kw)  # type: ignore[arg-type]
    return ProcoreFS(client, config, clock=clock)


@pytest.fixture
def fs(tmp_path: Path, client: FakeClient, clock: ManualClock) -> Iterator[ProcoreFS]:
    core = _make(tmp_path, client, clock)
    yield core
    core.close(drain=0)


def _write(fs: ProcoreFS, path: str, data: bytes, flags: int = WR | os.O_TRUNC) -> None:
    handle = fs.create(path, flags | os.O_CREAT)
    try:
        fs.write(handle, 0, data)
        fs.flush(handle)
    finally:
        fs.release(handle)


def _read(fs: ProcoreFS, path: str) -> bytes:
    handle = fs.open(path, os.O_RDONLY)
    try:
        return fs.read(handle, 0, 1 << 24)
    finally:
        fs.release(handle)


def _remote(client: FakeClient, *parts: str) -> bytes:
    return client.find(S1, *parts).versions[-1][1]


def _files(client: FakeClient, folder: str = "Docs") -> dict[str, int]:
    """Live files in a folder of the fake: name -> number of versions."""
    parent = client.find(S1, folder).id
    return {n.name: len(n.versions) for n in client._nodes.values()
            if n.parent_id == parent and n.kind == "file" and not n.deleted}


def _deleted(client: FakeClient) -> list[str]:
    return sorted(n.name for n in client._nodes.values() if n.kind == "file" and n.deleted)


def _errno(call: Callable[[], object]) -> int | None:
    try:
        call()
    except OSError as exc:
        return exc.errno
    return None


# ---------------------------------------------------------------------- basic writing


def test_a_new_file_is_staged_at_close_and_committed_once(fs: ProcoreFS,
                                                          client: FakeClient) -> None:
    _write(fs, "/Docs/new.txt", b"hello")
    assert fs.getattr("/Docs/new.txt").size == 5
    assert "new.txt" in [e.name for e in fs.readdir("/Docs")]
    assert "new.txt" not in _files(client)          # nothing reached Procore at close
    assert fs.status()["waiting"][0]["path"] == "/Docs/new.txt"
    assert fs.run_commits() == 1
    assert _files(client)["new.txt"] == 1
    assert _remote(client, "Docs", "new.txt") == b"hello"
    assert client.calls["create_file"] == 1 and client.calls["upload"] == 1
    calls = sum(client.calls.values())
    st = fs.getattr("/Docs/new.txt")                # shown from the cache at once
    assert st.size == 5 and st.remote_id == client.find(S1, "Docs", "new.txt").id
    assert _read(fs, "/Docs/new.txt") == b"hello"   # from the content cache, no download
    assert sum(client.calls.values()) == calls


def test_read_your_writes_across_handles_and_at_any_offset(fs: ProcoreFS,
                                                           client: FakeClient) -> None:
    base = _remote(client, "Docs", "Report.docx")
    reader = fs.open("/Docs/Report.docx", os.O_RDONLY)     # opened before the writer
    writer = fs.open("/Docs/Report.docx", RW)
    fs.write(writer, 10, b"XYZ")
    fs.write(writer, len(base) + 5, b"tail")             # past the end: a hole of zeros
    expected = base[:10] + b"XYZ" + base[13:] + b"\0" * 5 + b"tail"
    assert fs.read(writer, 0, 1 << 20) == expected
    assert fs.read(reader, 0, 1 << 20) == expected
    other = fs.open("/Docs/Report.docx", os.O_RDONLY)
    assert fs.read(other, 5, 10) == expected[5:15]
    for h in (reader, writer, other):
        fs.flush(h)
        fs.release(h)
    fs.run_commits()
    node = client.find(S1, "Docs", "Report.docx")
    assert len(node.versions) == 2 and node.versions[-1][1] == expected


def test_o_trunc_o_append_truncate_and_ftruncate(fs: ProcoreFS, client: FakeClient) -> None:
    h = fs.open("/Docs/Report.docx", WR | os.O_TRUNC)
    assert fs.getattr("/Docs/Report.docx").size == 0
    fs.write(h, 0, b"abc")
    fs.release(h)
    h = fs.open("/Docs/Report.docx", WR | os.O_APPEND)
    fs.write(h, 0, b"def")                                 # O_APPEND ignores the offset
    fs.truncate("/Docs/Report.docx", 8, h)                 # ftruncate up: zeros
    fs.release(h)
    assert _read(fs, "/Docs/Report.docx") == b"abcdef\0\0"
    fs.truncate("/Docs/Report.docx", 2)                    # truncate(2) by path, down
    assert _read(fs, "/Docs/Report.docx") == b"ab"
    fs.run_commits()
    node = client.find(S1, "Docs", "Report.docx")
    # The close/reopen burst within the debounce is one version.
    assert len(node.versions) == 2 and node.versions[-1][1] == b"ab"


def test_zero_byte_files_are_created_and_an_unchanged_empty_file_makes_no_version(
        fs: ProcoreFS, client: FakeClient) -> None:
    _write(fs, "/Docs/zero.txt", b"")
    h = fs.open("/Docs/Empty.txt", WR | os.O_TRUNC)        # already empty
    fs.release(h)
    fs.run_commits()
    assert _files(client)["zero.txt"] == 1
    assert _remote(client, "Docs", "zero.txt") == b""
    assert _files(client)["Empty.txt"] == 1


def test_o_excl_on_an_existing_or_pending_file_is_eexist(fs: ProcoreFS) -> None:
    with pytest.raises(FsExists):
        fs.create("/Docs/Report.docx", WR | os.O_CREAT | os.O_EXCL)
    _write(fs, "/Docs/p.txt", b"1")
    with pytest.raises(FsExists):
        fs.create("/Docs/p.txt", WR | os.O_CREAT | os.O_EXCL)


def test_an_open_for_write_that_changes_nothing_stages_nothing(fs: ProcoreFS,
                                                                client: FakeClient) -> None:
    h = fs.open("/Docs/Report.docx", RW)
    fs.read(h, 0, 100)
    fs.flush(h)
    fs.release(h)
    assert fs.status()["waiting"] == []
    assert fs.run_commits() == 0


@pytest.mark.allow_log("checked out in Procore by Other Person")
def test_a_file_checked_out_by_someone_else_cannot_be_opened_for_writing(
        fs: ProcoreFS, client: FakeClient, clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    client.set_checkout(client.find(S1, "Docs", "Book.xlsx").id, OTHER, clock.time() + 600)
    with pytest.raises(FsAccessDenied):
        fs.open("/Docs/Book.xlsx", WR)
    assert "Other Person <other@test>" in caplog.text


def test_fsync_waits_for_the_commit(fs: ProcoreFS, client: FakeClient) -> None:
    fs.start_commits()
    h = fs.create("/Docs/sync.txt", WR | os.O_CREAT)
    fs.write(h, 0, b"durable")
    fs.fsync(h)                                         # returns once Procore has it
    assert _remote(client, "Docs", "sync.txt") == b"durable"
    fs.release(h)


@pytest.mark.allow_log("Procore cannot be reached")
def test_fsync_offline_reports_ehostunreach_and_the_save_stays_queued(
        fs: ProcoreFS, client: FakeClient) -> None:
    fs.start_commits()
    fs.readdir("/Docs")                                  # seen once, then offline
    client.offline = True
    h = fs.create("/Docs/off.txt", WR | os.O_CREAT)
    fs.write(h, 0, b"later")
    with pytest.raises(FsOffline):
        fs.fsync(h)
    fs.release(h)                                       # close still succeeds
    assert fs.status()["waiting"] or fs.status()["uploading"]
    client.offline = False
    assert fs.wait_for_commits(10)
    assert _remote(client, "Docs", "off.txt") == b"later"


# ---------------------------------------------------------------------- save patterns


def test_local_only_names_are_shown_and_never_uploaded(fs: ProcoreFS,
                                                        client: FakeClient) -> None:
    for name in ("~$port.docx", ".~lock.Report.docx#", "4CCA4100", "x.swp", "ppt123.tmp"):
        _write(fs, f"/Docs/{name}", b"lock")
        assert fs.getattr(f"/Docs/{name}").size == 4
        assert fs.getxattr(f"/Docs/{name}", "user.procore.state") == b"local-only"
    fs.run_commits()
    assert set(_files(client)) == {"Report.docx", "Book.xlsx", "Empty.txt"}
    assert client.calls["upload"] == 0


def test_word_save_with_delete_is_one_version_of_the_same_file(fs: ProcoreFS,
                                                               client: FakeClient) -> None:
    fid = client.find(S1, "Docs", "Report.docx").id
    _write(fs, "/Docs/~$port.docx", b"owner")
    _write(fs, "/Docs/~WRD0000.tmp", b"report v2")
    fs.unlink("/Docs/Report.docx")
    assert "Report.docx" not in [e.name for e in fs.readdir("/Docs")]
    fs.rename("/Docs/~WRD0000.tmp", "/Docs/Report.docx")
    fs.unlink("/Docs/~$port.docx")
    assert _read(fs, "/Docs/Report.docx") == b"report v2"
    fs.run_commits()
    node = client.find(S1, "Docs", "Report.docx")
    assert node.id == fid and len(node.versions) == 2 and node.versions[-1][1] == b"report v2"
    assert set(_files(client)) == {"Report.docx", "Book.xlsx", "Empty.txt"}
    assert _deleted(client) == [] and client.calls["delete_file"] == 0


def test_word_save_with_set_aside_is_one_version_of_the_same_file(fs: ProcoreFS,
                                                                  client: FakeClient) -> None:
    fid = client.find(S1, "Docs", "Report.docx").id
    old = _remote(client, "Docs", "Report.docx")
    _write(fs, "/Docs/~WRD0001.tmp", b"report v2")
    handle = fs.open("/Docs/Report.docx", os.O_RDONLY)   # a handle across the renames
    fs.rename("/Docs/Report.docx", "/Docs/~WRL0001.tmp")
    assert _read(fs, "/Docs/~WRL0001.tmp") == old
    fs.rename("/Docs/~WRD0001.tmp", "/Docs/Report.docx")
    assert fs.read(handle, 0, 9) == old[:9]
    fs.release(handle)
    fs.unlink("/Docs/~WRL0001.tmp")
    fs.run_commits()
    node = client.find(S1, "Docs", "Report.docx")
    assert node.id == fid and len(node.versions) == 2 and node.versions[-1][1] == b"report v2"
    assert set(_files(client)) == {"Report.docx", "Book.xlsx", "Empty.txt"}
    assert _deleted(client) == [] and client.calls["update_file"] == 0


def test_excel_save_and_a_no_change_save_makes_no_version(fs: ProcoreFS,
                                                          client: FakeClient) -> None:
    fid = client.find(S1, "Docs", "Book.xlsx").id
    same = _read(fs, "/Docs/Book.xlsx")                  # Excel read the workbook
    for content in (b"book v2", b"book v2"):             # a save, then Ctrl+S unchanged
        _write(fs, "/Docs/4CCA4100", content)
        fs.unlink("/Docs/Book.xlsx")
        fs.rename("/Docs/4CCA4100", "/Docs/Book.xlsx")
        fs.run_commits()
    _write(fs, "/Docs/0ABCDEF1", same)                   # and the original bytes again
    fs.unlink("/Docs/Book.xlsx")
    fs.rename("/Docs/0ABCDEF1", "/Docs/Book.xlsx")
    fs.run_commits()
    node = client.find(S1, "Docs", "Book.xlsx")
    assert node.id == fid
    assert [v[1] for v in node.versions] == [same, b"book v2", same]
    assert _deleted(client) == []


def test_autocad_full_save_keeps_the_drawing_id_and_uploads_no_backup(
        fs: ProcoreFS, client: FakeClient) -> None:
    dwg = client.add_file(S1, "A.dwg", b"dwg v1", client.find(S1, "Docs").id)
    _write(fs, "/Docs/atmp1234", b"dwg v2")
    fs.rename("/Docs/A.dwg", "/Docs/A.bak")              # set aside (sibling of A.dwg)
    fs.rename("/Docs/atmp1234", "/Docs/A.dwg")
    _write(fs, "/Docs/atmp1235", b"dwg v3")              # the next full save
    fs.unlink("/Docs/A.bak")
    fs.rename("/Docs/A.dwg", "/Docs/A.bak")
    fs.rename("/Docs/atmp1235", "/Docs/A.dwg")
    fs.run_commits()
    node = client.find(S1, "Docs", "A.dwg")
    assert node.id == dwg and node.versions[-1][1] == b"dwg v3"
    assert "A.bak" not in _files(client) and _deleted(client) == []
    assert _read(fs, "/Docs/A.bak") in (b"dwg v2", b"dwg v1")


def test_vim_save_with_backup_rename(fs: ProcoreFS, client: FakeClient) -> None:
    fid = client.find(S1, "Docs", "Report.docx").id
    _write(fs, "/Docs/.Report.docx.swp", b"swap")
    _write(fs, "/Docs/4913", b"")
    fs.unlink("/Docs/4913")
    fs.rename("/Docs/Report.docx", "/Docs/Report.docx~")
    _write(fs, "/Docs/Report.docx", b"edited in vim")
    fs.unlink("/Docs/Report.docx~")
    fs.unlink("/Docs/.Report.docx.swp")
    fs.run_commits()
    node = client.find(S1, "Docs", "Report.docx")
    assert node.id == fid and [v[1] for v in node.versions][-1] == b"edited in vim"
    assert len(node.versions) == 2 and _deleted(client) == []
    assert set(_files(client)) == {"Report.docx", "Book.xlsx", "Empty.txt"}


def test_a_pending_new_file_renamed_before_its_commit_is_created_once_under_the_new_name(
        fs: ProcoreFS, client: FakeClient) -> None:
    _write(fs, "/Docs/config.lock", b"[core]")           # git: *.lock is not local-only
    fs.rename("/Docs/config.lock", "/Docs/config")
    _write(fs, "/Docs/config.lock", b"[core]\nbare = false")
    fs.rename("/Docs/config.lock", "/Docs/config")        # over the pending one
    fs.run_commits()
    assert _files(client)["config"] == 1
    assert _remote(client, "Docs", "config") == b"[core]\nbare = false"
    assert "config.lock" not in _files(client) and client.calls["create_file"] == 1


def test_a_deleted_file_is_hidden_at_once_and_deleted_after_the_grace(
        fs: ProcoreFS, client: FakeClient, clock: ManualClock) -> None:
    fs.unlink("/Docs/Book.xlsx")
    assert _errno(lambda: fs.getattr("/Docs/Book.xlsx")) == errno.ENOENT
    assert client.calls["delete_file"] == 0
    fs.run_commits()
    assert _deleted(client) == ["Book.xlsx"]
    with pytest.raises(FsNotFound):
        fs.getattr("/Docs/Book.xlsx")


def test_rmdir_sends_the_deferred_deletes_of_its_files_first(fs: ProcoreFS,
                                                             client: FakeClient) -> None:
    fs.mkdir("/Docs/Sub")
    _write(fs, "/Docs/Sub/a.txt", b"a")
    fs.run_commits()
    fs.unlink("/Docs/Sub/a.txt")
    fs.rmdir("/Docs/Sub")
    assert "Sub" not in [e.name for e in fs.readdir("/Docs")]
    assert client.node(client.find(S1, "Docs").id)  # the parent is still there


@pytest.mark.allow_log("conflict: Report.docx changed in Procore since it was opened")
def test_a_remote_change_meanwhile_makes_a_conflict_copy(
        fs: ProcoreFS, client: FakeClient) -> None:
    fid = client.find(S1, "Docs", "Report.docx").id
    h = fs.open("/Docs/Report.docx", RW | os.O_TRUNC)
    fs.write(h, 0, b"mine")
    client.add_version(fid, b"theirs")                    # someone saved meanwhile
    fs.release(h)
    fs.run_commits()
    files = _files(client)
    copies = [n for n in files if n.startswith("Report (conflict ")]
    assert len(copies) == 1 and copies[0].endswith(").docx")
    assert _remote(client, "Docs", copies[0]) == b"mine"
    assert _remote(client, "Docs", "Report.docx") == b"theirs"
    assert fs.status()["conflicts"][0]["conflict_name"] == copies[0]


# ------------------------------------------------------------------- crash and restart


def test_the_journal_is_replayed_at_start(tmp_path: Path, client: FakeClient,
                                          clock: ManualClock) -> None:
    first = _make(tmp_path, client, clock)
    _write(first, "/Docs/later.txt", b"survives")
    h = first.open("/Docs/Report.docx", WR | os.O_APPEND)
    first.write(h, 0, b"+more")
    first.release(h)
    first.unlink("/Docs/Book.xlsx")
    base = _remote(client, "Docs", "Report.docx")
    first.close(drain=0)                                  # as if the mount died
    assert "later.txt" not in _files(client)
    second = _make(tmp_path, client, clock)
    try:
        assert second.getattr("/Docs/later.txt").size == 8   # shown before the commit
        assert _read(second, "/Docs/Report.docx") == base + b"+more"
        assert _errno(lambda: second.getattr("/Docs/Book.xlsx")) == errno.ENOENT
        second.run_commits()
    finally:
        second.close(drain=0)
    assert _remote(client, "Docs", "later.txt") == b"survives"
    assert _remote(client, "Docs", "Report.docx") == base + b"+more"
    assert _deleted(client) == ["Book.xlsx"]
    assert client.calls["create_file"] == 1
