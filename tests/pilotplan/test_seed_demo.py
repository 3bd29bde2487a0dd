"""``manage.py seed_demo``: the demo the README promises, the same after every run. (Its people
and plans' owners: test_seed_demo_people.py.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import call_command
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
)
from pilots.models import PilotPlan
from tests.conftest import rows_for_the_module

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("seeded")]


@dataclass(frozen=True)
class Seeded:
    before: dt.datetime  # the moment the command started, less the simulator's last hours
    output: str


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker) -> Iterator[Seeded]:  # type: ignore[no-untyped-def]
    """``manage.py seed_demo`` run once for the module (with metric history, ~15 s); each test
    starts from what it left and is rolled back to it afterwards."""
    with rows_for_the_module(django_db_blocker):
        before = timezone.now() - HISTORY_GAP
        out = StringIO()
        call_command("seed_demo", stdout=out)
        yield Seeded(before=before, output=out.getvalue())


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


def test_seed_demo_twice_leaves_the_same_rows(seeded):
    before = seeded.before
    first = counts(before)  # after the first run (the module's fixture)

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


def test_seed_demo_prints_the_password_and_the_logins(seeded):
    text = seeded.output
    assert DEMO_PASSWORD in text
    assert "po@checkout.demo" in text
    assert "admin@pilotplan.demo" in text
