"""``manage.py seed_demo``: the demo the README promises, the same after every run."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import Membership, Team, User
from backlog.models import BacklogItem, ChangeControlEntry, Feedback, Participant
from metrics import simulator
from metrics.demo import HISTORY_GAP
from metrics.models import CheckRun, CriterionResult, Sample
from pilotplan.demo import (
    BACKLOGS,
    DEMO_PASSWORD,
    ENROLLED,
    FEEDBACK,
    IMPORTED,
    TEAMS,
    demo_email,
    seed_demo,
)
from pilots.models import PilotPlan

pytestmark = pytest.mark.django_db


def counts(before: dt.datetime | None = None) -> dict[str, int]:
    """Row counts; samples only up to ``before`` (time passes between two seeds, and the second
    one rightly adds the minutes that passed)."""
    samples = Sample.objects.all()
    if before is not None:
        samples = samples.filter(observed_at__lt=before)
    return {
        "users": User.objects.count(),
        "teams": Team.objects.count(),
        "memberships": Membership.objects.count(),
        "plans": PilotPlan.objects.count(),
        "samples": samples.count(),
        "check runs": CheckRun.objects.count(),
        "backlog items": BacklogItem.objects.count(),
        "participants": Participant.objects.count(),
        "feedback": Feedback.objects.count(),
        "change control": ChangeControlEntry.objects.count(),
    }


def _login_request():  # type: ignore[no-untyped-def]
    """What the log-in form hands to ``authenticate``: the lockout backend (django-axes) needs
    the request to count failures per address."""
    return RequestFactory().post("/login/")


def test_seed_demo_twice_leaves_the_same_rows():
    before = timezone.now() - HISTORY_GAP
    call_command("seed_demo", stdout=StringIO())
    first = counts(before)

    call_command("seed_demo", stdout=StringIO())

    assert counts(before) == first
    assert first | {"samples": 0, "check runs": 0} == {
        "users": 2 + 5 * len(TEAMS),  # admin, portfolio, one per role per team
        "teams": len(TEAMS),
        "memberships": 6 * len(TEAMS),  # five roles plus the portfolio stakeholder
        "plans": sum(len(spec.plans) for spec in TEAMS),
        "samples": 0,
        "check runs": 0,
        # The Checkout backlog, and its running pilot's learning loop (test_seed_demo_plans).
        "backlog items": len(BACKLOGS["checkout"]) + 4,
        "participants": len(IMPORTED) + len(ENROLLED),
        "feedback": len(FEEDBACK),
        "change control": 5,
    }
    assert first["samples"] > 0 and first["check runs"] > 0


def test_the_demo_s_running_pilots_have_metric_history_and_past_checks():
    call_command("seed_demo", stdout=StringIO())

    running = PilotPlan.objects.filter(status=PilotPlan.Status.RUNNING)
    assert running.count() == 2
    for plan in running:
        samples = Sample.objects.filter(plan=plan)
        assert samples.filter(metric__key="p95_latency").count() > 60
        # The seed leaves the last two hours to the simulator, which plays the incident. (A
        # defect logged in the backlog counts from the moment it is saved: source "backlog".)
        simulated = samples.filter(source=simulator.SOURCE)
        assert simulated.latest("observed_at").observed_at < timezone.now() - HISTORY_GAP
        assert not samples.filter(metric__key="p95_latency", value__gt=300).exists()
        runs = CheckRun.objects.filter(plan=plan)
        assert runs.exists() and not runs.filter(status=CheckRun.Status.PENDING).exists()
        assert CriterionResult.objects.filter(run__plan=plan).count() == (
            runs.filter(status=CheckRun.Status.DONE).count() * plan.exit_criteria.count()
        )
    # The saved-cards pilot's cohort feedback fed its CSAT and NPS metrics, and the defects
    # logged against it count in its defect metrics (no P1: its trigger has not fired).
    saved_cards = running.get(title="Saved cards for returning shoppers")
    fed = Sample.objects.filter(plan=saved_cards, source="feedback")
    assert sorted(fed.values_list("metric__key", "value")) == sorted(
        [("csat", float(csat)) for csat, *_ in FEEDBACK if csat is not None]
        + [("nps", float(nps)) for _c, nps, *_ in FEEDBACK if nps is not None]
    )
    defects = Sample.objects.filter(plan=saved_cards, source="backlog")
    assert sorted(defects.values_list("metric__key", flat=True)) == ["p2_defects", "p3_defects"]


def test_seed_demo_prints_the_password_and_the_logins():
    out = StringIO()

    call_command("seed_demo", stdout=out)

    text = out.getvalue()
    assert DEMO_PASSWORD in text
    assert "po@checkout.demo" in text
    assert "admin@pilotplan.demo" in text


def test_every_demo_login_authenticates_with_the_demo_password():
    logins = seed_demo(metrics=False)

    assert len(logins) == 2 + 5 * len(TEAMS)
    for email, _team, _role in logins:
        user = authenticate(_login_request(), username=email, password=DEMO_PASSWORD)
        assert user is not None, email
        assert user.email == email


def test_a_demo_login_works_through_the_login_page(client):
    seed_demo(metrics=False)

    response = client.post("/login/", {"username": "po@checkout.demo", "password": DEMO_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_seed_demo_resets_a_changed_demo_password():
    seed_demo(metrics=False)
    user = User.objects.get(email="dev@mobile.demo")
    user.set_password("something-else-entirely")
    user.save(update_fields=["password"])

    seed_demo(metrics=False)

    assert (
        authenticate(_login_request(), username="dev@mobile.demo", password=DEMO_PASSWORD)
        is not None
    )


def test_each_demo_team_has_one_member_per_role_plus_the_portfolio_stakeholder():
    seed_demo(metrics=False)

    for spec in TEAMS:
        team = Team.objects.get(slug=spec.slug)
        assert team.name == spec.name
        assert team.time_zone == spec.time_zone
        roles = dict(
            Membership.objects.filter(team=team)
            .exclude(user__email="portfolio@pilotplan.demo")
            .values_list("user__email", "role")
        )
        assert roles == {demo_email(role, spec.slug): role.value for role in Membership.Role}
        assert Membership.objects.get(team=team, user__email="portfolio@pilotplan.demo").role == (
            Membership.Role.STAKEHOLDER
        )


def test_demo_plans_belong_to_their_team_and_its_product_owner():
    seed_demo(metrics=False)

    for spec in TEAMS:
        plans = PilotPlan.objects.filter(team__slug=spec.slug)
        assert sorted(plans.values_list("title", flat=True)) == sorted(t for t, _ in spec.plans)
        po_email = demo_email(Membership.Role.PRODUCT_OWNER, spec.slug)
        assert {p.created_by.email for p in plans} == {po_email}


def test_only_the_admin_is_staff():
    seed_demo(metrics=False)

    assert list(User.objects.filter(is_staff=True).values_list("email", flat=True)) == [
        "admin@pilotplan.demo"
    ]
    assert User.objects.get(email="admin@pilotplan.demo").is_superuser
