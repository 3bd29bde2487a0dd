"""Browser URLs of the metrics app (mounted at the site root): a plan's pages under
``plans/<id>/``, the team's alert webhook under ``teams/<id>/``."""

from metrics.views import alerts, checks, ingest, monitoring

app_name = "metrics"

urlpatterns = [
    *ingest.urlpatterns,
    *checks.urlpatterns,
    *alerts.urlpatterns,
    *monitoring.urlpatterns,
]
