"""The deployment gate (docs/gate.md): both modes, require_decision, who may ask, the call log,
constant queries."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.api_keys import api_key_revoke
from decisions.models import DecisionRecord, GateCall
from decisions.services.gate import gate_answer, gate_calls_recent
from metrics.models import TriggerEpisode
from pilots import wording
from pilots.models import ExitCriterion
from tests.decisions.gate_plans import (
    check_run_done,
    go_plan,
    read_key,
    roll_back_plan,
    undecidable_plan,
)

pytestmark = pytest.mark.django_db

_hashes = itertools.count(1)


def gate(plan, tail: str = "") -> str:  # type: ignore[no-untyped-def]
    return f"/api/v1/plans/{plan.pk}/gate{tail}"


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def record(plan, user, outcome: str, *, supersedes=None, override_reason: str = ""):  # type: ignore[no-untyped-def]
    digest = hashlib.sha256(str(next(_hashes)).encode()).hexdigest()
    return DecisionRecord.objects.create(
        plan=plan,
        outcome=outcome,
        rationale="Decided in the test.",
        override_reason=override_reason,
        recommendation="go",
        recommendation_rule="go",
        recommendation_words="Go: all blocking criteria met",
        evidence={},
        evidence_hash="0" * 64,
        supersedes=supersedes,
        supersedes_hash=supersedes.record_hash if supersedes else "",
        record_hash=digest,
        recorded_by=user,
    )


@pytest.fixture
def key(team, po):  # type: ignore[no-untyped-def]
    return read_key(team, po)[1]


# --- the answer --------------------------------------------------------------------------------


def test_json_mode_always_answers_200_with_the_whole_body(team, po, key):
    go, rb, nyd = go_plan(team, po), roll_back_plan(team, po), undecidable_plan(team, po)
    client = Client()

    answers = {p: client.get(gate(p), **bearer(key)) for p in (go, rb, nyd)}

    assert {r.status_code for r in answers.values()} == {200}
    body = answers[go].json()
    assert body["plan"] == {"id": go.pk, "title": "Gate: go", "status": "running"}
    assert body["recommendation"]["value"] == "go"
    assert body["recommendation"]["label"] == "Go"
    assert body["recommendation"]["words"].startswith("Go: ")
    assert body["decision"] is None
    assert body["promotion_allowed"] is True
    assert "the recommendation is Go" in body["promotion_reason"]
    assert body["rollback_called_for"] is False
    criteria = list(go.exit_criteria.order_by("position"))
    assert [c["name"] for c in body["criteria"]] == [wording.criterion_text(c) for c in criteria]
    first = body["criteria"][0]
    assert set(first) == {
        "name", "blocking", "verdict", "value", "threshold", "comparator", "unit", "low", "high",
        "sample_size", "method",
    }  # fmt: skip
    assert first["verdict"] == "met" and first["sample_size"] == 5_000
    assert {t["state"] for t in body["triggers"]} == {"ok"}
    assert all(t["unresolved_episodes"] == 0 for t in body["triggers"])
    assert body["checked_at"].endswith("Z") and body["computed_at"].endswith("Z")

    rolled = answers[rb].json()
    assert rolled["recommendation"]["value"] == "roll_back"
    assert rolled["promotion_allowed"] is False
    assert rolled["rollback_called_for"] is True
    assert "fired and is unresolved" in rolled["rollback_reason"]
    assert sum(t["unresolved_episodes"] for t in rolled["triggers"]) == 1

    undecided = answers[nyd].json()
    assert undecided["recommendation"]["value"] == "not_yet_decidable"
    assert undecided["promotion_allowed"] is False
    assert undecided["rollback_called_for"] is False
    assert "Not yet decidable" in undecided["promotion_reason"]


def test_strict_mode_answers_409_with_the_same_body_when_the_answer_is_no(team, po, key):
    go, rb, nyd = go_plan(team, po), roll_back_plan(team, po), undecidable_plan(team, po)
    client = Client()

    def status(plan, tail):  # type: ignore[no-untyped-def]
        return client.get(gate(plan, tail), {"mode": "strict"}, **bearer(key)).status_code

    assert [status(p, "") for p in (go, rb, nyd)] == [200, 409, 409]
    assert [status(p, "/rollback") for p in (go, rb, nyd)] == [409, 200, 409]
    refused = client.get(gate(rb), {"mode": "strict"}, **bearer(key)).json()
    answered = client.get(gate(rb), **bearer(key)).json()
    refused.pop("computed_at"), answered.pop("computed_at")
    assert refused == answered


def test_the_current_decision_weighs_over_the_recommendation(team, po, key):
    go = go_plan(team, po)
    client = Client()

    def ask(**query):  # type: ignore[no-untyped-def]
        return client.get(gate(go), query, **bearer(key)).json()

    assert ask(require_decision="true")["promotion_allowed"] is False
    assert "wait for a recorded decision" in ask(require_decision="true")["promotion_reason"]

    first = record(go, po, "go")
    body = ask(require_decision="true")
    assert body["promotion_allowed"] is True
    assert body["decision"]["outcome"] == "go" and body["decision"]["id"] == first.pk
    assert body["decision"]["recorded_by"] == po.display_name
    assert body["decision"]["is_override"] is False

    # A correction supersedes it: the later record is the current decision.
    record(go, po, "iterate", supersedes=first, override_reason="Conversion dipped on Friday.")
    body = ask()
    assert body["decision"]["outcome"] == "iterate"
    assert body["decision"]["is_override"] is True
    assert body["decision"]["override_reason"] == "Conversion dipped on Friday."
    assert body["promotion_allowed"] is False
    assert body["promotion_reason"].startswith("Decision recorded: Iterate")


def test_a_roll_back_decision_calls_for_a_rollback_without_a_fired_trigger(team, po, key):
    plan = go_plan(team, po)
    record(plan, po, "roll_back", override_reason="The support queue doubled.")

    response = Client().get(gate(plan, "/rollback"), {"mode": "strict"}, **bearer(key))

    assert response.status_code == 200
    assert response.json()["rollback_reason"].startswith("Decision recorded: Roll back")


def test_a_fired_trigger_outweighs_a_recorded_go(team, po, key):
    plan = roll_back_plan(team, po)
    record(plan, po, "go", override_reason="The trigger was a test alert.")
    client = Client()

    gate_body = client.get(gate(plan), **bearer(key)).json()
    strict = client.get(gate(plan), {"mode": "strict"}, **bearer(key))

    assert gate_body["promotion_allowed"] is False
    assert "a fired rollback trigger outweighs it" in gate_body["promotion_reason"]
    assert gate_body["rollback_called_for"] is True
    assert strict.status_code == 409


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"mode": "xml"}, "mode"),
        ({"require_decision": "maybe"}, "require_decision"),
        ({"run": "x" * 201}, "run"),
        ({"run": "line\nbreak"}, "run"),
    ],
)
def test_bad_options_are_refused_on_their_field_and_not_logged(team, po, key, query, field):
    plan = go_plan(team, po)

    response = Client().get(gate(plan), query, **bearer(key))

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not GateCall.objects.exists()


# --- who may ask -------------------------------------------------------------------------------


def test_who_may_ask(team, po, stakeholder, outsider, other_team, client_for):
    plan = go_plan(team, po)
    _key, good = read_key(team, po)
    _key, ingest_only = read_key(team, po, name="exporter", scopes=("ingest",))
    _key, foreign = read_key(other_team, outsider, name="theirs")
    revoked, revoked_plain = read_key(team, po, name="old")
    api_key_revoke(key=revoked, user=po)

    assert Client().get(gate(plan), **bearer(good)).status_code == 200
    assert client_for(stakeholder).get(gate(plan)).status_code == 200
    assert client_for(po).get(gate(plan, "/rollback")).status_code == 200

    anonymous = Client().get(gate(plan))
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert Client().get(gate(plan), **bearer(revoked_plain)).status_code == 401
    no_scope = Client().get(gate(plan), **bearer(ingest_only))
    assert no_scope.status_code == 403
    assert "read" in no_scope.json()["detail"]
    assert Client().get(gate(plan), **bearer(foreign)).status_code == 404
    assert client_for(outsider).get(gate(plan)).status_code == 404
    assert client_for(outsider).get(gate(plan, "/rollback")).status_code == 404
    assert Client().get("/api/v1/plans/999999/gate", **bearer(good)).status_code == 404
    # Only the answered calls are logged: the key, the stakeholder and the PO.
    assert GateCall.objects.filter(plan=plan).count() == 3


def test_flagger_posts_with_the_key_in_its_metadata(team, po, key, client_for):
    go, rb = go_plan(team, po), roll_back_plan(team, po)
    payload = {"name": "checkout", "namespace": "shop", "phase": "Promoting",
               "metadata": {"api_key": key, "run": "flagger-checkout"}}  # fmt: skip
    client = Client()

    def post(plan, tail, body=payload):  # type: ignore[no-untyped-def]
        url = gate(plan, tail) + "?mode=strict"
        return client.post(url, body, content_type="application/json").status_code

    assert [post(go, ""), post(rb, "")] == [200, 409]
    assert [post(go, "/rollback"), post(rb, "/rollback")] == [409, 200]
    assert GateCall.objects.filter(pipeline_run="flagger-checkout").count() == 4
    assert post(go, "", {"metadata": {}}) == 401
    assert post(go, "", {"metadata": {"api_key": "pp_nope_nope"}}) == 401
    # A logged-in person's POST needs the CSRF header, like every write of the API.
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(po)
    assert csrf_client.post(gate(go), {}, content_type="application/json").status_code == 403


# --- the call log ------------------------------------------------------------------------------


def test_every_answered_call_is_logged_with_caller_run_and_answer(team, po, key, client_for):
    plan = undecidable_plan(team, po)
    client = Client()

    client.get(gate(plan), {"mode": "strict"}, HTTP_X_PIPELINE_RUN="gh/run 17", **bearer(key))
    client.get(gate(plan, "/rollback"), {"run": "gitlab 9"}, **bearer(key))
    client_for(po).get(gate(plan), {"require_decision": "true"})

    calls = gate_calls_recent(plan_id=plan.pk)
    rows = [(c.endpoint, c.mode, c.caller, c.pipeline_run, c.status_code, c.allowed) for c in calls]
    assert rows == [
        ("gate", "json", po.email, "", 200, False),
        ("rollback", "json", "API key ‘deploy-bot’", "gitlab 9", 200, False),
        ("gate", "strict", "API key ‘deploy-bot’", "gh/run 17", 409, False),
    ]  # fmt: skip
    assert {c.recommendation for c in calls} == {"not_yet_decidable"}
    assert calls[0].user == po and calls[0].api_key is None
    assert calls[1].user is None and calls[1].api_key.name == "deploy-bot"
    assert [c.pk for c in gate_calls_recent(plan_id=plan.pk, limit=2)] == [c.pk for c in calls[:2]]


# --- queries -----------------------------------------------------------------------------------


def _queries(plan) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        gate_answer(plan)
    return len(ctx.captured_queries)


def test_the_answer_takes_the_same_number_of_queries_however_big_the_plan(team, po, key):
    small = go_plan(team, po)
    big = roll_back_plan(team, po)
    metric = big.exit_criteria.first().metric
    for position in range(10, 16):
        ExitCriterion.objects.create(
            plan=big, position=position, metric=metric, aggregation="mean", comparator="le",
            threshold=250, min_sample_size=30,
        )  # fmt: skip
    check_run_done(big, at=timezone.now() - timezone.timedelta(minutes=10))
    trigger = big.rollback_triggers.first()
    TriggerEpisode.objects.filter(plan=big).update(cleared_at=timezone.now())
    for i in range(5):
        TriggerEpisode.objects.create(
            plan=big, trigger=trigger, description="p1", breach_started_at=timezone.now(),
            cleared_at=timezone.now(), fired_at=timezone.now() - timezone.timedelta(hours=i),
        )  # fmt: skip
    record(big, po, "roll_back", override_reason="x")

    assert _queries(small) == _queries(big)
    Client().get(gate(small), **bearer(key))  # the key's last use is written once a minute
    with CaptureQueriesContext(connection) as ctx:
        Client().get(gate(big), **bearer(key))
    with CaptureQueriesContext(connection) as small_ctx:
        Client().get(gate(small), **bearer(key))
    assert len(ctx.captured_queries) == len(small_ctx.captured_queries)
