"""Staged files: sparse writes, lazy base fill, truncation, handles, durability, disk full."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from procorefs.core import staging
from procorefs.core.staging import (
    RangeSet,
    StagingArea,
    complete_spool,
    copy_sparse,
    hash_spool,
)
from procorefs.errors import FsNoSpace


class Base:
    """A remote version that counts what was fetched."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.fetched: list[tuple[int, int]] = []

    def fill(self, offset: int, length: int) -> bytes:
        self.fetched.append((offset, length))
        return self.data[offset:offset + length]


def area(tmp_path: Path) -> StagingArea:
    return StagingArea(tmp_path)


def test_rangeset() -> None:
    r = RangeSet([(0, 10), (20, 30)])
    r.add(10, 12)
    assert r.as_tuple() == ((0, 12), (20, 30))
    r.remove(5, 25)
    assert r.as_tuple() == ((0, 5), (25, 30))
    assert r.within(3, 27) == [(3, 5), (25, 27)]
    r.clip(26)
    assert r.as_tuple() == ((0, 5), (25, 26)) and r.total() == 6


def test_new_file_write_read_sparse(tmp_path: Path) -> None:
    staged = area(tmp_path).create()
    assert staged.size == 0 and staged.read(0, 10) == b""
    staged.write(0, b"hello")
    staged.write(10, b"world")
    assert staged.size == 15
    assert staged.read(0, 100) == b"hello\0\0\0\0\0world"
    assert staged.read(3, 4) == b"lo\0\0"


def test_append_and_truncate(tmp_path: Path) -> None:
    staged = area(tmp_path).create()
    assert staged.append(b"abc") == 0
    assert staged.append(b"def") == 3
    staged.truncate(2)
    assert staged.read(0, 10) == b"ab"
    staged.truncate(5)
    assert staged.read(0, 10) == b"ab\0\0\0"


def test_zero_byte_file(tmp_path: Path) -> None:
    a = area(tmp_path)
    staged = a.create()
    snap = staged.seal()
    assert snap.size == 0 and snap.holes == ()
    assert hash_spool(a.path_of(snap.spool), 0) == hashlib.sha256(b"").hexdigest()


def test_existing_file_is_filled_lazily_and_only_where_read(tmp_path: Path) -> None:
    base = Base(bytes(range(256)) * 40)            # 10240 bytes
    staged = area(tmp_path).create(base_size=len(base.data), fill=base.fill, fill_block=1024)
    staged.write(len(base.data), b"APPEND")          # an append fetches nothing
    assert base.fetched == []
    assert staged.read(2000, 10) == base.data[2000:2010]
    assert base.fetched == [(1024, 1024)]            # one aligned block
    assert staged.read(2000, 10) == base.data[2000:2010]
    assert base.fetched == [(1024, 1024)]            # not twice
    assert staged.holes() == ((0, 1024), (2048, 10240))
    assert staged.dirty


def test_write_over_a_hole_is_never_overwritten_by_a_fill(tmp_path: Path) -> None:
    base = Base(b"x" * 4096)
    staged = area(tmp_path).create(base_size=4096, fill=base.fill, fill_block=1024)
    staged.write(100, b"NEW")
    assert staged.read(90, 20) == b"x" * 10 + b"NEW" + b"x" * 7
    staged.complete()
    expected = bytearray(base.data)
    expected[100:103] = b"NEW"
    assert staged.read(0, 5000) == bytes(expected)


def test_truncate_down_then_up_never_refetches_the_cut_part(tmp_path: Path) -> None:
    base = Base(b"y" * 3000)
    staged = area(tmp_path).create(base_size=3000, fill=base.fill, fill_block=1024)
    staged.truncate(10)
    staged.truncate(20)
    assert staged.read(0, 100) == b"y" * 10 + b"\0" * 10
    assert base.fetched == [(0, 10)]


def test_o_trunc_fetches_nothing(tmp_path: Path) -> None:
    base = Base(b"z" * 5000)
    staged = area(tmp_path).create(base_size=5000, fill=base.fill)
    staged.truncate(0)
    staged.write(0, b"fresh")
    snap = staged.seal()
    assert snap.holes == () and snap.size == 5 and snap.dirty
    assert base.fetched == []


def test_untouched_snapshot_is_clean(tmp_path: Path) -> None:
    base = Base(b"q" * 100)
    staged = area(tmp_path).create(base_size=100, fill=base.fill)
    staged.read(0, 10)
    snap = staged.seal()
    assert not snap.dirty and snap.generation == 0


