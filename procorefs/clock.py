"""Time, injected: every TTL, debounce, backoff and rate-limit wait reads this ``Clock``.

Tests use ``ManualClock`` so that waits are driven by ``advance()`` instead of real sleeps.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (for timestamps and server resets)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for TTLs and intervals)."""

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to.

    ``sleep`` advances the clock by the requested amount at once and records it, so code that
    paces itself can be tested for *how long* it would have waited without waiting.
    """

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._lock = threading.Lock()
        self._wall = start
        self._mono = 1000.0
        self.slept: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._wall += seconds
            self._mono += seconds
