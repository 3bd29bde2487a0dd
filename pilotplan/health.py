"""``/healthz``: is this web process able to serve? Used by load balancers and compose."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from metrics.selectors import heartbeat_last

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # any failure means "down"; the reason goes to the log
        logger.exception("healthz: database check failed")
        return False


def _broker_ok() -> bool:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        logger.warning("healthz: broker check failed", exc_info=True)
        return False


def _scheduler_status(*, database_ok: bool, age: float | None) -> str:
    if not database_ok:
        return "unknown"
    if age is None:
        return "never"
    return "stale" if age > settings.HEALTHZ_HEARTBEAT_MAX_AGE else "ok"


@never_cache
@require_http_methods(["GET", "HEAD"])
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, else 503; always says which is which.

    The scheduler's heartbeat is reported (age in seconds, ``stale`` past
    ``HEALTHZ_HEARTBEAT_MAX_AGE``) but does not turn the answer into 503: every web process behind a
    load balancer answers this, and a stopped beat must raise an alarm, not take the whole site
    out of rotation.
    """
    database = _database_ok()
    broker = _broker_ok()
    last = heartbeat_last() if database else None
    age = round((timezone.now() - last).total_seconds(), 1) if last else None
    scheduler = {
        "last_heartbeat": last.isoformat() if last else None,
        "age_seconds": age,
        "status": _scheduler_status(database_ok=database, age=age),
    }
    healthy = database and broker
    body = {
        "status": "ok" if healthy else "down",
        "database": "ok" if database else "down",
        "broker": "ok" if broker else "down",
        "scheduler": scheduler,
    }
    return JsonResponse(body, status=200 if healthy else 503)
