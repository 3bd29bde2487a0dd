"""Samples and rollups point at ``catalogue.MetricDefinition``, and ``metrics`` forgets the model:
state only. The content type row (and the admin permissions hanging off it) follows the model."""

import django.db.models.deletion
from django.db import migrations, models


def content_type_to_catalogue(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="metrics", model="metricdefinition").update(
        app_label="catalogue"
    )


def content_type_to_metrics(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="catalogue", model="metricdefinition").update(
        app_label="metrics"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('catalogue', '0001_initial'),
        ('metrics', '0004_samples_checks_triggers'),
        ('pilots', '0008_metric_catalogue_app'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='sample',
                    name='metric',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='samples', to='catalogue.metricdefinition'),
                ),
                migrations.AlterField(
                    model_name='minuterollup',
                    name='metric',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalogue.metricdefinition'),
                ),
                migrations.AlterField(
                    model_name='hourrollup',
                    name='metric',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalogue.metricdefinition'),
                ),
                migrations.DeleteModel(
                    name='MetricDefinition',
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_catalogue, content_type_to_metrics),
    ]
