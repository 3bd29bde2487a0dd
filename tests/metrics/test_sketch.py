"""The sketch's promise, in pure Python: every order statistic and percentile it gives is within
α (1 %) of the exact one, whatever the shape of the data (metrics/sketch.py)."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from metrics import sketch

RNG = np.random.default_rng(15)
DISTRIBUTIONS = {
    "normal": RNG.normal(200, 30, 20_000).clip(1),
    "long_tailed": RNG.lognormal(5, 1.2, 20_000),
    "bimodal": np.concatenate([RNG.normal(80, 5, 12_000), RNG.normal(900, 60, 8_000)]),
    "negative": -RNG.lognormal(2, 0.5, 5_000),
}


def _within(estimate: float, exact: float) -> bool:
    return abs(estimate - exact) <= sketch.ALPHA * abs(exact) + 1e-12


@pytest.mark.parametrize("name", DISTRIBUTIONS)
@pytest.mark.parametrize("q", [50, 90, 95, 99, 99.9])
def test_percentiles_within_the_stated_accuracy(name: str, q: float) -> None:
    values = DISTRIBUTIONS[name]
    s = sketch.Sketch.of_values(values)
    estimate = s.quantile(q, minimum=values.min(), maximum=values.max())
    assert _within(estimate, float(np.percentile(values, q))), (estimate, q)


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_every_order_statistic_within_the_stated_accuracy(name: str) -> None:
    values = np.sort(DISTRIBUTIONS[name])
    s = sketch.Sketch.of_values(values)
    ranks = [*range(1, len(values) + 1, 97), len(values)]
    estimates = s.order_statistics(ranks, minimum=values[0], maximum=values[-1])
    for rank, estimate in zip(ranks, estimates, strict=True):
        assert _within(estimate, float(values[rank - 1])), (rank, estimate)
    assert estimates[0] == values[0] and estimates[-1] == values[-1]  # the extremes are exact


def test_merging_parts_equals_one_sketch_of_all_values() -> None:
    values = DISTRIBUTIONS["long_tailed"]
    whole = sketch.Sketch.of_values(values)
    parts = [sketch.Sketch.of_values(chunk) for chunk in np.array_split(values, 7)]
    merged = sketch.Sketch.of((p.lower, p.counts.tolist()) for p in parts)
    assert merged.n == whole.n == len(values)
    assert merged.quantile(95) == whole.quantile(95)


def test_bins_rank_values_across_signs_and_zero() -> None:
    values = [-1e12, -5.0, -1e-10, 0.0, 1e-10, 0.002, 1.0, 1e12]
    keys = [sketch.key(v) for v in values]
    assert keys == sorted(keys)
    assert all(_within(sketch.value_of(sketch.key(v)), v) for v in values if abs(v) >= 1e-9)


def test_parts_from_the_database_may_hold_empty_bins() -> None:
    s = sketch.Sketch.of([(3, [1, None, 2]), (None, []), (-1, [1, 1, 1])])
    assert s.n == 6
    assert s.lower == -1 and s.counts.tolist() == [1, 1, 1, 0, 1, 0, 2]


def test_an_empty_sketch_has_no_order_statistics() -> None:
    with pytest.raises(ValueError, match="empty"):
        sketch.Sketch().order_statistics([1])


@pytest.mark.django_db
def test_sketches_sent_by_the_database_read_as_their_bins() -> None:
    """``array_send`` of a stored sketch (what the checks read) gives the same bins as the array
    itself: a negative first key, NULL (empty) bins made 0, one-element edge bins, an empty one."""
    with connection.cursor() as cursor:
        for array in ["[-3:1]={4,NULL,1,0,7}", "[1123:1123]={5}", "{}"]:
            cursor.execute(
                "SELECT array_lower(a, 1), array_replace(a, NULL, 0), "
                "array_send(array_replace(a, NULL, 0)) FROM (SELECT %s::integer[] AS a) AS x",
                [array],
            )
            lower, counts, sent = cursor.fetchone()
            first, bins = sketch.sent_part(sent)
            assert first == lower
            assert bins.tolist() == (counts or [])
    merged = sketch.Sketch.of([(-3, np.array([4, 0, 1, 0, 7])), (1123, np.array([5]))])
    assert merged.n == 17 and merged.lower == -3


@pytest.mark.django_db
def test_a_whole_batch_is_binned_as_the_database_bins_each_value() -> None:
    """``keys`` (ingestion bins a batch with NumPy) gives, value for value, what
    ``metrics_sketch_key`` gives in the database, on bin edges too: values that sit on an edge
    within the last bits (where NumPy's logarithm, or a ln γ rounded differently, would pick the
    neighbouring bin), their neighbours, both signs, the zero bin and the extremes."""
    edges = [float(np.exp(n * sketch._LN_GAMMA)) for n in range(-1500, 1500, 11)]
    values = [*edges, *np.nextafter(edges, 0), *np.nextafter(edges, np.inf)]
    values += [-v for v in values] + [0.0, -0.0, 1e-10, -1e-10, 1e-9, 1.0, 1e12, -1e12]
    values += DISTRIBUTIONS["long_tailed"][:2_000].tolist()
    with connection.cursor() as cursor:
        cursor.execute("SELECT metrics_sketch_key(v) FROM unnest(%s::float8[]) AS v", [values])
        in_the_database = [k for (k,) in cursor.fetchall()]
    assert sketch.keys(np.array(values)).tolist() == in_the_database
    assert [sketch.key(v) for v in values] == in_the_database
