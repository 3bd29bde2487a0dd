"""The cohort's segment mix against its intended shares (pilots.representativeness), checked
against SciPy reference values computed independently here."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from pilots import representativeness as rep
from pilots.representativeness import Status, segment_fit


def _brute_force_exact(x: list[int], p: list[float]) -> float:
    """Reference: every cohort of the same size, its probability from scipy.stats.multinomial."""
    n = sum(x)
    dist = stats.multinomial(n, p)
    observed = dist.pmf(x)
    total = 0.0
    for outcome in itertools.product(range(n + 1), repeat=len(p)):
        if sum(outcome) == n:
            prob = dist.pmf(outcome)
            if prob <= observed * (1 + 1e-7):
                total += prob
    return total


def test_chi_square_matches_scipy_when_every_expected_count_is_large() -> None:
    fit = segment_fit(observed=[("A", 520), ("B", 480)], intended=[("A", 50), ("B", 50)])
    reference = stats.chi2.sf((20**2 + 20**2) / 500, df=1)
    assert fit.method == rep.CHI_SQUARE
    assert fit.statistic == pytest.approx(1.6)
    assert fit.p_value == pytest.approx(reference, rel=1e-12)
    assert fit.status is Status.REPRESENTATIVE
    assert not fit.skewed


def test_a_big_cohort_is_not_flagged_for_a_trivial_deviation() -> None:
    # 51 % against 50 % in 100,000 participants: overwhelmingly significant, practically nothing.
    fit = segment_fit(observed=[("A", 51_000), ("B", 49_000)], intended=[("A", 50), ("B", 50)])
    assert fit.p_value is not None and fit.p_value < 1e-9
    assert fit.largest_gap_points == pytest.approx(1.0)
    assert fit.status is Status.REPRESENTATIVE
    assert "within the practical bound of 5 points" in fit.summary


def test_a_skewed_cohort_names_the_segment_and_its_direction() -> None:
    fit = segment_fit(
        observed=[("Region A", 200), ("Region B", 300)],
        intended=[("Region A", 60), ("Region B", 40)],
    )
    assert fit.skewed
    assert fit.p_value == pytest.approx(stats.chisquare([200, 300], [300, 200]).pvalue)
    largest = fit.largest
    assert largest is not None
    assert largest.value == "Region A" and largest.direction == "under"
    assert largest.gap_points == pytest.approx(-20.0)
    assert [s.direction for s in fit.segments] == ["under", "over"]
    assert fit.summary.startswith("Skewed: Region A is 20.0 points under its intended 60.0 %")


def test_the_practical_bound_must_be_exceeded_not_met() -> None:
    # 55 % against 50 %: a gap of exactly 5 points is not skewed at the default bound.
    at_bound = segment_fit(observed=[("A", 5500), ("B", 4500)], intended=[("A", 50), ("B", 50)])
    assert at_bound.p_value is not None and at_bound.p_value < rep.ALPHA
    assert at_bound.status is Status.REPRESENTATIVE
    tighter = segment_fit(
        observed=[("A", 5500), ("B", 4500)], intended=[("A", 50), ("B", 50)], practical_bound=4.5
    )
    assert tighter.status is Status.SKEWED


@pytest.mark.parametrize(
    ("x", "p"),
    [
        ([2, 5, 5], [0.7, 0.2, 0.1]),
        ([0, 3, 1], [0.5, 0.3, 0.2]),
        ([8, 1], [0.5, 0.5]),
        ([1, 1, 1, 1], [0.4, 0.3, 0.2, 0.1]),
        ([6, 0, 0], [1 / 3, 1 / 3, 1 / 3]),
    ],
)
def test_small_cells_use_the_exact_multinomial_test(x: list[int], p: list[float]) -> None:
    fit = segment_fit(
        observed=[(f"s{i}", c) for i, c in enumerate(x)],
        intended=[(f"s{i}", 100 * share) for i, share in enumerate(p)],
    )
    assert fit.method == rep.EXACT_MULTINOMIAL
    assert fit.p_value == pytest.approx(_brute_force_exact(x, p), rel=1e-9)


def test_small_cells_are_not_flagged_without_strong_evidence() -> None:
    # 7 of 9 in a segment meant to hold half: a 28-point gap, but p = 2 × 46 / 512 ≈ 0.18.
    fit = segment_fit(observed=[("A", 7), ("B", 2)], intended=[("A", 50), ("B", 50)])
    assert fit.method == rep.EXACT_MULTINOMIAL
    assert fit.p_value == pytest.approx(2 * 46 / 512)
    assert fit.status is Status.NOT_ENOUGH
    assert fit.summary.startswith("Not enough participants to tell")


def test_monte_carlo_agrees_with_the_exact_test_when_enumeration_is_too_large(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    observed = [("A", 30), ("B", 15), ("C", 3), ("D", 0)]
    intended = [("A", 55), ("B", 30), ("C", 10), ("D", 5)]
    exact = segment_fit(observed=observed, intended=intended)
    assert exact.method == rep.EXACT_MULTINOMIAL
    monkeypatch.setattr(rep, "EXACT_LIMIT", 0)
    estimate = segment_fit(observed=observed, intended=intended)
    assert estimate.method == rep.MONTE_CARLO_MULTINOMIAL
    assert exact.p_value is not None and estimate.p_value is not None
    # 100,000 draws: the standard error of the estimate is below 0.0016.
    assert estimate.p_value == pytest.approx(exact.p_value, abs=0.004)
    # Seeded: the same cohort gives the same figure every time.
    assert segment_fit(observed=observed, intended=intended).p_value == estimate.p_value


def test_intended_shares_are_normalised_within_the_dimension() -> None:
    as_listed = segment_fit(observed=[("A", 70), ("B", 30)], intended=[("A", 60), ("B", 30)])
    scaled = segment_fit(observed=[("A", 70), ("B", 30)], intended=[("A", 200), ("B", 100)])
    assert [s.intended_percent for s in as_listed.segments] == pytest.approx([200 / 3, 100 / 3])
    assert as_listed.p_value == pytest.approx(scaled.p_value)


def test_a_participant_in_a_segment_intended_at_zero_is_impossible_under_the_plan() -> None:
    fit = segment_fit(
        observed=[("A", 90), ("B", 0), ("Unlisted", 10)], intended=[("A", 50), ("B", 50)]
    )
    assert [s.value for s in fit.segments] == ["A", "B", "Unlisted"]
    assert fit.p_value == 0.0
    assert fit.segments[2].intended_percent == 0.0
    assert fit.segments[2].direction == "over"
    assert fit.skewed


def test_empty_cohorts_and_missing_targets_are_not_tested() -> None:
    empty = segment_fit(observed=[], intended=[("A", 50), ("B", 50)])
    assert empty.status is Status.NOT_ENOUGH and empty.p_value is None
    assert empty.summary == "No participants yet."
    untargeted = segment_fit(observed=[("A", 3)], intended=[])
    assert untargeted.status is Status.NO_TARGET
    assert untargeted.summary == "No intended shares to compare with."


def test_one_segment_with_a_share_always_fits() -> None:
    fit = segment_fit(observed=[("A", 40)], intended=[("A", 100), ("B", 0)])
    assert fit.p_value == 1.0
    assert fit.status is Status.REPRESENTATIVE


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"observed": [("A", -1)], "intended": [("A", 100)]}, "cannot be negative"),
        ({"observed": [("A", 1)], "intended": [("A", -5)]}, "0 or more"),
        ({"observed": [("A", 1)], "intended": [("A", 100)], "practical_bound": -1}, "points"),
        ({"observed": [("A", 1)], "intended": [("A", 100)], "alpha": 0}, "between 0 and 1"),
    ],
)
def test_bad_input_is_refused_with_the_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segment_fit(**kwargs)


def test_compositions_enumerate_every_cohort_once() -> None:
    outcomes = rep._compositions(5, 3)
    assert len(outcomes) == 21  # C(7, 2)
    assert (outcomes.sum(axis=1) == 5).all()
    assert len({tuple(row) for row in outcomes}) == 21
    assert np.exp(rep._log_pmf(outcomes, np.array([0.2, 0.3, 0.5]))).sum() == pytest.approx(1.0)
