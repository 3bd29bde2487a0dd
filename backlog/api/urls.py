"""The backlog under /api/v1/ (namespace "api")."""

from backlog.api import items

urlpatterns = [*items.urlpatterns]
