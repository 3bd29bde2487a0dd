"""The backlog under /api/v1/ (namespace "api")."""

from backlog.api import feedback, items

urlpatterns = [*items.urlpatterns, *feedback.urlpatterns]
