"""Metrics under /api/v1/ (namespace "api"): samples and series, check runs, alerts, webhooks."""

from metrics.api import alerts, checks, ingest, samples, series, triggers, webhooks

urlpatterns = [
    *ingest.urlpatterns,
    *checks.urlpatterns,
    *alerts.urlpatterns,
    *webhooks.urlpatterns,
    *triggers.urlpatterns,
    *samples.urlpatterns,
    *series.urlpatterns,
]
