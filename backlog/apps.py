from django.apps import AppConfig


class BacklogConfig(AppConfig):
    name = "backlog"

    def ready(self) -> None:
        from backlog.panels import cohort_fit_plan_flags, cohort_fit_plan_panel
        from backlog.participants.fit import cohort_changed_receiver
        from backlog.selectors import references_url, scope_item_statuses
        from pilots.extensions import ScopeBacklog, plan_panel_register, scope_backlog_register
        from pilots.signals import cohort_changed

        # The plan page shows the cohort's representativeness; a change of the cohort section
        # (segments, practical bound) recomputes it.
        plan_panel_register(cohort_fit_plan_panel, flags=cohort_fit_plan_flags)
        cohort_changed.connect(cohort_changed_receiver, dispatch_uid="backlog.cohort_fit")

        # The plan's scope picks backlog items by reference and shows their status.
        scope_backlog_register(
            ScopeBacklog(statuses=scope_item_statuses, autocomplete_url=references_url)
        )
