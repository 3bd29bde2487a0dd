"""The scheduler's heartbeat (``heartbeat_record``), beat's schedule and the Celery settings."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from metrics.models import TICK, Heartbeat
from metrics.selectors import heartbeat_last
from metrics.services import heartbeat_record
from metrics.tasks import tick
from pilotplan.celery import app


@pytest.mark.django_db
def test_first_heartbeat_creates_the_row_with_one_beat():
    at = timezone.now() - timedelta(seconds=5)

    beat = heartbeat_record(at=at)

    assert beat.name == TICK
    assert beat.beat_at == at
    assert beat.beats == 1
    assert Heartbeat.objects.count() == 1


@pytest.mark.django_db
def test_later_heartbeats_update_the_one_row_and_count():
    first = timezone.now() - timedelta(minutes=2)
    heartbeat_record(at=first)
    heartbeat_record(at=first + timedelta(minutes=1))

    beat = heartbeat_record()

    assert Heartbeat.objects.count() == 1  # upserted, the table never grows
    assert beat.beats == 3
    assert timezone.now() - beat.beat_at < timedelta(seconds=5)


@pytest.mark.django_db
def test_heartbeats_of_different_processes_are_kept_apart():
    heartbeat_record(name="tick")
    heartbeat_record(name="tick")
    heartbeat_record(name="housekeeping")

    assert dict(Heartbeat.objects.values_list("name", "beats")) == {"tick": 2, "housekeeping": 1}


@pytest.mark.django_db
def test_heartbeat_last_is_none_before_the_first_beat_then_its_time():
    assert heartbeat_last() is None
    at = timezone.now() - timedelta(seconds=30)

    heartbeat_record(at=at)

    assert heartbeat_last() == at
    assert heartbeat_last(name="other") is None


@pytest.mark.django_db
def test_tick_task_records_a_heartbeat():
    tick()  # the task body, called in this process (the worker test sends it through Redis)

    assert Heartbeat.objects.get(name=TICK).beats == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_heartbeats_are_both_counted():
    """Two processes beat for the first time at once: both beats count, neither fails.

    This transaction inserts the row and holds it uncommitted; a second connection's beat sees no
    row, runs into ours and waits. Once we commit it must count its beat on top of ours.
    """
    errors: list[BaseException] = []
    other_pid: list[int] = []

    def other_process() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                other_pid.append(cursor.fetchone()[0])
            heartbeat_record()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_process)
    with transaction.atomic():
        heartbeat_record()  # inserted, not committed yet
        thread.start()
        deadline = time.monotonic() + 10
        blocked = False
        while not blocked and thread.is_alive() and time.monotonic() < deadline:
            if other_pid:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_backend_pid() = ANY(pg_blocking_pids(%s))", [other_pid[0]]
                    )
                    blocked = cursor.fetchone()[0]
            time.sleep(0.02)
        assert blocked, "the second beat never waited for the first one's row"
    thread.join(10)

    assert not errors
    assert Heartbeat.objects.get(name=TICK).beats == 2


# --- schedule and Celery settings ----------------------------------------------------------------


def test_beat_sends_tick_once_a_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["tick"]

    assert entry["task"] == "metrics.tasks.tick" == tick.name
    assert entry["schedule"] == 60.0
    # A tick still queued when the next one is due is dropped, so a backlog never piles up.
    assert entry["options"]["expires"] < 60
    assert app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE


def test_tick_is_the_only_business_schedule():
    assert set(settings.CELERY_BEAT_SCHEDULE) == {"tick"}


def test_celery_acks_late_and_requeues_work_of_a_lost_worker():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    # Redelivery of an unacked task waits this long: it must outlast the hard time limit.
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility > app.conf.task_time_limit


def test_celery_speaks_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]


def test_celery_ignores_results():
    assert app.conf.task_ignore_result is True
    assert app.conf.result_backend is None
    assert tick.ignore_result is True


def test_celery_has_time_limits_with_the_soft_one_first():
    assert app.conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT
    assert app.conf.task_soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_celery_uses_the_configured_redis_and_does_not_hang_on_it():
    assert app.conf.broker_url == settings.REDIS_URL
    options = app.conf.broker_transport_options
    assert options["socket_connect_timeout"] <= 5
    assert app.conf.timezone == "UTC"
