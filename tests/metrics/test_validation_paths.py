"""The two ways a batch is validated agree: the column-by-column check of a plain batch
(``_plainly_valid``, what nearly every push takes) accepts a batch only when the row-by-row
check (``_checked_rows``, which names every problem) accepts it too, and then hands storage the
same samples. Batches are generated: plain ones, and plain ones with one odd value of every
kind a JSON body can carry (and a few a caller could pass)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics import ingest
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 5, 7, 12, 0, tzinfo=dt.UTC)
KEYS = ["p95_latency", "errors", "csat", "p1_defects"]

good_stamps = st.integers(min_value=0, max_value=2 * 24 * 60).map(
    lambda m: (NOW - dt.timedelta(minutes=m)).isoformat()
)
odd_stamps = st.sampled_from(
    [
        "2025-05-07T11:00:00",  # no time zone
        "2025-05-07T11:00:00+02:00",
        "2025-05-07T11:00:00Z",
        "2025-05-07 11:00:00+00:00",
        "2024-01-01T00:00:00Z",  # before the window
        "2025-05-07T12:30:00Z",  # in the future
        "not a time",
        "",
        None,
        1715079600,
        ["2025-05-07T11:00:00Z"],
    ]
)
good_values = st.one_of(
    st.integers(min_value=0, max_value=500), st.floats(min_value=0, max_value=1e6)
)
odd_values = st.sampled_from(
    [-1, -0.5, 0.5, 2.5, 1e13, -1e13, 1e-101, 0.0, -0.0, 10**400, True, False, None, "3", "x"]
)
good_metrics = st.sampled_from(KEYS)
odd_metrics = st.sampled_from(["unknown", "", None, 3, ["errors"], "ERRORS"])


@st.composite
def batches(draw: st.DrawFn) -> list:
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                {"metric": good_metrics, "observed_at": good_stamps, "value": good_values}
            ),
            min_size=1,
            max_size=30,
        )
    )
    if draw(st.booleans()):  # one odd row
        i = draw(st.integers(min_value=0, max_value=len(rows) - 1))
        odd = dict(rows[i])
        what = draw(st.sampled_from(["metric", "observed_at", "value", "extra", "missing", "row"]))
        if what == "metric":
            odd["metric"] = draw(odd_metrics)
        elif what == "observed_at":
            odd["observed_at"] = draw(odd_stamps)
        elif what == "value":
            odd["value"] = draw(odd_values)
        elif what == "extra":
            odd[draw(st.sampled_from(["source", "id", "plan", "note"]))] = "x"
        elif what == "missing":
            del odd[draw(st.sampled_from(["metric", "observed_at", "value"]))]
        else:
            odd = draw(st.sampled_from([None, "abc", 3, ["a", "b", "c"], ("a", "b", "c")]))
        rows[i] = odd
    return rows


@pytest.fixture
def context(team, po):
    plan = running_plan(team=team, owner=po, start_date=dt.date(2025, 5, 5), template=False)
    metrics = ingest._metric_table(team)
    rules = ingest._plan_rules(
        pk=plan.pk,
        status=plan.status,
        time_zone=plan.time_zone,
        start_date=plan.start_date,
        end_date=plan.end_date,
    )
    return plan, {plan.pk: rules}, metrics, NOW + ingest.FUTURE_SKEW


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=batches())
def test_the_column_check_accepts_only_what_the_row_check_accepts_and_stores_the_same(
    context, rows
):
    plan, plans, metrics, latest = context
    fast = ingest._plainly_valid(rows, plans[plan.pk], metrics, latest)
    try:
        slow = ingest._checked_rows(rows, plan=plan, plans=plans, metrics=metrics, latest=latest)
    except ingest.IngestRejected:
        slow = None
    if fast is None:
        return  # the row check decides (and names the problems)
    assert slow is not None, rows
    # The same samples, in the order storage writes them (stable: the first of equal keys first).
    assert fast.as_rows() == sorted(slow, key=ingest._natural_order)
    assert fast.texts == (ingest.DEFAULT_SOURCE, "")


def test_a_plain_batch_takes_the_column_check(context):
    plan, plans, metrics, latest = context
    rows = [
        {"metric": key, "observed_at": (NOW - dt.timedelta(minutes=m)).isoformat(), "value": m}
        for key in KEYS
        for m in range(50)
    ]
    fast = ingest._plainly_valid(rows, plans[plan.pk], metrics, latest)
    assert fast is not None and len(fast.values) == 200
