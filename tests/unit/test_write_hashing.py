"""Staged files hash their upload parts behind sequential writes, and never keep a stale hash.

A snapshot's ``digests`` must always speak of the spool's bytes: every part digest it holds,
and the whole-file SHA-256 when it holds one, equal what a pass over the spool computes
(``digest_parts``, the client's own hashing). What a write out of order, an overwrite or a
truncation spoiled is simply not there, for the commit to compute.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from procorefs.api.uploads import digest_parts
from procorefs.core import staging
from procorefs.core.staging import Digests, Snapshot, StagingArea, hash_parts

KiB = 1024
MiB = 1024 * KiB


def check(area: StagingArea, snap: Snapshot) -> Digests:
    """Every digest the snapshot holds is that of the spool's bytes, and so is the whole-file
    hash the staged file finishes after the seal; answers the digests, with that hash."""
    digests = snap.digests
    assert digests is not None and digests.size == snap.size
    path = area.path_of(snap.spool)
    assert digests.mtime_ns == os.stat(path).st_mtime_ns
    reference = digest_parts(path, digests.part_size) if snap.size else ()
    for index, part in digests.parts:
        ref = reference[index]
        assert (part.size, part.sha256, part.md5) == (ref.size, ref.sha256, ref.md5), index
    actual = hashlib.sha256(path.read_bytes()[:snap.size]).hexdigest()
    if digests.sha256 is not None:
        assert digests.sha256 == actual
    later = area.sha256_of(snap.spool, snap.generation)
    if later is not None:
        assert later == actual
    return replace(digests, sha256=digests.sha256 or later)


def write_in_order(staged: staging.StagedFile, data: bytes, step: int = MiB) -> None:
    for offset in range(0, len(data), step):
        staged.write(offset, data[offset:offset + step])


def test_a_file_written_in_order_is_fully_hashed_at_seal(tmp_path: Path) -> None:
    area = StagingArea(tmp_path, part_size=2 * MiB)
    data = random.Random(1).randbytes(9 * MiB + 123)
    staged = area.create()
    write_in_order(staged, data)
    digests = check(area, staged.seal())
    assert digests.complete() and [i for i, _ in digests.parts] == [0, 1, 2, 3, 4]
    assert digests.sha256 == hashlib.sha256(data).hexdigest()


def test_an_empty_file_has_the_empty_hash(tmp_path: Path) -> None:
    area = StagingArea(tmp_path)
    digests = check(area, area.create().seal())
    assert digests.complete() and digests.parts == ()
    assert digests.sha256 == hashlib.sha256(b"").hexdigest()


def test_a_part_overwritten_after_hashing_loses_its_digest_and_the_whole(
        tmp_path: Path) -> None:
    area = StagingArea(tmp_path, part_size=2 * MiB)
    data = random.Random(2).randbytes(8 * MiB)
    staged = area.create()
    write_in_order(staged, data)
    assert check(area, staged.seal()).complete()
    staged.freeze()
    staged.write(3 * MiB, b"patched")            # in part 1, after it was hashed
    digests = check(area, staged.seal())
    assert [i for i, _ in digests.parts] == [0, 2, 3] and digests.sha256 is None
    # The commit computes what is missing, reading part 1 only for the parts.
    whole, parts = hash_parts(area.path_of(staged.spool), staged.size, 2 * MiB,
                              digests.part_map(), whole=True, parts=True)
    expected = bytearray(data)
    expected[3 * MiB:3 * MiB + 7] = b"patched"
    assert whole == hashlib.sha256(expected).hexdigest()
    ref = digest_parts(area.path_of(staged.spool), 2 * MiB)
    assert [(p.sha256, p.md5) for _, p in sorted(parts.items())] == \
        [(p.sha256, p.md5) for p in ref]


def test_truncating_to_zero_starts_over(tmp_path: Path) -> None:
    """``> file`` (O_TRUNC) of a file written before: the new bytes are hashed from 0."""
    area = StagingArea(tmp_path, part_size=MiB)
    staged = area.create()
    write_in_order(staged, b"a" * (3 * MiB))
    staged.seal()
    staged.freeze()
    staged.truncate(0)
    new = random.Random(3).randbytes(2 * MiB + 5)
    write_in_order(staged, new, 256 * KiB)
    digests = check(area, staged.seal())
    assert digests.complete() and digests.sha256 == hashlib.sha256(new).hexdigest()


def test_a_reopened_spool_trusts_none_of_its_old_bytes(tmp_path: Path) -> None:
    area = StagingArea(tmp_path, part_size=MiB)
    staged = area.create()
    write_in_order(staged, random.Random(4).randbytes(3 * MiB))
    snap = staged.seal()
    staged.close()
    again = area.reopen(snap, None)             # after a restart: nothing was seen here
    digests = check(area, again.seal())
    assert digests.parts == () and digests.sha256 is None
    again.close()


def test_writes_out_of_order_are_hashed_where_they_are_in_order(tmp_path: Path) -> None:
    area = StagingArea(tmp_path, part_size=MiB)
    staged = area.create()
    staged.write(0, b"x" * MiB)
    staged.write(2 * MiB, b"z" * MiB)           # a gap: not hashed behind the writes
    digests = check(area, staged.seal())
    assert [i for i, _ in digests.parts] == [0] and digests.sha256 is None


@pytest.mark.parametrize("seed", range(12))
def test_random_writes_and_truncates_never_leave_a_stale_digest(tmp_path: Path,
                                                                 seed: int) -> None:
    """Mostly sequential runs with overwrites, gaps, appends and truncations in between,
    while the background hasher works: whatever the snapshot says is true."""
    rng = random.Random(seed)
    area = StagingArea(tmp_path, part_size=256 * KiB)
    staged = area.create()
    size = 0
    for _ in range(60):
        roll = rng.random()
        if roll < 0.6:                          # go on in order
            n = rng.choice((4 * KiB, 64 * KiB, 300 * KiB, MiB))
            staged.write(size, rng.randbytes(n))
        elif roll < 0.75 and size:              # overwrite something
            at = rng.randrange(size)
            staged.write(at, rng.randbytes(rng.randrange(1, 200 * KiB)))
        elif roll < 0.8:                        # a gap
            staged.write(size + rng.randrange(1, 100 * KiB), b"gap")
        elif roll < 0.9 and size:
            staged.truncate(rng.randrange(size + 1))
        elif roll < 0.93:
            staged.truncate(0)
        else:
            check(area, staged.seal())
            staged.freeze()
        size = staged.size
    check(area, staged.seal())
    staged.close()


def test_an_overwrite_while_the_hasher_reads_that_chunk_throws_its_result_away(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hasher reads a chunk outside the lock; a write landing in it meanwhile must not
    leave the digest of the bytes it read."""
    real = staging._pread_all
    reading = threading.Event()
    go = threading.Event()

    def slow(fd: int, size: int, offset: int) -> bytes:
        data = real(fd, size, offset)
        if threading.current_thread().name == "procorefs-hash" and offset == 0:
            reading.set()
            assert go.wait(10)
        return data

    monkeypatch.setattr(staging, "_pread_all", slow)
    area = StagingArea(tmp_path, part_size=2 * MiB)
    staged = area.create()
    staged.write(0, b"a" * MiB)
    staged.write(MiB, b"b" * MiB)               # a chunk behind: the hasher starts
    assert reading.wait(10)                     # it has read [0, 1 MiB) and holds it
    staged.write(10, b"CHANGED")
    go.set()
    digests = check(area, staged.seal())
    assert digests.complete()                   # hashed again at seal, from the new bytes
    expected = bytearray(b"a" * MiB + b"b" * MiB)
    expected[10:17] = b"CHANGED"
    assert digests.sha256 == hashlib.sha256(expected).hexdigest()
    staged.close()


