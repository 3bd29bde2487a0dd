"""Criteria and triggers now point at ``catalogue.MetricDefinition``: the same table, so
state only."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalogue', '0001_initial'),
        ('pilots', '0007_planguest'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='exitcriterion',
                    name='denominator',
                    field=models.ForeignKey(blank=True, help_text='For a rate or ratio: what it is per (e.g. sessions).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='catalogue.metricdefinition'),
                ),
                migrations.AlterField(
                    model_name='exitcriterion',
                    name='metric',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='exit_criteria', to='catalogue.metricdefinition'),
                ),
                migrations.AlterField(
                    model_name='exitcriterionevent',
                    name='denominator',
                    field=models.ForeignKey(blank=True, db_constraint=False, help_text='For a rate or ratio: what it is per (e.g. sessions).', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='catalogue.metricdefinition'),
                ),
                migrations.AlterField(
                    model_name='exitcriterionevent',
                    name='metric',
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='catalogue.metricdefinition'),
                ),
                migrations.AlterField(
                    model_name='rollbacktrigger',
                    name='metric',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='rollback_triggers', to='catalogue.metricdefinition'),
                ),
                migrations.AlterField(
                    model_name='rollbacktriggerevent',
                    name='metric',
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', related_query_name='+', to='catalogue.metricdefinition'),
                ),
            ],
            database_operations=[],
        ),
    ]
