"""When to try a request again, and how long to wait first.

Jittered exponential backoff ("equal jitter": half the step fixed, half random) so that many
clients that failed together do not come back together, capped so that a long outage is
probed at a steady pace. A server-given delay (``Retry-After``, the rate-limit reset) replaces
the computed one: the server knows better.

What is safe to repeat is decided by the caller (``procorefs.api.http``): a request that never
reached the server (connect errors) always is; one whose answer was lost only if idempotent,
or after the caller checked that the thing it wanted to create does not exist yet.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

# The request never left this machine: repeating it cannot duplicate anything.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
# It may have been processed; only the answer is missing.
ANSWER_LOST_ERRORS: tuple[type[Exception], ...] = (
    httpx.ReadError, httpx.ReadTimeout, httpx.WriteError, httpx.WriteTimeout,
    httpx.RemoteProtocolError, httpx.LocalProtocolError, httpx.CloseError)


@dataclass
class Backoff:
    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    max_retries: int = 6
    rand: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, server_hint: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if server_hint is not None:
            # A little jitter on top, so a crowd told "30 s" does not return in one instant.
            return server_hint + min(1.0, server_hint * 0.1) * self.rand()
        step = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        return step / 2 + (step / 2) * self.rand()

    def allows(self, attempt: int) -> bool:
        """May retry number ``attempt`` (1-based) happen?"""
        return attempt <= self.max_retries
