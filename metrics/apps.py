from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"

    def ready(self) -> None:
        from core import arrays
        from metrics.alerts import alerts_plan_flags, alerts_plan_panel
        from metrics.failures import failures_plan_flags, failures_plan_panel
        from pilots.extensions import plan_panel_register

        plan_panel_register(alerts_plan_panel, flags=alerts_plan_flags)
        plan_panel_register(failures_plan_panel, flags=failures_plan_flags)
        # Before any connection opens: ingestion sends its rollups' columns as binary arrays.
        arrays.register()