def test_worker_completes_holes_from_the_journal(tmp_path: Path) -> None:
    a = area(tmp_path)
    base = Base(os.urandom(3 * 1024 * 1024 + 17))
    staged = a.create(base_size=len(base.data), fill=base.fill)
    staged.write(5, b"12345")
    snap = staged.seal()
    staged.close()
    filled: list[tuple[int, int]] = []
    complete_spool(a.path_of(snap.spool), snap.holes, base.fill, filled.append)
    assert filled == list(snap.holes)
    expected = bytearray(base.data)
    expected[5:10] = b"12345"
    assert hash_spool(a.path_of(snap.spool), snap.size) == hashlib.sha256(expected).hexdigest()


def test_handles_share_one_staged_file(tmp_path: Path) -> None:
    staged = area(tmp_path).create()
    staged.retain()
    staged.write(0, b"from handle 1")
    assert staged.read(0, 6) == b"from h"           # handle 2 reads handle 1's write
    assert staged.release() == 1
    assert staged.release() == 0


def test_seal_is_durable_and_freeze_forks(tmp_path: Path) -> None:
    a = area(tmp_path)
    staged = a.create()
    staged.write(0, b"version one")
    snap = staged.seal()
    staged.freeze()
    staged.write(0, b"VERSION")
    assert staged.spool != snap.spool
    assert a.path_of(snap.spool).read_bytes() == b"version one"
    assert staged.read(0, 20) == b"VERSION one"
    assert staged.seal().generation == snap.generation + 1


def test_a_removed_spool_is_forked_before_the_next_write(tmp_path: Path) -> None:
    a = area(tmp_path)
    staged = a.create()
    staged.write(0, b"abc")
    snap = staged.seal()
    a.remove(snap.spool)                 # the commit queue removed it after Procore confirmed
    staged.write(3, b"def")
    assert staged.spool != snap.spool
    assert a.path_of(staged.spool).read_bytes() == b"abcdef"


def test_disk_full_marks_the_file_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staged = area(tmp_path).create()
    staged.write(0, b"ok")

    def full(fd: int, data: object, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(staging, "_pwrite", full)
    with pytest.raises(FsNoSpace) as info:
        staged.write(2, b"more")
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert staged.broken
    with pytest.raises(FsNoSpace):
        staged.seal()                     # nothing half-written can be journaled
    with pytest.raises(FsNoSpace):
        staged.write(0, b"again")


def test_large_sparse_file_stays_sparse(tmp_path: Path) -> None:
    a = area(tmp_path)
    staged = a.create()
    size = 8 * 2**30                      # 8 GiB, more than this machine's spare RAM
    staged.truncate(size)
    staged.write(size - 4, b"tail")
    assert staged.read(size - 8, 100) == b"\0\0\0\0tail"
    snap = staged.seal()
    assert os.stat(a.path_of(snap.spool)).st_blocks * 512 < 16 * 2**20
    staged.freeze()
    staged.write(0, b"head")              # the fork copies extents only
    assert os.stat(a.path_of(staged.spool)).st_blocks * 512 < 16 * 2**20
    assert staged.read(size - 4, 4) == b"tail"


def test_copy_sparse_copies_content(tmp_path: Path) -> None:
    src = tmp_path / "a"
    dst = tmp_path / "b"
    src.write_bytes(b"x" * 5000 + b"\0" * 5000 + b"y")
    with src.open("rb") as s, dst.open("wb+") as d:
        copy_sparse(s.fileno(), d.fileno(), 10001)
    assert dst.read_bytes() == src.read_bytes()


def test_orphans_are_removed(tmp_path: Path) -> None:
    a = area(tmp_path)
    keep = a.create().seal().spool
    lost = a.create().seal().spool
    assert a.remove_orphans({keep}) == [lost]
    assert a.spools() == {keep}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names fds through /proc")
def test_seal_fsyncs_the_spool_and_once_the_staging_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(staging.os, "fsync", recording_fsync)
    where = area(tmp_path)
    first = where.create()
    first.write(0, b"durable")
    snapshot = first.seal()
    spool = os.path.realpath(where.dir / snapshot.spool)
    assert synced == [spool, os.path.realpath(where.dir)]   # the bytes, then the new name
    second = where.create()
    second.write(0, b"again")
    synced.clear()
    second.seal()
    assert len(synced) == 2 and synced[1] == os.path.realpath(where.dir)  # a new name again
    synced.clear()
    second.write(5, b"!")
    second.seal()
    assert synced == [synced[0]] and synced[0] != os.path.realpath(where.dir)  # no new name
