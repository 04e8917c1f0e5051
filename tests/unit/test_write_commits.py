"""The commit queue against a fake Procore: once-only commits, retries, conflicts, resume."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from procorefs.api.errors import NetworkError, RateLimited, Unauthorized
from procorefs.api.models import File, FileVersion, Folder
from procorefs.clock import ManualClock
from procorefs.core.commits import BackoffPolicy, CommitEvent, CommitQueue, conflict_name
from procorefs.core.journal import Base, Journal, Target
from procorefs.core.localnames import RemoteRef
from procorefs.core.staging import StagingArea
from procorefs.errors import FsAccessDenied, FsError

ROOT = 1
PART = 4


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs."""


@dataclass(frozen=True)
class FakeState:
    uuid: str
    size: int
    etags: tuple[str | None, ...]

    def to_json(self) -> str:
        return json.dumps({"uuid": self.uuid, "size": self.size, "etags": list(self.etags)})


def decode(text: str) -> FakeState:
    d = json.loads(text)
    return FakeState(d["uuid"], d["size"], tuple(d["etags"]))


@dataclass
class RemoteFile:
    id: int
    name: str
    parent_id: int
    versions: list[tuple[int, bytes, datetime]] = field(default_factory=list)
    deleted: bool = False


class FakeProcore:
    """Just enough of the client: uploads in PART-byte parts, files, versions, listings."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.files: dict[int, RemoteFile] = {}
        self.uploads: dict[str, bytearray] = {}
        self.completed: set[str] = set()
        self.calls: list[str] = []
        self.puts = 0
        self.next_id = 1000
        self.fail: dict[str, list[BaseException | Callable[[], None]]] = {}
        self._lock = threading.Lock()

    # faults: a queue of exceptions (or callables) per call name
    def inject(self, call: str, *faults: BaseException | Callable[[], None]) -> None:
        self.fail.setdefault(call, []).extend(faults)

    def _maybe_fail(self, call: str) -> None:
        with self._lock:
            self.calls.append(call)
            queue = self.fail.get(call)
            fault = queue.pop(0) if queue else None
        if isinstance(fault, BaseException):
            raise fault
        if fault is not None:
            fault()

    def _id(self) -> int:
        with self._lock:
            self.next_id += 1
            return self.next_id

    def seed(self, name: str, data: bytes, parent: int = ROOT) -> RemoteFile:
        f = RemoteFile(self._id(), name, parent)
        f.versions.append((self._id(), data, datetime.now(UTC)))
        self.files[f.id] = f
        return f

    def add_version(self, fid: int, data: bytes) -> None:
        self.files[fid].versions.append((self._id(), data, datetime.now(UTC)))

    def named(self, name: str) -> list[RemoteFile]:
        return [f for f in self.files.values() if f.name == name and not f.deleted]

    def _version(self, f: RemoteFile, i: int) -> FileVersion:
        vid, data, at = f.versions[i]
        return FileVersion(id=vid, number=i + 1, size=len(data), url=f"fake://{f.id}/{vid}",
                           created_at=at)

    def _file(self, f: RemoteFile) -> File:
        versions = tuple(self._version(f, i) for i in range(len(f.versions)))
        return File(id=f.id, name=f.name, parent_id=f.parent_id, size=versions[-1].size,
                    created_at=None, updated_at=None, is_deleted=f.deleted, versions=versions)

    # the client surface
    def upload(self, scope: Any, path: Path, *, filename: str, state: Any = None,
               on_state: Callable[[Any], None] | None = None,
               progress: Callable[[int, int], None] | None = None) -> str:
        self._maybe_fail("upload")
        data = path.read_bytes()
        nparts = max(1, -(-len(data) // PART))
        if state is None or state.size != len(data):
            state = FakeState(f"u{self._id()}", len(data), (None,) * nparts)
            self.uploads[state.uuid] = bytearray(len(data))
        for i in range(nparts):
            if state.etags[i]:
                continue
            self._maybe_fail("put")
            self.puts += 1
            self.uploads[state.uuid][i * PART:(i + 1) * PART] = data[i * PART:(i + 1) * PART]
            etags = list(state.etags)
            etags[i] = f"e{i}"
            state = FakeState(state.uuid, state.size, tuple(etags))
            if on_state:
                on_state(state)
            if progress:
                progress(min(len(data), (i + 1) * PART), len(data))
        uuid: str = state.uuid
        self.completed.add(uuid)
        return uuid

    def create_file(self, scope: Any, name: str, parent_id: int | None,
                    upload_uuid: str) -> File:
        self._maybe_fail("create_file")
        assert upload_uuid in self.completed
        if self.named(name):
            from procorefs.api.errors import ValidationFailed
            raise ValidationFailed("name has already been taken", status=422)
        f = RemoteFile(self._id(), name, parent_id or ROOT)
        f.versions.append((self._id(), bytes(self.uploads[upload_uuid]), datetime.now(UTC)))
        self.files[f.id] = f
        self._maybe_fail("create_file:after")
        return self._file(f)

    def create_version(self, scope: Any, file_id: int, upload_uuid: str, *,
                       notes: str | None = None) -> FileVersion:
        self._maybe_fail("create_version")
        f = self.files[file_id]
        f.versions.append((self._id(), bytes(self.uploads[upload_uuid]), datetime.now(UTC)))
        self._maybe_fail("create_version:after")
        return self._version(f, len(f.versions) - 1)

    def file(self, scope: Any, file_id: int) -> File:
        self._maybe_fail("file")
        return self._file(self.files[file_id])

    def folder(self, scope: Any, folder_id: int) -> Folder:
        self._maybe_fail("folder")
        files = tuple(self._file(f) for f in self.files.values()
                      if f.parent_id == folder_id and not f.deleted)
        return Folder(id=folder_id, name="f", parent_id=None, updated_at=None, files=files)

    def root_folder(self, scope: Any) -> Folder:
        return self.folder(scope, ROOT)

    def delete_file(self, scope: Any, file_id: int) -> None:
        self._maybe_fail("delete_file")
        self.files[file_id].deleted = True

    def read_range(self, version: FileVersion, offset: int, length: int) -> bytes:
        self._maybe_fail("read_range")
        for f in self.files.values():
            for vid, data, _ in f.versions:
                if vid == version.id:
                    return data[offset:offset + length]
        raise AssertionError("no such version")


class Rig:
    def __init__(self, tmp_path: Path, *, debounce: float = 1.0, workers: int = 2) -> None:
        self.tmp = tmp_path
        self.clock = ManualClock()
        self.procore = FakeProcore(self.clock)
        self.events: list[CommitEvent] = []
        self.debounce = debounce
        self.workers = workers
        self.open()

    def open(self) -> None:
        self.journal = Journal.open(self.tmp, clock=self.clock)
        self.area = StagingArea(self.tmp)
        self.queue = CommitQueue(
            self.journal, self.area, self.procore, clock=self.clock, debounce=self.debounce,
            workers=self.workers, on_event=self.events.append, scope_for=lambda c, p: (c, p),
            state_codec=(lambda s: str(s.to_json()), decode),
            backoff=BackoffPolicy(base=1.0, cap=60.0, jitter=0.0))

    def crash_and_restart(self) -> None:
        self.queue.close()
        self.journal.close()
        self.open()

    def stage(self, name: str, data: bytes, base: Base | None = None, *,
              previous: int | None = None) -> int:
        staged = self.area.create()
        staged.write(0, data)
        snap = staged.seal()
        staged.close()
        return self.queue.stage(Target(1, 2, ROOT, name), snap, base, key=f"/{name}",
                                previous=previous)

    def base_of(self, f: RemoteFile, sha: bool = False) -> Base:
        vid, data, _ = f.versions[-1]
        return Base(f.id, vid, len(f.versions), len(data),
                    hashlib.sha256(data).hexdigest() if sha else None)

    def settle(self, seconds: float = 1.0) -> int:
        self.clock.advance(seconds)
        return self.queue.run_pending()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.queue.close()
    r.journal.close()


def test_new_file_is_created_once_after_the_debounce(rig: Rig) -> None:
    eid = rig.stage("a.txt", b"hello world")
    assert rig.queue.run_pending() == 0               # still within the debounce
    rig.settle()
    assert [f.versions[-1][1] for f in rig.procore.named("a.txt")] == [b"hello world"]
    assert rig.procore.calls.count("create_file") == 1
    assert rig.journal.entries() == [] and rig.area.spools() == set()
    (event,) = rig.events
    assert event.kind == "committed" and event.entry_id == eid and event.file is not None
    assert event.sha256 == hashlib.sha256(b"hello world").hexdigest()


def test_existing_file_gets_a_new_version_of_the_same_id(rig: Rig) -> None:
    f = rig.procore.seed("r.docx", b"v1")
    rig.stage("r.docx", b"v2", rig.base_of(f))
    rig.settle()
    assert [v[1] for v in f.versions] == [b"v1", b"v2"]
    assert "create_file" not in rig.procore.calls
    event = rig.events[0]
    assert event.kind == "committed" and event.version is not None
    assert event.version.number == 2 and event.file is not None and event.file.size == 2


def test_identical_bytes_make_no_version(rig: Rig) -> None:
    f = rig.procore.seed("b.xlsx", b"same")
    rig.stage("b.xlsx", b"same", rig.base_of(f, sha=True))
    rig.settle()
    assert len(f.versions) == 1 and rig.procore.calls == []
    assert rig.events[0].kind == "unchanged"


def test_a_staged_file_never_written_makes_no_version_even_without_a_hash(rig: Rig) -> None:
    f = rig.procore.seed("c.pdf", b"0123456789")
    staged = rig.area.create(base_size=10, fill=lambda o, n: b"0123456789"[o:o + n])
    staged.read(0, 4)
    snap = staged.seal()
    staged.close()
    rig.queue.stage(Target(1, 2, ROOT, "c.pdf"), snap, rig.base_of(f))
    rig.settle()
    assert rig.procore.calls == [] and rig.events[0].kind == "unchanged"


def test_holes_are_filled_from_the_base_before_upload(rig: Rig) -> None:
    f = rig.procore.seed("log.txt", b"line one\n")
    staged = rig.area.create(base_size=9, fill=lambda o, n: b"X" * n)   # never called here
    staged.append(b"line two\n")
    snap = staged.seal()
    staged.close()
    rig.queue.stage(Target(1, 2, ROOT, "log.txt"), snap, rig.base_of(f))
    rig.settle()
    assert f.versions[-1][1] == b"line one\nline two\n"


@pytest.mark.allow_log("conflict: ")
def test_conflict_copy_when_the_remote_moved(rig: Rig) -> None:
    f = rig.procore.seed("plan.pdf", b"v1")
    base = rig.base_of(f)
    rig.procore.add_version(f.id, b"theirs")
    rig.stage("plan.pdf", b"mine", base)
    rig.settle()
    assert [v[1] for v in f.versions] == [b"v1", b"theirs"]
    name = conflict_name("plan.pdf", rig.clock.time() - 1.0)
    assert name.startswith("plan (conflict ") and name.endswith(").pdf")
    (copy,) = rig.procore.named(name)
    assert copy.versions[-1][1] == b"mine"
    event = rig.events[0]
    assert event.kind == "conflict" and event.conflict_name == name
    assert rig.queue.status().conflicts[0].conflict_name == name


@pytest.mark.allow_log("conflict: ")
def test_conflict_is_logged(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    f = rig.procore.seed("x.txt", b"1")
    base = rig.base_of(f)
    rig.procore.add_version(f.id, b"2")
    rig.stage("x.txt", b"3", base)
    rig.settle()
    assert any("conflict" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)


def test_conflict_name_format() -> None:
    when = datetime(2025, 3, 4, 5, 6).timestamp()
    assert conflict_name("Report.docx", when) == "Report (conflict 2025-03-04 0506).docx"
    assert conflict_name("README", when, 2) == "README (conflict 2025-03-04 0506 2)"
    assert conflict_name(".bashrc", when) == ".bashrc (conflict 2025-03-04 0506)"


def test_offline_retries_with_backoff_and_keeps_the_file(rig: Rig) -> None:
    rig.procore.inject("upload", NetworkError("refused"), NetworkError("refused"))
    eid = rig.stage("a.txt", b"data")
    rig.settle()
    entry = rig.journal.get(eid)
    assert entry is not None and entry.state == "waiting" and entry.attempts == 1
    assert entry.not_before == pytest.approx(rig.clock.time() + 1.0)
    assert rig.queue.status().waiting[0].failure == "Procore cannot be reached"
    rig.settle(1.0)
    entry = rig.journal.get(entry.id)
    assert entry is not None and entry.attempts == 2
    assert entry.not_before == pytest.approx(rig.clock.time() + 2.0)   # doubled
    rig.settle(2.0)
    assert rig.journal.entries() == [] and len(rig.procore.named("a.txt")) == 1


def test_rate_limit_waits_at_least_retry_after(rig: Rig) -> None:
    rig.procore.inject("upload", RateLimited("slow down", retry_after=30.0))
    eid = rig.stage("a.txt", b"data")
    rig.settle()
    entry = rig.journal.get(eid)
    assert entry is not None and entry.not_before >= rig.clock.time() + 30.0


@pytest.mark.allow_log("cannot save /a.txt to Procore")
def test_auth_failure_fails_until_retried(rig: Rig) -> None:
    rig.procore.inject("upload", Unauthorized("The access token is invalid", status=401))
    eid = rig.stage("a.txt", b"data")
    rig.settle()
    (failed,) = rig.queue.status().failed
    assert failed.entry_id == eid and "sign-in" in (failed.failure or "")
    assert rig.events[-1].kind == "failed"
    rig.settle(100.0)
    assert rig.procore.named("a.txt") == []               # failed entries wait for a retry
    rig.crash_and_restart()
    with pytest.raises(FsError, match="sign-in"):
        rig.queue.wait(eid, timeout=5)                    # a failure from before the restart
    assert rig.area.spools() != set()                     # and keep their bytes
    assert rig.queue.retry_failed() == 1
    rig.settle(0.0)
    assert len(rig.procore.named("a.txt")) == 1


def test_resume_after_a_crash_sends_only_the_missing_parts(rig: Rig) -> None:
    data = b"AAAABBBBCCCCDDDD"                               # 4 parts
    rig.procore.inject("put", lambda: None, lambda: None, Crash())
    eid = rig.stage("big.bin", data)
    with pytest.raises(Crash):
        rig.settle()
    entry = rig.journal.get(eid)
    assert entry is not None and entry.state == "uploading"
    assert decode(entry.upload_state or "").etags == ("e0", "e1", None, None)
    assert rig.procore.puts == 2
    rig.crash_and_restart()
    rig.queue.run_pending()
    assert rig.procore.puts == 4                             # only parts 3 and 4 again
    (f,) = rig.procore.named("big.bin")
    assert f.versions[-1][1] == data


@pytest.mark.parametrize("when", ["create_file", "create_file:after"])
def test_crash_around_create_never_duplicates(rig: Rig, when: str) -> None:
    rig.procore.inject(when, Crash())
    rig.stage("n.txt", b"new")
    with pytest.raises(Crash):
        rig.settle()
    rig.crash_and_restart()
    rig.queue.run_pending()
    (f,) = rig.procore.named("n.txt")
    assert f.versions[-1][1] == b"new"
    assert rig.procore.puts == 1                             # the upload was not redone
    assert rig.events[-1].kind == "committed"


def test_lost_create_answer_is_not_a_duplicate(rig: Rig) -> None:
    rig.procore.inject("create_file:after", NetworkError("connection reset"))
    rig.stage("n.txt", b"new")
    rig.settle()
    rig.settle(5.0)
    assert len(rig.procore.named("n.txt")) == 1
    assert rig.procore.calls.count("create_file") == 1
    assert [e.kind for e in rig.events] == ["committed"]


def test_crash_after_create_version_does_not_make_a_second_version(rig: Rig) -> None:
    f = rig.procore.seed("v.txt", b"v1")
    rig.procore.inject("create_version:after", Crash())
    rig.stage("v.txt", b"v2", rig.base_of(f))
    with pytest.raises(Crash):
        rig.settle()
    rig.crash_and_restart()
    rig.queue.run_pending()
    assert [v[1] for v in f.versions] == [b"v1", b"v2"]
    assert rig.events[-1].kind == "committed"


def test_close_reopen_bursts_coalesce(rig: Rig) -> None:
    staged = rig.area.create()
    staged.write(0, b"one")
    target = Target(1, 2, ROOT, "d.txt")
    eid = rig.queue.stage(target, staged.seal(), None)
    rig.clock.advance(0.5)
    assert rig.queue.reopen(eid)                           # held: written in place
    staged.write(0, b"two")
    assert rig.queue.stage(target, staged.seal(), None, previous=eid) == eid
    rig.clock.advance(0.5)
    assert rig.queue.run_pending() == 0                    # the debounce restarted
    rig.settle(0.6)
    (f,) = rig.procore.named("d.txt")
    assert f.versions[-1][1] == b"two" and len(f.versions) == 1
    assert rig.procore.calls.count("upload") == 1
    staged.close()


def test_retarget_a_pending_temp_onto_an_existing_file(rig: Rig) -> None:
    f = rig.procore.seed("config", b"c1")
    eid = rig.stage("config.lock", b"c2")
    assert rig.queue.retarget(eid, Target(1, 2, ROOT, "config"), rig.base_of(f))
    rig.settle()
    assert [v[1] for v in f.versions] == [b"c1", b"c2"]
    assert rig.procore.named("config.lock") == [] and "create_file" not in rig.procore.calls


def test_cancel_before_commit_sends_nothing(rig: Rig) -> None:
    eid = rig.stage("tmp.txt", b"x")
    assert rig.queue.cancel(eid)
    rig.settle()
    assert rig.procore.calls == [] and rig.area.spools() == set()


def test_deferred_delete_runs_when_due_and_can_be_cancelled(rig: Rig) -> None:
    a = rig.procore.seed("a.pdf", b"a")
    b = rig.procore.seed("b.pdf", b"b")
    where = Target(1, 2, ROOT, "a.pdf")
    rig.queue.schedule_delete(RemoteRef(a.id, None, 1, 1), where, rig.clock.time() + 10)
    did_b = rig.queue.schedule_delete(RemoteRef(b.id, None, 1, 1), where,
                                      rig.clock.time() + 10)
    rig.settle(5)
    assert not a.deleted
    assert rig.queue.cancel_delete(did_b)
    rig.crash_and_restart()                                 # deletes are journaled
    assert len(rig.queue.pending_deletes()) == 1
    rig.settle(6)
    assert a.deleted and not b.deleted
    assert rig.events[-1].kind == "deleted"


def test_reopened_entry_is_committed_after_a_crash(rig: Rig) -> None:
    staged = rig.area.create()
    staged.write(0, b"closed once")
    eid = rig.queue.stage(Target(1, 2, ROOT, "e.txt"), staged.seal(), None)
    assert rig.queue.reopen(eid)
    staged.close()
    rig.crash_and_restart()
    rig.queue.run_pending()
    assert rig.procore.named("e.txt")[0].versions[-1][1] == b"closed once"


def test_status_reports_waiting_items(rig: Rig) -> None:
    rig.stage("w.txt", b"12345")
    status = rig.queue.status()
    assert [(s.name, s.size, s.state) for s in status.waiting] == [("w.txt", 5, "waiting")]
    assert status.as_dict()["waiting"][0]["path"] == "/w.txt"


# ---- with the worker threads -----------------------------------------------------------------

def poll(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_a_save_during_an_upload_becomes_the_next_version(tmp_path: Path) -> None:
    rig = Rig(tmp_path, debounce=0.0)
    gate = threading.Event()
    started = threading.Event()

    def hold() -> None:
        started.set()
        gate.wait(10)
    rig.procore.inject("upload", hold)
    staged = rig.area.create()
    staged.write(0, b"first")
    target = Target(1, 2, ROOT, "f.txt")
    eid = rig.queue.stage(target, staged.seal(), None)
    rig.queue.start()
    try:
        assert started.wait(10)
        assert [s.entry_id for s in rig.queue.status().uploading] == [eid]
        assert not rig.queue.reopen(eid)                  # on its way: write a copy
        staged.freeze()
        staged.write(0, b"second")
        eid2 = rig.queue.stage(target, staged.seal(), None, previous=eid)
        assert eid2 != eid
        gate.set()
        rig.queue.wait(eid2, timeout=10)
        (f,) = rig.procore.named("f.txt")
        assert [v[1] for v in f.versions] == [b"first", b"second"]
    finally:
        gate.set()
        staged.close()
        rig.queue.close()
        rig.journal.close()


def test_fsync_waits_for_the_commit_and_skips_the_debounce(tmp_path: Path) -> None:
    rig = Rig(tmp_path, debounce=1.0)                     # the ManualClock never moves
    rig.queue.start()
    try:
        eid = rig.stage("s.txt", b"synced")
        event = rig.queue.wait(eid, timeout=10)
        assert event is not None and event.kind == "committed"
        assert rig.procore.named("s.txt")
    finally:
        rig.queue.close()
        rig.journal.close()


@pytest.mark.allow_log("cannot save", "no longer accepts the sign-in")
def test_fsync_reports_a_failure(tmp_path: Path) -> None:
    rig = Rig(tmp_path, debounce=0.0)
    rig.procore.inject("upload", Unauthorized("The access token is invalid", status=401))
    rig.queue.start()
    try:
        eid = rig.stage("s.txt", b"x")
        with pytest.raises(FsError) as info:
            rig.queue.wait(eid, timeout=10)
        assert isinstance(info.value, FsAccessDenied)
    finally:
        rig.queue.close()
        rig.journal.close()
