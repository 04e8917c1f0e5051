"""The bench's statistics: summaries of runs and ratios paired run by run."""

from __future__ import annotations

import pytest

from bench.stats import Summary, paired_ratios, rate


def test_summary_of_odd_and_even_counts() -> None:
    assert Summary.of([3.0, 1.0, 2.0]) == Summary(2.0, 1.0, 3.0, 3)
    assert Summary.of([4.0, 1.0, 2.0, 3.0]) == Summary(2.5, 1.0, 4.0, 4)
    assert Summary.of([7]) == Summary(7.0, 7.0, 7.0, 1)


def test_summary_needs_values() -> None:
    with pytest.raises(ValueError):
        Summary.of([])


def test_ratios_are_paired_by_run_not_taken_of_medians() -> None:
    # Run 2 was slow on both sides (a busy machine): pairing cancels it out.
    ours, theirs = [100.0, 50.0, 90.0], [200.0, 100.0, 180.0]
    assert paired_ratios(ours, theirs) == [0.5, 0.5, 0.5]
    assert Summary.of(ours).median / Summary.of(theirs).median == pytest.approx(0.5)


def test_ratios_drop_zero_denominators_and_unpaired_runs() -> None:
    assert paired_ratios([1.0, 2.0, 3.0], [2.0, 0.0]) == [0.5]
    assert paired_ratios([], [1.0]) == []


def test_rate_refuses_a_zero_duration() -> None:
    assert rate(10, 2) == 5
    with pytest.raises(ValueError):
        rate(10, 0)
