"""The alert webhook's tables, moved to accounts.WebhookSubscription / WebhookDelivery by 0015."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("metrics", "0016_webhook_subscriptions_moved")]

    operations = [
        migrations.DeleteModel(name="WebhookDelivery"),
        migrations.DeleteModel(name="WebhookEndpoint"),
    ]
