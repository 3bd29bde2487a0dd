from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "decisions"

    def ready(self) -> None:
        from decisions.guards import findings_recorded
        from decisions.panels import decision_plan_panel
        from pilots.extensions import lifecycle_guard_register, plan_panel_register

        lifecycle_guard_register("close", findings_recorded)
        plan_panel_register(decision_plan_panel)
