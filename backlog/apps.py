from django.apps import AppConfig


class BacklogConfig(AppConfig):
    name = "backlog"

    def ready(self) -> None:
        from backlog.selectors import references_url, scope_item_statuses
        from pilots.extensions import ScopeBacklog, scope_backlog_register

        # The plan's scope picks backlog items by reference and shows their status.
        scope_backlog_register(
            ScopeBacklog(statuses=scope_item_statuses, autocomplete_url=references_url)
        )
