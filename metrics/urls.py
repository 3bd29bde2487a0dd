"""Browser URLs of the metrics app (mounted at the site root: plan pages live under /pilots/)."""

from metrics.views import alerts, checks, dashboard, ingest

app_name = "metrics"

urlpatterns = [
    *ingest.urlpatterns,
    *checks.urlpatterns,
    *alerts.urlpatterns,
    *dashboard.urlpatterns,
]
