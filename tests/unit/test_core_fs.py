"""ProcoreFS namespace, metadata cache and reorganising, against the in-memory fake client."""

from __future__ import annotations

import errno
import os
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from procorefs.api import Scope
from procorefs.clock import ManualClock
from procorefs.core.fs import CoreConfig, Layout, ProcoreFS
from procorefs.errors import (
    FsAccessDenied,
    FsBusy,
    FsCrossDevice,
    FsExists,
    FsIsADirectory,
    FsNameTooLong,
    FsNoData,
    FsNotADirectory,
    FsNotEmpty,
    FsNotFound,
    FsNotPermitted,
    FsOffline,
)
from tests.core.fakeclient import ME, OTHER, FakeClient

CO = 10
P1, P2 = 100, 200
S1 = Scope(CO, P1)
SC = Scope(CO)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(clock: ManualClock) -> FakeClient:
    c = FakeClient(clock, company_id=CO, projects=(P1, P2),
                   project_names={P1: "Tower", P2: "School"})
    plans = c.add_folder(S1, "Plans")
    c.add_file(S1, "A-101.pdf", b"plan A" * 1000, plans)
    arch = c.add_folder(S1, "Arch", plans)
    c.add_file(S1, "deep.txt", b"deep", arch)
    c.add_file(S1, "README.txt", b"hello")
    c.add_folder(SC, "Safety")
    return c


def _fs(tmp_path: Path, client: FakeClient, clock: ManualClock,
        layout: Layout | None = None, **kw: object) -> ProcoreFS:
    config = CoreConfig(layout=layout or Layout("project", CO, P1),
                        cache_dir=tmp_path / "cache", **kw)  # type: ignore[arg-type]
    return ProcoreFS(client, config, clock=clock)


@pytest.fixture
def fs(tmp_path: Path, client: FakeClient, clock: ManualClock) -> Iterator[ProcoreFS]:
    core = _fs(tmp_path, client, clock)
    yield core
    core.close()


def _names(fs: ProcoreFS, path: str) -> list[str]:
    return sorted(e.name for e in fs.readdir(path))


def _walk(fs: ProcoreFS, path: str = "/") -> list[str]:
    out = []
    for entry in fs.readdir(path):
        child = f"{path.rstrip('/')}/{entry.name}"
        out.append(child)
        fs.getattr(child)
        if entry.stat.kind == "dir":
            out.extend(_walk(fs, child))
    return out


def _folder_requests(client: FakeClient) -> int:
    return client.calls["root_folder"] + client.calls["folder"]


def _requests(client: FakeClient) -> int:
    return sum(n for name, n in client.calls.items() if ":" not in name)


# ------------------------------------------------------------------ layouts and walking


def test_project_layout_walk_costs_one_request_per_folder(fs: ProcoreFS,
                                                          client: FakeClient) -> None:
    paths = _walk(fs)
    assert sorted(paths) == ["/Plans", "/Plans/A-101.pdf", "/Plans/Arch",
                             "/Plans/Arch/deep.txt", "/README.txt"]
    assert _folder_requests(client) == 3  # root, Plans, Arch
    before = _requests(client)
    _walk(fs)
    assert _requests(client) == before  # warm within the TTL: nothing


def test_recycle_bin_and_deleted_items_are_hidden(fs: ProcoreFS, client: FakeClient) -> None:
    client.remote_delete(client.find(S1, "README.txt").id)
    assert "Recycle Bin" not in _names(fs, "/")
    assert "README.txt" not in _names(fs, "/")


def test_stat_times_sizes_and_ids(fs: ProcoreFS, client: FakeClient,
                                  clock: ManualClock) -> None:
    node = client.find(S1, "Plans", "A-101.pdf")
    clock.advance(50)
    client.add_version(node.id, b"new")
    st = fs.getattr("/Plans/A-101.pdf")
    assert st.kind == "file" and st.size == 3 and st.version == 2
    assert st.remote_id == node.id
    assert st.mtime == pytest.approx(node.updated)
    assert st.ctime == st.birthtime == pytest.approx(node.created)
    assert st.mtime > st.ctime
    assert fs.getattr("/").kind == "dir"


