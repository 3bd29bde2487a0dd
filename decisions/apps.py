from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "decisions"

    def ready(self) -> None:
        from decisions.guards import findings_recorded
        from pilots.extensions import lifecycle_guard_register

        lifecycle_guard_register("close", findings_recorded)
