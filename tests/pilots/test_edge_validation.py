"""Plans at the edge: every refusal names its field in the user's words, dates in a sane range,
past events not in the future, JSON depth and body size limited, JSON errors under /api/.

Each quoted input of issue #10, finding 2, is sent as it was found.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import models
from django.test import Client
from django.utils import timezone

from core.constraints import constraint_place
from core.validators import SANE_YEARS
from pilots.models import CohortSegment, ExitCriterion, ResponseSla, RollbackRehearsal
from pilots.services import row_kind, section_versions
from pilots.services.holidays import team_holiday_add
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

PLANS = "/api/v1/plans"


@pytest.fixture
def plan(team, po):
    return PilotPlanFactory(team=team, owner=po, title="Saved cards")


def send(client: Client, method: str, url: str, data=None, *, if_match: int | None = None):
    headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
    body = data if isinstance(data, str | bytes) else json.dumps(data)
    return client.generic(method, url, body, content_type="application/json", headers=headers)


def version(plan, key: str) -> int:
    return section_versions(plan=plan)[key]


def add_row(client, plan, slug: str, payload: dict):
    kind = row_kind(slug)
    url = f"{PLANS}/{plan.pk}/rows/{slug}"
    return send(client, "POST", url, payload, if_match=version(plan, kind.section))


def assert_named(response, field: str) -> str:
    """A 400 whose body names ``field`` and no database constraint."""
    assert response.status_code == 400, response.content
    body = response.json()["errors"]
    assert field in body, body
    text = json.dumps(body, ensure_ascii=False)
    assert "Constraint" not in text and "pilots_" not in text, text
    assert "non_field_errors" not in body, body
    return " ".join(body[field])


# --- constraint names never reach the user -----------------------------------------------------


def test_a_zero_minute_response_sla_names_the_field(client_for, po, plan):
    response = add_row(client_for(po), plan, "response-slas", {"severity": "p1",
                                                               "response_minutes": 0})  # fmt: skip
    assert "at least one minute" in assert_named(response, "response_minutes")
    assert not ResponseSla.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"aggregation": "rate_per", "per_n": 0, "denominator": "sessions"}, "per_n", "at least 1"),
        ({"aggregation": "percentile", "percentile": 150}, "percentile", "between 0 and 100"),
        ({"aggregation": "percentile", "percentile": 0}, "percentile", "between 0 and 100"),
    ],
)
def test_an_exit_criterion_out_of_range_names_the_field(
    client_for, po, plan, payload, field, words
):
    payload = {"metric": "p1_defects", "comparator": "lt", "threshold": 1, **payload}

    response = add_row(client_for(po), plan, "exit-criteria", payload)

    assert words in assert_named(response, field)
    assert not ExitCriterion.objects.exists()


def test_a_sustained_trigger_of_zero_minutes_names_the_field(client_for, po, plan):
    payload = {"metric": "p95_latency", "comparator": "gt", "threshold": 300,
               "mode": "sustained", "sustained_minutes": 0}  # fmt: skip
    response = add_row(client_for(po), plan, "rollback-triggers", payload)
    assert "minute" in assert_named(response, "sustained_minutes")


@pytest.mark.parametrize("share", [150, -1, "100.5"])
def test_a_segment_share_outside_0_to_100_names_the_field(client_for, po, plan, share):
    payload = {"dimension": "region", "value": "EU", "intended_share": share}
    response = add_row(client_for(po), plan, "segments", payload)
    assert "between 0 and 100" in assert_named(response, "intended_share")
    assert not CohortSegment.objects.exists()


def test_the_html_row_form_names_the_field_too(client_for, po, plan):
    url = f"/plans/{plan.pk}/rows/response-slas/add"
    response = client_for(po).post(
        url,
        {"response-slas-severity": "p1", "response-slas-response_minutes": "0",
         "version": version(plan, "monitoring")},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    page = response.content.decode()
    assert response.status_code == 422, page[:500]
    assert "at least one minute" in page
    assert "pilots_responsesla_positive" not in page


def _check_constraints():
    for model in apps.get_models():
        for constraint in model._meta.constraints:
            if isinstance(constraint, models.CheckConstraint):
                yield model, constraint


def test_every_check_constraint_maps_to_a_field_and_a_message():
    seen = 0
    for model, constraint in _check_constraints():
        seen += 1
        place = constraint_place(model, constraint.name)
        assert place is not None, f"{model.__name__}: {constraint.name} has no field and message"
        field, message = place
        model._meta.get_field(field)  # raises if it is not a field of the model
        referenced = {
            name.removesuffix("_id") for name in constraint.condition.referenced_base_fields
        }
        assert field in referenced, f"{constraint.name} is about {referenced}, not {field}"
        assert message and "Constraint" not in message and constraint.name not in message
        assert message.endswith((".", ")")), message
    assert seen >= 25  # the walk found the project's constraints


def test_a_broken_constraint_is_placed_on_its_field_by_full_clean(plan):
    sla = ResponseSla(plan=plan, severity="p1", response_minutes=0)
    with pytest.raises(Exception) as excinfo:
        sla.validate_constraints()
    assert excinfo.value.message_dict == {
        "response_minutes": ["Respond within at least one minute."]
    }


# --- dates in a sane range, past events not in the future --------------------------------------


@pytest.mark.parametrize("start", ["0001-01-01", "9999-12-20"])
def test_a_start_date_out_of_range_is_refused_over_the_api(client_for, po, plan, start):
    response = send(
        client_for(po),
        "PATCH",
        f"{PLANS}/{plan.pk}/sections/timeline",
        {"start_date": start},
        if_match=version(plan, "timeline"),
    )
    assert f"within {SANE_YEARS} years" in assert_named(response, "start_date")
    plan.refresh_from_db()
    assert plan.start_date is None


def test_a_start_date_out_of_range_is_a_form_error(client_for, po, plan):
    response = client_for(po).post(
        f"/plans/{plan.pk}/sections/timeline",
        {"time_zone": "UTC", "start_date": "9999-12-20", "business_days": 10,
         "check_times": "10:00", "version": version(plan, "timeline")},
    )  # fmt: skip
    assert response.status_code == 422
    assert f"within {SANE_YEARS} years" in response.content.decode()


def test_a_start_date_within_range_is_accepted(client_for, po, plan):
    start = timezone.localdate() + dt.timedelta(days=30)
    response = send(
        client_for(po),
        "PATCH",
        f"{PLANS}/{plan.pk}/sections/timeline",
        {"start_date": start.isoformat()},
        if_match=version(plan, "timeline"),
    )
    assert response.status_code == 200, response.content


def test_a_rehearsal_dated_2999_that_passed_is_refused(client_for, po, plan):
    payload = {"rehearsed_on": "2999-01-01", "outcome": "passed"}
    response = add_row(client_for(po), plan, "rehearsals", payload)
    assert "cannot be in the future" in assert_named(response, "rehearsed_on")
    assert not RollbackRehearsal.objects.exists()


def test_a_rehearsal_tomorrow_is_refused_and_today_is_fine(client_for, po, plan):
    client = client_for(po)
    later = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    assert_named(add_row(client, plan, "rehearsals", {"rehearsed_on": later, "outcome": "passed"}),
                 "rehearsed_on")  # fmt: skip
    today = timezone.localdate().isoformat()
    response = add_row(client, plan, "rehearsals", {"rehearsed_on": today, "outcome": "passed"})
    assert response.status_code == 201, response.content


def test_an_on_call_shift_in_year_9999_is_refused(client_for, po, plan):
    payload = {"person_name": "Ana", "starts_on": "9999-01-01", "ends_on": "9999-01-02"}
    response = add_row(client_for(po), plan, "on-call", payload)
    assert assert_named(response, "starts_on")


def test_a_holiday_out_of_range_is_a_form_error(client_for, po, team):
    response = client_for(po).post(f"/teams/{team.pk}/holidays/new", {"date": "9999-12-20"})
    assert response.status_code == 422
    assert f"within {SANE_YEARS} years" in response.content.decode()


def test_the_holiday_service_names_the_field(po, team):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as excinfo:
        team_holiday_add(team=team, user=po, date=dt.date(1, 1, 1))
    assert list(excinfo.value.message_dict) == ["date"]


# --- JSON depth, body size and JSON errors under /api/ -----------------------------------------

DEEP = "[" * 1000 + "]" * 1000


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/plans",
        "/api/v1/teams",
        "{plan}",
        "{plan}/sections/overview",
        "{plan}/rows/risks",
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_json_nested_1000_deep_is_a_400_before_any_view(client_for, po, plan, path, method):
    url = path.format(plan=f"{PLANS}/{plan.pk}")
    response = client_for(po).generic(method, url, DEEP, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested more than 64 levels" in response.json()["detail"]


def test_deep_json_is_refused_on_a_page_url_too(client_for, po, plan):
    response = client_for(po).post(f"/plans/{plan.pk}/sections/overview", DEEP,
                                   content_type="application/json")  # fmt: skip
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_nesting_within_the_limit_reaches_the_view(client_for, po, plan):
    body = {"summary": [[["x"]]]}  # 4 levels: the view answers the wrong type
    response = send(client_for(po), "PATCH", f"{PLANS}/{plan.pk}/sections/overview", body,
                    if_match=version(plan, "overview"))  # fmt: skip
    assert response.status_code == 400
    assert "summary" in response.json()["errors"]


def test_drfs_parser_refuses_deep_json_by_itself(rf):
    import io

    from rest_framework.exceptions import ParseError

    from core.limits import SafeJSONParser

    with pytest.raises(ParseError):
        SafeJSONParser().parse(io.BytesIO(DEEP.encode()))
    with pytest.raises(ParseError):
        SafeJSONParser().parse(io.BytesIO(("[" * 70 + "]" * 70).encode()))
    assert SafeJSONParser().parse(io.BytesIO(b'{"a": [1]}')) == {"a": [1]}


def test_an_oversized_body_is_413_before_it_is_read(client_for, po, plan, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"summary": "x" * 2000})
    response = send(client_for(po), "PATCH", f"{PLANS}/{plan.pk}/sections/overview", body,
                    if_match=version(plan, "overview"))  # fmt: skip
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/api/v1/plans/abc", "/api/v1/plans/1/rows/risks/x", "/api/v1/nothing-here"]
)
def test_every_404_under_the_api_is_problem_details(client_for, po, path):
    response = client_for(po).get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not found.",
    }


def test_a_404_outside_the_api_is_still_the_page(client_for, po):
    response = client_for(po).get("/plans/abc")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_500_handler_under_the_api_is_json(rf):
    from pilotplan.api import server_error

    response = server_error(rf.get("/api/v1/plans"))
    assert response.status_code == 500
    assert json.loads(response.content)["detail"]


def test_decimal_threshold_bounds_are_unchanged(client_for, po, plan):
    payload = {"metric": "p1_defects", "aggregation": "total", "comparator": "lt",
               "threshold": str(Decimal("1e20"))}  # fmt: skip
    response = add_row(client_for(po), plan, "exit-criteria", payload)
    assert response.status_code == 400
    assert "threshold" in response.json()["errors"]


def test_a_constraint_the_database_enforces_is_still_answered_on_its_field(plan):
    from django.db import IntegrityError, transaction

    from pilotplan.api import exception_handler

    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        ResponseSla.objects.create(plan=plan, severity="p1", response_minutes=0)  # no full_clean

    response = exception_handler(excinfo.value, {})

    assert response.status_code == 400
    assert response.data["errors"] == {"response_minutes": ["Respond within at least one minute."]}
