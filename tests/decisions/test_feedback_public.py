"""The public feedback link: the page and the widget API, validation at the edge, the link's
states, rate limits in the real Redis, and the CSAT / NPS metrics fed on the spot."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from accounts.models import Team, User
from backlog.models import Feedback, FeedbackToken
from metrics.models import HourRollup, Sample
from pilots.models import PilotPlan
from tests.factories import PilotPlanFactory, running_plan

pytestmark = pytest.mark.django_db

TOKEN = "tok-live-0123456789abcdefghijkl"


def _local_today(team: Team) -> dt.date:
    return timezone.now().astimezone(ZoneInfo(team.time_zone)).date()


@pytest.fixture
def plan(team: Team, po: User) -> PilotPlan:
    plan = running_plan(
        team=team,
        owner=po,
        start_date=_local_today(team) - dt.timedelta(days=2),
        time_zone=team.time_zone,
        template=False,
    )
    FeedbackToken.objects.create(plan=plan, token=TOKEN, created_by=po)
    return plan


def _api(client: Client, token: str, body: object, address: str = "203.0.113.7"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/feedback/{token}",
        json.dumps(body),
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def _nothing_stored() -> bool:
    return not Feedback.objects.exists() and not Sample.objects.exists()


# --- the page --------------------------------------------------------------------------------


def test_the_page_is_public_phone_ready_and_csp_clean(plan: PilotPlan) -> None:
    response = Client().get(f"/f/{TOKEN}")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="viewport"' in page and "Your feedback on" in page and plan.title in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert len(re.findall(r'type="radio" name="csat"', page)) == 5
    assert len(re.findall(r'type="radio" name="nps"', page)) == 11
    # Strict CSP: no inline script or style on the page.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert " style=" not in page and "<style" not in page
    assert "css/feedback.css" in page


def test_an_answer_from_the_page_is_stored_and_thanked_with_csrf_on(plan: PilotPlan) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get(f"/f/{TOKEN}").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    data = {"csat": "4", "nps": "9", "comment": "Quick checkout!", "contact": "jo@example.com"}
    assert client.post(f"/f/{TOKEN}", data).status_code == 403  # no CSRF token
    assert not Feedback.objects.exists()
    response = client.post(f"/f/{TOKEN}", data | {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302 and response["Location"] == f"/f/{TOKEN}/thanks"
    assert "Thank you" in client.get(response["Location"]).content.decode()
    feedback = Feedback.objects.get()
    assert (feedback.csat, feedback.nps, feedback.comment, feedback.contact) == (
        4, 9, "Quick checkout!", "jo@example.com",
    )  # fmt: skip
    assert feedback.plan_id == plan.pk and feedback.token.token == TOKEN


def test_invalid_answers_on_the_page_name_the_field_and_store_nothing(plan: PilotPlan) -> None:
    client = Client()
    response = client.post(f"/f/{TOKEN}", {"csat": "7", "nps": "", "comment": ""})
    assert response.status_code == 422
    assert "CSAT is a whole number from 1 to 5; 7 is out of range." in response.content.decode()
    assert 'data-testid="error-csat"' in response.content.decode()
    empty = client.post(f"/f/{TOKEN}", {"csat": "", "nps": "", "comment": "  "})
    assert empty.status_code == 422
    assert "Give a CSAT score, an NPS score or a comment." in empty.content.decode()
    assert _nothing_stored()


# --- the link's states -----------------------------------------------------------------------


def test_unknown_revoked_and_not_running_links_are_closed(
    team: Team, po: User, plan: PilotPlan
) -> None:
    client = Client()
    unknown = client.get("/f/no-such-token")
    assert unknown.status_code == 404 and "does not exist" in unknown.content.decode()
    assert _api(client, "no-such-token", {"csat": 3}).status_code == 404

    FeedbackToken.objects.filter(token=TOKEN).update(revoked_at=timezone.now())
    revoked = client.get(f"/f/{TOKEN}")
    assert revoked.status_code == 410 and "no longer in use" in revoked.content.decode()
    assert client.post(f"/f/{TOKEN}", {"csat": "3"}).status_code == 410
    assert _api(client, TOKEN, {"csat": 3}).status_code == 410

    draft = PilotPlanFactory(team=team, owner=po)
    FeedbackToken.objects.create(plan=draft, token="draft-token-000000000000", created_by=po)
    closed = client.get("/f/draft-token-000000000000")
    assert closed.status_code == 410 and "not collecting feedback" in closed.content.decode()
    api = _api(client, "draft-token-000000000000", {"csat": 3})
    assert api.status_code == 410 and "not collecting feedback" in api.json()["detail"]
    assert _nothing_stored()


def test_a_running_plan_past_its_window_takes_nothing(plan: PilotPlan) -> None:
    """Still Running (the time-box tick has not run yet) but the pilot window is over: the
    metrics would refuse the score, so the whole answer is refused."""
    PilotPlan.objects.filter(pk=plan.pk).update(
        start_date=dt.date(2020, 1, 6), end_date=dt.date(2020, 1, 17)
    )
    response = _api(Client(), TOKEN, {"csat": 5, "comment": "Late"})
    assert response.status_code == 410
    assert _nothing_stored()


# --- the API and the metrics -------------------------------------------------------------------


def test_the_api_stores_and_feeds_csat_and_nps_at_once(plan: PilotPlan) -> None:
    response = _api(Client(), TOKEN, {"csat": 2, "nps": 6, "comment": "Slow", "contact": ""})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "created_at", "csat", "nps"} and body["csat"] == 2
    feedback = Feedback.objects.get(pk=body["id"])
    samples = {s.metric.key: s for s in Sample.objects.select_related("metric")}
    assert set(samples) == {"csat", "nps"}
    assert samples["csat"].value == 2 and samples["nps"].value == 6
    assert samples["csat"].observed_at == feedback.created_at
    assert samples["csat"].source == "feedback"
    assert samples["csat"].external_id == f"feedback-{feedback.pk}-csat"
    rollups = {
        r.metric.key: r for r in HourRollup.objects.filter(plan=plan).select_related("metric")
    }
    assert rollups["csat"].count == 1 and rollups["csat"].sum == 2
    assert rollups["nps"].count == 1 and rollups["nps"].sum == 6


def test_a_comment_alone_gives_no_sample(plan: PilotPlan) -> None:
    assert _api(Client(), TOKEN, {"comment": "Love it"}).status_code == 201
    assert Feedback.objects.count() == 1 and not Sample.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"csat": 0}, "csat", "from 1 to 5; 0 is out of range"),
        ({"csat": 6}, "csat", "from 1 to 5; 6 is out of range"),
        ({"csat": 3.5}, "csat", "whole number from 1 to 5"),
        ({"csat": True}, "csat", "not true or false"),
        ({"csat": "four"}, "csat", "“four” is not"),
        ({"nps": -1}, "nps", "from 0 to 10"),
        ({"nps": 11}, "nps", "11 is out of range"),
        ({"nps": [1]}, "nps", "whole number from 0 to 10"),
        ({"comment": "x" * 2001}, "comment", "2,001 characters; at most 2,000"),
        ({"comment": "a\x00b"}, "comment", "not allowed"),
        ({"comment": 12}, "comment", "must be text"),
        ({"csat": 3, "contact": "y" * 201}, "contact", "at most 200"),
        ({"csat": 3, "contact": "a\nb"}, "contact", "not allowed"),
        ({"csat": 3, "coment": "typo"}, "coment", "Unknown field"),
        ({}, "non_field_errors", "Give a CSAT score, an NPS score or a comment."),
        ({"csat": None, "nps": None, "comment": "   "}, "non_field_errors", "Give a CSAT"),
    ],
)
def test_the_api_refuses_bad_input_naming_the_field(
    plan: PilotPlan, body: dict, field: str, words: str
) -> None:
    response = _api(Client(), TOKEN, body)
    assert response.status_code == 400, response.content
    assert words in " ".join(response.json()["errors"][field])
    assert _nothing_stored()


def test_the_api_refuses_a_body_that_is_not_an_object(plan: PilotPlan) -> None:
    response = _api(Client(), TOKEN, [1, 2])
    assert response.status_code == 400 and "JSON object" in str(response.json())
    bad = Client().post(f"/api/v1/feedback/{TOKEN}", "{", content_type="application/json")
    assert bad.status_code == 400
    assert _nothing_stored()


def test_bounds_are_inclusive(plan: PilotPlan) -> None:
    client = Client()
    for body in ({"csat": 1, "nps": 0}, {"csat": 5, "nps": 10, "comment": "x" * 2000}):
        assert _api(client, TOKEN, body).status_code == 201
    assert Feedback.objects.count() == 2


# --- rate limits ------------------------------------------------------------------------------


def test_limit_per_address_per_link(plan: PilotPlan, settings) -> None:  # type: ignore[no-untyped-def]
    settings.FEEDBACK_RATE_PER_ADDRESS = 3
    client = Client()
    for _ in range(3):
        assert _api(client, TOKEN, {"csat": 4}).status_code == 201
    refused = _api(client, TOKEN, {"csat": 4})
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= settings.FEEDBACK_RATE_WINDOW
    assert "Too many answers from your network" in refused.json()["detail"]
    page = client.post(f"/f/{TOKEN}", {"csat": "4"}, REMOTE_ADDR="203.0.113.7")
    assert page.status_code == 429 and "Retry-After" in page
    assert "Please wait a moment" in page.content.decode()
    # Another address is not held back.
    assert _api(client, TOKEN, {"csat": 4}, address="198.51.100.2").status_code == 201
    assert Feedback.objects.count() == 4


def test_limit_per_link_across_addresses(plan: PilotPlan, settings) -> None:  # type: ignore[no-untyped-def]
    settings.FEEDBACK_RATE_PER_TOKEN = 5
    client = Client()
    for i in range(5):
        assert _api(client, TOKEN, {"nps": 8}, address=f"198.51.100.{i}").status_code == 201
    refused = _api(client, TOKEN, {"nps": 8}, address="198.51.100.99")
    assert refused.status_code == 429
    assert "through this link" in refused.json()["detail"]
    assert Feedback.objects.count() == 5


def test_an_address_over_its_limit_does_not_use_up_the_links(plan: PilotPlan, settings) -> None:  # type: ignore[no-untyped-def]
    settings.FEEDBACK_RATE_PER_ADDRESS = 2
    settings.FEEDBACK_RATE_PER_TOKEN = 4
    client = Client()
    for _ in range(10):  # one noisy address: 2 taken, 8 refused
        _api(client, TOKEN, {"csat": 1})
    assert _api(client, TOKEN, {"csat": 5}, address="198.51.100.1").status_code == 201
    assert _api(client, TOKEN, {"csat": 5}, address="198.51.100.2").status_code == 201
    assert _api(client, TOKEN, {"csat": 5}, address="198.51.100.3").status_code == 429


def test_the_window_resets(plan: PilotPlan, settings) -> None:  # type: ignore[no-untyped-def]
    settings.FEEDBACK_RATE_PER_ADDRESS = 1
    settings.FEEDBACK_RATE_WINDOW = 1
    client = Client()
    assert _api(client, TOKEN, {"csat": 3}).status_code == 201
    assert _api(client, TOKEN, {"csat": 3}).status_code == 429
    time.sleep(2.1)
    assert _api(client, TOKEN, {"csat": 3}).status_code == 201


# --- no input answers 500 ------------------------------------------------------------------------

_text = st.one_of(
    st.text(max_size=30), st.sampled_from(["\ud800", "a\x00b", "9" * 400, " ", "1e200", "NaN"])
)
_numbers = st.one_of(st.integers(min_value=-(10**40), max_value=10**40), st.floats(), st.booleans())
_values = st.recursive(
    st.one_of(st.none(), _numbers, _text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_bodies = st.one_of(
    _values,
    st.dictionaries(
        st.sampled_from(["csat", "nps", "comment", "contact"]) | _text, _values, max_size=5
    ),
)


@hypothesis.settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(body=_bodies)
def test_arbitrary_json_never_answers_500(plan: PilotPlan, settings, body: object) -> None:  # type: ignore[no-untyped-def]
    settings.FEEDBACK_RATE_PER_ADDRESS = 10_000
    settings.FEEDBACK_RATE_PER_TOKEN = 10_000
    response = _api(Client(), TOKEN, body)
    assert response.status_code in {201, 400}, (body, response.content)
    response.json()


def test_queries_per_answer_and_per_page_stay_constant(plan: PilotPlan) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = Client()
    body = {"csat": 4, "nps": 8, "comment": "Fine"}
    _api(client, TOKEN, body, address="198.51.100.200")
    with CaptureQueriesContext(connection) as first:
        assert _api(client, TOKEN, body, address="198.51.100.201").status_code == 201
    for i in range(8):
        _api(client, TOKEN, body, address=f"198.51.100.{i}")
    with CaptureQueriesContext(connection) as later:
        assert _api(client, TOKEN, body, address="198.51.100.202").status_code == 201
    assert len(first) == len(later), [q["sql"][:80] for q in later]
    # Counted to notice growth: the link, the metrics, the answer, the samples with rollups
    # (temporary table, COPY, insert), the batch; each preceded by the audit context.
    assert len(later) <= 22, [q["sql"][:80] for q in later]
    with CaptureQueriesContext(connection) as page:
        assert client.get(f"/f/{TOKEN}").status_code == 200
    assert len(page) == 1  # the link with its plan and team
