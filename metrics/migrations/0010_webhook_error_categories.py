"""Delivery errors recorded before issue #10 held the raw exception text (which told an attacker
which internal ports answer); rewrite them as the categories metrics/webhooks.py now records."""

from django.db import migrations


def _category(error: str, status: int | None) -> str:
    text = error.lower()
    if status is not None:
        return f"HTTP {status}"
    if "refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return "timeout"
    if "ssl" in text or "certificate" in text or "tls" in text:
        return "TLS error"
    if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
        return "host not found"
    return "connection failed"


def categorise(apps, schema_editor):
    WebhookDelivery = apps.get_model("metrics", "WebhookDelivery")
    for delivery in WebhookDelivery.objects.exclude(last_error="").iterator():
        category = _category(delivery.last_error, delivery.last_status)
        if category != delivery.last_error:
            delivery.last_error = category
            delivery.save(update_fields=["last_error"])


class Migration(migrations.Migration):
    dependencies = [("metrics", "0007_signal_states")]

    operations = [migrations.RunPython(categorise, migrations.RunPython.noop)]
