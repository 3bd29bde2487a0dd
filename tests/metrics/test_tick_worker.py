"""Beat's ``tick`` through a real Celery worker process, a real Redis and the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from metrics.models import TICK, Heartbeat
from metrics.tasks import tick
from tests.conftest import missing

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def worker_database_url() -> str:
    """A DATABASE_URL naming the database this test runs in (``test_…``), for the worker."""
    s = connection.settings_dict
    user = quote(s["USER"] or "", safe="")
    password = f":{quote(str(s['PASSWORD']), safe='')}" if s["PASSWORD"] else ""
    host = quote(s["HOST"] or "", safe="")
    port = f":{s['PORT']}" if s["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{quote(s['NAME'], safe='')}"


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        missing(f"Redis at {settings.REDIS_URL} is not reachable: {exc}")
    yield client
    client.close()


@pytest.fixture
def worker(broker: redis.Redis, tmp_path: Path) -> Iterator[str]:
    """A Celery worker process consuming a queue of its own; yields the queue's name."""
    queue = f"test-tick-{uuid.uuid4().hex[:12]}"
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "pilotplan.settings",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "pilotplan", "worker",
                "--pool", "solo", "--concurrency", "1", "-Q", queue, "-n", f"{queue}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield queue
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        broker.delete(queue, f"_kombu.binding.{queue}")
        print(log.read_text(errors="replace"))  # shown by pytest when the test failed


def wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_tick_sent_to_a_real_worker_records_one_heartbeat(worker):
    assert not Heartbeat.objects.exists()

    tick.apply_async(queue=worker)

    assert wait_for(lambda: Heartbeat.objects.filter(name=TICK).exists()), (
        "the worker did not record a heartbeat within 20 s"
    )
    beat = Heartbeat.objects.get(name=TICK)
    assert beat.beats == 1


def test_two_ticks_through_the_worker_count_two_beats(worker):
    tick.apply_async(queue=worker)
    tick.apply_async(queue=worker)

    assert wait_for(lambda: Heartbeat.objects.filter(name=TICK, beats=2).exists()), (
        "the worker did not record two beats within 20 s"
    )
