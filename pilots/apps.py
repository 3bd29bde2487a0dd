from django.apps import AppConfig


class PilotsConfig(AppConfig):
    name = "pilots"

    def ready(self) -> None:
        # Team API keys may be restricted to named plans; accounts (a lower layer) asks this
        # app which plans a team has (accounts.api_keys.plan_source_register).
        from accounts.api_keys import plan_source_register
        from pilots.selectors import team_plan_titles

        plan_source_register(team_plan_titles)
