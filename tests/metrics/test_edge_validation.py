"""Samples at the edge: whole counts, bounded values, clean strings; no input answers 500.

Each quoted input of issue #10, finding 2, is sent first as it was found (over the API, so the
answer's status and body are what a client sees), then through the CSV upload and the service.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.api_keys import api_key_create
from metrics.ingest import MAX_ABS_VALUE, MIN_ABS_VALUE, IngestRejected, samples_ingest
from metrics.models import Sample
from tests.factories import running_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(team, po):
    today = timezone.localdate(timezone=dt.UTC)
    return running_plan(
        team=team, owner=po, start_date=today - dt.timedelta(days=2), template=False
    )


@pytest.fixture
def key(team, po):
    return api_key_create(team=team, name="exporter", scopes=["ingest"], created_by=po)[1]


def sample(**extra):
    at = timezone.now() - dt.timedelta(minutes=1)
    return {"metric": "p95_latency", "observed_at": at.isoformat(), "value": 250, **extra}


def push(plan, key, body: str | bytes):
    return Client().post(
        reverse("api:plan-samples", args=[plan.pk]),
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def push_samples(plan, key, *samples):
    return push(plan, key, json.dumps({"samples": list(samples)}))


def only_error(response) -> dict:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error_count"] == 1, body
    return body["errors"][0]


# --- count metrics take whole numbers ------------------------------------------------------------


def test_a_fractional_count_is_refused_naming_the_field(plan, key):
    response = push_samples(plan, key, sample(metric="p2_defects", value=0.5))

    error = only_error(response)
    assert error["field"] == "value"
    assert "whole number" in error["message"]
    assert not Sample.objects.exists()


@pytest.mark.parametrize("value", [3, 3.0, "4", "4.0"])
def test_a_whole_count_is_stored(plan, key, value):
    assert push_samples(plan, key, sample(metric="p2_defects", value=value)).status_code == 201


def test_a_fractional_gauge_is_still_fine(plan, key):
    assert push_samples(plan, key, sample(value=0.5)).status_code == 201


# --- values are bounded so no rollup can overflow ----------------------------------------------


@pytest.mark.parametrize("value", [1e200, -1e200, "1e200", 1e13, 10**400])
def test_a_huge_value_is_refused_not_a_500(plan, key, value):
    body = json.dumps({"samples": [sample(value=value)]})

    error = only_error(push(plan, key, body))

    assert error["field"] == "value"
    assert f"{MAX_ABS_VALUE:g}" in error["message"]


def test_the_bound_itself_is_accepted_and_rolls_up(plan, key):
    response = push_samples(plan, key, sample(value=MAX_ABS_VALUE), sample(value=-MAX_ABS_VALUE))
    assert response.status_code == 201
    assert Sample.objects.count() == 2


@pytest.mark.parametrize("value", [1e-101, -5e-324, "1e-200"])
def test_a_value_too_close_to_zero_is_refused_not_a_failed_check(plan, key, value):
    """Squared in the rollups and checks, it would underflow, which PostgreSQL refuses."""
    error = only_error(push(plan, key, json.dumps({"samples": [sample(value=value)]})))

    assert error["field"] == "value"
    assert f"{MIN_ABS_VALUE:g}" in error["message"]


def test_zero_and_the_smallest_size_are_accepted_and_checked(plan, key):
    from metrics.evaluation import window_moments

    values = (0, -0.0, MIN_ABS_VALUE, -MIN_ABS_VALUE)
    now = timezone.now()
    response = push_samples(
        plan,
        key,
        *(
            sample(value=v, observed_at=(now - dt.timedelta(minutes=1 + i)).isoformat())
            for i, v in enumerate(values)
        ),
    )
    assert response.status_code == 201, response.content
    stored = Sample.objects.get(value=MIN_ABS_VALUE)
    moments = window_moments(
        plan_id=plan.pk,
        metric_ids=[stored.metric_id],
        start=stored.observed_at - dt.timedelta(hours=1),
        end=stored.observed_at + dt.timedelta(hours=1),
    )
    assert moments[stored.metric_id].n == len(values)


@pytest.mark.parametrize("raw", ['"NaN"', "NaN", "Infinity", "-Infinity", "true"])
def test_nan_infinity_and_bool_are_still_refused(plan, key, raw):
    at = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    body = f'[{{"metric": "p95_latency", "observed_at": "{at}", "value": {raw}}}]'
    response = push(plan, key, body)
    assert response.status_code in (400, 422)
    assert not Sample.objects.exists()


# --- strings free of NUL and lone surrogates ---------------------------------------------------

LONE = "\ud800"


@pytest.mark.parametrize("field", ["source", "id", "metric", "observed_at", "value"])
@pytest.mark.parametrize("bad", [LONE, "a\x00b", f"x{LONE}y"])
def test_a_lone_surrogate_or_nul_in_any_field_is_a_clean_422(plan, key, field, bad):
    # json.dumps writes "\ud800" as the escape, which is how a client sends it.
    response = push_samples(plan, key, sample(**{field: bad}))

    error = only_error(response)
    assert error["field"] == field
    # The answer is valid UTF-8 JSON and does not carry the bad character back.
    text = response.content.decode("utf-8")
    assert "\\ud800" not in text.lower() and "\\u0000" not in text
    assert not Sample.objects.exists()


def test_a_lone_surrogate_in_the_idempotency_key_is_refused(plan, key):
    # Headers arrive as latin-1; a surrogate cannot be sent, but NUL-like junk can be.
    response = Client().post(
        reverse("api:plan-samples", args=[plan.pk]),
        json.dumps([sample()]),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "k\x00y"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_the_service_refuses_the_same_for_every_caller(team, plan):
    now = timezone.now()
    rows = [
        {"metric": "p2_defects", "observed_at": now.isoformat(), "value": 1.5},
        {"metric": "p95_latency", "observed_at": now.isoformat(), "value": 1e200},
        {"metric": "p95_latency", "observed_at": now.isoformat(), "value": 1, "source": LONE},
    ]
    with pytest.raises(IngestRejected) as excinfo:
        samples_ingest(team=team, plan=plan, rows=rows)
    assert [(e["row"], e["field"]) for e in excinfo.value.errors] == [
        (0, "value"),
        (1, "value"),
        (2, "source"),
    ]
    json.dumps(excinfo.value.as_dict()).encode("utf-8")  # encodable


# --- the CSV upload ------------------------------------------------------------------------------


def upload(client, plan, text: str):
    return client.post(
        reverse("metrics:sample_upload", args=[plan.pk]),
        {"file": SimpleUploadedFile("s.csv", text.encode("utf-8"), "text/csv")},
    )


def test_the_upload_refuses_a_fractional_count_and_a_huge_value(client_for, po, plan):
    at = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    text = f"metric,observed_at,value\np2_defects,{at},0.5\np95_latency,{at},1e200\n"

    response = upload(client_for(po), plan, text)

    assert response.status_code == 422
    page = response.content.decode()
    assert "whole number" in page
    assert "1e+12" in page
    assert not Sample.objects.exists()


def test_the_upload_is_capped_before_it_is_read(client_for, po, plan, settings):
    from metrics.views.ingest import MAX_FILE_BYTES

    response = upload(client_for(po), plan, "x" * (MAX_FILE_BYTES + 2 * 1024 * 1024))

    assert response.status_code == 413
    assert "MiB" in response.content.decode()
    assert not Sample.objects.exists()


def test_the_upload_permission_is_unchanged(client_for, stakeholder, plan):
    assert upload(client_for(stakeholder), plan, "metric,observed_at,value\n").status_code == 403
