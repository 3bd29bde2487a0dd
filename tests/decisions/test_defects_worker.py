"""A P1 defect logged against the running pilot fires its "any P1 defect" trigger at once:
saving the defect stores its sample, the ingestion queues the trigger evaluation after commit,
and a real Celery worker (real Redis, the test database) opens the episode; the decision page
then shows the fired trigger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from celery import current_app
from django.utils import timezone

from backlog.models import BacklogItem
from backlog.services import backlog_item_create
from metrics.models import TriggerEpisode
from pilots.models import RollbackTrigger
from tests.factories import running_plan
from tests.metrics.test_tick_worker import broker, wait_for, worker  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def routed_to(worker: str) -> Iterator[str]:  # noqa: F811
    """This process publishes to the test worker's queues (``<queue>.triggers``), as the web
    process publishes to the workers of docker-compose.yml."""
    conf = current_app.conf
    saved = conf.task_default_queue, conf.task_routes
    conf.task_default_queue = worker
    conf.task_routes = {
        name: {**route, "queue": f"{worker}.{route['queue']}"}
        for name, route in (saved[1] or {}).items()
    }
    current_app.amqp.__dict__.pop("router", None)
    current_app.amqp.flush_routes()
    try:
        yield worker
    finally:
        conf.task_default_queue, conf.task_routes = saved
        current_app.amqp.__dict__.pop("router", None)
        current_app.amqp.flush_routes()


def test_a_p1_defect_fires_the_any_p1_trigger_through_the_worker(routed_to, team, po, client_for):
    start = timezone.now().date() - dt.timedelta(days=2)  # the plan's zone is UTC
    plan = running_plan(team=team, owner=po, start_date=start, business_days=20)
    trigger = plan.rollback_triggers.get(metric__key="p1_defects")
    assert trigger.mode == RollbackTrigger.Mode.ANY_OCCURRENCE and trigger.comparator == "gt"

    backlog_item_create(
        team_id=team.pk, user=po, title="Card saved twice", kind=BacklogItem.Kind.DEFECT,
        severity="p2", plan=plan,
    )  # fmt: skip
    item = backlog_item_create(
        team_id=team.pk, user=po, title="Payment fails", kind=BacklogItem.Kind.DEFECT,
        severity="p1", plan=plan,
    )  # fmt: skip

    assert wait_for(lambda: TriggerEpisode.objects.filter(trigger=trigger).exists()), (
        "the worker opened no episode within 20 s"
    )
    episode = TriggerEpisode.objects.get(trigger=trigger)
    assert episode.value == 1 and episode.resolved_at is None
    assert episode.fired_at >= item.created_at

    page = client_for(po).get(f"/plans/{plan.pk}/decision").content.decode()
    assert 'data-testid="trigger" data-state="fired"' in page
    assert "Unresolved:</strong> fired" in page
