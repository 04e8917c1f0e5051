"""Reading file content: what to fetch for a read, single-flighted, and what to prefetch.

- Small files (<= ``small_file_bytes``) are fetched whole by the first read: one GET.
- Otherwise a read fetches only the aligned blocks it touches (random access: a zip's central
  directory or a PDF's xref at the end cost one block, not the file).
- A handle whose reads follow each other (each starts at 0, or near where the reads so far
  ended: the kernel's parallel readahead hands them over slightly out of order) is
  sequential: each read also keeps a window of the file ahead of it fetched or in flight, as
  parallel ranged GETs on a small thread pool at BACKGROUND priority, so a ``cp`` of a big
  file overlaps network with the application. The window is adaptive: it starts at
  ``_FIRST_WINDOW`` and grows with the length of the sequential run, to ``prefetch_bytes``
  (so a ``head`` or a ``file`` does not pull 64 MiB), and its ranges grow with it (a quarter
  of the window, at most ``chunk_bytes``). It is topped up a whole range at a time, never a
  block at a time (a range per block costs a request per MiB).
- Downloads stream straight into the cache file: each network chunk is written at its
  offset and each block is marked present as soon as it is whole (``BlockStore.writer``),
  so a reader waiting for block N of a range is served when N is in, not when the range is.
- Each missing block is fetched by exactly one thread; others that need it wait for that
  block (``_inflight``: one future per block, resolved as the block lands). A prefetch that
  failed is simply retried by the reader that needs the block, at INTERACTIVE priority, so a
  failed guess never fails a read by itself; a range that breaks off midway leaves its whole
  blocks present and only the rest is fetched again.
- ``read`` answers the bytes; ``extent`` makes the same blocks present under the same rules
  (and keeps the same window in flight) but answers where they lie in the cache file, for a
  caller that copies them itself (the FUSE adapter: libfuse splices them to the kernel). The
  handle's pin keeps that file open and its blocks in place until the handle is released.

Concurrency: ``_lock`` guards ``_inflight`` only and is never held across a fetch or a wait;
``OpenFile.lock`` guards a handle's sequential state and is never held with ``_lock``.
An entry is pinned in the ``BlockStore`` by every handle and every queued prefetch that uses
it, so it cannot be evicted under them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from procorefs.api import Priority, Scope
from procorefs.api.errors import ApiError, InvalidResponse
from procorefs.api.models import FileVersion
from procorefs.core.content import BlockStore, BlockWriter, CacheEntry, Extent
from procorefs.core.remote import Item, RangeStreamer, RemoteClient
from procorefs.core.translate import translate
from procorefs.errors import FsError, FsIOError

log = logging.getLogger("procorefs.core")

_MAX_ROUNDS = 4
_FIRST_WINDOW = 4 << 20
# How far a read may start from where the reads so far ended and still continue the run
# (at least; four reads' worth for big reads): libfuse serves the kernel's readahead on
# several threads, so reads arrive a few 128 KiB pieces out of order.
_SLACK = 1 << 20


@dataclass(eq=False)
class OpenFile:
    """One open handle of a file: the version it reads and how it has been reading."""

    handle: int
    path: str
    scope: Scope
    item: Item
    version: FileVersion | None
    entry: CacheEntry | None
    keep_cache: bool
    last_end: int = -1
    sequential: bool = False
    run_start: int = 0   # where the current sequential run began
    ahead: int = -1      # the first block the prefetch has not looked at yet (-1: none)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return self.version.size if self.version is not None else 0


@dataclass(eq=False)
class _Run:
    """Consecutive missing blocks one thread fetches, each with the future its waiters hold."""

    first: int
    last: int
    futures: list[Future[None]]


class ContentReader:
    def __init__(self, client: RemoteClient, store: BlockStore, *, small_file_bytes: int,
                 prefetch_bytes: int, chunk_bytes: int = 16 << 20, workers: int = 4) -> None:
        self._client = client
        # ProcoreClient streams a range into a sink; a client that cannot is read whole.
        self._stream = client.download_to if isinstance(client, RangeStreamer) else None
        self._store = store
        self._bs = store.block_size
        self.small_file_bytes = small_file_bytes
        self.prefetch_bytes = prefetch_bytes
        self._first_window = min(prefetch_bytes, _FIRST_WINDOW)
        self._chunk_bytes = max(self._bs, chunk_bytes)
        self._workers = max(1, workers)
        self._lock = threading.Lock()
        self._inflight: dict[tuple[int, int, int], Future[None]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix="procorefs-prefetch")
        self._closed = False

    def close(self) -> None:
        self._closed = True
        # Queued prefetches are cancelled; their done-callbacks release what they held.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def read(self, of: OpenFile, offset: int, size: int) -> bytes:
        entry = self._prepare(of, offset, size)
        if entry is None:
            return b""
        return self._store.read(entry, offset, size)

    def extent(self, of: OpenFile, offset: int, size: int) -> Extent | None:
        """``read`` without the bytes: where they lie in the cache (present, and kept so
        while the handle's pin on its entry lasts), or None past the end of the file."""
        entry = self._prepare(of, offset, size)
        if entry is None:
            return None
        return self._store.extent(entry, offset, size)

    def _prepare(self, of: OpenFile, offset: int, size: int) -> CacheEntry | None:
        """Make the blocks of a read present (and keep a sequential handle's window in
        flight); the entry to read them from, or None when there is nothing to read."""
        total = of.size
        if offset >= total or size <= 0 or of.entry is None or of.version is None:
            return None
        end = min(total, offset + size)
        with of.lock:
            sequential = self._follow(of, offset, end)
        entry, version = of.entry, of.version
        if total <= self.small_file_bytes:
            first, last = 0, (total - 1) // self._bs
        else:
            first, last = offset // self._bs, (end - 1) // self._bs
        has = self._store.has
        if not all(has(entry, block) for block in range(first, last + 1)):
            self._ensure(entry, version, first, last, of.path)
        if sequential and total > self.small_file_bytes and not self._closed:
            self._prefetch(of, entry, version, last)
        return entry

    def _follow(self, of: OpenFile, offset: int, end: int) -> bool:
        """Note a read on the handle (caller holds ``of.lock``); is it sequential?"""
        slack = max(_SLACK, 4 * (end - offset))
        near = of.last_end >= 0 and of.last_end - slack <= offset <= of.last_end + slack
        if offset == 0 and not (near and of.sequential):
            near = True
            of.run_start, of.last_end, of.ahead = 0, 0, -1
        if near:
            of.last_end = max(of.last_end, end)
        else:  # a jump: a new run starts here, with the smallest window
            of.run_start, of.last_end, of.ahead = offset, end, -1
        of.sequential = near
        return near

    # ---------------------------------------------------------------- prefetch

    def window(self, of: OpenFile) -> int:
        """Bytes to keep fetched ahead of a sequential handle: four times its run so far (what
        it read is the best guess of what it will read), between the first window and
        ``prefetch_bytes``."""
        run = max(0, of.last_end - of.run_start)
        return max(self._first_window, min(self.prefetch_bytes, 4 * run))

    def _range_blocks(self, window: int) -> int:
        """Blocks per prefetch range for a window: a quarter of it (for parallel ranges),
        within one block and ``chunk_bytes``."""
        return max(1, min(self._chunk_bytes, window // self._workers) // self._bs)

    def _prefetch(self, of: OpenFile, entry: CacheEntry, version: FileVersion,
                  last: int) -> None:
        final = (entry.size - 1) // self._bs
        with of.lock:
            window = self.window(of)
            span = self._range_blocks(window)
            target = min(final, (of.last_end + window - 1) // self._bs)
            # From the frontier (blocks a read skipped within the slack are fetched too);
            # ``_claim`` passes over what is present or in flight.
            start = of.ahead if of.ahead >= 0 else last + 1
            # Top up a whole range at a time (or what is left before the end of the file).
            if start > target or (target - start + 1 < span and target < final):
                return
            of.ahead = target + 1
        runs, _ = self._claim(entry, start, target)
        for index, run in enumerate(runs):
            block = run.first
            while block <= run.last:
                part_last = min(run.last, block + span - 1)
                part = _Run(block, part_last,
                            run.futures[block - run.first:part_last - run.first + 1])
                self._store.repin(entry)
                try:
                    task = self._pool.submit(self._prefetch_task, entry, version, part)
                except RuntimeError:  # the pool is shutting down
                    self._store.unpin(entry)
                    rest = _Run(block, run.last, run.futures[block - run.first:])
                    for later in (rest, *runs[index + 1:]):
                        self._fail(entry, later, FsIOError("prefetch cancelled"))
                    return
                task.add_done_callback(self._on_cancel(entry, part))
                block = part_last + 1

    def _on_cancel(self, entry: CacheEntry, run: _Run) -> Callable[[Future[None]], None]:
        def done(task: Future[None]) -> None:
            if task.cancelled():  # never ran (close): release its blocks and its pin
                self._fail(entry, run, FsIOError("prefetch cancelled"))
                self._store.unpin(entry)
        return done

    def _prefetch_task(self, entry: CacheEntry, version: FileVersion, run: _Run) -> None:
        try:
            self._fetch(entry, version, run, Priority.BACKGROUND, "prefetch",
                        raise_errors=False)
        except BaseException:
            log.exception("prefetch failed unexpectedly")
        finally:
            self._store.unpin(entry)

    # ------------------------------------------------------------------- fetch

    def _claim(self, entry: CacheEntry, first: int, last: int
               ) -> tuple[list[_Run], list[Future[None]]]:
        """Runs of missing blocks this thread now owns, and blocks others fetch to wait for."""
        runs: list[_Run] = []
        others: list[Future[None]] = []
        fid, vid = entry.file_id, entry.version_id
        with self._lock:
            run: _Run | None = None
            for block in range(first, last + 1):
                if self._store.has(entry, block):
                    run = None
                    continue
                fut = self._inflight.get((fid, vid, block))
                if fut is not None:
                    others.append(fut)
                    run = None
                    continue
                fut = Future()
                self._inflight[(fid, vid, block)] = fut
                if run is None:
                    run = _Run(block, block, [fut])
                    runs.append(run)
                else:
                    run.last = block
                    run.futures.append(fut)
        return runs, others

    def _ensure(self, entry: CacheEntry, version: FileVersion, first: int, last: int,
                path: str) -> None:
        for _ in range(_MAX_ROUNDS):
            runs, others = self._claim(entry, first, last)
            for index, run in enumerate(runs):
                try:
                    self._fetch(entry, version, run, Priority.INTERACTIVE, path,
                                raise_errors=True)
                except BaseException:
                    for later in runs[index + 1:]:
                        self._fail(entry, later, FsIOError("read abandoned", path))
                    raise
            for fut in others:
                try:
                    fut.result()
                except Exception:  # the owner of that fetch reported it; we retry below
                    log.debug("a shared fetch of %r failed; retrying it here", path)
            if not self._store.missing(entry, first, last):
                return
        raise FsIOError(f"cannot read {path!r}: the download did not complete", path)

    def _fetch(self, entry: CacheEntry, version: FileVersion, run: _Run, priority: Priority,
               path: str, *, raise_errors: bool) -> None:
        """Download a run into the cache; each block's waiters go as soon as it is in."""
        offset = run.first * self._bs
        try:
            sink = self._store.writer(entry, run.first, run.last,
                                      on_present=lambda a, b: self._landed(entry, run, a, b))
            length = sink.end - offset
            try:
                self._download(version, sink, offset, length, priority)
                if not sink.complete:
                    raise InvalidResponse(f"expected {length} bytes at {offset}, storage "
                                          f"sent {sink.received}")
            except ApiError as exc:
                if not raise_errors:
                    log.debug("prefetch of %r at %d failed: %s", path, offset, exc)
                    raise FsIOError("prefetch failed", path) from exc
                raise translate(exc, "read", path) from exc
        except BaseException as exc:
            self._fail(entry, run, exc)
            if raise_errors or not isinstance(exc, FsError):
                raise

    def _download(self, version: FileVersion, sink: BlockWriter, offset: int, length: int,
                  priority: Priority) -> None:
        if self._stream is not None:
            self._stream(version, sink, offset=offset, length=length, priority=priority)
            return
        data = self._client.read_range(version, offset, length, priority=priority)
        if len(data) > length:
            raise InvalidResponse(f"expected {length} bytes at {offset}, got {len(data)}")
        sink.write(data)

    def _landed(self, entry: CacheEntry, run: _Run, first: int, last: int) -> None:
        """Blocks ``first``..``last`` of a run are present: hand them to their waiters."""
        futures = run.futures[first - run.first:last - run.first + 1]
        self._forget(entry, first, futures)
        for fut in futures:
            fut.set_result(None)

    def _fail(self, entry: CacheEntry, run: _Run, exc: BaseException) -> None:
        """The blocks of a run that did not land will not: their waiters fetch them."""
        self._forget(entry, run.first, run.futures)
        for fut in run.futures:
            if not fut.done():
                fut.set_exception(exc)

    def _forget(self, entry: CacheEntry, first: int, futures: list[Future[None]]) -> None:
        with self._lock:
            for block, fut in enumerate(futures, start=first):
                key = (entry.file_id, entry.version_id, block)
                if self._inflight.get(key) is fut:
                    del self._inflight[key]
