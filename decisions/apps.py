from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "decisions"

    def ready(self) -> None:
        from decisions.guards import findings_recorded
        from decisions.services.rollback import rollback_ended_guard, rollback_plan_panel
        from pilots.extensions import lifecycle_guard_register, plan_panel_register

        lifecycle_guard_register("close", findings_recorded)
        # A Roll back decision closes only after its rollback ended; a rollback in progress
        # shows on the plan page.
        lifecycle_guard_register("close", rollback_ended_guard)
        plan_panel_register(rollback_plan_panel)
