import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import F


def owner_from_creator(apps, schema_editor):
    # Plans made before owners existed are owned by whoever created them.
    PilotPlan = apps.get_model("pilots", "PilotPlan")
    PilotPlan.objects.filter(owner__isnull=True).update(owner=F("created_by"))


class Migration(migrations.Migration):
    dependencies = [
        ("pilots", "0002_plan_sections"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(owner_from_creator, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="pilotplan",
            name="owner",
            field=models.ForeignKey(
                help_text="The Product Owner who owns the plan.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="owned_plans",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