def test_company_layout_shows_documents_and_projects(tmp_path: Path, client: FakeClient,
                                                     clock: ManualClock) -> None:
    client.add_folder(SC, "Tower")  # collides with the project folder's name
    core = _fs(tmp_path, client, clock, Layout("company", CO))
    try:
        names = _names(core, "/")
        safety_tower = client.find(SC, "Tower").id
        assert names == ["Safety", "School", "Tower", f"Tower [{safety_tower}]"]
        assert core.getattr("/Tower").remote_id is None  # the synthetic project folder
        assert core.getattr(f"/Tower [{safety_tower}]").remote_id == safety_tower
        assert "Plans" in _names(core, "/Tower")
        assert core.getxattr("/Tower", "user.procore.project_id") == str(P1).encode()
    finally:
        core.close()


def test_two_projects_with_one_display_name_both_get_a_folder(
        tmp_path: Path, clock: ManualClock) -> None:
    twins = FakeClient(clock, company_id=CO, projects=(P1, P2),
                       project_names={P1: "Tower", P2: "Tower"})
    twins.add_file(S1, "first.txt", b"one")
    twins.add_file(Scope(CO, P2), "second.txt", b"two")
    core = _fs(tmp_path, twins, clock, Layout("company", CO))
    try:
        names = _names(core, "/")
        assert len(names) == 2 and "Tower" in names  # one keeps the name, one is suffixed
        by_project = {core.getxattr(f"/{name}", "user.procore.project_id"): name
                      for name in names}
        assert set(by_project) == {str(P1).encode(), str(P2).encode()}
        assert _names(core, f"/{by_project[str(P1).encode()]}") == ["first.txt"]
        assert _names(core, f"/{by_project[str(P2).encode()]}") == ["second.txt"]
        # The names are stable: asked again, each project keeps its own folder.
        assert _names(core, "/") == names
    finally:
        core.close()


def test_all_layout_one_folder_per_company(tmp_path: Path, client: FakeClient,
                                           clock: ManualClock) -> None:
    core = _fs(tmp_path, client, clock, Layout("all"))
    try:
        assert _names(core, "/") == ["Acme"]
        assert _names(core, "/Acme") == ["Safety", "School", "Tower"]
        assert core.readdir("/Acme/Tower/Plans/Arch")[0].name == "deep.txt"
    finally:
        core.close()


def test_company_documents_closed_to_the_user_show_projects_only(
        tmp_path: Path, client: FakeClient, clock: ManualClock) -> None:
    client.forbidden_scopes.add(SC)
    core = _fs(tmp_path, client, clock, Layout("company", CO))
    try:
        assert _names(core, "/") == ["School", "Tower"]
    finally:
        core.close()


def test_project_layout_without_company_id_finds_the_company(
        tmp_path: Path, client: FakeClient, clock: ManualClock) -> None:
    core = _fs(tmp_path, client, clock, Layout("project", None, P2))
    try:
        assert core.readdir("/") == []
    finally:
        core.close()


# ------------------------------------------------------------------ caching


def test_ttl_expiry_shows_a_remote_change(fs: ProcoreFS, client: FakeClient,
                                          clock: ManualClock) -> None:
    assert "new.txt" not in _names(fs, "/Plans")
    client.add_file(S1, "new.txt", b"x", client.find(S1, "Plans").id)
    clock.advance(10)
    assert "new.txt" not in _names(fs, "/Plans")  # within the TTL: the cached listing
    clock.advance(25)
    assert "new.txt" in _names(fs, "/Plans")


def test_probes_cost_nothing_once_the_parent_is_listed(fs: ProcoreFS,
                                                       client: FakeClient,
                                                       clock: ManualClock) -> None:
    fs.readdir("/Plans")
    before = _requests(client)
    for probe in ("desktop.ini", ".DS_Store", ".hidden", "autorun.inf", "Thumbs.db"):
        with pytest.raises(FsNotFound):
            fs.getattr(f"/Plans/{probe}")
    assert _requests(client) == before
    clock.advance(31)  # the listing expired: a probe looks again (and finds nothing)
    with pytest.raises(FileNotFoundError):
        fs.getattr("/Plans/desktop.ini")


