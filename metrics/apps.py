from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"

    def ready(self) -> None:
        from metrics.alerts import alerts_plan_panel
        from metrics.failures import failures_plan_panel
        from pilots.extensions import plan_panel_register

        plan_panel_register(alerts_plan_panel)
        plan_panel_register(failures_plan_panel)
