"""One Redis client per process (and URL) for our own use of Redis: the API rate limits
(``core.ratelimit``), the API key throttle (``accounts.throttle``) and ``/healthz``'s broker
probe. Celery keeps its own connections to the broker.

The client's connection pool keeps its connections open between requests. A client made per
call opens a TCP connection and goes through the client's handshake every time: that cost about
5 ms of every request made with an API key or a personal token (measured on a 5,000-sample
push), and a load balancer's probes showed up as connection churn on the broker. redis-py's pool
notices a fork and opens new connections in the child, and drops a broken connection, so the
next call connects again.
"""

from __future__ import annotations

import redis
from django.conf import settings

_CLIENTS: dict[str, redis.Redis] = {}


def redis_client(url: str | None = None) -> redis.Redis:
    """The process's client for ``url`` (default ``settings.REDIS_URL``, read on each call so a
    changed setting gets its own client)."""
    url = url or settings.REDIS_URL
    client = _CLIENTS.get(url)
    if client is None:
        # A second thread may build one too; one of them is kept, both work.
        client = _CLIENTS[url] = redis.Redis.from_url(
            url, socket_connect_timeout=1, socket_timeout=1
        )
    return client
