"""The backlog under /api/v1/ (namespace "api")."""

from backlog.api import feedback, items, participants

urlpatterns = [*items.urlpatterns, *participants.urlpatterns, *feedback.urlpatterns]
