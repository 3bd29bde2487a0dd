"""No input answers 500: arbitrary JSON against the sample, section and row endpoints.

Hypothesis writes the bodies: any JSON value (huge and non-finite numbers, lone surrogates, NUL,
wrong types), objects with the endpoints' own field names holding such values, and lists nested
up to 2,000 deep. Every answer must be a 2xx or 4xx with a JSON body.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.api_keys import api_key_create
from pilots.services import ROW_KINDS, section_versions
from tests.factories import PilotPlanFactory, running_plan

pytestmark = pytest.mark.django_db

NASTY_TEXT = ["\ud800", "a\x00b", "x\udfffy", "", " ", "9" * 400, "2025-05-01", "1e200", "NaN"]
text = st.one_of(st.text(max_size=30), st.sampled_from(NASTY_TEXT))
numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e200, -1e308, 10**400, 0.5, 0, -1, 1e12, 150]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)

SAMPLE_FIELDS = ["metric", "observed_at", "value", "source", "id", "plan"]
ROW_FIELDS = sorted({name for kind in ROW_KINDS.values() for name in kind.fields})
SECTION_FIELDS = ["title", "summary", "start_date", "business_days", "time_zone", "check_times",
                  "target_size", "description", "owner", "version"]  # fmt: skip
SECTIONS = ["overview", "timeline", "cohort", "ownership", "monitoring"]


def _objects(fields: list[str]) -> st.SearchStrategy:
    realistic = st.sampled_from(["p95_latency", "p2_defects", "2999-01-01", "0001-01-01", 0, 95])
    return st.dictionaries(st.sampled_from(fields), json_values | realistic, max_size=6)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


sample_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"samples": st.lists(_objects(SAMPLE_FIELDS), max_size=4)}),
    st.lists(_objects(SAMPLE_FIELDS), max_size=4),
    st.integers(min_value=1, max_value=2000).map(_deep),
)
plan_bodies = st.one_of(
    json_values,
    _objects(ROW_FIELDS + SECTION_FIELDS),
    st.integers(min_value=1, max_value=2000).map(_deep),
)
endpoints = st.one_of(
    st.tuples(st.just("samples"), st.sampled_from(["plan", "team"]), sample_bodies),
    st.tuples(st.just("section"), st.sampled_from(SECTIONS), plan_bodies),
    st.tuples(st.just("row"), st.sampled_from(sorted(ROW_KINDS)), plan_bodies),
)


@pytest.fixture
def world(team, po):
    start = timezone.localdate(timezone=dt.UTC) - dt.timedelta(days=2)
    running = running_plan(team=team, owner=po, start_date=start, template=False)
    draft = PilotPlanFactory(team=team, owner=po, title="Draft")
    key = api_key_create(team=team, name="fuzz", scopes=["ingest"], created_by=po)[1]
    person = Client()
    person.force_login(po)
    machine = Client(headers={"Authorization": f"Bearer {key}"})
    return team, running, draft, person, machine


def _request(world, endpoint) -> object:
    team, running, draft, person, machine = world
    kind, which, body = endpoint
    raw = body if isinstance(body, str) and body.startswith("[") else json.dumps(body)
    if kind == "samples":
        path = (
            f"/api/v1/plans/{running.pk}/samples"
            if which == "plan"
            else f"/api/v1/teams/{team.pk}/samples"
        )
        return machine.post(path, raw, content_type="application/json")
    versions = section_versions(plan=draft)
    if kind == "section":
        path, section = f"/api/v1/plans/{draft.pk}/sections/{which}", which
        method = "PATCH"
    else:
        path, section = f"/api/v1/plans/{draft.pk}/rows/{which}", ROW_KINDS[which].section
        method = "POST"
    return person.generic(
        method,
        path,
        raw,
        content_type="application/json",
        headers={"If-Match": f'"{versions[section]}"'},
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(endpoint=endpoints)
def test_arbitrary_json_never_answers_500(world, endpoint):
    response = _request(world, endpoint)

    assert 200 <= response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code != 204:
        expected = "application/problem+json" if response.status_code >= 400 else "application/json"
        assert response["Content-Type"].startswith(expected), response["Content-Type"]
        json.loads(response.content.decode("utf-8"))
