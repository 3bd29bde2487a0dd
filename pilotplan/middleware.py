"""Response headers every page gets besides Django's own security headers (docs/operations.md,
"Security settings"): ``Permissions-Policy`` everywhere, and ``Cache-Control: no-store`` on
pages for a logged-in person and on every API answer, so no shared or back-button cache keeps
them. Static files never reach this middleware (WhiteNoise answers them first)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        private = request.path.startswith("/api/") or (user is not None and user.is_authenticated)
        if private and "no-store" not in response.headers.get("Cache-Control", ""):
            add_never_cache_headers(response)
        return response
