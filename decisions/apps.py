from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "decisions"

    def ready(self) -> None:
        from backlog.signals import defects_changed
        from decisions.defects import on_defects_changed
        from decisions.guards import post_pilot_review_completed
        from decisions.panels import decision_plan_panel
        from decisions.services.review import post_pilot_review_plan_panel
        from decisions.services.rollback import (
            rollback_ended_guard,
            rollback_plan_flags,
            rollback_plan_panel,
        )
        from decisions.views_cockpit import cockpit_home
        from pilots.extensions import (
            lifecycle_guard_register,
            plan_home_register,
            plan_panel_register,
        )

        # Closing needs the post-pilot review completed, and a Roll back decision's rollback
        # ended.
        lifecycle_guard_register("close", post_pilot_review_completed)
        lifecycle_guard_register("close", rollback_ended_guard)
        # The plan page links the decision page (and shows the recorded decision), a rollback
        # in progress and the post-pilot review.
        plan_panel_register(decision_plan_panel)
        plan_panel_register(rollback_plan_panel, flags=rollback_plan_flags)
        plan_panel_register(post_pilot_review_plan_panel)
        # A Running or Evaluating plan opens on its run cockpit.
        plan_home_register(cockpit_home)
        # Defects logged in the backlog count towards the running pilot's defect metrics.
        defects_changed.connect(on_defects_changed, dispatch_uid="decisions.defects")
