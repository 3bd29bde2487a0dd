"""MetricDefinition moves here from ``metrics``: state only, the table
(``metrics_metricdefinition``), its rows and constraints stay as they are."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('metrics', '0004_samples_checks_triggers'),
        ('accounts', '0005_apikey_digest'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='MetricDefinition',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.SlugField(help_text='Stable identifier used by integrations.')),
                        ('name', models.CharField(max_length=100)),
                        ('unit', models.CharField(blank=True, help_text='e.g. ms, %, count, score', max_length=20)),
                        ('kind', models.CharField(choices=[('gauge', 'Gauge (a value per minute, e.g. p95 latency)'), ('count', 'Count (events, e.g. defects, sessions, errors)'), ('score', 'Score (a rating, e.g. CSAT 1–5, NPS 0–10)')], max_length=10)),
                        ('direction', models.CharField(choices=[('lower', 'Lower is better'), ('higher', 'Higher is better')], max_length=10)),
                        ('description', models.TextField(blank=True)),
                        ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='metrics', to='accounts.team')),
                    ],
                    options={
                        'db_table': 'metrics_metricdefinition',
                        'ordering': ['name'],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('team__isnull', True)), fields=('key',), name='metrics_metricdefinition_builtin_key_unique'), models.UniqueConstraint(fields=('team', 'key'), name='metrics_metricdefinition_team_key_unique'), models.CheckConstraint(condition=models.Q(('kind__in', ['gauge', 'count', 'score'])), name='metrics_metricdefinition_kind_valid'), models.CheckConstraint(condition=models.Q(('direction__in', ['lower', 'higher'])), name='metrics_metricdefinition_direction_valid')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
