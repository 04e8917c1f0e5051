"""Commits of large files against the emulator: no hashing pass, and the upload made during
the debounce.

A staged file hashes its upload parts as it is written, so the commit reuses those digests
instead of reading the file again; the emulator's storage checks every part's SHA-256 and
MD5, so a digest of other bytes would fail the upload. The upload of a large file is made
while the commit debounce runs (the clock here is a ``ManualClock`` that only the test moves);
the call that creates the file or version still waits for the debounce, so what happens
within it (a rewrite, a rename, a delete, a reopen) coalesces as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from procorefs.api import File, ProcoreClient, UploadState
from procorefs.api import uploads as api_uploads
from procorefs.clock import ManualClock
from procorefs.core import commits
from procorefs.core.commits import BackoffPolicy, CommitEvent, CommitQueue, UploadLayout
from procorefs.core.fs import ProcoreFS
from procorefs.core.journal import Journal, Target
from procorefs.core.staging import Digests, StagedFile, StagingArea
from tests.api.conftest import MiB, World, file_keyring, log_when, wait_for, world
from tests.core.conftest import CoreEnv

__all__ = ["file_keyring", "world"]      # fixtures used by name below

PART = 6 * MiB
LAYOUT = UploadLayout(part_size=PART, small_max=MiB)


class Spies:
    """Counts every hashing pass over a staged file: the commit's and the client's."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commit: list[dict[str, Any]] = []
        self.client: list[Path] = []
        real_parts = commits.hash_parts
        real_digest = api_uploads.digest_parts

        def hash_parts(path: Path, size: int, part_size: int, known: Any, *, whole: bool,
                       parts: bool) -> Any:
            self.commit.append({"known": sorted(known), "whole": whole, "parts": parts})
            return real_parts(path, size, part_size, known, whole=whole, parts=parts)

        def digest_parts(path: Path, part_size: int, progress: Any = None) -> Any:
            self.client.append(path)
            return real_digest(path, part_size, progress)

        monkeypatch.setattr(commits, "hash_parts", hash_parts)
        monkeypatch.setattr(api_uploads, "digest_parts", digest_parts)


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Spies:
    return Spies(monkeypatch)


@pytest.fixture
def client(world: World) -> Iterator[ProcoreClient]:
    with world.connect(upload_part_size=PART, small_upload_max=MiB, upload_parallel=2,
                       max_retries=1) as c:
        yield c


class Rig:
    """Journal, staging and queue over one cache dir, on a clock only the test moves."""

    def __init__(self, world: World, cache: Path, client: ProcoreClient, *,
                 debounce: float = 1.0, clock: ManualClock | None = None) -> None:
        self.world = world
        self.cache = cache
        self.clock = clock or ManualClock(start=time.time())
        self.events: list[CommitEvent] = []
        self.journal = Journal.open(cache, clock=self.clock)
        self.area = StagingArea(cache, part_size=PART)
        self.queue = CommitQueue(self.journal, self.area, client, clock=self.clock,
                                 debounce=debounce, on_event=self.events.append,
                                 backoff=BackoffPolicy(base=0.05, cap=0.2, jitter=0.0),
                                 upload_layout=LAYOUT)

    def target(self, name: str) -> Target:
        return Target(self.world.company_id, self.world.project_id, self.world.project_root,
                      name)

    def written(self, data: bytes) -> StagedFile:
        staged = self.area.create()
        for offset in range(0, len(data), MiB):       # as cp writes: in order, 1 MiB at a time
            staged.write(offset, data[offset:offset + MiB])
        return staged

    def stage(self, name: str, staged: StagedFile, previous: int | None = None) -> int:
        snap = staged.seal()
        staged.freeze()
        return self.queue.stage(self.target(name), snap, None, key=f"/{name}",
                                previous=previous)

    def close(self) -> None:
        self.queue.close()
        self.journal.close()


