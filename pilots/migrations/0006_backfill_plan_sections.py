from django.db import migrations

SECTION_KEYS = [
    "overview", "scope", "cohort", "environment", "entry_criteria", "exit_criteria",
    "monitoring", "rollback_triggers", "rollback_plan", "timeline", "ownership",
    "change_control", "risks",
]  # fmt: skip
SINGLETONS = ["Cohort", "EnvironmentAndData", "MonitoringAndSupport", "RollbackPlan"]


def backfill(apps, schema_editor):
    """Plans made before sections existed get every section, as plan_create makes them."""
    PilotPlan = apps.get_model("pilots", "PilotPlan")
    PlanSection = apps.get_model("pilots", "PlanSection")
    for name in SINGLETONS:
        model = apps.get_model("pilots", name)
        missing = PilotPlan.objects.exclude(pk__in=model.objects.values("plan_id"))
        model.objects.bulk_create([model(plan_id=pk) for pk in missing.values_list("pk", flat=True)])
    have = set(PlanSection.objects.values_list("plan_id", "key"))
    PlanSection.objects.bulk_create(
        [
            PlanSection(plan_id=pk, key=key)
            for pk in PilotPlan.objects.values_list("pk", flat=True)
            for key in SECTION_KEYS
            if (pk, key) not in have
        ]
    )


class Migration(migrations.Migration):
    dependencies = [("pilots", "0005_constraints_refuse_null")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
