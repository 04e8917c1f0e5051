"""Reading file content: what to fetch for a read, single-flighted, and what to prefetch.

- Small files (<= ``small_file_bytes``) are fetched whole by the first read: one GET.
- Otherwise a read fetches only the aligned blocks it touches (random access: a zip's central
  directory or a PDF's xref at the end cost one block, not the file).
- A handle whose reads follow each other (each starts where the last ended, or at 0) is
  sequential: each read also schedules the next ``prefetch_bytes`` as parallel ranged GETs
  (``chunk`` bytes each) on a small thread pool at BACKGROUND priority, so a ``cp`` of a big
  file overlaps network with the application.
- Each missing block is fetched by exactly one thread; others that need it wait for that
  fetch (``_inflight``). A prefetch that failed is simply retried by the reader that needs the
  block, at INTERACTIVE priority, so a failed guess never fails a read by itself.

Concurrency: ``_lock`` guards ``_inflight`` only and is never held across a fetch or a wait.
An entry is pinned in the ``BlockStore`` by every handle and every queued prefetch that uses
it, so it cannot be evicted under them.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from procorefs.api import Priority, Scope
from procorefs.api.errors import ApiError, InvalidResponse
from procorefs.api.models import FileVersion
from procorefs.core.content import BlockStore, CacheEntry
from procorefs.core.remote import Item, RemoteClient
from procorefs.core.translate import translate
from procorefs.errors import FsError, FsIOError

log = logging.getLogger("procorefs.core")

_MAX_ROUNDS = 4


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
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return self.version.size if self.version is not None else 0


class ContentReader:
    def __init__(self, client: RemoteClient, store: BlockStore, *, small_file_bytes: int,
                 prefetch_bytes: int, chunk_bytes: int = 4 << 20, workers: int = 4) -> None:
        self._client = client
        self._store = store
        self._bs = store.block_size
        self.small_file_bytes = small_file_bytes
        self.prefetch_bytes = prefetch_bytes
        self._chunk_blocks = max(1, chunk_bytes // self._bs)
        self._lock = threading.Lock()
        self._inflight: dict[tuple[int, int, int], Future[None]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix="procorefs-prefetch")
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def read(self, of: OpenFile, offset: int, size: int) -> bytes:
        total = of.size
        if offset >= total or size <= 0 or of.entry is None or of.version is None:
            return b""
        end = min(total, offset + size)
        with of.lock:
            of.sequential = offset == 0 or offset == of.last_end
            of.last_end = end
            sequential = of.sequential
        entry, version = of.entry, of.version
        if total <= self.small_file_bytes:
            first, last = 0, (total - 1) // self._bs
        else:
            first, last = offset // self._bs, (end - 1) // self._bs
        self._ensure(entry, version, first, last, of.path)
        if sequential and total > self.small_file_bytes and not self._closed:
            self._prefetch(entry, version, last + 1,
                           (min(total, end + self.prefetch_bytes) - 1) // self._bs)
        return self._store.read(entry, offset, end - offset)

    # ------------------------------------------------------------------ fetch

    def _claim(self, entry: CacheEntry, first: int, last: int
               ) -> tuple[list[tuple[int, int, Future[None]]], list[Future[None]]]:
        """Runs of missing blocks this thread now owns, and fetches by others to wait for."""
        runs: list[tuple[int, int, Future[None]]] = []
        others: list[Future[None]] = []
        with self._lock:
            start = -1
            for block in range(first, last + 2):
                free = block <= last and not self._store.has(entry, block) and \
                    (entry.file_id, entry.version_id, block) not in self._inflight
                if block <= last and not free and not self._store.has(entry, block):
                    fut = self._inflight[(entry.file_id, entry.version_id, block)]
                    if not others or others[-1] is not fut:
                        others.append(fut)
                if free and start < 0:
                    start = block
                elif not free and start >= 0:
                    runs.append((start, block - 1, Future()))
                    start = -1
            for run_first, run_last, fut in runs:
                for block in range(run_first, run_last + 1):
                    self._inflight[(entry.file_id, entry.version_id, block)] = fut
        return runs, others

    def _ensure(self, entry: CacheEntry, version: FileVersion, first: int, last: int,
                path: str) -> None:
        for _ in range(_MAX_ROUNDS):
            runs, others = self._claim(entry, first, last)
            for index, (run_first, run_last, fut) in enumerate(runs):
                try:
                    self._fetch(entry, version, run_first, run_last, fut, Priority.INTERACTIVE,
                                path, raise_errors=True)
                except BaseException:
                    for later_first, later_last, later in runs[index + 1:]:
                        self._release(entry, later_first, later_last, later)
                    raise
            for fut in others:
                try:
                    fut.result()
                except Exception:  # the owner of that fetch reported it; we retry below
                    log.debug("a shared fetch of %r failed; retrying it here", path)
            if not self._store.missing(entry, first, last):
                return
        raise FsIOError(f"cannot read {path!r}: the download did not complete", path)

    def _fetch(self, entry: CacheEntry, version: FileVersion, first: int, last: int,
               fut: Future[None], priority: Priority, path: str, *, raise_errors: bool) -> None:
        offset = first * self._bs
        length = min(entry.size, (last + 1) * self._bs) - offset
        try:
            try:
                data = self._client.read_range(version, offset, length, priority=priority)
                if len(data) != length:
                    raise InvalidResponse(
                        f"expected {length} bytes at {offset}, storage sent {len(data)}")
            except ApiError as exc:
                if not raise_errors:
                    log.debug("prefetch of %r at %d failed: %s", path, offset, exc)
                    raise FsIOError("prefetch failed", path) from exc
                raise translate(exc, "read", path) from exc
            self._store.write(entry, first, data)
        except BaseException as exc:
            fut.set_exception(exc)
            if raise_errors or not isinstance(exc, FsError):
                raise
        else:
            fut.set_result(None)
        finally:
            with self._lock:
                for block in range(first, last + 1):
                    key = (entry.file_id, entry.version_id, block)
                    if self._inflight.get(key) is fut:
                        del self._inflight[key]

    def _prefetch(self, entry: CacheEntry, version: FileVersion, first: int, last: int) -> None:
        if first > last:
            return
        runs, _ = self._claim(entry, first, last)
        for run_first, run_last, fut in runs:
            block = run_first
            while block <= run_last:
                chunk_last = min(run_last, block + self._chunk_blocks - 1)
                part: Future[None] = fut if chunk_last == run_last else Future()
                if part is not fut:
                    with self._lock:
                        for b in range(block, chunk_last + 1):
                            self._inflight[(entry.file_id, entry.version_id, b)] = part
                self._store.repin(entry)
                try:
                    self._pool.submit(self._prefetch_task, entry, version, block, chunk_last,
                                      part)
                except RuntimeError:  # the pool is shutting down
                    self._store.unpin(entry)
                    self._release(entry, block, run_last, part, fut)
                    return
                block = chunk_last + 1

    def _release(self, entry: CacheEntry, first: int, last: int, *futs: Future[None]) -> None:
        with self._lock:
            for b in range(first, last + 1):
                key = (entry.file_id, entry.version_id, b)
                if self._inflight.get(key) in futs:
                    del self._inflight[key]
        for fut in futs:
            if not fut.done():
                fut.set_exception(FsIOError("prefetch cancelled"))

    def _prefetch_task(self, entry: CacheEntry, version: FileVersion, first: int, last: int,
                       fut: Future[None]) -> None:
        try:
            self._fetch(entry, version, first, last, fut, Priority.BACKGROUND, "prefetch",
                        raise_errors=False)
        except BaseException:
            log.exception("prefetch failed unexpectedly")
        finally:
            self._store.unpin(entry)
