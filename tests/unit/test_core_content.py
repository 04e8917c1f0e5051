"""The content cache (core/content.py) and the reader on top of it (core/reader.py)."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from procorefs.api import Priority, Scope
from procorefs.clock import ManualClock
from procorefs.core.content import BlockStore
from procorefs.core.fs import CoreConfig, Layout, ProcoreFS
from tests.core.fakeclient import FakeClient

MiB = 1 << 20
S = Scope(10, 100)


def _data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# ------------------------------------------------------------------ the block store


def test_partial_blocks_and_eof(tmp_path: Path, clock: ManualClock) -> None:
    store = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    size = 3 * 4096 + 100
    data = _data(size)
    entry = store.pin(1, 11, size)
    assert store.missing(entry, 0, 3) == [0, 1, 2, 3]
    store.write(entry, 1, data[4096:8192])
    store.write(entry, 3, data[3 * 4096:])
    assert store.missing(entry, 0, 3) == [0, 2]
    assert store.read(entry, 4096, 4096) == data[4096:8192]
    assert store.read(entry, 3 * 4096 + 50, 1000) == data[3 * 4096 + 50:]
    assert store.used == 4096 + 100
    with pytest.raises(ValueError):
        store.write(entry, 0, b"short")
    # the data file is sparse: holes take no room
    assert os.stat(entry.path).st_blocks * 512 < size
    store.unpin(entry)
    store.close()


def test_survives_a_clean_restart_and_not_an_unclean_one(tmp_path: Path,
                                                         clock: ManualClock) -> None:
    data = _data(8192)
    store = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    entry = store.pin(1, 11, 8192)
    store.write(entry, 0, data)
    store.unpin(entry)
    store.close()
    again = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    entry = again.pin(1, 11, 8192)
    assert again.missing(entry, 0, 1) == []
    assert again.read(entry, 0, 8192) == data
    again.unpin(entry)
    # no close(): as if the machine crashed
    third = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    entry = third.pin(1, 11, 8192)
    assert third.missing(entry, 0, 1) == [0, 1]
    assert third.used == 0
    third.unpin(entry)
    third.close()


def test_lru_eviction_spares_pinned_versions(tmp_path: Path, clock: ManualClock) -> None:
    store = BlockStore(tmp_path, 3 * 4096, clock, block_size=4096)
    a = store.pin(1, 11, 4096)
    store.write(a, 0, _data(4096, 1))
    clock.advance(1)
    b = store.pin(2, 21, 4096)
    store.write(b, 0, _data(4096, 2))
    store.unpin(b)  # b is older-used than c but a stays pinned
    clock.advance(1)
    c = store.pin(3, 31, 4096)
    store.write(c, 0, _data(4096, 3))
    store.unpin(c)
    clock.advance(1)
    d = store.pin(4, 41, 4096)
    store.write(d, 0, _data(4096, 4))  # over budget: evict the least recently used unpinned
    assert store.used == 3 * 4096
    assert not b.path.exists()
    assert a.path.exists() and c.path.exists()
    assert store.read(a, 0, 4096) == _data(4096, 1)
    store.unpin(a)
    store.unpin(d)
    store.close()


def test_pinned_versions_may_exceed_the_budget_until_released(tmp_path: Path,
                                                              clock: ManualClock) -> None:
    store = BlockStore(tmp_path, 4096, clock, block_size=4096)
    big = store.pin(1, 11, 3 * 4096)
    store.write(big, 0, _data(3 * 4096))
    assert store.used == 3 * 4096
    store.unpin(big)
    assert store.used == 0
    assert not big.path.exists()
    store.close()


def test_new_version_is_a_new_key(tmp_path: Path, clock: ManualClock) -> None:
    store = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    v1 = store.pin(1, 11, 4)
    store.write(v1, 0, b"old!")
    store.unpin(v1)
    v2 = store.pin(1, 12, 4)
    assert store.missing(v2, 0, 0) == [0]
    store.drop_versions(1, keep=12)
    assert not v1.path.exists()
    store.unpin(v2)
    store.close()


# ------------------------------------------------------------------ reading through the fs


@pytest.fixture
def client(clock: ManualClock) -> FakeClient:
    return FakeClient(clock, company_id=10, projects=(100,))


@pytest.fixture
def fs(tmp_path: Path, client: FakeClient, clock: ManualClock) -> Iterator[ProcoreFS]:
    core = ProcoreFS(client, CoreConfig(Layout("project", 10, 100), tmp_path / "cache",
                                        small_file_bytes=2 * MiB, prefetch_bytes=8 * MiB),
                     clock=clock)
    yield core
    core.close()


def test_small_file_is_fetched_whole_once(fs: ProcoreFS, client: FakeClient) -> None:
    data = _data(MiB + 12345)
    client.add_file(S, "small.bin", data)
    h = fs.open("/small.bin", os.O_RDONLY)
    assert fs.read(h, 100, 10) == data[100:110]
    assert fs.read(h, MiB + 10, 100) == data[MiB + 10:MiB + 110]
    assert [(o, n) for _, o, n, _ in client.ranges] == [(0, len(data))]
    fs.release(h)
    h = fs.open("/small.bin", os.O_RDONLY)
    assert fs.read(h, 0, len(data) + 10) == data
    assert len(client.ranges) == 1  # served from the disk cache
    fs.release(h)


def test_random_reads_fetch_only_aligned_blocks(fs: ProcoreFS, client: FakeClient) -> None:
    data = _data(10 * MiB)
    client.add_file(S, "big.bin", data)
    h = fs.open("/big.bin", os.O_RDONLY)
    assert fs.read(h, 7 * MiB + 5, 100) == data[7 * MiB + 5:7 * MiB + 105]
    assert fs.read(h, 2 * MiB - 10, 20) == data[2 * MiB - 10:2 * MiB + 10]
    got = sorted((o, n) for _, o, n, _ in client.ranges)
    assert got == [(MiB, 2 * MiB), (7 * MiB, MiB)]
    fs.release(h)


def test_sequential_reads_prefetch_ahead_in_parallel(fs: ProcoreFS,
                                                     client: FakeClient) -> None:
    data = _data(20 * MiB + 7)
    client.add_file(S, "seq.bin", data)
    h = fs.open("/seq.bin", os.O_RDONLY)
    out = bytearray()
    offset = 0
    while True:
        chunk = fs.read(h, offset, 128 * 1024)
        if not chunk:
            break
        out += chunk
        offset += len(chunk)
    fs.release(h)
    assert bytes(out) == data
    background = [r for r in client.ranges if r[3] == Priority.BACKGROUND]
    assert background, "sequential reads should prefetch"
    covered = sorted((o, n) for _, o, n, _ in client.ranges)
    # every byte fetched exactly once
    position = 0
    for o, n in covered:
        assert o == position
        position += n
    assert position == len(data)


def test_a_new_version_never_serves_old_bytes(fs: ProcoreFS, client: FakeClient,
                                              clock: ManualClock) -> None:
    fid = client.add_file(S, "doc.txt", b"version one")
    h = fs.open("/doc.txt", os.O_RDONLY)
    assert fs.read(h, 0, 100) == b"version one"
    fs.release(h)
    h = fs.open("/doc.txt", os.O_RDONLY)
    assert fs.keep_kernel_cache(h)  # same version as last time
    fs.release(h)
    client.add_version(fid, b"version two!")
    clock.advance(31)
    h = fs.open("/doc.txt", os.O_RDONLY)
    assert not fs.keep_kernel_cache(h)
    assert fs.read(h, 0, 100) == b"version two!"
    fs.release(h)


def test_open_handle_keeps_reading_its_version(fs: ProcoreFS, client: FakeClient,
                                               clock: ManualClock) -> None:
    fid = client.add_file(S, "doc.txt", b"A" * 100)
    h = fs.open("/doc.txt", os.O_RDONLY)
    client.add_version(fid, b"B" * 100)
    clock.advance(31)
    h2 = fs.open("/doc.txt", os.O_RDONLY)
    assert fs.read(h2, 0, 10) == b"B" * 10
    assert fs.read(h, 0, 10) == b"A" * 10
    fs.release(h)
    fs.release(h2)


def test_empty_file(fs: ProcoreFS, client: FakeClient) -> None:
    client.add_file(S, "empty.txt", b"")
    h = fs.open("/empty.txt", os.O_RDONLY)
    assert fs.read(h, 0, 4096) == b""
    fs.release(h)
    assert client.ranges == []


@pytest.mark.allow_log("cannot read '/gone.bin'")
def test_read_errors_are_translated(fs: ProcoreFS, client: FakeClient) -> None:
    client.add_file(S, "gone.bin", b"x" * 100)
    h = fs.open("/gone.bin", os.O_RDONLY)
    client.offline = True
    with pytest.raises(OSError) as info:
        fs.read(h, 0, 10)
    assert info.value.errno == 113  # EHOSTUNREACH
    client.offline = False
    assert fs.read(h, 0, 10) == b"x" * 10
    fs.release(h)


def test_concurrent_readers_share_fetches(fs: ProcoreFS, client: FakeClient) -> None:
    data = _data(6 * MiB)
    client.add_file(S, "shared.bin", data)
    handles = [fs.open("/shared.bin", os.O_RDONLY) for _ in range(4)]
    errors: list[BaseException] = []

    def work(h: int) -> None:
        try:
            assert fs.read(h, 3 * MiB + 17, 1000) == data[3 * MiB + 17:3 * MiB + 1017]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert len(client.ranges) == 1
    for h in handles:
        fs.release(h)


def test_cannot_read_a_released_handle(fs: ProcoreFS, client: FakeClient) -> None:
    client.add_file(S, "x.txt", b"x")
    h = fs.open("/x.txt", os.O_RDONLY)
    fs.release(h)
    with pytest.raises(OSError):
        fs.read(h, 0, 1)
