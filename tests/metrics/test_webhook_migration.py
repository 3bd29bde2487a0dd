"""The team's alert webhook becomes a webhook subscription (metrics 0015, accounts 0009): same
address and secret, the three trigger events it used to get, deliveries still owed carried over
in the new payload shape, and the people who manage the team's webhooks told under the bell."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BEFORE = [("metrics", "0015_ingest_fast_path"), ("accounts", "0008_notification_kinds_decisions")]
AFTER = [("metrics", "0016_webhook_subscriptions_moved")]


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.fixture
def previous_release():
    executor = _migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    executor.loader.build_graph()
    _migrate(executor.loader.graph.leaf_nodes())


def test_the_alert_webhook_becomes_a_subscription_and_its_managers_are_told(previous_release):
    apps = previous_release
    Team = apps.get_model("accounts", "Team")
    User = apps.get_model("accounts", "User")
    Membership = apps.get_model("accounts", "Membership")
    Endpoint = apps.get_model("metrics", "WebhookEndpoint")
    OldDelivery = apps.get_model("metrics", "WebhookDelivery")

    team = Team.objects.create(name="Migrators", slug="migrators")
    people = {}
    for role in ("product_owner", "scrum_master", "devops", "developer", "stakeholder"):
        people[role] = User.objects.create(email=f"{role}@example.test")
        Membership.objects.create(team=team, user=people[role], role=role)
    endpoint = Endpoint.objects.create(
        team=team, url="https://hooks.example.test/pp", secret="whsec_" + "ab" * 24
    )
    at = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    OldDelivery.objects.create(
        endpoint=endpoint, event="trigger.fired", payload={"event": "trigger.fired",
        "plan": {"id": 7}}, created_at=at, attempts=2, last_error="HTTP 500",
    )  # fmt: skip
    OldDelivery.objects.create(
        endpoint=endpoint, event="trigger.resolved", payload={}, created_at=at, attempts=1,
        delivered_at=at, last_status=200,
    )  # fmt: skip

    # Read as the models were right after the migration: later migrations add columns (e.g.
    # accounts 0011's payload_version) that the current models would ask for.
    after = _migrate(AFTER).loader.project_state(AFTER).apps
    WebhookSubscription = after.get_model("accounts", "WebhookSubscription")
    WebhookDelivery = after.get_model("accounts", "WebhookDelivery")
    Notification = after.get_model("accounts", "Notification")

    [subscription] = WebhookSubscription.objects.all()
    assert (subscription.team_id, subscription.url, subscription.secret) == (
        team.pk, endpoint.url, endpoint.secret,
    )  # fmt: skip
    assert subscription.events == ["trigger.fired", "trigger.acknowledged", "trigger.resolved"]
    assert subscription.is_active and subscription.kind == "standard"
    [owed] = WebhookDelivery.objects.all()
    assert owed.payload == {
        "type": "trigger.fired",
        "version": 1,
        "timestamp": "2026-03-02T12:00:00Z",
        "data": {"plan": {"id": 7}},
    }
    assert owed.next_attempt_at is not None and owed.message_id.startswith("msg_")
    told = Notification.objects.filter(kind="webhook_moved")
    assert {n.user.email for n in told} == {
        "product_owner@example.test", "scrum_master@example.test", "devops@example.test",
    }  # fmt: skip
    assert all(n.url == f"/teams/{team.pk}/webhooks/{subscription.pk}" for n in told)
    assert all("Standard Webhooks" in n.message for n in told)