def test_digests_round_trip_through_json(tmp_path: Path) -> None:
    area = StagingArea(tmp_path, part_size=MiB)
    staged = area.create()
    write_in_order(staged, random.Random(5).randbytes(2 * MiB + 1))
    digests = staged.seal().digests
    assert digests is not None
    assert Digests.from_json(digests.to_json()) == digests
    assert Digests.from_json("not json") is None and Digests.from_json(None) is None


def test_digests_travel_with_the_journal_entry_and_an_older_journal_gains_the_column(
        tmp_path: Path) -> None:
    import sqlite3

    from procorefs.core.journal import JOURNAL_NAME, Journal, Target

    # A journal written before digests were kept: its entries table has no such column.
    old = tmp_path / "old"
    old.mkdir()
    with sqlite3.connect(old / JOURNAL_NAME) as conn:
        conn.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "company_id INTEGER NOT NULL, project_id INTEGER, parent_id INTEGER, "
                     "name TEXT NOT NULL, key TEXT NOT NULL DEFAULT '', file_id INTEGER, "
                     "base_version_id INTEGER, base_version_number INTEGER, base_size INTEGER, "
                     "base_sha256 TEXT, after_id INTEGER, spool TEXT NOT NULL, "
                     "size INTEGER NOT NULL, holes TEXT NOT NULL DEFAULT '[]', "
                     "dirty INTEGER NOT NULL DEFAULT 1, sha256 TEXT, state TEXT NOT NULL, "
                     "upload_state TEXT, upload_uuid TEXT, upload_started REAL, "
                     "result_file_id INTEGER, result_version_id INTEGER, "
                     "result_version_number INTEGER, result_name TEXT, outcome TEXT, "
                     "failure TEXT, attempts INTEGER NOT NULL DEFAULT 0, "
                     "not_before REAL NOT NULL DEFAULT 0, cancelled INTEGER NOT NULL DEFAULT 0, "
                     "created_at REAL NOT NULL, updated_at REAL NOT NULL)")
        conn.execute("INSERT INTO entries(company_id, name, spool, size, state, created_at, "
                     "updated_at) VALUES(1, 'old.txt', 'a.spool', 3, 'waiting', 0, 0)")
    journal = Journal.open(old)
    try:
        (entry,) = journal.entries()
        assert entry.name == "old.txt" and entry.digests is None     # not known: computed
        area = StagingArea(tmp_path, part_size=MiB)
        staged = area.create()
        write_in_order(staged, random.Random(6).randbytes(MiB + 9))
        snap = staged.seal()
        assert snap.digests is not None
        eid = journal.add(Target(1, 2, 3, "new.bin"), spool=snap.spool, size=snap.size,
                          holes=snap.holes, dirty=True, base=None,
                          digests=snap.digests.to_json())
        got = journal.get(eid)
        assert got is not None and Digests.from_json(got.digests) == snap.digests
    finally:
        journal.close()


