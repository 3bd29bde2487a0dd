"""Metrics under /api/v1/ (namespace "api"): samples, check runs, alerts."""

from metrics.api import alerts, checks, ingest, samples, triggers

urlpatterns = [
    *ingest.urlpatterns,
    *checks.urlpatterns,
    *alerts.urlpatterns,
    *triggers.urlpatterns,
    *samples.urlpatterns,
]
