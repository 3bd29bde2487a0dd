from django.db import migrations

# A frozen copy: migrations must not change when metrics/catalogue.py grows later.
STANDARD_METRICS = [
    ("p1_defects", "P1 defects", "count", "count", "lower", "Critical defects found in the pilot."),
    ("p2_defects", "P2 defects", "count", "count", "lower", "Major defects found in the pilot."),
    ("p3_defects", "P3 defects", "count", "count", "lower", "Minor defects found in the pilot."),
    ("sessions", "Sessions", "count", "count", "higher", "User sessions in the pilot cohort."),
    ("errors", "Errors", "count", "count", "lower", "Failed requests."),
    ("requests", "Requests", "count", "count", "higher", "All requests."),
    ("error_rate", "Error rate", "%", "gauge", "lower", "Errors as a share of requests."),
    ("p95_latency", "p95 latency", "ms", "gauge", "lower", "95th percentile response time per minute."),
    ("csat", "CSAT", "score", "score", "higher", "Customer satisfaction, 1 to 5."),
    ("nps", "NPS", "score", "score", "higher", "Likelihood to recommend, 0 to 10 per answer."),
]


def seed(apps, schema_editor):
    MetricDefinition = apps.get_model("metrics", "MetricDefinition")
    for key, name, unit, kind, direction, description in STANDARD_METRICS:
        MetricDefinition.objects.update_or_create(
            team=None,
            key=key,
            defaults={"name": name, "unit": unit, "kind": kind, "direction": direction,
                      "description": description},
        )


class Migration(migrations.Migration):
    dependencies = [("metrics", "0002_metric_definition")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
