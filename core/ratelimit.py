"""Fixed-window rate limits counted in Redis, several at once, in one round trip.

``rate_limits_hit`` counts one attempt against each limit in order and stops at the first one
exceeded, so a client refused by a narrow limit (one address) does not use up a wider one (every
address of a link): one noisy address cannot lock everybody else out. Each window starts at its
first attempt and lasts ``window`` seconds (``EXPIRE`` on the first ``INCR``); a refusal says how
many seconds are left (``Retry-After``).

When Redis cannot be reached the limits are not applied and the failure is logged, like the API
key throttle (``accounts.throttle``): a request never fails because the counter is away.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from django.conf import settings

from core.redis_client import redis_client

log = logging.getLogger(__name__)

# KEYS: the counters; ARGV: limit and window per key, in the same order. Returns
# {index of the first exceeded limit (1-based; 0: none), seconds left in its window}.
_SCRIPT = """
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 * i - 1])
    local window = tonumber(ARGV[2 * i])
    local count = redis.call('INCR', key)
    if count == 1 then redis.call('EXPIRE', key, window) end
    if count > limit then
        local ttl = redis.call('TTL', key)
        if ttl < 0 then redis.call('EXPIRE', key, window); ttl = window end
        return {i, ttl}
    end
end
return {0, 0}
"""


@dataclass(frozen=True)
class Limit:
    key: str  # the Redis key counting attempts
    limit: int  # attempts allowed per window
    window: int  # seconds


@dataclass(frozen=True)
class Refusal:
    limit: Limit
    retry_after: int  # seconds until the window ends


@functools.cache
def _script(url: str):  # type: ignore[no-untyped-def]
    # The process's client (core.redis_client): a burst must not open a connection per hit.
    return redis_client(url).register_script(_SCRIPT)


def rate_limits_hit(limits: Sequence[Limit]) -> Refusal | None:
    """Count one attempt against ``limits`` in order; the first one exceeded, or None."""
    if not limits:
        return None
    args: list[int] = []
    for limit in limits:
        args += [limit.limit, limit.window]
    try:
        index, ttl = _script(settings.REDIS_URL)(keys=[limit.key for limit in limits], args=args)
    except redis.RedisError:
        log.warning("Rate limit: Redis unreachable, not applied", exc_info=True)
        return None
    if not index:
        return None
    return Refusal(limits[int(index) - 1], max(1, int(ttl)))


def rate_limits_reset(prefix: str) -> None:
    """Forget every counter under ``prefix`` (tests; an operator after an incident)."""
    try:
        client = redis_client()
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass


@dataclass(frozen=True)
class LinkRefusal:
    retry_after: int
    per_address: bool  # refused by the one address's limit (else: the whole link's)

    def words(self, what: str) -> str:
        """ "Too many answers from your network in a short time. Please try again in about 5
        minutes." for ``what`` = "answers"."""
        minutes = max(1, round(self.retry_after / 60))
        who = "from your network" if self.per_address else "through this link"
        return (
            f"Too many {what} {who} in a short time. Please try again in about "
            f"{minutes} minute{'s' if minutes != 1 else ''}."
        )


def digest(text: str) -> str:
    # Counters are keyed by a hash: neither tokens nor addresses are written to Redis as such.
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def public_link_hit(
    *, prefix: str, token: str, address: str, per_address: int, per_link: int, window: int
) -> LinkRefusal | None:
    """Count one use of a public link (feedback, enrolment) from ``address``: at most
    ``per_address`` per address per link, and ``per_link`` from all addresses, per ``window``
    seconds. The address is counted first, so one noisy sender cannot use up everyone's link."""
    link = digest(token)
    address_limit = Limit(f"{prefix}:a:{link}:{digest(address)}", per_address, window)
    refusal = rate_limits_hit([address_limit, Limit(f"{prefix}:t:{link}", per_link, window)])
    if refusal is None:
        return None
    return LinkRefusal(refusal.retry_after, per_address=refusal.limit is address_limit)
