"""Inline editing of list sections' rows (pilots/views/rows.py): add, edit, move and remove
through HTMX and plain form posts, errors on the fields, conflicts, permissions, query counts."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from catalogue.models import MetricDefinition
from catalogue.selectors import metric_by_key
from pilots import services
from pilots.models import (
    CohortSegment,
    ExitCriterion,
    OnCallShift,
    PlanSection,
    ResponseSla,
    RollbackStep,
    ScopeItem,
)
from pilots.row_forms import UNKNOWN_METRIC
from pilots.services import ROW_KINDS
from pilots.templatetags.pilot_rows import COLUMNS, Worded
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def plan(team, po):
    return PilotPlanFactory(team=team, owner=po, title="Saved cards pilot")


@pytest.fixture
def p1(team):
    # Seeded by a migration; re-made if a browser test's flush emptied the table before us.
    MetricDefinition.objects.get_or_create(
        team=None,
        key="p1_defects",
        defaults={"name": "P1 defects", "unit": "count", "kind": "count", "direction": "lower"},
    )
    return metric_by_key(key="p1_defects", team_id=team.pk)


def _url(name, plan, slug, row=None):
    args = [plan.pk, slug] if row is None else [plan.pk, slug, row.pk]
    return reverse(f"pilots:{name}", args=args)


def _version(plan, slug):
    return PlanSection.objects.get(plan=plan, key=ROW_KINDS[slug].section).version


def _data(plan, slug, row=None, version=None, **values):
    """A row form's POST data: prefixed field names plus the section version."""
    prefix = slug if row is None else f"{slug}-{row.pk}"
    data = {f"{prefix}-{name}": value for name, value in values.items()}
    data["version"] = _version(plan, slug) if version is None else version
    return data


def _add(plan, user, slug, **values):
    """A row made through the service, as another tab or person would have."""
    return services.row_add(
        plan=plan,
        kind=ROW_KINDS[slug],
        user=user,
        expected_version=_version(plan, slug),
        values=values,
    )


def _trigger(response):
    return json.loads(response.headers["HX-Trigger"])


def _steps(plan):
    return list(RollbackStep.objects.filter(plan=plan).order_by("position"))


# --- add ---------------------------------------------------------------------------------------


