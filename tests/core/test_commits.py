"""The journal and commit queue against the emulator, through the real API client.

Every assertion is on Procore's side (the emulator's documents and its request log): a file is
created once, a save is one version of the same id, identical bytes make none, a conflict
makes a copy, a crash resumes without re-sending finished parts or creating twice, and an
offline Procore is waited out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from procorefs.api import File, ProcoreClient, UploadState
from procorefs.core.commits import BackoffPolicy, CommitEvent, CommitQueue, conflict_name
from procorefs.core.journal import Base, Journal, Target
from procorefs.core.staging import StagingArea
from tests.api.conftest import MiB, World, file_keyring, wait_for, world, write_file

__all__ = ["file_keyring", "world"]      # fixtures used by name below


class Crash(BaseException):
    """kill -9: nothing after it runs, nothing catches it."""


class Crashing:
    """The real client, with a crash planted at one point."""

    def __init__(self, client: ProcoreClient, *, after_parts: int | None = None,
                 after_create: bool = False) -> None:
        self._client = client
        self._after_parts = after_parts
        self._after_create = after_create

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upload(self, scope: Any, path: Path, *, filename: str, state: Any = None,
               on_state: Callable[[Any], None] | None = None,
               progress: Callable[[int, int], None] | None = None) -> str:
        def persist_then_crash(new: UploadState) -> None:
            if on_state is not None:
                on_state(new)
            if self._after_parts is not None and new.parts_done >= self._after_parts:
                raise Crash()
        return self._client.upload(scope, path, filename=filename, state=state,
                                   on_state=persist_then_crash, progress=progress)

    def create_file(self, scope: Any, name: str, parent_id: int | None,
                    upload_uuid: str) -> File:
        made = self._client.create_file(scope, name, parent_id, upload_uuid)
        if self._after_create:
            raise Crash()
        return made


class Mount:
    """The write path of one mount: journal, staging and queue over one cache dir."""

    def __init__(self, world: World, cache: Path, client: Any) -> None:
        self.world = world
        self.client = client
        self.events: list[CommitEvent] = []
        self.journal = Journal.open(cache)
        self.area = StagingArea(cache)
        self.queue = CommitQueue(self.journal, self.area, client, debounce=0.0,
                                 on_event=self.events.append,
                                 backoff=BackoffPolicy(base=0.05, cap=0.2, jitter=0.0))

    def stage(self, name: str, data: bytes | Path, base: Base | None = None) -> int:
        staged = self.area.create()
        if isinstance(data, Path):
            with data.open("rb") as fh:
                offset = 0
                while chunk := fh.read(MiB):
                    staged.write(offset, chunk)
                    offset += len(chunk)
        else:
            staged.write(0, data)
        snap = staged.seal()
        staged.close()
        target = Target(self.world.company_id, self.world.project_id, self.world.project_root,
                        name)
        return self.queue.stage(target, snap, base, key=f"/{name}")

    def close(self) -> None:
        self.queue.close()
        self.journal.close()


@pytest.fixture
def client(world: World) -> Iterator[ProcoreClient]:
    with world.connect(upload_part_size=6 * MiB, small_upload_max=MiB, upload_parallel=1,
                       max_retries=1) as c:
        yield c


@pytest.fixture
def mount(world: World, client: ProcoreClient, tmp_path: Path) -> Iterator[Mount]:
    m = Mount(world, tmp_path / "mount-cache", client)
    yield m
    m.close()


def put(client: ProcoreClient, world: World, name: str, data: bytes, tmp: Path) -> File:
    src = tmp / f"seed-{name}"
    src.write_bytes(data)
    uuid = client.upload(world.project, src, filename=name)
    return client.create_file(world.project, name, world.project_root, uuid)


def files_named(client: ProcoreClient, world: World, name: str) -> list[File]:
    root = client.folder(world.project, world.project_root)
    return [f for f in root.files if f.name == name]


def content(client: ProcoreClient, world: World, file_id: int) -> bytes:
    f = client.file(world.project, file_id)
    assert f.current_version is not None
    return client.read_range(f.current_version, 0, f.current_version.size)


def base_of(f: File, data: bytes | None = None) -> Base:
    v = f.current_version
    assert v is not None
    return Base(f.id, v.id, v.number, v.size,
                hashlib.sha256(data).hexdigest() if data is not None else None)


def creates(world: World, mark: int) -> list[dict[str, Any]]:
    return [r for r in world.emulator.requests(mark, origin="api")
            if r["method"] == "POST" and r["path"].endswith("/files")]


def test_new_file_is_committed_once(world: World, client: ProcoreClient, mount: Mount) -> None:
    mark = world.emulator.log_mark()
    mount.stage("new.txt", b"fresh bytes")
    mount.queue.run_pending()
    (f,) = files_named(client, world, "new.txt")
    assert content(client, world, f.id) == b"fresh bytes"
    assert len(creates(world, mark)) == 1
    assert mount.events[-1].kind == "committed" and mount.events[-1].file is not None
    assert mount.journal.entries() == [] and mount.area.spools() == set()


def test_a_save_is_a_new_version_of_the_same_id(world: World, client: ProcoreClient,
                                                mount: Mount, tmp_path: Path) -> None:
    original = put(client, world, "r.docx", b"v1", tmp_path)
    mark = world.emulator.log_mark()
    mount.stage("r.docx", b"v2 is longer", base_of(original))
    mount.queue.run_pending()
    after = client.file(world.project, original.id)
    assert [v.number for v in after.versions] == [1, 2]
    assert content(client, world, original.id) == b"v2 is longer"
    assert creates(world, mark) == []
    event = mount.events[-1]
    assert event.version is not None and event.version.number == 2
    assert event.file is not None and event.file.size == len(b"v2 is longer")


def test_identical_bytes_make_no_version_and_no_request(world: World, client: ProcoreClient,
                                                       mount: Mount, tmp_path: Path) -> None:
    original = put(client, world, "same.xlsx", b"unchanged", tmp_path)
    mark = world.emulator.log_mark()
    mount.stage("same.xlsx", b"unchanged", base_of(original, b"unchanged"))
    mount.queue.run_pending()
    assert world.emulator.requests(mark) == []
    assert len(client.file(world.project, original.id).versions) == 1
    assert mount.events[-1].kind == "unchanged"


@pytest.mark.allow_log("conflict: ")
def test_conflict_copy_beside_a_file_that_moved_on(world: World, client: ProcoreClient,
                                                   mount: Mount, tmp_path: Path) -> None:
    original = put(client, world, "plan.pdf", b"v1", tmp_path)
    base = base_of(original)
    theirs = tmp_path / "theirs"
    theirs.write_bytes(b"their save")
    client.create_version(world.project, original.id,
                          client.upload(world.project, theirs, filename="plan.pdf"))
    eid = mount.stage("plan.pdf", b"my save", base)
    entry = mount.journal.get(eid)
    assert entry is not None
    mount.queue.run_pending()
    assert content(client, world, original.id) == b"their save"     # not overwritten
    name = conflict_name("plan.pdf", entry.created_at)
    (copy,) = files_named(client, world, name)
    assert content(client, world, copy.id) == b"my save"
    assert mount.events[-1].kind == "conflict" and mount.events[-1].conflict_name == name


def test_crash_mid_upload_resumes_with_only_the_missing_parts(
        world: World, client: ProcoreClient, tmp_path: Path) -> None:
    src = write_file(tmp_path / "big.bin", 4 * 6 * MiB)               # four 6 MiB parts
    cache = tmp_path / "mount-cache"
    first = Mount(world, cache, Crashing(client, after_parts=2))
    eid = first.stage("big.bin", src)
    with pytest.raises(Crash):
        first.queue.run_pending()
    entry = first.journal.get(eid)
    assert entry is not None and entry.state == "uploading"
    state = UploadState.from_json(entry.upload_state or "")
    assert (state.parts_done, len(state.parts)) == (2, 4)
    first.close()

    mark = world.emulator.log_mark()
    second = Mount(world, cache, client)
    try:
        second.queue.run_pending()
    finally:
        second.close()
    puts = [r for r in world.emulator.requests(mark, origin="storage") if r["method"] == "PUT"]
    assert len(puts) == 2
    (f,) = files_named(client, world, "big.bin")
    assert f.size == src.stat().st_size
    assert len(creates(world, mark)) == 1
    digest = hashlib.sha256(content(client, world, f.id)).hexdigest()
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()


def test_crash_after_create_never_duplicates(world: World, client: ProcoreClient,
                                             tmp_path: Path) -> None:
    cache = tmp_path / "mount-cache"
    first = Mount(world, cache, Crashing(client, after_create=True))
    eid = first.stage("once.txt", b"exactly once")
    with pytest.raises(Crash):
        first.queue.run_pending()
    entry = first.journal.get(eid)
    assert entry is not None and entry.state == "uploaded"      # the answer never got home
    first.close()

    mark = world.emulator.log_mark()
    second = Mount(world, cache, client)
    try:
        second.queue.run_pending()
        assert second.events[-1].kind == "committed"
    finally:
        second.close()
    assert creates(world, mark) == []
    (f,) = files_named(client, world, "once.txt")
    assert content(client, world, f.id) == b"exactly once"


def test_lost_create_answer_is_no_duplicate(world: World, client: ProcoreClient,
                                            mount: Mount) -> None:
    world.emulator.set_faults([{"action": "lost", "origin": "api", "method": "POST",
                                "path": "/files$", "times": 1}])
    mount.stage("lost.txt", b"answer lost")
    mount.queue.run_pending()
    assert len(files_named(client, world, "lost.txt")) == 1
    assert mount.events[-1].kind == "committed"


@pytest.mark.allow_log(r"(?i)offline|cannot be reached|connect")
def test_offline_then_back(world: World, client: ProcoreClient, mount: Mount) -> None:
    world.emulator.stop()
    try:
        eid = mount.stage("offline.txt", b"written offline")
        mount.queue.run_pending()
        entry = mount.journal.get(eid)
        assert entry is not None and entry.attempts >= 1 and entry.state == "waiting"
        assert mount.area.path_of(entry.spool).exists()       # still staged
    finally:
        world.emulator.start()

    def committed() -> bool:
        mount.queue.run_pending()
        return mount.journal.get(eid) is None
    wait_for(committed, timeout=60)
    (f,) = files_named(client, world, "offline.txt")
    assert content(client, world, f.id) == b"written offline"


def test_fsync_waits_with_the_workers(world: World, client: ProcoreClient,
                                      mount: Mount) -> None:
    mount.queue.debounce = 30.0                     # fsync must not wait for the debounce
    mount.queue.start()
    eid = mount.stage("synced.txt", b"on disk in Procore")
    event = mount.queue.wait(eid, timeout=60)
    assert event is not None and event.kind == "committed"
    assert len(files_named(client, world, "synced.txt")) == 1



def test_an_empty_file_is_committed(world: World, client: ProcoreClient, mount: Mount) -> None:
    mount.stage("empty.txt", b"")
    mount.queue.run_pending()
    (f,) = files_named(client, world, "empty.txt")
    assert f.size == 0 and mount.events[-1].kind == "committed"