def test_negative_cache_answers_after_the_listing_expired(
        tmp_path: Path, client: FakeClient, clock: ManualClock) -> None:
    core = _fs(tmp_path, client, clock, metadata_ttl=10.0, negative_ttl=60.0)
    try:
        with pytest.raises(FsNotFound):
            core.getattr("/Plans/desktop.ini")
        clock.advance(20)  # listings stale, negative entry still valid
        plans = f"folder:{client.find(S1, 'Plans').id}"
        before = client.calls[plans]
        with pytest.raises(FsNotFound):
            core.getattr("/Plans/desktop.ini")
        assert client.calls[plans] == before  # the root is looked at again, Plans is not
        # a real lookup refreshes the listing, which then drops the stale negative entry
        client.add_file(S1, "desktop.ini", b"", client.find(S1, "Plans").id)
        core.readdir("/Plans")
        assert core.getattr("/Plans/desktop.ini").kind == "file"
    finally:
        core.close()


def test_concurrent_lookups_share_one_fetch(fs: ProcoreFS, client: FakeClient) -> None:
    fs.readdir("/")
    gate = threading.Event()
    client.delay = gate
    results: list[object] = []

    def look() -> None:
        results.append(fs.readdir("/Plans"))

    threads = [threading.Thread(target=look) for _ in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while fs.metadata.sharing() < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fs.metadata.sharing() == 5  # one fetches, five wait for its answer
    gate.set()
    for t in threads:
        t.join(10)
    assert len(results) == 6
    assert client.calls["folder"] == 1


@pytest.mark.allow_log("Procore cannot be reached")
def test_offline_answers_from_what_was_seen(tmp_path: Path, fs: ProcoreFS,
                                            client: FakeClient, clock: ManualClock) -> None:
    _walk(fs)
    clock.advance(100)
    client.offline = True
    assert _names(fs, "/Plans") == ["A-101.pdf", "Arch"]
    with pytest.raises(FsNotFound):  # what was seen says it does not exist
        fs.getattr("/Never/Seen")
    calls = _requests(client)
    assert _names(fs, "/Plans/Arch") == ["deep.txt"]
    assert _requests(client) == calls  # no retry storm while offline
    other = _fs(tmp_path / "elsewhere", client, clock)
    try:
        with pytest.raises(FsOffline) as info:
            other.getattr("/Plans")  # never seen at all
        assert info.value.errno == errno.EHOSTUNREACH
    finally:
        other.close()


@pytest.mark.allow_log("Procore cannot be reached")
def test_restart_answers_offline_from_disk(tmp_path: Path, client: FakeClient,
                                           clock: ManualClock) -> None:
    core = _fs(tmp_path, client, clock)
    _walk(core)
    core.close()
    client.offline = True
    again = _fs(tmp_path, client, clock)
    try:
        assert _names(again, "/Plans") == ["A-101.pdf", "Arch"]
        assert again.getattr("/Plans/Arch/deep.txt").size == 4
    finally:
        again.close()


def test_saved_metadata_is_private(fs: ProcoreFS) -> None:
    fs.readdir("/")
    fs.metadata.flush()
    assert fs.cache_root.stat().st_mode & 0o777 == 0o700
    assert (fs.cache_root / "metadata.sqlite").stat().st_mode & 0o077 == 0


# ------------------------------------------------------------------ names


def test_names_with_slash_and_nfd_lookup(fs: ProcoreFS, client: FakeClient) -> None:
    client.add_file(S1, "RFI 12/13.pdf", b"rfi")
    client.add_file(S1, "Café.docx", b"cafe")
    names = _names(fs, "/")
    assert "RFI 12／13.pdf" in names
    assert fs.getattr("/RFI 12／13.pdf").size == 3
    assert fs.getattr("/" + unicodedata.normalize("NFD", "Café.docx")).size == 4


def test_long_paths_and_long_names(fs: ProcoreFS, client: FakeClient) -> None:
    parent = None
    parts = []
    for i in range(4):
        name = f"{i} " + "Very long folder name for a deep Procore tree " * 2
        parent = client.add_folder(S1, name, parent)
        parts.append(name)
    client.add_file(S1, "leaf.pdf", b"leaf", parent)
    path = "/" + "/".join(parts) + "/leaf.pdf"
    assert len(path) > 260
    assert fs.getattr(path).size == 4
    with pytest.raises(FsNameTooLong) as info:
        fs.getattr("/" + "x" * 256)
    assert info.value.errno == errno.ENAMETOOLONG


# ------------------------------------------------------------------ reorganising


def test_mkdir_then_lookup_costs_no_fetch(fs: ProcoreFS, client: FakeClient) -> None:
    with pytest.raises(FsNotFound):
        fs.getattr("/Plans/New")
    fs.mkdir("/Plans/New")
    before = _requests(client)
    assert fs.getattr("/Plans/New").kind == "dir"
    assert fs.readdir("/Plans/New") == []
    assert _requests(client) == before
    assert client.find(S1, "Plans", "New").kind == "folder"
    with pytest.raises(FsExists):
        fs.mkdir("/Plans/New")


def test_rmdir_checks_a_fresh_listing(fs: ProcoreFS, client: FakeClient) -> None:
    fs.mkdir("/Empty")
    arch = client.find(S1, "Plans", "Arch")
    fs.readdir("/Empty")
    client.add_file(S1, "sneaky.txt", b"", client.find(S1, "Empty").id)  # remote, unseen
    with pytest.raises(FsNotEmpty):
        fs.rmdir("/Empty")
    with pytest.raises(FsNotEmpty):
        fs.rmdir("/Plans")
    fs.unlink("/Plans/Arch/deep.txt")
    fs.rmdir("/Plans/Arch")
    assert client.node(arch.id).deleted
    assert "Arch" not in _names(fs, "/Plans")
    with pytest.raises(FsBusy):
        fs.rmdir("/")


def test_rename_and_move_keep_ids(fs: ProcoreFS, client: FakeClient) -> None:
    arch = client.find(S1, "Plans", "Arch").id
    deep = client.find(S1, "Plans", "Arch", "deep.txt").id
    fs.readdir("/Plans/Arch")
    fs.rename("/Plans/Arch", "/Architecture")
    assert client.node(arch).name == "Architecture"
    assert client.node(arch).parent_id == client.root_id(S1)
    assert fs.getattr("/Architecture/deep.txt").remote_id == deep
    with pytest.raises(FsNotFound):
        fs.getattr("/Plans/Arch")
    fs.rename("/Architecture/deep.txt", "/Plans/shallow.txt")
    assert client.node(deep).name == "shallow.txt"
    assert fs.getattr("/Plans/shallow.txt").remote_id == deep


def test_rename_over_existing_target(fs: ProcoreFS, client: FakeClient) -> None:
    readme = client.find(S1, "README.txt").id
    plan = client.find(S1, "Plans", "A-101.pdf").id
    with pytest.raises(FsExists):
        fs.rename("/README.txt", "/Plans/A-101.pdf", replace=False)
    fs.rename("/README.txt", "/Plans/A-101.pdf")
    assert client.node(plan).deleted  # the target went to the recycle bin
    assert client.node(readme).name == "A-101.pdf"
    assert fs.getattr("/Plans/A-101.pdf").remote_id == readme
    with pytest.raises(FsIsADirectory):
        fs.rename("/Plans/A-101.pdf", "/Plans/Arch")
    with pytest.raises(FsNotADirectory):
        fs.rename("/Plans/Arch", "/Plans/A-101.pdf")


def test_rename_edge_cases(tmp_path: Path, client: FakeClient, clock: ManualClock) -> None:
    core = _fs(tmp_path, client, clock, Layout("company", CO))
    try:
        with pytest.raises(FsNotPermitted):
            core.rename("/Tower", "/Tower 2")
        with pytest.raises(FsCrossDevice) as info:
            core.rename("/Tower/README.txt", "/School/README.txt")
        assert info.value.errno == errno.EXDEV
        with pytest.raises(FsCrossDevice):
            core.rename("/Safety", "/Tower/Safety")
        with pytest.raises(OSError) as loop:
            core.rename("/Tower/Plans", "/Tower/Plans/Arch/Plans")
        assert loop.value.errno == errno.EINVAL
        core.rename("/Tower/README.txt", "/Tower/README.txt")  # same name: nothing to do
        assert client.calls["update_file"] == 0
    finally:
        core.close()


@pytest.mark.allow_log("cannot write '/Plans/A-101.pdf': it is checked out in Procore by "
                       "Other Person <other@test> until")
def test_checked_out_by_someone_else_is_read_only(fs: ProcoreFS, client: FakeClient,
                                                  clock: ManualClock) -> None:
    plan = client.find(S1, "Plans", "A-101.pdf").id
    client.set_checkout(plan, OTHER, clock.time() + 3600)
    st = fs.getattr("/Plans/A-101.pdf")
    assert st.read_only
    with pytest.raises(FsAccessDenied):
        fs.unlink("/Plans/A-101.pdf")
    with pytest.raises(FsAccessDenied):
        fs.rename("/Plans/A-101.pdf", "/Plans/B.pdf")
    with pytest.raises(FsAccessDenied):
        fs.open("/Plans/A-101.pdf", os.O_WRONLY)
    assert fs.getxattr("/Plans/A-101.pdf", "user.procore.checked_out_by") == \
        b"Other Person <other@test>"
    assert fs.getxattr("/Plans/A-101.pdf", "user.procore.checked_out_until").endswith(b"Z")
    # readable all the same
    handle = fs.open("/Plans/A-101.pdf", os.O_RDONLY)
    assert fs.read(handle, 0, 6) == b"plan A"
    fs.release(handle)
    # my own check-out does not make it read-only
    client.set_checkout(plan, ME, clock.time() + 3600)
    fs.invalidate("/Plans/A-101.pdf")
    assert not fs.getattr("/Plans/A-101.pdf").read_only


def test_a_read_only_folder_refuses_new_items_and_removal_without_asking_procore(
        fs: ProcoreFS, client: FakeClient) -> None:
    client.find(S1, "Plans", "Arch").read_only = True
    st = fs.getattr("/Plans/Arch")
    assert st.kind == "dir" and st.read_only
    before = dict(client.calls)
    with pytest.raises(FsAccessDenied):
        fs.mkdir("/Plans/Arch/New")
    with pytest.raises(FsAccessDenied):
        fs.create("/Plans/Arch/new.txt", os.O_WRONLY | os.O_CREAT)
    with pytest.raises(FsAccessDenied):
        fs.rename("/Plans/Arch", "/Plans/Arch2")
    assert dict(client.calls) == before  # refused here, not by a 403 from Procore
    assert _names(fs, "/Plans/Arch") == ["deep.txt"]
    handle = fs.open("/Plans/Arch/deep.txt", os.O_RDONLY)  # still readable
    assert fs.read(handle, 0, 4) == b"deep"
    fs.release(handle)


@pytest.mark.allow_log("cannot write")
def test_a_folder_cannot_be_opened_as_a_file(fs: ProcoreFS) -> None:
    with pytest.raises(FsIsADirectory):
        fs.open("/Plans", os.O_RDONLY)
    with pytest.raises(FsIsADirectory):
        fs.open("/Plans", os.O_RDWR)


# ------------------------------------------------------------------ xattrs


def test_xattrs(fs: ProcoreFS, client: FakeClient) -> None:
    plan = client.find(S1, "Plans", "A-101.pdf").id
    assert fs.getxattr("/Plans/A-101.pdf", "user.procore.id") == str(plan).encode()
    assert fs.getxattr("/Plans/A-101.pdf", "user.procore.version") == b"1"
    url = fs.getxattr("/Plans/A-101.pdf", "user.procore.web_url").decode()
    assert url == f"https://app.procore.com/{P1}/project/documents/files/{plan}"
    assert "user.procore.checked_out_by" not in fs.listxattr("/Plans/A-101.pdf")
    with pytest.raises(FsNoData):
        fs.getxattr("/Plans/A-101.pdf", "user.other")


def test_os_xattrs_answer_without_any_lookup(fs: ProcoreFS, client: FakeClient) -> None:
    for name in ("security.capability", "security.selinux", "system.posix_acl_access"):
        with pytest.raises(FsNoData):
            fs.getxattr("/does/not/matter", name)
    assert _requests(client) == 0


def test_statfs(fs: ProcoreFS) -> None:
    st = fs.statfs()
    assert st.name_max == 255 and st.blocks_free > 0
