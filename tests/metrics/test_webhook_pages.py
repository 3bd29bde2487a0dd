"""A team's webhook subscriptions in the browser and over the API (docs/webhooks.md): create
(secret shown once), change, switch on again, rotate, test, remove, the delivery log and its
redelivery with confirmation; who may (the permission table), what each page costs in queries."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.events import PAYLOAD_VERSION, event_publish
from accounts.models import EventType, Team, WebhookDelivery, WebhookSubscription
from tests.metrics.webhook_docs import assert_documented

pytestmark = pytest.mark.django_db

FIRED = EventType.TRIGGER_FIRED
FORM = {
    "name": "Ops receiver",
    "kind": "standard",
    "url": "https://hooks.example.test/pp",
    "events": [FIRED, EventType.DECISION_RECORDED],
}


def page(name: str, *args: int) -> str:
    return reverse(f"metrics:{name}", args=args)


def api(name: str, *args: int) -> str:
    return reverse(f"api:{name}", args=args)


def make(team: Team, user=None, **fields) -> WebhookSubscription:  # type: ignore[no-untyped-def]
    values = {
        "name": "Ops",
        "url": "https://hooks.example.test/x",
        "secret": "whsec_hidden0000",
        "events": [FIRED],
        "created_by": user,
        **fields,
    }
    return WebhookSubscription.objects.create(team=team, **values)


def delivered(subscription: WebhookSubscription) -> WebhookDelivery:
    [delivery] = event_publish(
        team_id=subscription.team_id,
        event=FIRED,
        data={},
        summary="x",
        subscriptions=[subscription],
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=1,
        delivered_at=timezone.now(),
        next_attempt_at=None,
        last_status=200,
        last_duration_ms=84,
        response_excerpt="thanks",
    )
    return delivery


# --- the pages -----------------------------------------------------------------------------------


def test_a_new_subscription_shows_its_secret_once(client_for, team, sm):
    client = client_for(sm)

    response = client.post(page("webhooks", team.pk), FORM)

    subscription = WebhookSubscription.objects.get(team=team)
    assert response.status_code == 302
    assert response["Location"] == page("webhook_detail", team.pk, subscription.pk)
    assert (subscription.name, subscription.created_by, subscription.is_active) == (
        "Ops receiver", sm, True,
    )  # fmt: skip
    assert subscription.events == [FIRED, EventType.DECISION_RECORDED]
    assert subscription.secret.startswith("whsec_")
    first = client.get(response["Location"]).content.decode()
    assert subscription.secret in first
    assert subscription.secret not in client.get(response["Location"]).content.decode()


def test_a_form_without_events_or_with_a_slack_address_for_teams_is_422(client_for, team, po):
    client = client_for(po)
    response = client.post(page("webhooks", team.pk), {**FORM, "events": []})
    assert response.status_code == 422
    assert "events" in response.context["form"].errors

    wrong = {**FORM, "kind": "teams", "url": "https://hooks.slack.com/services/T/B/X"}
    response = client.post(page("webhooks", team.pk), wrong)
    assert response.status_code == 422
    assert "Slack incoming webhook address" in response.context["form"].errors["url"][0]
    assert not WebhookSubscription.objects.exists()


def test_switching_on_again_clears_why_it_was_switched_off(client_for, team, po):
    subscription = make(team, is_active=False, disabled_reason="Switched off after 8 failed …")
    url = page("webhook_detail", team.pk, subscription.pk)

    response = client_for(po).post(url, {**FORM, "is_active": "on"})

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.is_active and subscription.disabled_reason == ""
    assert subscription.name == "Ops receiver"


def test_rotate_test_and_remove(client_for, team, po):
    subscription = make(team)
    client = client_for(po)

    client.post(page("webhook_rotate", team.pk, subscription.pk))
    old = subscription.secret
    subscription.refresh_from_db()
    assert subscription.secret != old
    assert (
        subscription.secret
        in client.get(page("webhook_detail", team.pk, subscription.pk)).content.decode()
    )

    client.post(page("webhook_test", team.pk, subscription.pk))
    [ping] = WebhookDelivery.objects.filter(subscription=subscription)
    assert ping.event == "ping" and ping.payload["data"]["team"]["id"] == team.pk
    assert_documented(ping.payload)

    client.post(page("webhook_delete", team.pk, subscription.pk))
    assert not WebhookSubscription.objects.exists()


def test_a_switched_off_subscription_refuses_tests_and_redeliveries(client_for, team, po):
    subscription = make(team)
    delivery = delivered(subscription)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)
    client = client_for(po)

    assert client.post(page("webhook_test", team.pk, subscription.pk)).status_code == 409
    url = page("webhook_redeliver", team.pk, subscription.pk, delivery.pk)
    response = client.post(url)
    assert response.status_code == 409
    assert "switch it on" in response.content.decode()


def test_redelivery_asks_first_then_sends_again(client_for, team, po):
    subscription = make(team)
    delivery = delivered(subscription)
    url = page("webhook_redeliver", team.pk, subscription.pk, delivery.pk)
    client = client_for(po)

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert delivery.message_id in confirm.content.decode()
    assert WebhookDelivery.objects.count() == 1

    response = client.post(url)
    assert response.status_code == 302
    again = WebhookDelivery.objects.exclude(pk=delivery.pk).get()
    assert again.message_id == delivery.message_id and again.next_attempt_at is not None


def test_the_delivery_log_shows_status_timing_attempts_and_the_answer(client_for, team, po):
    subscription = make(team)
    delivered(subscription)

    body = client_for(po).get(page("webhook_detail", team.pk, subscription.pk)).content.decode()

    row = body[body.index('data-testid="delivery"') :]
    assert "trigger.fired" in row
    assert "84 ms" in row and ">200<" in row and "thanks" in row
    assert 'data-testid="redeliver"' in row


def test_the_page_links_the_help_page_not_a_repository_file(client_for, team, developer):
    body = client_for(developer).get(page("webhooks", team.pk)).content.decode()
    assert page("webhooks_help") in body
    assert ".md" not in body and "docs/webhooks" not in body
    help_page = client_for(developer).get(page("webhooks_help")).content.decode()
    assert "webhook-signature" in help_page and "plan.state_changed" in help_page


def test_the_old_address_leads_to_the_list(client_for, team, po):
    response = client_for(po).get(f"/teams/{team.pk}/webhook")
    assert response.status_code == 301
    assert response["Location"] == page("webhooks", team.pk)


# --- who may -------------------------------------------------------------------------------------


def test_members_read_without_the_secret_and_without_forms(
    client_for, team, po, developer, django_assert_num_queries
):
    subscription = make(team, po)
    for _ in range(3):
        delivered(subscription)
    client = client_for(developer)
    client.get(page("webhooks", team.pk))
    # Session, user, membership with team, subscriptions with their owners.
    with django_assert_num_queries(4):
        listing = client.get(page("webhooks", team.pk)).content.decode()
    # Session, user, membership with team, the subscription, the log's count and page.
    with django_assert_num_queries(6):
        detail = client.get(page("webhook_detail", team.pk, subscription.pk)).content.decode()
    for body in (listing, detail):
        assert "whsec_hidden0000" not in body
        assert 'data-testid="webhook-form"' not in body
    assert 'data-testid="redeliver"' not in detail
    assert "Ops" in listing and "trigger.fired" in detail


def test_the_page_costs_the_same_with_many_subscriptions_and_deliveries(
    client_for, team, po, django_assert_num_queries
):
    subscription = make(team, po)
    for i in range(20):
        make(team, po, name=f"S{i}")
    for _ in range(60):
        delivered(subscription)
    client = client_for(po)
    client.get(page("webhooks", team.pk))
    with django_assert_num_queries(4):
        client.get(page("webhooks", team.pk))
    with django_assert_num_queries(6):
        client.get(page("webhook_detail", team.pk, subscription.pk) + "?page=2")


@pytest.mark.parametrize(
    "name", ["webhooks", "webhook_detail", "webhook_rotate", "webhook_test", "webhook_delete",
             "webhook_redeliver"],
)  # fmt: skip
def test_changes_are_for_the_roles_that_manage_webhooks(
    client_for, team, po, developer, stakeholder, outsider, name
):
    subscription = make(team, po)
    delivery = delivered(subscription)
    args = {
        "webhooks": (team.pk,),
        "webhook_redeliver": (team.pk, subscription.pk, delivery.pk),
    }.get(name, (team.pk, subscription.pk))
    url = page(name, *args)

    assert client_for(developer).post(url, FORM).status_code == 403
    assert client_for(stakeholder).post(url, FORM).status_code == 403
    assert client_for(outsider).post(url, FORM).status_code == 404
    assert Client().post(url, FORM).status_code == 302  # to the login page
    subscription.refresh_from_db()
    assert (subscription.name, subscription.secret) == ("Ops", "whsec_hidden0000")
    assert WebhookSubscription.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_the_redelivery_confirmation_is_for_managers_only(
    client_for, team, po, developer, outsider
):
    subscription = make(team, po)
    delivery = delivered(subscription)
    url = page("webhook_redeliver", team.pk, subscription.pk, delivery.pk)
    assert client_for(developer).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404


def test_another_teams_subscription_is_not_found(client_for, team, po, other_team):
    theirs = make(other_team)
    delivery = delivered(theirs)
    client = client_for(po)
    assert client.get(page("webhook_detail", team.pk, theirs.pk)).status_code == 404
    assert client.post(page("webhook_test", team.pk, theirs.pk)).status_code == 404
    url = page("webhook_redeliver", team.pk, theirs.pk, delivery.pk)
    assert client.post(url).status_code == 404
    mine = make(team)
    url = page("webhook_redeliver", team.pk, mine.pk, delivery.pk)
    assert client.post(url).status_code == 404
    assert WebhookDelivery.objects.count() == 1


def test_the_help_page_needs_a_login():
    response = Client().get(page("webhooks_help"))
    assert response.status_code == 302


# --- the API -------------------------------------------------------------------------------------


def test_api_create_list_change_and_remove(client_for, team, po):
    client = client_for(po)

    created = client.post(api("team-webhooks", team.pk), FORM, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["events"] == FORM["events"] and body["created_by"]["id"] == po.pk
    sid = body["id"]

    listed = client.get(api("team-webhooks", team.pk)).json()
    assert [s["id"] for s in listed["results"]] == [sid]
    assert "secret" not in listed["results"][0]

    changed = client.put(
        api("team-webhook", team.pk, sid),
        {**FORM, "kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"},
        content_type="application/json",
    )
    assert changed.status_code == 200 and changed.json()["kind"] == "slack"

    rotated = client.post(api("team-webhook-rotate", team.pk, sid)).json()
    assert rotated["secret"] != body["secret"]

    assert client.delete(api("team-webhook", team.pk, sid)).status_code == 204
    assert not WebhookSubscription.objects.exists()


def test_api_deliveries_test_and_redeliver(client_for, team, po):
    subscription = make(team, po)
    delivery = delivered(subscription)
    client = client_for(po)

    log = client.get(api("team-webhook-deliveries", team.pk, subscription.pk)).json()
    [row] = log["results"]
    assert (row["id"], row["state"], row["last_status"], row["last_duration_ms"]) == (
        delivery.pk, "delivered", 200, 84,
    )  # fmt: skip
    assert row["message_id"] == delivery.message_id

    ping = client.post(api("team-webhook-test", team.pk, subscription.pk))
    assert ping.status_code == 202 and ping.json()["event"] == "ping"

    url = api("team-webhook-redeliver", team.pk, subscription.pk, delivery.pk)
    again = client.post(url)
    assert again.status_code == 202
    assert again.json()["message_id"] == delivery.message_id
    assert again.json()["state"] == "queued"


def test_api_bad_input_is_400_naming_the_field(client_for, team, po):
    client = client_for(po)
    url = api("team-webhooks", team.pk)

    unknown = client.post(
        url, {**FORM, "events": ["plan.exploded"]}, content_type="application/json"
    )
    assert unknown.status_code == 400 and "events" in json.dumps(unknown.json())
    internal = client.post(
        url, {**FORM, "url": "https://169.254.169.254/latest"}, content_type="application/json"
    )
    assert internal.status_code == 400
    assert "internal network" in json.dumps(internal.json())
    assert "url" in json.dumps(internal.json())
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("post", "team-webhooks"),
        ("put", "team-webhook"),
        ("delete", "team-webhook"),
        ("post", "team-webhook-rotate"),
        ("post", "team-webhook-test"),
        ("post", "team-webhook-redeliver"),
    ],
)
def test_api_changes_are_for_the_roles_that_manage_webhooks(
    client_for, team, po, developer, stakeholder, outsider, method, name
):
    subscription = make(team, po)
    delivery = delivered(subscription)
    args = {
        "team-webhooks": (team.pk,),
        "team-webhook-redeliver": (team.pk, subscription.pk, delivery.pk),
    }.get(name, (team.pk, subscription.pk))
    url = api(name, *args)

    def send(client: Client) -> int:
        return getattr(client, method)(url, FORM, content_type="application/json").status_code

    assert send(client_for(developer)) == 403
    assert send(client_for(stakeholder)) == 403
    assert send(client_for(outsider)) == 404
    assert send(Client()) == 401  # no credentials: the API asks for them (WWW-Authenticate)
    subscription.refresh_from_db()
    assert (subscription.name, subscription.secret) == ("Ops", "whsec_hidden0000")
    assert WebhookSubscription.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_api_reads_are_for_members(client_for, team, po, developer, outsider):
    subscription = make(team, po)
    delivered(subscription)
    for url in (
        api("team-webhooks", team.pk),
        api("team-webhook", team.pk, subscription.pk),
        api("team-webhook-deliveries", team.pk, subscription.pk),
    ):
        assert client_for(developer).get(url).status_code == 200
        assert client_for(outsider).get(url).status_code == 404
        assert Client().get(url).status_code == 401
    assert (
        "secret"
        not in client_for(developer).get(api("team-webhook", team.pk, subscription.pk)).json()
    )


def test_api_list_costs_a_fixed_number_of_queries(client_for, team, po, django_assert_num_queries):
    for i in range(10):
        make(team, po, name=f"S{i}")
    client = client_for(po)
    client.get(api("team-webhooks", team.pk))
    # Session, user, membership with team, count, the page with owners.
    with django_assert_num_queries(5):
        client.get(api("team-webhooks", team.pk))


def test_api_a_subscription_pins_its_payload_version(client_for, team, po):
    """New subscriptions get the current version; a change without one keeps it; a version we
    do not send is refused on its field (docs/webhooks.md, "Payload versions")."""
    client = client_for(po)
    created = client.post(api("team-webhooks", team.pk), FORM, content_type="application/json")
    assert created.status_code == 201 and created.json()["payload_version"] == PAYLOAD_VERSION
    sid = created.json()["id"]

    kept = client.put(api("team-webhook", team.pk, sid), FORM, content_type="application/json")
    assert kept.status_code == 200 and kept.json()["payload_version"] == PAYLOAD_VERSION

    unknown = client.put(
        api("team-webhook", team.pk, sid),
        {**FORM, "payload_version": PAYLOAD_VERSION + 1},
        content_type="application/json",
    )
    assert unknown.status_code == 400 and "payload_version" in unknown.json()["errors"]

    ping = client.post(api("team-webhook-test", team.pk, sid))
    assert ping.json()["payload"]["version"] == PAYLOAD_VERSION


def test_the_database_refuses_a_payload_version_we_do_not_send(team, po):
    subscription = make(team, po)
    subscription.payload_version = PAYLOAD_VERSION + 1
    with pytest.raises(IntegrityError), transaction.atomic():
        subscription.save(update_fields=["payload_version"])
