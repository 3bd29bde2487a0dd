"""Metrics under /api/v1/ (namespace "api"): samples, check runs, alerts, webhooks."""

from metrics.api import alerts, checks, ingest, samples, triggers, webhooks

urlpatterns = [
    *ingest.urlpatterns,
    *checks.urlpatterns,
    *alerts.urlpatterns,
    *webhooks.urlpatterns,
    *triggers.urlpatterns,
    *samples.urlpatterns,
]
