"""The rate limiter's policy, driven by a ManualClock (no real time passes)."""

from __future__ import annotations

import pytest

from procorefs.api.ratelimit import Priority, RateLimiter, parse_rate_headers, parse_retry_after
from procorefs.clock import ManualClock


def headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(int(reset))}


def spend(limiter: RateLimiter, priority: Priority = Priority.INTERACTIVE) -> None:
    limiter.acquire(priority)
    limiter.release()


def test_unknown_budget_does_not_wait() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    for _ in range(50):
        spend(limiter)
    assert clock.slept == []


def test_plenty_of_budget_does_not_wait() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    limiter.update(headers(100, 90, clock.time() + 10))
    for _ in range(60):
        spend(limiter)
    assert clock.slept == []


def test_low_budget_is_spread_over_the_rest_of_the_window() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    start = clock.time()
    limiter.update(headers(100, 30, start + 60))
    for _ in range(30):
        spend(limiter)
    # Never ran out before the window ended: the 30 requests covered (most of) the minute
    # instead of going out in a burst and then waiting.
    assert clock.time() - start >= 30
    assert clock.time() <= start + 60
    assert max(clock.slept) <= 1.0 + 1e-9  # slices: news may arrive while waiting
    status = limiter.status()
    assert status.remaining == 0


def test_empty_budget_waits_for_the_reset() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    reset = clock.time() + 42
    limiter.update(headers(25, 0, reset))
    spend(limiter)
    assert clock.time() >= reset
    assert limiter.waited == pytest.approx(42, abs=0.01)


def test_window_over_restores_the_budget() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    limiter.update(headers(25, 1, clock.time() + 5))
    clock.advance(6)
    for _ in range(10):
        spend(limiter)
    assert clock.slept == []


def test_block_holds_everybody_for_retry_after() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    limiter.update(headers(600, 500, clock.time() + 3600))
    start = clock.time()
    limiter.block(7.0)
    spend(limiter)
    assert clock.time() - start == pytest.approx(7.0)
    # Retry-After superseded the header's numbers; no wait for the hourly reset follows.
    spend(limiter)
    assert clock.time() - start == pytest.approx(7.0)


def test_block_without_hint_waits_for_the_reset() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    limiter.update(headers(25, 0, clock.time() + 9))
    start = clock.time()
    limiter.block(None)
    spend(limiter)
    assert clock.time() - start == pytest.approx(9.0)


def test_background_keeps_a_reserve_for_the_user() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    reset = clock.time() + 100
    limiter.update(headers(100, 10, reset))  # reserve is 10 % = 10 requests
    start = clock.time()
    spend(limiter, Priority.INTERACTIVE)
    assert clock.time() - start < 100         # the user goes (paced)
    spend(limiter, Priority.BACKGROUND)
    assert clock.time() >= reset              # background waited for the next window


def test_background_steps_aside_while_the_user_waits() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    limiter._interactive_waiting = 1  # an interactive request is queued
    slept_before = len(clock.slept)

    def let_user_go(seconds: float) -> None:
        limiter._interactive_waiting = 0
        ManualClock.sleep(clock, seconds)

    clock.sleep = let_user_go  # type: ignore[method-assign]
    spend(limiter, Priority.BACKGROUND)
    assert len(clock.slept) == slept_before + 1 and clock.slept[-1] < 0.1


def test_requests_in_flight_are_counted_against_a_stale_header() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    for _ in range(5):
        limiter.acquire()
    limiter.update(headers(100, 50, clock.time() + 10))  # answer to the first of five
    assert limiter.status().remaining == 46


@pytest.mark.parametrize("raw", [{}, {"x-rate-limit-limit": "x", "x-rate-limit-remaining": "1",
                                      "x-rate-limit-reset": "1"},
                                 {"x-rate-limit-limit": "-1", "x-rate-limit-remaining": "1",
                                  "x-rate-limit-reset": "1"}])
def test_garbage_headers_are_ignored(raw: dict[str, str]) -> None:
    assert parse_rate_headers(raw) is None
    limiter = RateLimiter(ManualClock())
    limiter.update(raw)
    assert limiter.status().limit is None


def test_retry_after_forms() -> None:
    assert parse_retry_after("12", 0) == 12
    assert parse_retry_after("  3.5 ", 0) == 3.5
    assert parse_retry_after("-4", 0) == 0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470) == 10
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after(None, 0) is None
