from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "decisions"

    def ready(self) -> None:
        from decisions.guards import post_pilot_review_completed
        from decisions.services.review import post_pilot_review_plan_panel
        from pilots.extensions import lifecycle_guard_register, plan_panel_register

        lifecycle_guard_register("close", post_pilot_review_completed)
        plan_panel_register(post_pilot_review_plan_panel)
