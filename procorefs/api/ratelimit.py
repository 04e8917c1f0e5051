"""Client-side rate limiting: spend Procore's request budget evenly instead of hitting 429.

One ``RateLimiter`` per (credential, company) - the unit Procore budgets - fed by the
``X-Rate-Limit-Limit/Remaining/Reset`` headers of every answer (shared/procore-api.md 6.2).
The server's numbers are the only truth; between answers the limiter counts what it granted.

Policy, in order:
- after a 429 or 503 everybody waits until ``blocked_until`` (Retry-After, else the reset);
- with plenty of budget left, requests go at once;
- when the remaining budget drops below ``low_water`` the rest of the window is spread evenly
  over the remaining requests (pacing), so the window ends just as the budget does;
- background requests keep ``reserve`` requests for the user and wait for the reset instead of
  spending them, and step aside while an interactive request is waiting.

Every wait goes through the injected ``Clock``; threads only ever sleep on it, so a
``ManualClock`` makes every path testable without real time passing.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from procorefs.clock import Clock

# How long one sleep may be before the limiter looks again (news may have arrived).
_SLICE = 1.0
# A background request that steps aside for an interactive one looks again this soon.
_YIELD = 0.05


class Priority(enum.IntEnum):
    """Who is waiting for the answer: a user action, or prefetch/refresh work."""

    INTERACTIVE = 0
    BACKGROUND = 1


@dataclass(frozen=True)
class RateLimitStatus:
    limit: int | None
    remaining: int | None
    reset: float | None  # Unix seconds when the reported window resets


def parse_rate_headers(headers: Mapping[str, str]) -> tuple[int, int, float] | None:
    """``(limit, remaining, reset)`` from ``X-Rate-Limit-*``, or None if absent/garbage."""
    try:
        limit = int(headers["x-rate-limit-limit"])
        remaining = int(headers["x-rate-limit-remaining"])
        reset = float(headers["x-rate-limit-reset"])
    except (KeyError, ValueError, TypeError):
        return None
    if limit < 0 or remaining < 0:
        return None
    return limit, remaining, reset


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` (delta seconds, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class RateLimiter:
    def __init__(self, clock: Clock, *, low_water_fraction: float = 0.25,
                 reserve_fraction: float = 0.1) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._low_water_fraction = low_water_fraction
        self._reserve_fraction = reserve_fraction
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset: float | None = None
        self._blocked_until = 0.0
        self._next_slot = 0.0
        self._inflight = 0
        self._interactive_waiting = 0
        self.waited = 0.0  # total seconds spent waiting (status and tests)

    # --- feeding ----------------------------------------------------------------------------

    def update(self, headers: Mapping[str, str]) -> None:
        """Take the server's view of the budget from an answer's headers."""
        parsed = parse_rate_headers(headers)
        if parsed is None:
            return
        limit, remaining, reset = parsed
        with self._lock:
            self._limit = limit
            # Requests granted but not answered yet will spend budget the header predates.
            self._remaining = max(0, remaining - max(0, self._inflight - 1))
            self._reset = reset

    def block(self, seconds: float | None) -> None:
        """Everybody waits ``seconds`` (after a 429/503); None means until the reset."""
        with self._lock:
            now = self._clock.time()
            if seconds is None:
                seconds = (self._reset - now) if self._reset and self._reset > now else 1.0
            else:
                # An explicit delay supersedes the budget the headers described; the next
                # answer tells the truth again.
                self._remaining = None
            self._blocked_until = max(self._blocked_until, now + max(0.0, seconds))

    # --- spending ---------------------------------------------------------------------------

    def acquire(self, priority: Priority = Priority.INTERACTIVE) -> None:
        """Wait until a request of ``priority`` may go, then count it as in flight."""
        registered = False
        try:
            while True:
                with self._lock:
                    delay = self._delay(priority)
                    if delay <= 0:
                        self._grant()
                        return
                    if priority is Priority.INTERACTIVE and not registered:
                        self._interactive_waiting += 1
                        registered = True
                wait = min(delay, _SLICE)
                self.waited += wait
                self._clock.sleep(wait)
        finally:
            if registered:
                with self._lock:
                    self._interactive_waiting -= 1

    def release(self) -> None:
        """The answer (or failure) of an acquired request arrived."""
        with self._lock:
            self._inflight = max(0, self._inflight - 1)

    def status(self) -> RateLimitStatus:
        with self._lock:
            return RateLimitStatus(self._limit, self._remaining, self._reset)

    # --- policy (under the lock) ------------------------------------------------------------

    def _delay(self, priority: Priority) -> float:
        now = self._clock.time()
        if now < self._blocked_until:
            return self._blocked_until - now
        if priority is Priority.BACKGROUND and self._interactive_waiting:
            return _YIELD
        if self._remaining is None or self._limit is None or self._reset is None:
            return 0.0
        if self._reset <= now:
            # The window the headers described is over: a fresh budget until told otherwise.
            self._remaining = self._limit
            self._reset = None
            return 0.0
        left = self._reset - now
        if priority is Priority.BACKGROUND and self._remaining <= self._reserve():
            return left
        if self._remaining <= 0:
            return left
        if self._remaining < self._low_water() and now < self._next_slot:
            return self._next_slot - now
        return 0.0

    def _grant(self) -> None:
        now = self._clock.time()
        self._inflight += 1
        if self._remaining is None or self._reset is None:
            return
        self._remaining = max(0, self._remaining - 1)
        if self._remaining < self._low_water() and self._reset > now:
            self._next_slot = now + (self._reset - now) / max(1, self._remaining + 1)

    def _low_water(self) -> int:
        return max(2, int((self._limit or 0) * self._low_water_fraction))

    def _reserve(self) -> int:
        return max(1, int((self._limit or 0) * self._reserve_fraction))
