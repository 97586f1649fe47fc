"""Spec for packager/bench/stats.py: summaries match hand-computed values."""

from __future__ import annotations

import math

import pytest

from packager.bench.stats import summarize


def test_summarize_matches_hand_computed_values() -> None:
    s = summarize([4.0, 1.0, 3.0, 2.0], batch=2)
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(2.5)
    # Sample stdev: sum of squared deviations 5.0 over n - 1 = 3.
    assert s["stdev"] == pytest.approx(math.sqrt(5.0 / 3.0))
    assert (s["min"], s["max"]) == (1.0, 4.0)
    # Linear method on sorted [1, 2, 3, 4]: position (n - 1) * q.
    assert s["p50"] == pytest.approx(2.5)  # position 1.5
    assert s["p90"] == pytest.approx(3.7)  # position 2.7
    assert s["p99"] == pytest.approx(3.97)  # position 2.97
    # 2 items per run, 2.5 ms per run at the median.
    assert s["throughput"] == pytest.approx(800.0)


def test_throughput_is_read_off_the_median_not_pulled_down_by_one_stall() -> None:
    # main: 3,116 items/s beside a 0.065 ms p50, because one stall weighed on the mean.
    s = summarize([0.065] * 99 + [20.0])
    assert s["throughput"] == pytest.approx(1000.0 / 0.065)
    assert s["mean"] > 0.2


def test_summarize_percentiles_land_on_samples_when_positions_are_whole() -> None:
    s = summarize([float(v) for v in range(101)])
    assert (s["p50"], s["p90"], s["p99"]) == (50.0, 90.0, 99.0)
    assert s["throughput"] == pytest.approx(1000.0 / 50.0)


def test_summarize_single_run_has_zero_stdev_and_equal_percentiles() -> None:
    s = summarize([2.0])
    assert s["stdev"] == 0.0
    assert s["p50"] == s["p90"] == s["p99"] == s["min"] == s["max"] == 2.0
    assert s["throughput"] == pytest.approx(500.0)


@pytest.mark.parametrize("bad", [[], [1.0, -0.5], [1.0, float("nan")]])
def test_summarize_rejects_empty_negative_or_nan(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarize(bad)


def test_summarize_rejects_zero_batch() -> None:
    with pytest.raises(ValueError, match="batch"):
        summarize([1.0], batch=0)
