"""Login throttling and security events (docs/operations.md, "Security settings").

- Log-ins (``/login/`` and ``/admin/login/``): django-axes counts failures per account and per
  address; after ``AXES_FAILURE_LIMIT`` either is locked for ``AXES_COOLOFF_TIME``, answered by
  ``lockout_response`` (429, ``Retry-After``, a page that says so). A successful log-in resets
  the account's count.
- API keys: failures per address are counted in Redis; after ``API_KEY_FAILURE_LIMIT`` within
  ``API_KEY_FAILURE_WINDOW`` seconds the address gets 429 with ``Retry-After`` until the window
  ends. When Redis cannot be reached the limit is not applied (ingestion keeps working).
- API requests (every credential: session, team key, personal token): counted in Redis per
  credential (``API_RATE_PER_CREDENTIAL``) and per address (``API_RATE_PER_ADDRESS``) within
  ``API_RATE_WINDOW`` seconds, and sample pushes per credential within a short window
  (``API_RATE_INGEST`` per ``API_RATE_INGEST_WINDOW`` seconds: bursts are refused sooner). Beyond
  a limit: 429 with ``Retry-After`` and a JSON body (DRF's ``Throttled``). The counters live in
  Redis, so every web process of every machine shares them (``core.ratelimit``); when Redis
  cannot be reached the limits are not applied.
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
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiKey, PersonalToken
from core.ratelimit import Limit, digest, rate_limits_hit
from core.redis_client import redis_client

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


def api_key_blocked_for(address: str) -> int:
    """Seconds ``address`` must still wait before a key is checked again (0: not blocked)."""
    key = _failures_key(address)
    try:
        client = redis_client()
        failures = int(client.get(key) or 0)
        return max(1, client.ttl(key)) if failures >= settings.API_KEY_FAILURE_LIMIT else 0
    except redis.RedisError:
        security_log.warning("API key throttle: Redis unreachable, not applied", exc_info=True)
        return 0


def api_key_failure_record(address: str, reason: str) -> None:
    """Count one failed API key from ``address`` and log it as a security event."""
    security_log.warning("API key refused: address=%s reason=%s", address, reason)
    key = _failures_key(address)
    try:
        with redis_client().pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, settings.API_KEY_FAILURE_WINDOW, nx=True)
            failures, _ = pipe.execute()
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
        client = redis_client()
        keys = list(client.scan_iter(_failures_key("*")))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass


# --- API request rates ---------------------------------------------------------------------------


def credential_label(request: Request) -> str | None:
    """Who a request counts against: ``key:<id>``, ``token:<id>``, ``user:<id>`` (a session), or
    None for an anonymous request (counted per address only)."""
    auth = request.auth
    if isinstance(auth, ApiKey):
        # Rotated keys share their principal: the machine, not each of its keys, is limited.
        return f"machine:{auth.principal_id}"
    if isinstance(auth, PersonalToken):
        return f"token:{auth.pk}"
    if request.user is not None and request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return None


class _RedisThrottle(BaseThrottle):
    """A DRF throttle over ``core.ratelimit``'s Redis counters (shared by every process)."""

    def limits(self, request: Request) -> list[Limit]:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        refusal = rate_limits_hit(self.limits(request))
        self._wait = refusal.retry_after if refusal is not None else None
        if refusal is not None:
            security_log.info(
                "API rate limit: %s address=%s retry in %s s",
                refusal.limit.key.split(":")[-2],
                client_address(request._request),
                refusal.retry_after,
            )
        return refusal is None

    def wait(self) -> float | None:
        return self._wait


class ApiRateThrottle(_RedisThrottle):
    """Every API request: per credential, then per address."""

    def limits(self, request: Request) -> list[Limit]:
        prefix, window = settings.API_RATE_PREFIX, settings.API_RATE_WINDOW
        limits = []
        label = credential_label(request)
        if label is not None:
            limits.append(
                Limit(f"{prefix}:credential:{label}", settings.API_RATE_PER_CREDENTIAL, window)
            )
        address = digest(client_address(request._request))
        limits.append(Limit(f"{prefix}:address:{address}", settings.API_RATE_PER_ADDRESS, window))
        return limits


class IngestRateThrottle(ApiRateThrottle):
    """Sample pushes: every API request's limits, then a stricter limit per credential in a
    short window, against bursts; all counted in one round trip to Redis (the ingestion views
    take this throttle instead of the default one)."""

    def limits(self, request: Request) -> list[Limit]:
        label = credential_label(request) or f"address:{digest(client_address(request._request))}"
        return [
            *super().limits(request),
            Limit(
                f"{settings.API_RATE_PREFIX}:ingest:{label}",
                settings.API_RATE_INGEST,
                settings.API_RATE_INGEST_WINDOW,
            ),
        ]
