"""statistics.mean_from_moments: the mean of a rollup's moments equals the mean of the values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metrics import statistics as S


def moments(values: np.ndarray) -> dict[str, float]:
    return {
        "n": int(values.size),
        "total": float(values.sum()),
        "total_sq": float(np.dot(values, values)),
        "minimum": float(values.min()),
        "maximum": float(values.max()),
    }


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).normal(250, 40, 129_600),  # 90 days of per-minute latency
        np.random.default_rng(2).integers(1, 6, 200).astype(float),  # CSAT 1–5
        np.random.default_rng(3).exponential(0.3, 61),  # an error rate, skewed
        np.array([4.0, 5.0]),
    ],
)
def test_moments_give_the_same_estimate_as_the_values(values):
    expected = S.mean(values=values)
    got = S.mean_from_moments(**moments(values))

    assert got.sample_size == expected.sample_size
    assert got.method == expected.method == S.T
    assert got.label == expected.label
    for a, b in ((got.value, expected.value), (got.low, expected.low), (got.high, expected.high)):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12)


def test_without_min_and_max_the_estimate_is_the_same_to_1e9():
    values = np.random.default_rng(4).normal(4.3, 0.6, 1_000)
    m = moments(values)
    got = S.mean_from_moments(n=m["n"], total=m["total"], total_sq=m["total_sq"])
    expected = S.mean(values=values)
    assert got.value == pytest.approx(expected.value, rel=1e-9)
    assert got.low == pytest.approx(expected.low, rel=1e-9)
    assert got.high == pytest.approx(expected.high, rel=1e-9)


def test_identical_values_give_the_value_itself_and_a_zero_width_interval():
    values = np.full(1_000, 0.1)  # 0.1 summed a thousand times is not 100 exactly
    got = S.mean_from_moments(**moments(values))
    assert (got.value, got.low, got.high, got.sample_size) == (0.1, 0.1, 0.1, 1_000)
    assert got == S.mean(values=values)
    # So "mean ≤ 0.1" is met, exactly as with the raw values.
    verdict = S.evaluate(estimate=got, comparator="le", threshold=0.1, min_sample_size=30)
    assert verdict.verdict is S.Verdict.MET


def test_one_observation_has_no_interval_and_none_has_no_value():
    one = S.mean_from_moments(n=1, total=4.5, total_sq=20.25)
    assert (one.value, one.low, one.high, one.sample_size) == (4.5, None, None, 1)
    assert one == S.mean(values=[4.5])
    none = S.mean_from_moments(n=0, total=0, total_sq=0)
    assert none == S.mean(values=[])


def test_rounding_never_gives_a_negative_variance():
    # Σx² − Σx·x̄ can come out a hair below zero for near-identical values.
    values = np.array([1e8, 1e8 + 1e-7, 1e8])
    got = S.mean_from_moments(n=3, total=float(values.sum()), total_sq=float(values @ values))
    assert got.low is not None and got.high is not None
    assert math.isfinite(got.low) and got.low <= got.value <= got.high


def test_the_mean_stays_inside_min_and_max():
    got = S.mean_from_moments(n=3, total=3 * 0.7 + 1e-15, total_sq=3 * 0.49, minimum=0.7,
                              maximum=0.7 + 1e-16)  # fmt: skip
    assert 0.7 <= got.value <= 0.7 + 1e-16


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": -1, "total": 0, "total_sq": 0},
        {"n": 2.5, "total": 0, "total_sq": 0},
        {"n": 2, "total": float("nan"), "total_sq": 0},
        {"n": 2, "total": 1, "total_sq": -1},
        {"n": 2, "total": 1, "total_sq": 1, "minimum": 3, "maximum": 2},
    ],
)
def test_refuses_impossible_moments(kwargs):
    with pytest.raises(ValueError):
        S.mean_from_moments(**kwargs)
