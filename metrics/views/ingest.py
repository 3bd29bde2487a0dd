"""TODO: ingest views."""

from __future__ import annotations

urlpatterns: list = []
