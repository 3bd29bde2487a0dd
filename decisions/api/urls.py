"""Decisions under /api/v1/ (namespace "api"): the decision record and its comments."""

from decisions.api import decisions, feedback

urlpatterns = [*decisions.urlpatterns, *feedback.urlpatterns]
