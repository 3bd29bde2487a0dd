"""Login throttling and security events (docs/operations.md, "Security settings").

- Log-ins (``/login/`` and ``/admin/login/``): django-axes counts failures per account and per
  address; after ``AXES_FAILURE_LIMIT`` either is locked for ``AXES_COOLOFF_TIME``, answered by
  ``lockout_response`` (429, ``Retry-After``, a page that says so). A successful log-in resets
  the account's count.
- API keys: failures per address are counted in Redis; after ``API_KEY_FAILURE_LIMIT`` within
  ``API_KEY_FAILURE_WINDOW`` seconds the address gets 429 with ``Retry-After`` until the window
  ends. When Redis cannot be reached the limit is not applied (ingestion keeps working).
- Every failed attempt and every lockout is logged to the ``pilotplan.security`` logger.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

security_log = logging.getLogger("pilotplan.security")


def _failures_key(address: str) -> str:
    """The Redis key counting refused keys from ``address`` (``API_KEY_FAILURES_PREFIX`` lets
    several deployments, or parallel test workers, share one Redis)."""
    return f"{settings.API_KEY_FAILURES_PREFIX}:{address}"


def client_address(request: HttpRequest) -> str:
    """The connecting address (what axes counts too)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


# --- log-ins -------------------------------------------------------------------------------------


def lockout_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """What a locked account or address sees instead of the log-in page (axes calls it)."""
    seconds = lockout_seconds()
    response = render(
        request,
        "accounts/locked_out.html",
        {"minutes": max(1, round(seconds / 60)), "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


@receiver(user_login_failed)
def _log_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any
) -> None:
    security_log.warning(
        "login failed: account=%r address=%s path=%s",
        str(credentials.get("username", ""))[:100],
        client_address(request) if request is not None else "unknown",
        getattr(request, "path", ""),
    )


@receiver(user_locked_out)
def _log_locked_out(
    sender: Any, request: Any, username: str | None, ip_address: str, **_: Any
) -> None:
    security_log.warning(
        "login locked out: account=%r address=%s for %s s",
        (username or "")[:100],
        ip_address,
        lockout_seconds(),
    )


# --- API keys ------------------------------------------------------------------------------------


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def api_key_blocked_for(address: str) -> int:
    """Seconds ``address`` must still wait before a key is checked again (0: not blocked)."""
    key = _failures_key(address)
    try:
        client = _redis()
        try:
            failures = int(client.get(key) or 0)
            return max(1, client.ttl(key)) if failures >= settings.API_KEY_FAILURE_LIMIT else 0
        finally:
            client.close()
    except redis.RedisError:
        security_log.warning("API key throttle: Redis unreachable, not applied", exc_info=True)
        return 0


def api_key_failure_record(address: str, reason: str) -> None:
    """Count one failed API key from ``address`` and log it as a security event."""
    security_log.warning("API key refused: address=%s reason=%s", address, reason)
    key = _failures_key(address)
    try:
        client = _redis()
        try:
            with client.pipeline() as pipe:
                pipe.incr(key)
                pipe.expire(key, settings.API_KEY_FAILURE_WINDOW, nx=True)
                failures, _ = pipe.execute()
        finally:
            client.close()
    except redis.RedisError:
        security_log.warning("API key throttle: Redis unreachable, not applied", exc_info=True)
        return
    if failures == settings.API_KEY_FAILURE_LIMIT:
        security_log.warning(
            "API key attempts blocked: address=%s for %s s",
            address,
            settings.API_KEY_FAILURE_WINDOW,
        )


def api_key_failures_reset() -> None:
    """Forget every address's count (tests; or an operator after an incident)."""
    try:
        client = _redis()
        try:
            keys = list(client.scan_iter(_failures_key("*")))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    except redis.RedisError:
        pass
