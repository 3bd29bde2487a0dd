"""The team's single alert webhook becomes a webhook subscription (accounts.WebhookSubscription,
docs/webhooks.md): same address, same secret, subscribed to the three events it used to get
(trigger fired, acknowledged, resolved). Deliveries still owed are carried over in the new
payload shape; the people who manage the team's webhooks are told, under the bell."""

import datetime as dt
import uuid

from django.db import migrations

EVENTS = ["trigger.fired", "trigger.acknowledged", "trigger.resolved"]
# Perm.WEBHOOK_MANAGE when this migration was written.
MANAGERS = ["product_owner", "scrum_master", "devops"]
MESSAGE = (
    "Your team's alert webhook is now a webhook subscription. Its deliveries now carry the "
    "Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature) and a "
    "versioned payload {type, version, timestamp, data}; Pilotplan-Signature is still sent "
    "for one release. Check your receiver."
)


def _iso(moment):
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def move(apps, schema_editor):
    Endpoint = apps.get_model("metrics", "WebhookEndpoint")
    OldDelivery = apps.get_model("metrics", "WebhookDelivery")
    Subscription = apps.get_model("accounts", "WebhookSubscription")
    Delivery = apps.get_model("accounts", "WebhookDelivery")
    Membership = apps.get_model("accounts", "Membership")
    Notification = apps.get_model("accounts", "Notification")
    now = dt.datetime.now(dt.UTC)
    for endpoint in Endpoint.objects.select_related("team").order_by("pk"):
        subscription = Subscription.objects.create(
            team_id=endpoint.team_id,
            name="Alert webhook",
            kind="standard",
            url=endpoint.url,
            secret=endpoint.secret,
            events=EVENTS,
            is_active=endpoint.is_active,
            created_at=endpoint.created_at,
        )
        owed = OldDelivery.objects.filter(
            endpoint=endpoint, delivered_at__isnull=True, attempts__lt=8
        ).order_by("created_at")
        Delivery.objects.bulk_create(
            [
                Delivery(
                    subscription=subscription,
                    message_id=f"msg_{uuid.uuid4().hex}",
                    event=old.event,
                    payload={
                        "type": old.event,
                        "version": 1,
                        "timestamp": _iso(old.created_at),
                        "data": {k: v for k, v in old.payload.items() if k != "event"},
                    },
                    created_at=old.created_at,
                    next_attempt_at=now,
                )
                for old in owed
            ]
        )
        managers = Membership.objects.filter(
            team_id=endpoint.team_id, role__in=MANAGERS
        ).select_related("user")
        Notification.objects.bulk_create(
            [
                Notification(
                    user=m.user,
                    kind="webhook_moved",
                    message=MESSAGE[:300],
                    url=f"/teams/{endpoint.team_id}/webhooks/{subscription.pk}",
                    email_state="pending" if m.user.email_notifications else "none",
                )
                for m in managers
            ]
        )


def back(apps, schema_editor):
    Endpoint = apps.get_model("metrics", "WebhookEndpoint")
    Subscription = apps.get_model("accounts", "WebhookSubscription")
    seen = set()
    for subscription in Subscription.objects.filter(kind="standard").order_by("pk"):
        if subscription.team_id in seen:
            continue
        seen.add(subscription.team_id)
        Endpoint.objects.create(
            team_id=subscription.team_id,
            url=subscription.url[:200],
            secret=subscription.secret[:64],
            is_active=subscription.is_active,
            created_at=subscription.created_at,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0015_ingest_fast_path"),
        ("accounts", "0009_webhook_subscriptions"),
    ]

    operations = [migrations.RunPython(move, back)]
