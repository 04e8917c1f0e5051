"""The change poller (core/poller.py) and how its results update the metadata cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from procorefs.api import Scope
from procorefs.clock import ManualClock
from procorefs.core.fs import CoreConfig, Layout, ProcoreFS
from procorefs.core.poller import OVERLAP, ChangePoller
from tests.core.fakeclient import OTHER, FakeClient

S = Scope(10, 100)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(clock: ManualClock) -> FakeClient:
    c = FakeClient(clock, company_id=10, projects=(100,))
    plans = c.add_folder(S, "Plans")
    c.add_file(S, "A.pdf", b"a", plans)
    c.add_folder(S, "Specs")
    return c


def _fs(tmp_path: Path, client: FakeClient, clock: ManualClock, **kw: object) -> ProcoreFS:
    return ProcoreFS(client, CoreConfig(Layout("project", 10, 100), tmp_path / "cache",
                                        **kw),  # type: ignore[arg-type]
                     clock=clock)


@pytest.fixture
def fs(tmp_path: Path, client: FakeClient, clock: ManualClock) -> Iterator[ProcoreFS]:
    core = _fs(tmp_path, client, clock)
    yield core
    core.close()


def _listed(fs: ProcoreFS) -> None:
    fs.readdir("/")
    fs.readdir("/Plans")
    fs.readdir("/Specs")


def _folder_calls(client: FakeClient) -> int:
    return client.calls["folder"] + client.calls["root_folder"]


def test_a_quiet_poll_keeps_listings_fresh(fs: ProcoreFS, client: FakeClient,
                                           clock: ManualClock) -> None:
    _listed(fs)
    fetched = _folder_calls(client)
    for _ in range(5):
        clock.advance(30)
        assert fs.poll_changes() == 1
        _listed(fs)
    assert _folder_calls(client) == fetched  # 150 s later, five polls and no re-listing
    assert client.calls["documents"] == 5


def test_changes_are_applied_to_exactly_the_listings_they_touch(
        fs: ProcoreFS, client: FakeClient, clock: ManualClock) -> None:
    _listed(fs)
    fetched = _folder_calls(client)
    clock.advance(5)
    plans = client.find(S, "Plans").id
    specs = client.find(S, "Specs").id
    a = client.find(S, "Plans", "A.pdf").id
    client.remote_rename(a, name="A-rev.pdf", parent_id=specs)  # moved by someone else
    client.add_file(S, "new.txt", b"new", plans)
    client.add_version(client.find(S, "Plans", "new.txt").id, b"newer!")
    client.set_checkout(client.find(S, "Plans", "new.txt").id, OTHER, clock.time() + 600)
    clock.advance(30)
    fs.poll_changes()
    assert sorted(e.name for e in fs.readdir("/Plans")) == ["new.txt"]
    assert sorted(e.name for e in fs.readdir("/Specs")) == ["A-rev.pdf"]
    st = fs.getattr("/Plans/new.txt")
    assert st.size == 6 and st.version == 2 and st.read_only
    assert fs.getattr("/Specs/A-rev.pdf").remote_id == a
    assert _folder_calls(client) == fetched  # all of it from the one poll


def test_remote_deletes_disappear(fs: ProcoreFS, client: FakeClient,
                                  clock: ManualClock) -> None:
    _listed(fs)
    clock.advance(5)
    client.remote_delete(client.find(S, "Specs").id)
    client.remote_delete(client.find(S, "Plans", "A.pdf").id)
    clock.advance(30)
    fs.poll_changes()
    assert [e.name for e in fs.readdir("/")] == ["Plans"]
    assert fs.readdir("/Plans") == []


def test_the_window_starts_at_the_watermark_minus_the_overlap(
        fs: ProcoreFS, client: FakeClient, clock: ManualClock) -> None:
    windows: list[tuple[float, float]] = []
    original = client.documents

    def spy(scope, **kw):  # type: ignore[no-untyped-def]
        start, end = kw["updated_between"]
        windows.append((start.timestamp(), end.timestamp()))
        assert kw["in_recycle_bin"] is None  # deletions are changes too
        return original(scope, **kw)

    client.documents = spy  # type: ignore[method-assign]
    _listed(fs)
    clock.advance(40)
    client.remote_rename(client.find(S, "Specs").id, name="Specifications")
    changed_at = int(clock.time())
    clock.advance(40)
    fs.poll_changes()
    clock.advance(40)
    fs.poll_changes()
    assert windows[1][0] == changed_at - OVERLAP
    assert all(end > clock.time() + 86400 for _, end in windows)


def test_budget_paces_the_polls(tmp_path: Path, client: FakeClient,
                                clock: ManualClock) -> None:
    core = _fs(tmp_path, client, clock, poll_budget_per_hour=4, poll_interval=30.0)
    try:
        _listed(core)
        polls = 0
        for _ in range(120):  # one hour in 30 s steps
            clock.advance(30)
            polls += core.poll_changes()
            core.readdir("/")  # keep the scope in use
        assert polls == 4
        assert core.poller.scope_interval(1) == 900
    finally:
        core.close()


def test_idle_scopes_are_not_polled(tmp_path: Path, client: FakeClient,
                                    clock: ManualClock) -> None:
    core = _fs(tmp_path, client, clock)
    try:
        assert core.poll_changes() == 0  # nothing listed yet: nothing to keep fresh
        _listed(core)
        clock.advance(2 * 3600)
        assert core.poll_changes() == 0
    finally:
        core.close()


def test_poller_counts_pages_against_the_budget(client: FakeClient,
                                                clock: ManualClock, tmp_path: Path) -> None:
    core = _fs(tmp_path, client, clock)
    try:
        _listed(core)
        poller: ChangePoller = core.poller
        left = poller.budget_left()
        clock.advance(31)
        core.poll_changes()
        assert poller.budget_left() == left - 1
        clock.advance(3600)
        assert poller.budget_left() == poller.budget
    finally:
        core.close()


def test_background_thread_polls_by_itself(tmp_path: Path, client: FakeClient,
                                           clock: ManualClock) -> None:
    import time
    core = _fs(tmp_path, client, clock)
    try:
        _listed(core)
        core.start()
        clock.advance(31)
        deadline = time.monotonic() + 10
        while core.poller.polls == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert core.poller.polls >= 1
        assert core.whoami() == 1
    finally:
        core.close()


def test_a_budget_of_zero_never_polls(tmp_path: Path, client: FakeClient,
                                      clock: ManualClock) -> None:
    core = _fs(tmp_path, client, clock, poll_budget_per_hour=0, poll_interval=30.0)
    try:
        _listed(core)
        for _ in range(10):
            clock.advance(600)
            assert core.poll_changes() == 0
            core.readdir("/")  # the scope stays in use
        assert core.poller.polls == 0 and client.calls["documents"] == 0
        assert core.poller.scope_interval(1) == float("inf")
    finally:
        core.close()
