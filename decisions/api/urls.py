"""Decisions under /api/v1/ (namespace "api"): the decision record and its comments, cohort
feedback, the rollback checklist and the post-pilot review."""

from decisions.api import decisions, feedback, review, rollback

urlpatterns = [
    *decisions.urlpatterns,
    *feedback.urlpatterns,
    *rollback.urlpatterns,
    *review.urlpatterns,
]
