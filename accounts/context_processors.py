"""Template context every page needs: the bell's unread count (one query, logged-in users only)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.models import Notification


def notifications(request: HttpRequest) -> dict[str, Any]:
    """``unread_notifications``: counted lazily, so only pages that show the bell (full pages
    extending base.html, not HTMX partials) run the query, and only once per render."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "unread_notifications": SimpleLazyObject(
            lambda: Notification.objects.filter(user=user, read_at__isnull=True).count()
        )
    }
