"""Downloads streamed into the content cache (core/content.py ``BlockWriter``) and the reader's
adaptive prefetch window (core/reader.py).

The client here streams each range into the reader's sink in 64 KiB chunks, as
``ProcoreClient.download_to`` does, and can stall or break a range midway.
"""

from __future__ import annotations

import itertools
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procorefs.api import Priority, Scope
from procorefs.api.downloads import ByteSink
from procorefs.api.errors import NetworkError
from procorefs.api.models import FileVersion
from procorefs.clock import ManualClock
from procorefs.core.content import BlockStore, CacheEntry
from procorefs.core.fs import CoreConfig, Layout, ProcoreFS
from procorefs.core.reader import ContentReader, OpenFile
from procorefs.core.remote import Item, RangeStreamer
from tests.core.fakeclient import FakeClient

MiB = 1 << 20
KiB = 1 << 10
S = Scope(10, 100)
CHUNK = 64 * KiB
DEADLINE = 10.0

# (range offset, bytes of the range already sent, priority) -> may raise or wait
ChunkHook = Callable[[int, int, Priority], None]


def _data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class StreamingClient(FakeClient):
    """A FakeClient whose ranges arrive chunk by chunk into a sink (``download_to``)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock, company_id=10, projects=(100,))
        self.on_chunk: ChunkHook | None = None

    def download_to(self, version: FileVersion, dest: ByteSink, *, offset: int = 0,
                    length: int | None = None,
                    priority: Priority = Priority.INTERACTIVE) -> int:
        want = length if length is not None else version.size - offset
        data = self.read_range(version, offset, want, priority=priority)
        for sent in range(0, len(data), CHUNK):
            if self.on_chunk is not None:
                self.on_chunk(offset, sent, priority)
            dest.write(data[sent:sent + CHUNK])
        return len(data)

    def background(self) -> list[tuple[int, int]]:
        return [(o, n) for _, o, n, p in self.ranges if p == Priority.BACKGROUND]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(clock: ManualClock) -> StreamingClient:
    return StreamingClient(clock)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[BlockStore]:
    blocks = BlockStore(tmp_path / "content", 1 << 30, clock)
    yield blocks
    blocks.close()


def _open(client: StreamingClient, store: BlockStore, data: bytes,
          name: str = "big.bin") -> tuple[OpenFile, CacheEntry]:
    fid = client.add_file(S, name, data)
    version = client.file(S, fid).current_version
    assert version is not None
    item = Item(kind="file", id=fid, name=name, parent_id=None, size=len(data), created=None,
                updated=None, version=version)
    entry = store.pin(fid, version.id, version.size)
    return OpenFile(1, f"/{name}", S, item, version, entry, False), entry


def _read_all(reader: ContentReader, of: OpenFile, piece: int = 128 * KiB) -> bytes:
    out = bytearray()
    while chunk := reader.read(of, len(out), piece):
        out += chunk
    return bytes(out)


def test_the_client_streams() -> None:
    assert isinstance(StreamingClient(ManualClock()), RangeStreamer)
    assert not isinstance(FakeClient(ManualClock()), RangeStreamer)


# ------------------------------------------------------------------ the block writer


def test_blocks_become_present_as_a_range_streams_in(tmp_path: Path,
                                                     clock: ManualClock) -> None:
    store = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    size = 4 * 4096 + 100
    data = _data(size)
    entry = store.pin(1, 11, size)
    landed: list[tuple[int, int]] = []
    sink = store.writer(entry, 1, 4, on_present=lambda a, b: landed.append((a, b)))
    sink.write(data[4096:4096 + 3000])
    assert store.missing(entry, 0, 4) == [0, 1, 2, 3, 4] and landed == []
    sink.write(data[4096 + 3000:3 * 4096 + 10])  # finishes blocks 1 and 2, starts block 3
    assert landed == [(1, 2)]
    assert store.missing(entry, 0, 4) == [0, 3, 4]
    assert store.read(entry, 4096, 2 * 4096) == data[4096:3 * 4096]
    sink.write(data[3 * 4096 + 10:])  # through the short last block at end of file
    assert landed == [(1, 2), (3, 4)] and sink.complete
    assert store.missing(entry, 0, 4) == [0]
    assert store.used == 3 * 4096 + 100
    with pytest.raises(ValueError):
        sink.write(b"x")  # past the blocks it was made for
    store.unpin(entry)
    store.close()


def test_a_run_broken_midway_leaves_only_its_whole_blocks(tmp_path: Path,
                                                          clock: ManualClock) -> None:
    store = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    data = _data(8 * 4096)
    entry = store.pin(1, 11, len(data))
    sink = store.writer(entry, 2, 7)
    sink.write(data[2 * 4096:4 * 4096 + 2000])  # the connection breaks here
    assert store.missing(entry, 0, 7) == [0, 1, 4, 5, 6, 7]
    store.unpin(entry)
    store.close()
    again = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    entry = again.pin(1, 11, len(data))
    assert again.missing(entry, 0, 7) == [0, 1, 4, 5, 6, 7]
    assert again.read(entry, 2 * 4096, 2 * 4096) == data[2 * 4096:4 * 4096]
    again.unpin(entry)
    again.close()


def _row_bitmap(root: Path, file_id: int, version_id: int) -> bytes | None:
    db = sqlite3.connect(root / "index.sqlite")
    try:
        row = db.execute("SELECT bitmap FROM entries WHERE file_id=? AND version_id=?",
                         (file_id, version_id)).fetchone()
    finally:
        db.close()
    return None if row is None else bytes(row[0])


def test_the_index_row_is_written_once_per_release_not_per_block(tmp_path: Path,
                                                                 clock: ManualClock) -> None:
    store = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    data = _data(16 * 4096)
    entry = store.pin(1, 11, len(data))
    sink = store.writer(entry, 0, 15)
    for start in range(0, len(data), 1000):
        sink.write(data[start:start + 1000])
        # Blocks land one after the other; the index on disk is not touched for each.
        assert _row_bitmap(tmp_path, 1, 11) is None
    assert store.missing(entry, 0, 15) == []
    store.repin(entry)  # a prefetch's pin released while the file stays open: no write
    store.unpin(entry)
    assert _row_bitmap(tmp_path, 1, 11) is None
    store.unpin(entry)  # the last pin: one row for all sixteen blocks
    assert _row_bitmap(tmp_path, 1, 11) == b"\xff\xff"
    store.close()


def test_close_writes_the_rows_of_versions_still_pinned(tmp_path: Path,
                                                        clock: ManualClock) -> None:
    store = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    data = _data(3 * 4096)
    entry = store.pin(1, 11, len(data))
    store.write(entry, 0, data[:2 * 4096])
    store.close()  # an unmount with the file still open
    again = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    entry = again.pin(1, 11, len(data))
    assert again.missing(entry, 0, 2) == [2]
    assert again.read(entry, 0, 2 * 4096) == data[:2 * 4096]
    again.unpin(entry)
    again.close()


def test_an_unclean_stop_after_streaming_trusts_nothing(tmp_path: Path,
                                                        clock: ManualClock) -> None:
    store = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    data = _data(4 * 4096)
    entry = store.pin(1, 11, len(data))
    store.writer(entry, 0, 3).write(data)
    store.unpin(entry)  # its row is on disk now, but the process dies before close()
    assert _row_bitmap(tmp_path, 1, 11) == b"\x0f"
    again = BlockStore(tmp_path, 100 * MiB, clock, block_size=4096)
    entry = again.pin(1, 11, len(data))
    assert again.missing(entry, 0, 3) == [0, 1, 2, 3]
    again.unpin(entry)
    again.close()


# ------------------------------------------------------------------ the reader


def test_a_reader_gets_its_block_before_the_rest_of_the_range(
        client: StreamingClient, store: BlockStore) -> None:
    data = _data(12 * MiB)
    # One worker: the first window (4 MiB) goes out as one range of four blocks.
    reader = ContentReader(client, store, small_file_bytes=MiB, prefetch_bytes=4 * MiB,
                           workers=1)
    of, entry = _open(client, store, data)
    gate = threading.Event()
    stalled = threading.Event()

    def stall(range_offset: int, sent: int, priority: Priority) -> None:
        if priority == Priority.BACKGROUND and range_offset == MiB and sent == MiB:
            stalled.set()  # block 1 is in; the rest of the range waits
            assert gate.wait(DEADLINE)

    client.on_chunk = stall
    try:
        assert reader.read(of, 0, 128 * KiB) == data[:128 * KiB]
        assert client.background() == [(MiB, 4 * MiB)]
        assert stalled.wait(DEADLINE)
        got: list[bytes] = []
        waiter = threading.Thread(target=lambda: got.append(reader.read(of, MiB, 128 * KiB)))
        waiter.start()
        waiter.join(DEADLINE)
        assert got == [data[MiB:MiB + 128 * KiB]], "the read waited for the whole range"
        assert store.missing(entry, 2, 4) == [2, 3, 4]
    finally:
        gate.set()
        reader.close()
    assert store.missing(entry, 0, 4) == []
    assert [o for _, o, _, _ in client.ranges].count(MiB) == 1  # nothing fetched twice
    store.unpin(entry)


def test_a_prefetch_broken_midway_is_finished_by_the_reader(client: StreamingClient,
                                                            store: BlockStore) -> None:
    data = _data(12 * MiB)
    reader = ContentReader(client, store, small_file_bytes=MiB, prefetch_bytes=4 * MiB,
                           workers=1)
    of, entry = _open(client, store, data)
    broke = threading.Event()

    def cut(range_offset: int, sent: int, priority: Priority) -> None:
        # The first prefetch range (blocks 1-4) breaks 2.5 blocks in.
        if priority == Priority.BACKGROUND and range_offset == MiB and \
                sent == 2 * MiB + 512 * KiB and not broke.is_set():
            broke.set()
            raise NetworkError("connection reset")

    client.on_chunk = cut
    try:
        assert reader.read(of, 0, 128 * KiB) == data[:128 * KiB]
        assert broke.wait(DEADLINE)
        # Exactly the whole blocks the broken range delivered are present.
        _until(lambda: store.missing(entry, 1, 4) == [3, 4], "the broken range's whole blocks")
        client.on_chunk = None
        # A read of block 3 fetches it itself, at INTERACTIVE priority, and never blocks
        # 1-2 again; nor does reading the whole file after it.
        assert reader.read(of, 3 * MiB, 128 * KiB) == data[3 * MiB:3 * MiB + 128 * KiB]
        assert (3 * MiB, MiB, Priority.INTERACTIVE) in \
            [(o, n, p) for _, o, n, p in client.ranges]
        assert _read_all(reader, of) == data
    finally:
        reader.close()
    fetched = sorted((o, o + n) for _, o, n, _ in client.ranges)
    # Blocks 1 and 2 came once (with the broken range); apart from that range, no overlap.
    broken = (MiB, 5 * MiB)
    rest = [r for r in fetched if r != broken]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(rest))
    assert not any(lo < 3 * MiB and hi > MiB for lo, hi in rest)
    store.unpin(entry)


@pytest.mark.allow_log("cannot read '/big.bin'")
def test_an_interactive_fetch_broken_midway_keeps_its_whole_blocks(
        client: StreamingClient, store: BlockStore) -> None:
    data = _data(8 * MiB)
    reader = ContentReader(client, store, small_file_bytes=MiB, prefetch_bytes=4 * MiB)
    of, entry = _open(client, store, data)

    def cut(range_offset: int, sent: int, priority: Priority) -> None:
        if sent == 2 * MiB + 256 * KiB:
            raise NetworkError("connection reset")

    client.on_chunk = cut
    try:
        with pytest.raises(OSError):
            reader.read(of, 5 * MiB, 4 * MiB)  # blocks 5-7, not sequential: no prefetch
        assert store.missing(entry, 5, 7) == [7]
        client.on_chunk = None
        assert reader.read(of, 5 * MiB, 4 * MiB) == data[5 * MiB:]
        assert [(o, n) for _, o, n, _ in client.ranges] == [(5 * MiB, 3 * MiB),
                                                            (7 * MiB, MiB)]
    finally:
        reader.close()
    store.unpin(entry)


def test_concurrent_readers_fetch_each_block_once(client: StreamingClient,
                                                  store: BlockStore) -> None:
    data = _data(16 * MiB)
    reader = ContentReader(client, store, small_file_bytes=MiB, prefetch_bytes=4 * MiB)
    first, entry = _open(client, store, data)
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            of = OpenFile(start, first.path, S, first.item, first.version, entry, False)
            offset = start * MiB + 17
            assert reader.read(of, offset, 6 * MiB) == data[offset:offset + 6 * MiB]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2, 3, 4, 5)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
    finally:
        reader.close()
    assert not errors
    spans = sorted((o, o + n) for _, o, n, _ in client.ranges)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    store.unpin(entry)


# ------------------------------------------------------------------ the window


@pytest.fixture
def fs(tmp_path: Path, client: StreamingClient, clock: ManualClock) -> Iterator[ProcoreFS]:
    core = ProcoreFS(client, CoreConfig(Layout("project", 10, 100), tmp_path / "cache",
                                        small_file_bytes=2 * MiB, prefetch_bytes=64 * MiB),
                     clock=clock)
    yield core
    core.close()


def _settled(client: StreamingClient) -> Callable[[], bool]:
    seen = [-1]

    def quiet() -> bool:  # no new range for one poll
        now = len(client.ranges)
        done = now == seen[0]
        seen[0] = now
        return done
    return quiet


def test_a_short_sequential_read_does_not_pull_the_whole_window(
        fs: ProcoreFS, client: StreamingClient) -> None:
    client.add_file(S, "big.bin", _data(200 * MiB))
    h = fs.open("/big.bin", os.O_RDONLY)
    assert len(fs.read(h, 0, 4096)) == 4096  # `file`, `head -c`
    _until(_settled(client), "the prefetch to settle")
    fetched = sum(n for _, _, n, _ in client.ranges)
    assert fetched <= 4 * MiB + MiB, f"{fetched / MiB:.0f} MiB for one 4 KiB read"
    fs.release(h)


def test_the_window_and_its_ranges_grow_for_a_sequential_reader(
        fs: ProcoreFS, client: StreamingClient) -> None:
    data = _data(160 * MiB)
    client.add_file(S, "big.bin", data)
    h = fs.open("/big.bin", os.O_RDONLY)
    out = bytearray()
    while chunk := fs.read(h, len(out), 128 * KiB):
        out += chunk
    fs.release(h)
    assert bytes(out) == data
    sizes = [n for _, n in client.background()]
    # Small ranges at first, 16 MiB ranges once the run is long: a range per block would
    # be 159 requests.
    assert sizes[0] == MiB and max(sizes) == 16 * MiB
    assert len(client.ranges) < 30
    spans = sorted((o, o + n) for _, o, n, _ in client.ranges)
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))


def test_reads_a_little_out_of_order_still_count_as_sequential(
        client: StreamingClient, store: BlockStore) -> None:
    data = _data(96 * MiB)
    reader = ContentReader(client, store, small_file_bytes=MiB, prefetch_bytes=64 * MiB)
    of, entry = _open(client, store, data)
    piece = 128 * KiB
    offsets = list(range(0, len(data), piece))
    # libfuse's threads hand the kernel's readahead over in pairs swapped now and then.
    for i in range(2, len(offsets) - 1, 7):
        offsets[i], offsets[i + 1] = offsets[i + 1], offsets[i]
    try:
        for offset in offsets:
            assert reader.read(of, offset, piece) == data[offset:offset + piece]
            assert of.sequential
        assert reader.window(of) == 64 * MiB
    finally:
        reader.close()
    assert max(n for _, n in client.background()) == 16 * MiB
    store.unpin(entry)


def test_random_reads_neither_prefetch_nor_grow_the_window(client: StreamingClient,
                                                           store: BlockStore) -> None:
    data = _data(128 * MiB)
    reader = ContentReader(client, store, small_file_bytes=MiB, prefetch_bytes=64 * MiB)
    of, entry = _open(client, store, data)
    rng = random.Random(7)
    # 40 reads, each in a 4 MiB stretch of its own: none near the one before.
    offsets = [stretch * 4 * MiB + rng.randrange(3 * MiB)
               for stretch in rng.sample(range(1, 32), 31)]
    try:
        for offset in offsets:
            assert reader.read(of, offset, 4096) == data[offset:offset + 4096]
            assert not of.sequential
            assert reader.window(of) == 4 * MiB
    finally:
        reader.close()
    assert client.background() == []
    assert all(n == MiB for _, _, n, _ in client.ranges)
    store.unpin(entry)


def test_a_jump_restarts_with_the_first_window(client: StreamingClient,
                                               store: BlockStore) -> None:
    data = _data(128 * MiB)
    reader = ContentReader(client, store, small_file_bytes=MiB, prefetch_bytes=64 * MiB)
    of, entry = _open(client, store, data)
    try:
        for offset in range(0, 40 * MiB, 128 * KiB):
            reader.read(of, offset, 128 * KiB)
        assert reader.window(of) == 64 * MiB
        reader.read(of, 100 * MiB, 128 * KiB)  # seek far ahead
        assert not of.sequential and reader.window(of) == 4 * MiB
        reader.read(of, 100 * MiB + 128 * KiB, 128 * KiB)
        assert of.sequential and reader.window(of) == 4 * MiB
    finally:
        reader.close()
    store.unpin(entry)
