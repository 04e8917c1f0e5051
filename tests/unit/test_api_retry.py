"""Jittered exponential backoff."""

from __future__ import annotations

from procorefs.api.retry import Backoff


def test_backoff_grows_and_is_capped() -> None:
    low = Backoff(base=0.5, factor=2, cap=8, rand=lambda: 0.0)
    high = Backoff(base=0.5, factor=2, cap=8, rand=lambda: 1.0)
    assert [low.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [0.25, 0.5, 1, 2, 4, 4]
    assert [high.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1, 2, 4, 8, 8]


def test_jitter_stays_within_the_step() -> None:
    import random
    rng = random.Random(7)
    backoff = Backoff(base=1, factor=2, cap=30, rand=rng.random)
    delays = [backoff.delay(3) for _ in range(200)]
    assert all(2 <= d <= 4 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # really jittered


def test_server_hint_wins_with_a_little_jitter() -> None:
    backoff = Backoff(rand=lambda: 1.0)
    assert backoff.delay(1, 30.0) == 31.0
    assert backoff.delay(5, 2.0) == 2.2
    assert Backoff(rand=lambda: 0.0).delay(5, 2.0) == 2.0


def test_retry_budget() -> None:
    backoff = Backoff(max_retries=3)
    assert [backoff.allows(n) for n in (1, 2, 3, 4)] == [True, True, True, False]
