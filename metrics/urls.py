"""Browser URLs of the metrics app (mounted at the site root): a plan's pages under
``plans/<id>/``, the team's webhook subscriptions under ``teams/<id>/``."""

from metrics.views import alerts, checks, ingest, monitoring, webhooks

app_name = "metrics"

urlpatterns = [
    *ingest.urlpatterns,
    *checks.urlpatterns,
    *alerts.urlpatterns,
    *monitoring.urlpatterns,
    *webhooks.urlpatterns,
]