@pytest.fixture
def rig(world: World, client: ProcoreClient, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(world, tmp_path / "mount-cache", client)
    yield r
    r.close()


def files_named(client: ProcoreClient, world: World, name: str) -> list[File]:
    root = client.folder(world.project, world.project_root)
    return [f for f in root.files if f.name == name]


def content(client: ProcoreClient, world: World, f: File) -> bytes:
    version = client.file(world.project, f.id).current_version
    assert version is not None
    return client.read_range(version, 0, version.size)


def requests(world: World, mark: int, ready: Callable[[list[dict[str, Any]]], bool]
             ) -> list[tuple[str, str]]:
    log = log_when(world.emulator, mark, ready)
    return [(r["method"], r["path"]) for r in log]


def upload_done(log: list[dict[str, Any]]) -> bool:
    return any(r["method"] == "PATCH" and "/uploads/" in r["path"] for r in log)


def created(log: list[dict[str, Any]]) -> bool:
    return any(r["method"] == "POST" and r["path"].endswith("/files") for r in log)


def count(reqs: list[tuple[str, str]], method: str, tail: str) -> int:
    return sum(1 for m, p in reqs if m == method and p.endswith(tail))


def data_of(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# ---- no hashing pass at commit -------------------------------------------------------------

def test_a_file_written_in_order_is_committed_without_a_hashing_pass(
        world: World, client: ProcoreClient, tmp_path: Path, spies: Spies) -> None:
    r = Rig(world, tmp_path / "cache", client, debounce=0.0)
    try:
        data = data_of(3 * PART + 5 * MiB, 1)           # four parts, the last one short
        staged = r.written(data)                         # (open until committed, as in the core)
        r.stage("big.bin", staged)
        r.queue.run_pending()
    finally:
        r.close()
    # The parts' digests came from staging, and so did the whole file's hash, which the staged
    # file finished while the upload ran.
    assert spies.commit == [] and spies.client == []
    (f,) = files_named(client, world, "big.bin")
    assert content(client, world, f) == data             # storage checked every part's hashes
    assert r.events[-1].sha256 == hashlib.sha256(data).hexdigest()


def test_a_part_rewritten_after_it_was_hashed_is_hashed_again_alone(
        world: World, client: ProcoreClient, tmp_path: Path, spies: Spies) -> None:
    r = Rig(world, tmp_path / "cache", client, debounce=0.0)
    try:
        data = bytearray(data_of(3 * PART + MiB, 2))
        staged = r.written(bytes(data))
        staged.seal()                                    # every part hashed by now
        staged.freeze()
        staged.write(PART + 123, b"rewritten")           # in part 1, after its digest
        data[PART + 123:PART + 132] = b"rewritten"
        r.stage("patched.bin", staged)
        r.queue.run_pending()
    finally:
        r.close()
    # Part 1's digests before the upload. The whole-file SHA-256 is taken once the upload is
    # done, when nothing waits for it but the create: read again if the rewrite spoiled it,
    # from staging if that had not hashed so far yet.
    assert spies.commit[0] == {"known": [0, 2, 3], "whole": False, "parts": True}
    assert spies.commit[1:] in ([], [{"known": [], "whole": True, "parts": False}])
    assert spies.client == []
    (f,) = files_named(client, world, "patched.bin")
    assert content(client, world, f) == data
    assert r.events[-1].sha256 == hashlib.sha256(data).hexdigest()


def test_after_a_restart_the_journaled_digests_are_used(
        world: World, client: ProcoreClient, tmp_path: Path, spies: Spies) -> None:
    cache = tmp_path / "cache"
    first = Rig(world, cache, client, debounce=0.0)
    data = data_of(2 * PART + 3, 3)
    first.stage("kept.bin", first.written(data))
    first.close()                                         # the mount stops before the commit
    second = Rig(world, cache, client, debounce=0.0)
    try:
        second.queue.run_pending()
    finally:
        second.close()
    # No part is hashed again (the whole-file hash, if the seal did not have it yet, is read
    # after the upload: the staged file that would have finished it is gone).
    assert [c for c in spies.commit if c["parts"]] == [] and spies.client == []
    (f,) = files_named(client, world, "kept.bin")
    assert content(client, world, f) == data


def test_a_spool_changed_after_it_was_hashed_is_hashed_again_after_a_restart(
        world: World, client: ProcoreClient, tmp_path: Path, spies: Spies) -> None:
    cache = tmp_path / "cache"
    first = Rig(world, cache, client, debounce=0.0)
    data = bytearray(data_of(2 * PART + 3, 4))
    eid = first.stage("changed.bin", first.written(bytes(data)))
    entry = first.journal.get(eid)
    assert entry is not None and entry.digests is not None
    first.close()
    # Something changed the spool behind the journal's back: its time says so.
    with first.area.path_of(entry.spool).open("r+b") as fh:
        fh.seek(PART + 7)
        fh.write(b"behind the back")
    data[PART + 7:PART + 22] = b"behind the back"
    second = Rig(world, cache, client, debounce=0.0)
    try:
        second.queue.run_pending()
    finally:
        second.close()
    assert spies.commit == [{"known": [], "whole": False, "parts": True},
                            {"known": [], "whole": True, "parts": False}]
    (f,) = files_named(client, world, "changed.bin")
    assert content(client, world, f) == data


def test_an_entry_reopened_and_written_in_place_is_hashed_again_after_a_crash(
        world: World, client: ProcoreClient, tmp_path: Path) -> None:
    """reopen() lets the staged file be written in place; if the mount dies before it is
    staged again, the journal holds no hash of the old bytes, even on a disk whose clock
    does not see the change (its time is put back here)."""
    cache = tmp_path / "cache"
    first = Rig(world, cache, client, debounce=0.0)
    data = bytearray(data_of(2 * PART + 3, 5))
    staged = first.written(bytes(data))
    eid = first.queue.stage(first.target("inplace.bin"), staged.seal(), None)
    entry = first.journal.get(eid)
    assert entry is not None and entry.digests is not None
    path = first.area.path_of(entry.spool)
    before = os.stat(path)
    assert first.queue.reopen(eid)
    staged.write(100, b"written in place")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    data[100:116] = b"written in place"
    staged.close()
    first.close()                                         # kill -9 while it was held
    second = Rig(world, cache, client, debounce=0.0)
    try:
        second.queue.run_pending()
    finally:
        second.close()
    (f,) = files_named(client, world, "inplace.bin")
    assert content(client, world, f) == data


# ---- the upload made during the debounce ---------------------------------------------------

def test_a_large_file_is_uploaded_during_the_debounce_and_created_after_it(
        world: World, client: ProcoreClient, rig: Rig, spies: Spies) -> None:
    data = data_of(2 * PART + MiB, 6)
    mark = world.emulator.log_mark()
    staged = rig.written(data)                           # (open until committed, as in the core)
    eid = rig.stage("early.bin", staged)
    rig.queue.run_pending()                              # the clock has not moved
    reqs = requests(world, mark, upload_done)
    assert count(reqs, "POST", "/uploads") == 1 and count(reqs, "PUT", "") == 3
    assert count(reqs, "POST", "/files") == 0            # the create waits for the debounce
    entry = rig.journal.get(eid)
    assert entry is not None and entry.state == "waiting"
    assert UploadState.from_json(entry.upload_state or "").complete

    mark = world.emulator.log_mark()
    rig.clock.advance(1.0)
    rig.queue.run_pending()
    reqs = requests(world, mark, created)
    assert reqs == [("POST", "/rest/v1.0/files")]        # nothing uploaded again
    (f,) = files_named(client, world, "early.bin")
    assert content(client, world, f) == data
    assert rig.events[-1].sha256 == hashlib.sha256(data).hexdigest()
    assert spies.commit == [] and spies.client == []
    assert rig.area.spools() == set()


def test_a_small_file_waits_for_the_debounce_entirely(world: World, client: ProcoreClient,
                                                      rig: Rig) -> None:
    mark = world.emulator.log_mark()
    rig.stage("small.txt", rig.written(b"small"))
    assert rig.queue.run_pending() == 0                  # not even its upload
    rig.clock.advance(1.0)
    rig.queue.run_pending()
    reqs = requests(world, mark, created)
    assert sorted(m for m, _ in reqs) == ["POST", "POST", "POST"]   # upload, storage, create
    assert count(reqs, "POST", "/uploads") == 1 and count(reqs, "POST", "/files") == 1


def test_a_rewrite_within_the_debounce_is_one_file_with_the_last_bytes(
        world: World, client: ProcoreClient, rig: Rig) -> None:
    first, second = data_of(PART + MiB, 7), data_of(PART + 2 * MiB, 8)
    staged = rig.written(first)
    eid = rig.stage("rewritten.bin", staged)
    rig.queue.run_pending()                              # uploaded early
    staged.truncate(0)                                   # frozen: continues in a copy
    for offset in range(0, len(second), MiB):
        staged.write(offset, second[offset:offset + MiB])
    assert rig.stage("rewritten.bin", staged, previous=eid) == eid   # coalesced
    rig.clock.advance(0.9)
    rig.queue.run_pending()                              # the new bytes are uploaded early
    rig.clock.advance(0.9)
    mark = world.emulator.log_mark()
    rig.queue.run_pending()
    assert requests(world, mark, created) == [("POST", "/rest/v1.0/files")]
    (f,) = files_named(client, world, "rewritten.bin")
    assert content(client, world, f) == second and len(f.versions) == 1
    assert rig.area.spools() == set()


def test_a_rename_within_the_debounce_creates_only_the_new_name(
        world: World, client: ProcoreClient, rig: Rig) -> None:
    data = data_of(PART + MiB, 9)
    eid = rig.stage("download.part", rig.written(data))
    rig.queue.run_pending()                              # uploaded early, as download.part
    assert rig.queue.retarget(eid, rig.target("download.iso"))
    entry = rig.journal.get(eid)
    assert entry is not None and entry.upload_state is None   # made for the old name
    mark = world.emulator.log_mark()
    rig.clock.advance(1.0)
    rig.queue.run_pending()
    reqs = requests(world, mark, created)
    assert count(reqs, "POST", "/uploads") == 1 and count(reqs, "POST", "/files") == 1
    assert files_named(client, world, "download.part") == []
    (f,) = files_named(client, world, "download.iso")
    assert content(client, world, f) == data


def test_a_delete_within_the_debounce_creates_nothing(world: World, client: ProcoreClient,
                                                      rig: Rig) -> None:
    eid = rig.stage("gone.bin", rig.written(data_of(PART + MiB, 10)))
    rig.queue.run_pending()                              # uploaded early
    assert rig.queue.cancel(eid)
    mark = world.emulator.log_mark()
    rig.clock.advance(1.0)
    assert rig.queue.run_pending() == 0
    assert world.emulator.requests(mark, origin="api") == []
    assert files_named(client, world, "gone.bin") == [] and rig.area.spools() == set()


def test_a_reopen_that_writes_nothing_keeps_the_early_upload(
        world: World, client: ProcoreClient, rig: Rig) -> None:
    """LibreOffice reopens what it just wrote to lock and fsync it, and writes nothing."""
    data = data_of(PART + MiB, 11)
    staged = rig.written(data)
    target = rig.target("locked.odt")
    eid = rig.queue.stage(target, staged.seal(), None)
    staged.freeze()
    rig.queue.run_pending()                              # uploaded early
    assert rig.queue.reopen(eid)
    held = rig.journal.get(eid)
    assert held is not None and held.upload_state is None and held.digests is None
    assert rig.queue.stage(target, staged.seal(), None, previous=eid) == eid
    again = rig.journal.get(eid)
    assert again is not None and UploadState.from_json(again.upload_state or "").complete
    mark = world.emulator.log_mark()
    rig.clock.advance(1.0)
    rig.queue.run_pending()
    assert requests(world, mark, created) == [("POST", "/rest/v1.0/files")]
    (f,) = files_named(client, world, "locked.odt")
    assert content(client, world, f) == data


def test_a_word_save_of_a_large_document_is_one_version_uploaded_during_the_debounce(
        core_env_empty: CoreEnv) -> None:
    """The save dance through the core: the temp lands on the document, its upload is made
    at once, the new version only after the debounce; same file id, no temp in Procore."""
    env = core_env_empty
    fs: ProcoreFS = env.fs(client=env.client(upload_part_size=PART, small_upload_max=MiB))

    def write(path: str, data: bytes) -> None:
        handle = fs.create(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            for offset in range(0, len(data), MiB):
                fs.write(handle, offset, data[offset:offset + MiB])
            fs.flush(handle)
        finally:
            fs.release(handle)

    fs.mkdir("/Docs")
    write("/Docs/Report.docx", data_of(PART + MiB, 12))
    fs.run_commits()
    original = fs.getattr("/Docs/Report.docx").remote_id
    new = data_of(PART + 3 * MiB, 13)
    write("/Docs/~$port.docx", b"owner")
    write("/Docs/~WRD0000.tmp", new)
    fs.unlink("/Docs/Report.docx")
    fs.rename("/Docs/~WRD0000.tmp", "/Docs/Report.docx")
    fs.unlink("/Docs/~$port.docx")
    mark = env.mark()
    fs._queue.run_pending()                              # the clock has not moved
    reqs = [(r["method"], r["path"]) for r in
            log_when(env.emulator, mark, upload_done, origin="api")]
    assert not any(p.endswith("/file_versions") or p.endswith("/files") for _, p in reqs)
    mark = env.mark()
    env.clock.advance(fs.config.commit_debounce)
    fs._queue.run_pending()
    reqs = [(r["method"], r["path"]) for r in
            log_when(env.emulator, mark,
                     lambda log: any(r["path"].endswith("/file_versions") for r in log),
                     origin="api")]
    assert count(reqs, "POST", "/uploads") == 0 and count(reqs, "POST", "/file_versions") == 1
    fs.run_commits()                                     # the deferred delete was cancelled
    client = env.client()
    folder = fs.getattr("/Docs").remote_id
    assert folder is not None
    assert [(f.id, f.name) for f in client.folder(env.project, folder).files] == \
        [(original, "Report.docx")]
    assert original is not None
    report = client.file(env.project, original)
    version = report.current_version
    assert len(report.versions) == 2 and version is not None
    assert client.read_range(version, 0, version.size) == new


def test_a_delete_during_an_early_upload_stops_it(world: World, client: ProcoreClient,
                                                  tmp_path: Path) -> None:
    """With the workers running (the clock never moves, so the commit is never due), a
    delete while the early upload is on the wire stops it before its last part: nothing is
    completed, nothing created, nothing logged above INFO."""
    world.emulator.set_faults([{"action": "latency", "delay": 0.5, "origin": "storage",
                                "method": "PUT"}])
    r = Rig(world, tmp_path / "cache", client)
    r.queue.start()
    try:
        mark = world.emulator.log_mark()
        eid = r.stage("stopped.bin", r.written(data_of(4 * PART, 14)))
        wait_for(lambda: [s.entry_id for s in r.queue.status().uploading] == [eid])
        assert r.queue.cancel(eid)
        wait_for(lambda: not r.queue.status().uploading)
    finally:
        r.close()
        world.emulator.clear_faults()
    log = world.emulator.requests(mark)
    assert not any(e["method"] == "PATCH" or e["path"].endswith("/files") for e in log)
    assert sum(1 for e in log if e["method"] == "PUT") < 4
    assert r.area.spools() == set()


@pytest.mark.allow_log(r"cannot save /wrong\.bin to Procore: Procore refused to upload")
def test_digests_that_do_not_match_the_bytes_cost_one_attempt_never_the_file(
        world: World, client: ProcoreClient, tmp_path: Path) -> None:
    """Storage refuses a part whose declared digests are wrong; a failed entry keeps no
    digests and no upload, so the retry hashes the bytes again and the file goes in."""
    r = Rig(world, tmp_path / "cache", client, debounce=0.0)
    try:
        data = data_of(2 * PART + 3, 9)
        eid = r.stage("wrong.bin", r.written(data))
        entry = r.journal.get(eid)
        assert entry is not None
        digests = Digests.from_json(entry.digests)
        assert digests is not None and digests.parts
        wrong = dataclasses.replace(digests, parts=tuple(
            (i, dataclasses.replace(h, sha256="0" * 64)) for i, h in digests.parts))
        r.journal.update(eid, digests=wrong.to_json())   # as a hashing bug would leave them
        r.queue.run_pending()
        failed = r.journal.get(eid)
        assert failed is not None and failed.state == "failed"
        assert failed.digests is None and failed.upload_state is None
        assert files_named(client, world, "wrong.bin") == []
        assert r.queue.retry_failed() == 1
        r.queue.run_pending()
    finally:
        r.close()
    (f,) = files_named(client, world, "wrong.bin")
    assert content(client, world, f) == data
