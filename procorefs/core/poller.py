"""The change poller: learns what others changed from the ``/documents`` index, within a budget.

For each scope (a project's or a company's Documents) that has listings in use, it asks
``/documents?view=extended&filters[updated_at]=<watermark - overlap>...<far future>`` with
deleted items included, and hands the rows to ``MetadataCache.apply_changes``, which updates
exactly the listings they touch and then lets every listing of the scope answer for another
TTL. The window's end lies far ahead on purpose: it costs nothing, and a Procore clock that
runs ahead of ours can then never hide a change.

Pacing: at most ``budget_per_hour`` requests in any rolling hour (each page of the index is one
request; the poller counts the pages it asked for), all at BACKGROUND priority so the client
lets interactive calls go first. A scope is polled at most every ``interval`` seconds, and
less often when the budget does not stretch to every scope in use: then listings simply
expire after their TTL and are fetched again when used, so freshness never depends on the
poller, only the cost does.

The background thread waits on an ``Event`` in short real-time slices and reads the injected
clock to decide when a poll is due, so tests drive it with a ``ManualClock`` (or call
``poll_due`` themselves) and never sleep.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from datetime import UTC, datetime, timedelta

from procorefs.api import Priority, Scope
from procorefs.api.errors import ApiError
from procorefs.clock import Clock
from procorefs.core.metadata import MetadataCache
from procorefs.core.remote import RemoteClient

log = logging.getLogger("procorefs.core")

OVERLAP = 5.0
"""Seconds the window reaches back behind the watermark (timestamps have 1 s precision)."""
PER_PAGE = 500
HOUR = 3600.0
_FAR_AHEAD = timedelta(days=3650)
_TICK = 0.5


class ChangePoller:
    def __init__(self, client: RemoteClient, cache: MetadataCache, clock: Clock, *,
                 interval: float, budget_per_hour: int, idle_after: float = HOUR,
                 on_poll: threading.Event | None = None) -> None:
        self._client = client
        self._cache = cache
        self._clock = clock
        self.interval = max(1.0, interval)
        self.budget = max(0, budget_per_hour)  # 0: never poll (--poll-budget 0)
        self.idle_after = idle_after
        self._spent: deque[float] = deque()  # monotonic times of requests in the last hour
        self._last_poll: dict[Scope, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.requests = 0

    # ------------------------------------------------------------- budget

    def _prune(self, now: float) -> None:
        while self._spent and now - self._spent[0] >= HOUR:
            self._spent.popleft()

    def budget_left(self) -> int:
        with self._lock:
            self._prune(self._clock.monotonic())
            return self.budget - len(self._spent)

    def scope_interval(self, scopes: int) -> float:
        """How often one scope may be polled with ``scopes`` in use and the hourly budget."""
        if self.budget == 0:
            return math.inf
        return max(self.interval, HOUR * max(1, scopes) / self.budget)

    # ------------------------------------------------------------- polling

    def due(self) -> list[Scope]:
        """Scopes whose turn it is, least recently polled first."""
        now = self._clock.monotonic()
        scopes = self._cache.scopes_to_poll(self.idle_after)
        every = self.scope_interval(len(scopes))
        with self._lock:
            ready = [s for s in scopes if now - self._last_poll.get(s, -math.inf) >= every]
            ready.sort(key=lambda s: self._last_poll.get(s, -math.inf))
        return ready

    def poll_due(self) -> int:
        """Poll every scope that is due while the budget lasts; returns how many were polled."""
        polled = 0
        for scope in self.due():
            if self._stop.is_set() or self.budget_left() <= 0:
                break
            if self.poll(scope):
                polled += 1
        self._cache.flush()
        return polled

    def poll(self, scope: Scope) -> bool:
        """One poll of one scope; False when it could not be done (offline, refused)."""
        started = self._clock.monotonic()
        with self._lock:
            self._last_poll[scope] = started
        mark = self._cache.watermark(scope)
        start = datetime.fromtimestamp(mark - OVERLAP, UTC)
        end = datetime.fromtimestamp(max(mark, self._clock.time()), UTC) + _FAR_AHEAD
        rows = []
        try:
            for row in self._client.documents(scope, updated_between=(start, end),
                                              in_recycle_bin=None, per_page=PER_PAGE,
                                              priority=Priority.BACKGROUND):
                rows.append(row)
        except ApiError as exc:
            log.debug("polling %s for changes failed: %s", scope, exc)
            self._charge(started, len(rows))
            return False
        self._charge(started, len(rows))
        self.polls += 1
        changed = self._cache.apply_changes(scope, rows, started)
        log.debug("polled %s: %d rows, %d changes", scope, len(rows), changed)
        return True

    def _charge(self, when: float, rows: int) -> None:
        pages = max(1, math.ceil(rows / PER_PAGE) + (1 if rows and rows % PER_PAGE == 0 else 0))
        with self._lock:
            self._prune(when)
            self._spent.extend([when] * pages)
            self.requests += pages

    # ------------------------------------------------------------- thread

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="procorefs-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        self._cache.me()
        while not self._stop.is_set():
            try:
                self.poll_due()
            except Exception:
                log.exception("the change poller failed; it will try again")
            self._stop.wait(_TICK)