def test_htmx_add_returns_the_list_partial_and_announces_the_change(client_for, plan, developer):
    before = _version(plan, "scope-items")

    response = client_for(developer).post(
        _url("row_add", plan, "scope-items"),
        _data(plan, "scope-items", kind="included", reference="US-145", title="Saved cards"),
        **HX,
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="rows-scope-items"' in body
    assert "US-145" in body
    assert _trigger(response)["planChanged"] == {"section": "scope", "list": "scope-items"}
    item = ScopeItem.objects.get(plan=plan)
    assert (item.kind, item.reference, item.title, item.position) == (
        "included",
        "US-145",
        "Saved cards",
        1,
    )
    assert _version(plan, "scope-items") == before + 1
    assert f'name="version" value="{before + 1}"' in body  # the next edit is based on it


def test_add_exit_criterion_stores_metric_and_numeric_threshold(client_for, plan, po, p1):
    response = client_for(po).post(
        _url("row_add", plan, "exit-criteria"),
        _data(
            plan,
            "exit-criteria",
            metric=p1.pk,
            aggregation="total",
            comparator="eq",
            threshold="0",
            min_sample_size="30",
            blocking="on",
        ),
        **HX,
    )

    assert response.status_code == 200
    criterion = ExitCriterion.objects.get(plan=plan)
    assert criterion.metric == p1
    assert criterion.threshold == Decimal("0")
    assert criterion.blocking is True
    assert p1.name in response.content.decode()


def test_add_on_call_shift_for_a_team_member(client_for, plan, po, devops):
    response = client_for(po).post(
        _url("row_add", plan, "on-call"),
        _data(plan, "on-call", person=devops.pk, starts_on="2026-12-14", ends_on="2026-12-18"),
        **HX,
    )

    assert response.status_code == 200
    shift = OnCallShift.objects.get(plan=plan)
    assert (shift.person, shift.starts_on, shift.ends_on) == (
        devops,
        dt.date(2026, 12, 14),
        dt.date(2026, 12, 18),
    )
    assert devops.display_name in response.content.decode()
    assert _trigger(response)["planChanged"]["section"] == "monitoring"


def test_plain_post_add_redirects_to_the_section_on_the_plan_page(client_for, plan, po):
    response = client_for(po).post(
        _url("row_add", plan, "segments"),
        _data(plan, "segments", dimension="region", value="Region A", intended_share="100"),
    )

    assert response.status_code == 302
    assert response["Location"] == f"/plans/{plan.pk}/document#section-cohort"
    assert CohortSegment.objects.get(plan=plan).intended_share == Decimal("100")


# --- invalid input -----------------------------------------------------------------------------


P1, THEIRS = "<p1 id>", "<id of another team's metric>"  # filled in by the test
CRITERION = {"metric": P1, "aggregation": "total", "comparator": "le", "threshold": "1",
             "min_sample_size": "30"}  # fmt: skip

INVALID = {
    "non-numeric threshold": (
        "exit-criteria", {**CRITERION, "threshold": "abc"}, "threshold", "Enter a number."),
    "unknown metric": (
        "exit-criteria", {**CRITERION, "metric": "999999"}, "metric", UNKNOWN_METRIC),
    "metric of another team": (
        "exit-criteria", {**CRITERION, "metric": THEIRS}, "metric", UNKNOWN_METRIC),
    "excluded scope item without reason": (
        "scope-items", {"kind": "excluded", "title": "Payment gateways"},
        "reason", "Say why this item is excluded from the pilot."),
    "share of 120 %": (
        "segments", {"dimension": "region", "value": "Region A", "intended_share": "120"},
        "intended_share", "A share is a percentage between 0 and 100."),
    "sustained trigger without minutes": (
        "rollback-triggers", {"metric": P1, "comparator": "gt", "threshold": "300",
                              "mode": "sustained"},
        "sustained_minutes", "minutes"),
    "on-call shift ending before it starts": (
        "on-call", {"person_name": "Dana", "starts_on": "2026-12-18", "ends_on": "2026-12-14"},
        "ends_on", "An on-call shift cannot end before it starts."),
    "waived entry criterion without reason": (
        "entry-criteria", {"text": "Runbook reviewed", "kind": "runbook", "status": "waived"},
        "waiver_reason", "A waived entry criterion needs the reason."),
}  # fmt: skip


@pytest.mark.parametrize("case", INVALID)
def test_invalid_row_is_refused_on_the_field_and_nothing_is_saved(
    client_for, plan, po, p1, other_team, case
):
    theirs = MetricDefinition.objects.create(
        team=other_team, key="their_metric", name="Their metric", kind="count", direction="lower"
    )
    slug, values, field, message = INVALID[case]
    values = {k: {P1: p1.pk, THEIRS: theirs.pk}.get(v, v) for k, v in values.items()}
    before = _version(plan, slug)

    response = client_for(po).post(_url("row_add", plan, slug), _data(plan, slug, **values), **HX)

    assert response.status_code == 422
    body = response.content.decode()
    assert "<html" not in body
    form = response.context["add_form"]
    assert list(form.errors) == [field]
    assert message in " ".join(form.errors[field])
    # shown next to the field, which is marked invalid for assistive technology
    assert f'id="id_{slug}-{field}_error"' in body
    assert 'aria-invalid="true"' in body
    assert ROW_KINDS[slug].model.objects.filter(plan=plan).count() == 0
    assert _version(plan, slug) == before
    assert "HX-Trigger" not in response.headers


def test_invalid_edit_keeps_the_row_in_edit_mode_with_the_error(client_for, plan, po, p1):
    criterion = _add(
        plan, po, "exit-criteria", metric=p1, aggregation="total", comparator="eq", threshold=0
    )

    response = client_for(po).post(
        _url("row_edit", plan, "exit-criteria", criterion),
        _data(plan, "exit-criteria", criterion, metric=p1.pk, aggregation="total",
              comparator="eq", threshold="zero", min_sample_size="30"),
        **HX,
    )  # fmt: skip

    assert response.status_code == 422
    body = response.content.decode()
    assert 'data-testid="row-form"' in body
    assert "Enter a number." in body
    assert 'value="zero"' in body  # what was typed stays in the field
    criterion.refresh_from_db()
    assert criterion.threshold == Decimal("0")


def test_plain_post_with_errors_renders_the_list_page_with_the_form(client_for, plan, po):
    response = client_for(po).post(
        _url("row_add", plan, "scope-items"), _data(plan, "scope-items", kind="excluded", title="X")
    )

    assert response.status_code == 422
    body = response.content.decode()
    assert "<html" in body
    assert "Say why this item is excluded from the pilot." in body
    assert not ScopeItem.objects.exists()


def test_second_response_sla_for_a_severity_is_refused_on_the_field(client_for, plan, po):
    _add(plan, po, "response-slas", severity="p1", response_minutes=15)

    response = client_for(po).post(
        _url("row_add", plan, "response-slas"),
        _data(plan, "response-slas", severity="p1", response_minutes="30"),
        **HX,
    )

    assert response.status_code == 422
    assert "already a response SLA for P1" in response.context["add_form"].errors["severity"][0]
    assert ResponseSla.objects.filter(plan=plan).count() == 1


def test_person_outside_the_team_cannot_be_named(client_for, plan, po, outsider):
    response = client_for(po).post(
        _url("row_add", plan, "rollback-steps"),
        _data(plan, "rollback-steps", action="Switch the flag off", owner=outsider.pk),
        **HX,
    )

    assert response.status_code == 422
    assert response.context["add_form"].errors["owner"] == ["Choose a member of the plan's team."]
    assert not RollbackStep.objects.exists()


def test_write_without_the_section_version_is_a_bad_request(client_for, plan, po):
    data = _data(plan, "dashboards", name="P-01", url="https://grafana.example/p01")
    del data["version"]

    response = client_for(po).post(_url("row_add", plan, "dashboards"), data, **HX)

    assert response.status_code == 400
    assert not plan.dashboards.exists()


# --- edit --------------------------------------------------------------------------------------


def test_htmx_get_edit_returns_the_row_as_an_inline_form(client_for, plan, po, devops):
    step = _add(plan, po, "rollback-steps", action="Turn the flag off", owner=devops)

    response = client_for(po).get(_url("row_edit", plan, "rollback-steps", step), **HX)

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith("<tr")
    assert "Turn the flag off" in body
    assert f'name="rollback-steps-{step.pk}-action"' in body
    assert f'name="version" value="{_version(plan, "rollback-steps")}"' in body


def test_edit_form_shows_numbers_as_they_were_typed(client_for, plan, po, p1):
    criterion = _add(plan, po, "exit-criteria", metric=p1, aggregation="mean", comparator="ge",
                     threshold=Decimal("4.2"))  # fmt: skip

    body = client_for(po).get(_url("row_edit", plan, "exit-criteria", criterion), **HX)

    assert f'name="exit-criteria-{criterion.pk}-threshold" value="4.2"' in body.content.decode()


def test_plain_get_edit_shows_the_form_on_the_list_page(client_for, plan, po):
    step = _add(plan, po, "rollback-steps", action="Turn the flag off")

    response = client_for(po).get(_url("row_edit", plan, "rollback-steps", step))

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" in body
    assert 'data-testid="row-form"' in body


def test_htmx_edit_saves_and_returns_the_list(client_for, plan, po, devops):
    step = _add(plan, po, "rollback-steps", action="Turn the flag off")

    response = client_for(po).post(
        _url("row_edit", plan, "rollback-steps", step),
        _data(plan, "rollback-steps", step, action="Turn the flag off in Unleash",
              owner=devops.pk, expected_minutes="5"),
        **HX,
    )  # fmt: skip

    assert response.status_code == 200
    assert 'data-testid="row-form"' not in response.content.decode()
    assert "Turn the flag off in Unleash" in response.content.decode()
    assert _trigger(response)["planChanged"]["section"] == "rollback_plan"
    step.refresh_from_db()
    assert (step.action, step.owner, step.expected_minutes) == (
        "Turn the flag off in Unleash",
        devops,
        5,
    )


def test_plain_post_edit_redirects_to_the_section(client_for, plan, po):
    step = _add(plan, po, "rollback-steps", action="Old")

    response = client_for(po).post(
        _url("row_edit", plan, "rollback-steps", step),
        _data(plan, "rollback-steps", step, action="New"),
    )

    assert response.status_code == 302
    assert response["Location"] == f"/plans/{plan.pk}/document#section-rollback_plan"
    step.refresh_from_db()
    assert step.action == "New"


# --- move and remove ---------------------------------------------------------------------------


def test_move_reorders_and_keeps_positions_one_to_n(client_for, plan, po):
    *_, third = (_add(plan, po, "rollback-steps", action=a) for a in "ABC")
    client = client_for(po)

    response = client.post(
        _url("row_move", plan, "rollback-steps", third),
        {"version": _version(plan, "rollback-steps"), "direction": "up"},
        **HX,
    )
    client.post(
        _url("row_move", plan, "rollback-steps", third),
        {"version": _version(plan, "rollback-steps"), "direction": "up"},
        **HX,
    )
    clamped = client.post(
        _url("row_move", plan, "rollback-steps", third),
        {"version": _version(plan, "rollback-steps"), "direction": "up"},
        **HX,
    )

    assert response.status_code == 200
    assert _trigger(response)["planChanged"]["section"] == "rollback_plan"
    assert clamped.status_code == 200  # moving the first row up leaves it first
    assert [(s.action, s.position) for s in _steps(plan)] == [("C", 1), ("A", 2), ("B", 3)]
    body = clamped.content.decode()
    assert body.index(">C<") < body.index(">A<") < body.index(">B<")


def test_move_down_with_a_plain_post_redirects(client_for, plan, po):
    first, _second = (_add(plan, po, "rollback-steps", action=a) for a in "AB")

    response = client_for(po).post(
        _url("row_move", plan, "rollback-steps", first),
        {"version": _version(plan, "rollback-steps"), "direction": "down"},
    )

    assert response.status_code == 302
    assert [s.action for s in _steps(plan)] == ["B", "A"]


def test_move_needs_a_direction_and_an_ordered_list(client_for, plan, po):
    step = _add(plan, po, "rollback-steps", action="A")
    shift = _add(plan, po, "on-call", person_name="Dana",
                 starts_on=dt.date(2026, 12, 14), ends_on=dt.date(2026, 12, 18))  # fmt: skip
    client = client_for(po)

    sideways = client.post(
        _url("row_move", plan, "rollback-steps", step),
        {"version": _version(plan, "rollback-steps"), "direction": "left"},
    )
    unordered = client.post(
        _url("row_move", plan, "on-call", shift),
        {"version": _version(plan, "on-call"), "direction": "up"},
    )

    assert sideways.status_code == 400
    assert unordered.status_code == 404


def test_remove_renumbers_the_rest(client_for, plan, po):
    _a, b, _c = (_add(plan, po, "rollback-steps", action=a) for a in "ABC")

    response = client_for(po).post(
        _url("row_remove", plan, "rollback-steps", b),
        {"version": _version(plan, "rollback-steps")},
        **HX,
    )

    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert _trigger(response)["planChanged"]["section"] == "rollback_plan"
    assert [(s.action, s.position) for s in _steps(plan)] == [("A", 1), ("C", 2)]


def test_remove_without_javascript_asks_first_then_redirects(client_for, plan, po):
    item = _add(plan, po, "scope-items", kind="included", reference="US-145", title="Saved cards")
    client = client_for(po)

    confirm = client.get(_url("row_remove", plan, "scope-items", item))
    response = client.post(
        _url("row_remove", plan, "scope-items", item), {"version": _version(plan, "scope-items")}
    )

    assert confirm.status_code == 200
    assert "Remove this scope item?" in confirm.content.decode()
    assert "US-145" in confirm.content.decode()
    assert ScopeItem.objects.filter(pk=item.pk).exists() is False
    assert response.status_code == 302
    assert response["Location"] == f"/plans/{plan.pk}/document#section-scope"


def test_the_remove_control_confirms_before_posting(client_for, plan, po):
    _add(plan, po, "scope-items", kind="included", reference="US-145", title="Saved cards")

    body = client_for(po).get(_url("row_list", plan, "scope-items"), **HX).content.decode()

    assert 'hx-confirm="Remove this scope item “Included · US-145 · Saved cards”?"' in body


# --- conflicts ---------------------------------------------------------------------------------


def test_stale_add_is_refused_with_who_saved_and_the_typed_values_kept(
    client_for, plan, po, developer
):
    stale = _version(plan, "segments")
    _add(plan, developer, "segments", dimension="region", value="Region B", intended_share=50)

    response = client_for(po).post(
        _url("row_add", plan, "segments"),
        _data(plan, "segments", version=stale, dimension="region", value="Region A",
              intended_share="50"),
        **HX,
    )  # fmt: skip

    assert response.status_code == 409
    body = response.content.decode()
    assert developer.display_name in body
    assert "not saved" in body
    assert "Region B" in body  # the other person's row, fresh
    assert 'value="Region A"' in body  # what this person typed, still in the form
    assert f'name="version" value="{_version(plan, "segments")}"' in body
    assert list(CohortSegment.objects.values_list("value", flat=True)) == ["Region B"]


def test_stale_edit_shows_the_saved_values_and_keeps_the_typed_ones(
    client_for, plan, po, developer
):
    step = _add(plan, po, "rollback-steps", action="Original")
    stale = _version(plan, "rollback-steps")
    services.row_update(
        plan=plan,
        kind=ROW_KINDS["rollback-steps"],
        row_id=step.pk,
        user=developer,
        expected_version=stale,
        values={"action": "Theirs"},
    )

    response = client_for(po).post(
        _url("row_edit", plan, "rollback-steps", step),
        _data(plan, "rollback-steps", step, version=stale, action="Mine"),
        **HX,
    )

    assert response.status_code == 409
    body = response.content.decode()
    assert developer.display_name in body
    assert ">Theirs<" in body
    assert "Saved now; your version is below." in body
    assert "Mine</textarea>" in body
    step.refresh_from_db()
    assert step.action == "Theirs"


def test_stale_plain_post_shows_the_conflict_on_the_list_page(client_for, plan, po, developer):
    stale = _version(plan, "risks")
    _add(plan, developer, "risks", description="Card tokens leak", likelihood="low", impact="high")

    response = client_for(po).post(
        _url("row_add", plan, "risks"),
        _data(plan, "risks", version=stale, description="Support overloaded", likelihood="medium",
              impact="medium"),
    )  # fmt: skip

    assert response.status_code == 409
    body = response.content.decode()
    assert "<html" in body
    assert "Risks was changed by" in body
    assert "Card tokens leak" in body
    assert "Support overloaded</textarea>" in body
    assert plan.risks.count() == 1


@pytest.mark.parametrize("action", ["row_move", "row_remove"])
def test_stale_move_or_remove_is_refused_and_changes_nothing(client_for, plan, po, action):
    _a, b = (_add(plan, po, "rollback-steps", action=x) for x in "AB")
    stale = _version(plan, "rollback-steps") - 1

    response = client_for(po).post(
        _url(action, plan, "rollback-steps", b), {"version": stale, "direction": "up"}, **HX
    )

    assert response.status_code == 409
    assert "not saved" in response.content.decode()
    assert [(s.action, s.position) for s in _steps(plan)] == [("A", 1), ("B", 2)]


# --- not found ---------------------------------------------------------------------------------


def test_unknown_list_is_not_found(client_for, plan, po):
    client = client_for(po)

    assert client.get(_url("row_list", plan, "wishes")).status_code == 404
    assert client.post(_url("row_add", plan, "wishes"), {"version": 1}).status_code == 404


def test_row_of_another_plan_is_not_found(client_for, team, plan, po):
    other = PilotPlanFactory(team=team, owner=po, title="Other pilot")
    theirs = _add(other, po, "rollback-steps", action="Not yours")
    client = client_for(po)
    version = {"version": _version(plan, "rollback-steps"), "direction": "up"}

    responses = [
        client.get(_url("row_edit", plan, "rollback-steps", theirs)),
        client.post(_url("row_edit", plan, "rollback-steps", theirs), version),
        client.post(_url("row_move", plan, "rollback-steps", theirs), version),
        client.get(_url("row_remove", plan, "rollback-steps", theirs)),
        client.post(_url("row_remove", plan, "rollback-steps", theirs), version),
    ]

    assert [r.status_code for r in responses] == [404] * 5
    theirs.refresh_from_db()
    assert theirs.action == "Not yours"


# --- permissions -------------------------------------------------------------------------------


def _write_requests(plan, step):
    data = _data(plan, "rollback-steps", action="Changed", direction="up")
    data.update(_data(plan, "rollback-steps", step, action="Changed"))
    return [
        ("post", _url("row_add", plan, "rollback-steps"), data),
        ("get", _url("row_edit", plan, "rollback-steps", step), {}),
        ("post", _url("row_edit", plan, "rollback-steps", step), data),
        ("post", _url("row_move", plan, "rollback-steps", step), {**data, "direction": "down"}),
        ("get", _url("row_remove", plan, "rollback-steps", step), {}),
        ("post", _url("row_remove", plan, "rollback-steps", step), data),
    ]


def test_stakeholders_read_the_list_but_cannot_change_it(client_for, plan, po, stakeholder):
    step = _add(plan, po, "rollback-steps", action="Original")
    client = client_for(stakeholder)

    page = client.get(_url("row_list", plan, "rollback-steps"), **HX)
    statuses = [getattr(client, m)(url, data).status_code for m, url, data in _write_requests(
        plan, step)]  # fmt: skip

    assert page.status_code == 200
    assert "Original" in page.content.decode()
    assert "Add rollback step" not in page.content.decode()
    assert "Edit" not in page.content.decode()
    assert statuses == [403] * 6
    assert [(s.action, s.position) for s in _steps(plan)] == [("Original", 1)]


def test_outsiders_get_404_and_anonymous_users_are_sent_to_login(client, client_for, plan, po,
                                                                 outsider):  # fmt: skip
    step = _add(plan, po, "rollback-steps", action="Original")
    requests = [("get", _url("row_list", plan, "rollback-steps"), {}), *_write_requests(plan, step)]

    for method, url, data in requests:
        assert getattr(client_for(outsider), method)(url, data).status_code == 404, url
        response = getattr(client, method)(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("accounts:login"))
    assert [(s.action, s.position) for s in _steps(plan)] == [("Original", 1)]


# --- display and query counts ------------------------------------------------------------------


def test_scope_items_list_included_then_excluded_each_in_its_own_order(client_for, plan, po):
    _add(plan, po, "scope-items", kind="excluded", title="Payment gateways", reason="Later")
    _add(plan, po, "scope-items", kind="included", reference="US-145", title="Saved cards")
    _add(plan, po, "scope-items", kind="included", reference="US-152", title="Card removal")

    body = client_for(po).get(_url("row_list", plan, "scope-items"), **HX).content.decode()

    assert body.index("US-145") < body.index("US-152") < body.index("Payment gateways")
    # the only excluded item can move neither up nor down; the included ones one way each
    assert body.count(" disabled>") == 4


def test_empty_list_invites_the_first_row(client_for, plan, po, stakeholder):
    editor = client_for(po).get(_url("row_list", plan, "exit-criteria"), **HX).content.decode()
    reader = (
        client_for(stakeholder).get(_url("row_list", plan, "exit-criteria"), **HX).content.decode()
    )

    assert "No exit criteria yet — add the first one." in editor
    assert "No exit criteria yet." in reader


def test_list_page_without_javascript_is_a_full_page(client_for, plan, po):
    response = client_for(po).get(_url("row_list", plan, "risks"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" in body
    assert 'id="rows-risks"' in body
    assert f'href="/plans/{plan.pk}/document#section-risks"' in body


def _nine_more_exit_criteria(plan, po, p1):
    for n in range(9):
        _add(plan, po, "exit-criteria", metric=p1, aggregation="total", comparator="le",
             threshold=n, denominator=p1 if n % 2 else None)  # fmt: skip


@pytest.mark.parametrize(
    ("view", "htmx", "queries"),
    [
        ("row_list", True, 17),  # the list partial (add form folded, not rendered)
        ("row_list", False, 19),  # the list's own page
        ("row_edit", True, 19),  # a row as a form
        ("row_edit", False, 19),  # the list's page with a row as a form
        ("row_remove", False, 17),  # the confirmation page
    ],
)
def test_pages_and_partials_query_count_does_not_grow_with_rows(
    client_for, plan, po, p1, devops, django_assert_num_queries, view, htmx, queries
):
    client = client_for(po)
    first = _add(
        plan, po, "exit-criteria", metric=p1, aggregation="total", comparator="eq", threshold=0
    )
    _add(plan, po, "on-call", person=devops, starts_on=dt.date(2026, 12, 14),
         ends_on=dt.date(2026, 12, 18))  # fmt: skip
    _add(plan, po, "rollback-steps", action="Flag off", owner=devops)
    url = _url(view, plan, "exit-criteria", None if view == "row_list" else first)
    headers = HX if htmx else {}
    client.get(url, **headers)  # warm the session

    with django_assert_num_queries(queries):
        client.get(url, **headers)
    _nine_more_exit_criteria(plan, po, p1)
    with django_assert_num_queries(queries):
        response = client.get(url, **headers)

    assert response.status_code == 200
    if view == "row_list":
        assert response.content.decode().count('data-testid="row"') == 10


# Rules about fields the service sets, not the author (who confirmed a criterion).
SET_BY_THE_SERVICE = {"pilots_entrycriterion_confirmed_who_and_when"}


def test_every_database_rule_placed_on_a_field_names_a_field_of_its_list():
    for kind in ROW_KINDS.values():
        for name, (field, _message) in getattr(kind.model, "CONSTRAINT_FIELDS", {}).items():
            assert name in {c.name for c in kind.model._meta.constraints}, name
            assert field in kind.fields or name in SET_BY_THE_SERVICE, name


@pytest.mark.parametrize("slug", sorted(ROW_KINDS))
def test_every_kind_of_list_renders_for_editors(client_for, plan, po, slug):
    response = client_for(po).get(_url("row_list", plan, slug), **HX)

    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="rows-{slug}"' in body
    assert f"Add {ROW_KINDS[slug].label}" in body


def test_trigger_rows_read_as_phrases_with_choice_labels_and_plain_numbers(
    client_for, plan, po, p1
):
    _add(plan, po, "rollback-triggers", metric=p1, comparator="gt", threshold=Decimal("0.5"),
         mode="sustained", sustained_minutes=30)  # fmt: skip
    url = _url("row_list", plan, "rollback-triggers")

    body = client_for(po).get(url, **HX).content.decode()
    _add(plan, po, "rollback-triggers", metric=p1, comparator="ge", threshold=1, mode="any",
         description="Any P1")  # fmt: skip
    both = client_for(po).get(url, **HX).content.decode()

    assert "<td>P1 defects &gt; 0.5 for 30 minutes</td>" in body
    assert '<th scope="col">Description</th>' not in body  # no row fills it: left out
    assert '<th scope="col">Description</th>' in both
    assert "<td>P1 defects ≥ 1 (any occurrence)</td>" in both
    assert "<td>Any P1</td>" in both
    assert "<td>—</td>" in both  # the first trigger has no description


def test_exit_criteria_read_as_phrases(client_for, plan, po, p1):
    sessions, _ = MetricDefinition.objects.get_or_create(
        team=None,
        key="sessions",
        defaults={"name": "Sessions", "unit": "count", "kind": "count", "direction": "higher"},
    )
    _add(plan, po, "exit-criteria", metric=p1, aggregation="rate_per", denominator=sessions,
         per_n=1000, comparator="lt", threshold=Decimal("2.0000"), unit="per 1,000 sessions",
         window_hours=24, min_sample_size=1000, blocking=False)  # fmt: skip

    body = client_for(po).get(_url("row_list", plan, "exit-criteria"), **HX).content.decode()

    assert "<td>P1 defects rate per 1,000 sessions &lt; 2</td>" in body
    assert "<td>24 h</td>" in body
    assert "<td>No</td>" in body


@pytest.mark.parametrize("slug", sorted(COLUMNS))
def test_phrase_columns_show_every_field_of_their_list_once(slug):
    shown = [
        name
        for _header, parts in COLUMNS[slug]
        for name in (parts.fields if isinstance(parts, Worded) else [p[0] for p in parts])
    ]

    assert sorted(shown) == sorted(ROW_KINDS[slug].fields)


def test_a_rows_text_and_link_are_escaped_in_its_cells_and_its_confirmation(client_for, plan, po):
    """Rows are written by ``pilot_rows.display_row`` (Python, not the template engine): every
    value escaped as ``{{ value }}`` escapes it."""
    from tests.factories import row_append

    row_append(plan, "scope-items", po, kind="included", title='<b>"Pay" & go</b>')
    row_append(plan, "dashboards", po, name="D<1>", url='https://dash.example.com/?a=1&b="2"')
    page = client_for(po).get(reverse("pilots:plan_document", args=[plan.pk])).content.decode()
    assert "<b>" not in page
    assert "&lt;b&gt;&quot;Pay&quot; &amp; go&lt;/b&gt;</td>" in page
    assert re.search(
        r'hx-confirm="Remove this [^"]*&lt;b&gt;&quot;Pay&quot; &amp; go&lt;/b&gt;[^"]*"', page
    )
    assert 'href="https://dash.example.com/?a=1&amp;b=&quot;2&quot;"' in page
    assert ">D&lt;1&gt;</td>" in page
