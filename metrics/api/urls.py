"""Metrics under /api/v1/ (namespace "api"): samples, check runs, trigger episodes."""

from metrics.api import alerts, checks, ingest

urlpatterns = [*ingest.urlpatterns, *checks.urlpatterns, *alerts.urlpatterns]
