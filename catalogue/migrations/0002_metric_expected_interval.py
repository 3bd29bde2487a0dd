"""How often each metric's samples are expected (a trigger on older data is "stale")."""

from django.db import migrations, models

# Built-in metrics: per-minute gauges and request counts every 5 minutes, defects and scores
# once a day (teams report them daily; the simulator sends them more often).
EXPECTED_MINUTES = {
    "p95_latency": 5,
    "error_rate": 5,
    "sessions": 5,
    "errors": 5,
    "requests": 5,
    "p1_defects": 1440,
    "p2_defects": 1440,
    "p3_defects": 1440,
    "csat": 1440,
    "nps": 1440,
}
BY_KIND = {"gauge": 5, "count": 60, "score": 1440}


def set_intervals(apps, schema_editor):
    MetricDefinition = apps.get_model("catalogue", "MetricDefinition")
    for kind, minutes in BY_KIND.items():
        MetricDefinition.objects.filter(kind=kind).update(expected_interval_minutes=minutes)
    for key, minutes in EXPECTED_MINUTES.items():
        MetricDefinition.objects.filter(team__isnull=True, key=key).update(
            expected_interval_minutes=minutes
        )


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="metricdefinition",
            name="expected_interval_minutes",
            field=models.PositiveIntegerField(
                default=60,
                help_text="How often samples arrive: 5 for a per-minute gauge, 1440 for a daily score.",
                verbose_name="expected interval (minutes)",
            ),
        ),
        migrations.RunPython(set_intervals, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="metricdefinition",
            constraint=models.CheckConstraint(
                condition=models.Q(expected_interval_minutes__gte=1)
                & models.Q(expected_interval_minutes__lte=10080),
                name="catalogue_metricdefinition_expected_interval_range",
                violation_error_message="The expected interval is between 1 minute and 7 days.",
            ),
        ),
    ]
