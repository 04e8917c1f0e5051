"""Procore's two rate-limit windows and the ``X-Rate-Limit-*`` headers of the API origin.

procore-api.md §6.2: an hourly and a 10-second "spike" window apply together, per token (and,
for a DMSA, per company); every response carries ``X-Rate-Limit-Limit``,
``X-Rate-Limit-Remaining`` and ``X-Rate-Limit-Reset`` for whichever window is closest to
running out; exceeding either answers 429. The buckets here are fixed windows that open at the
first request and reset ``window`` seconds later, keyed by (SHA-256 of the Bearer token, or
the peer address for unauthenticated calls, and the ``Procore-Company-Id`` header). Retry-After
on 429 is the number of seconds until the exhausted window resets (inferred: §9.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from procorefs.emulator.context import CONTROL_PREFIX, JsonError, bearer_token, token_digest

if TYPE_CHECKING:
    from procorefs.emulator.context import (
        EmulatorContext,
        EmulatorSettings,
        Handler,
        Middleware,
    )

RATE_LIMIT_MESSAGE = ("You have surpassed the max number of requests for an hour. "
                      "Please wait until your limit resets.")


@dataclass
class _Window:
    limit: int
    length: float
    start: float = 0.0
    count: int = 0

    def roll(self, now: float) -> None:
        if self.count == 0 or now >= self.start + self.length or now < self.start:
            self.start = now
            self.count = 0

    @property
    def reset(self) -> float:
        return self.start + self.length

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)


@dataclass
class _Bucket:
    hourly: _Window
    spike: _Window


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: float
    retry_after: int

    def headers(self) -> dict[str, str]:
        return {"X-Rate-Limit-Limit": str(self.limit),
                "X-Rate-Limit-Remaining": str(self.remaining),
                "X-Rate-Limit-Reset": str(math.ceil(self.reset))}


class RateLimiter:
    def __init__(self, settings: EmulatorSettings) -> None:
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.configure(settings)

    def configure(self, settings: EmulatorSettings) -> None:
        self.hourly_limit = settings.rate_hourly
        self.spike_limit = settings.rate_spike
        self.hourly_window = settings.rate_hourly_window
        self.spike_window = settings.rate_spike_window
        self._buckets.clear()

    def reset(self) -> None:
        self._buckets.clear()

    def hit(self, key: tuple[str, str], now: float) -> Verdict:
        """Count one request against ``key`` unless a window is exhausted."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(hourly=_Window(self.hourly_limit, self.hourly_window),
                             spike=_Window(self.spike_limit, self.spike_window))
            self._buckets[key] = bucket
        windows = (bucket.spike, bucket.hourly)
        for window in windows:
            window.roll(now)
        exhausted = [w for w in windows if w.remaining <= 0]
        if exhausted:
            # The one that frees up last is the one the caller really has to wait for.
            worst = max(exhausted, key=lambda w: w.reset)
            return Verdict(False, worst.limit, 0, worst.reset,
                           max(1, math.ceil(worst.reset - now)))
        for window in windows:
            window.count += 1
        closest = min(windows, key=lambda w: w.remaining)
        return Verdict(True, closest.limit, closest.remaining, closest.reset, 0)

    def middleware(self, ctx: EmulatorContext) -> Middleware:
        @web.middleware
        async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(CONTROL_PREFIX):
                return await handler(request)
            token = bearer_token(request)
            who = token_digest(token) if token else f"peer:{request.remote}"
            company = request.headers.get("Procore-Company-Id", "").strip()
            verdict = self.hit((who, company), ctx.now())
            headers = verdict.headers()
            # Applied in on_prepare so streamed and error answers carry them too.
            request["rate_limit_headers"] = headers
            if not verdict.allowed:
                raise JsonError(429, {"errors": RATE_LIMIT_MESSAGE},
                                {**headers, "Retry-After": str(verdict.retry_after)})
            return await handler(request)

        return rate_limit


async def add_rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook of the API origin: the headers go on every answer."""
    headers = request.get("rate_limit_headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
