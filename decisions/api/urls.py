"""Decisions under /api/v1/ (namespace "api"): the decision record and its comments."""

from decisions.api import decisions

urlpatterns = [*decisions.urlpatterns]
