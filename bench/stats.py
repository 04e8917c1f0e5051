"""Statistics of repeated measurements: median, min and max, and ratios paired by run.

A ratio is taken run by run (procorefs in run i against the reference in run i, measured
moments apart) and then summarised, so noise from other work on a shared machine hits both
sides of each ratio alike instead of being compounded across runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Median, minimum and maximum of ``n`` values."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no values to summarise")
        return cls(float(statistics.median(values)), float(min(values)), float(max(values)),
                   len(values))


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """``numerators[i] / denominators[i]`` for each run both sides measured.

    A zero denominator (nothing to compare with) drops that pair rather than inventing an
    infinity; lengths may differ when one side failed in a run, and only the common prefix
    of runs is paired."""
    return [a / b for a, b in zip(numerators, denominators, strict=False) if b != 0]


def rate(amount: float, seconds: float) -> float:
    """``amount`` per second; a measured time of zero is a measurement error, not infinity."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {seconds!r}")
    return amount / seconds