def test_the_whole_file_hash_after_the_seal_is_of_the_sealed_bytes_or_none(
        tmp_path: Path) -> None:
    """The close leaves a large file's whole-file hash to the hasher; asked for it later, the
    staged file answers for exactly the content sealed, or not at all."""
    area = StagingArea(tmp_path, part_size=MiB)
    staged = area.create()
    data = random.Random(7).randbytes(20 * MiB)
    write_in_order(staged, data)
    snap = staged.seal()
    assert area.sha256_of(snap.spool, snap.generation) == hashlib.sha256(data).hexdigest()
    assert area.sha256_of(snap.spool, snap.generation + 1) is None
    staged.freeze()
    staged.write(5, b"moved on")                  # into a copy: the sealed spool is unchanged
    assert area.sha256_of(snap.spool, snap.generation) is None    # no longer what it writes
    again = staged.seal()
    assert area.sha256_of(again.spool, again.generation) is None  # bytes changed behind it
    staged.close()
    assert area.sha256_of(again.spool, again.generation) is None


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_discarded_spool_is_closed_everywhere_when_discard_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a full disk a broken file is discarded; its space must be free at once, not once
    the chunk the hasher was reading (through a descriptor of its own) is done."""
    area = StagingArea(tmp_path, part_size=2 * MiB)
    staged = area.create()
    staged.write(0, b"x" * (2 * MiB))
    spool = area.path_of(staged.spool)
    reading, gate = threading.Event(), threading.Event()
    real_pread = staging._pread_all

    def slow_pread(fd: int, size: int, offset: int) -> bytes:
        reading.set()
        assert gate.wait(30)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(staging, "_pread_all", slow_pread)
    hasher = threading.Thread(target=staged.hash_step, args=(0,))
    hasher.start()
    assert reading.wait(30)
    waiting = threading.Event()
    real_wait = staged._hashed.wait

    def noted_wait(timeout: float | None = None) -> bool:
        waiting.set()
        return real_wait(timeout)

    monkeypatch.setattr(staged._hashed, "wait", noted_wait)
    open_at_return: list[bool] = []

    def discard() -> None:
        staged.discard()
        open_at_return.append(any(
            os.readlink(f"/proc/self/fd/{fd}").startswith(str(spool))
            for fd in os.listdir("/proc/self/fd") if _readable_link(fd)))

    discarding = threading.Thread(target=discard)
    discarding.start()
    deadline = time.monotonic() + 30
    while not (waiting.is_set() or open_at_return):     # discard waits, or it returned
        assert time.monotonic() < deadline
        time.sleep(0.005)
    gate.set()
    discarding.join(30)
    hasher.join(30)
    assert open_at_return == [False]
    assert not spool.exists()


def _readable_link(fd: str) -> bool:
    try:
        os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return True
