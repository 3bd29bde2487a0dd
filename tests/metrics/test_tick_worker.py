"""Beat's ``tick`` through a real Celery worker process, a real Redis and the test database."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from metrics.models import TICK, CheckRun, CriterionResult, DailyDigest, Heartbeat
from metrics.tasks import check_run_execute, tick
from tests.conftest import missing
from tests.factories import running_plan
from tests.metrics.test_checks_support import store

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


# The worker is Celery's own, started with the project's app; the only change is the names of
# its queues: the default one (``task_default_queue``, as the CELERY_TASK_DEFAULT_QUEUE setting
# would) and each routed one (CELERY_TASK_ROUTES, "triggers") get this test's prefix, so the work
# a tick queues (``check_run_execute``, ``triggers_evaluate``) goes to this test's queues and this
# worker, not to another. The worker consumes both, as the two workers of docker-compose.yml do.
QUEUES = """
from pilotplan.celery import app
def own_queues(queue):
    routes = app.conf.task_routes or {}
    app.conf.task_default_queue = queue
    app.conf.task_routes = {
        name: {**route, "queue": f"{queue}.{route['queue']}"} for name, route in routes.items()
    }
    return [queue, *sorted({route["queue"] for route in app.conf.task_routes.values()})]
"""
WORKER = (
    QUEUES
    + """
import sys
queues = own_queues(sys.argv[1])
app.worker_main([*sys.argv[2:], "-Q", ",".join(queues)])
"""
)


def routed_queues(queue: str) -> list[str]:
    """The queues of the worker started for ``queue``: it, and each routed queue under its
    prefix (``<queue>.triggers``)."""
    routes = settings.CELERY_TASK_ROUTES
    return [queue, *sorted({f"{queue}.{route['queue']}" for route in routes.values()})]


def worker_start(queue: str, log: Path) -> subprocess.Popen:
    """A Celery worker process (solo pool) consuming ``queue`` and its routed queues against the
    test database."""
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "pilotplan.settings",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable, "-c", WORKER, queue,
                "worker", "--pool", "solo", "--concurrency", "1", "-n", f"{queue}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def worker_stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def worker(broker: redis.Redis, tmp_path: Path) -> Iterator[str]:
    """A Celery worker process consuming a queue of its own; yields the queue's name."""
    queue = f"test-tick-{uuid.uuid4().hex[:12]}"
    log = tmp_path / "worker.log"
    proc = worker_start(queue, log)
    try:
        yield queue
    finally:
        worker_stop(proc)
        for name in routed_queues(queue):
            broker.delete(name, f"_kombu.binding.{name}")
        print(log.read_text(errors="replace"))  # shown by pytest when the test failed


def raw_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"] or None, host=s["HOST"],
        port=s["PORT"] or None,
    )  # fmt: skip


def waiting_backend(conn: psycopg.Connection, table: str) -> int | None:
    """The pid of a backend blocked on a lock while writing ``table``."""
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE %s",
        [f"%INSERT INTO {table}%"],  # the check's results statement starts WITH …
    ).fetchone()
    return None if row is None else int(row[0])


def wait_until(value, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := value():
            return result
        time.sleep(0.1)
    return None


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


# --- scheduled checks through the worker -----------------------------------------------------


def test_a_beat_tick_through_the_worker_runs_the_due_check_once(worker, team, po, sm):
    # Started a week ago: whatever today is, the newest 10:00 or 16:00 slot is in the past.
    today = timezone.now().date()
    plan = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=7),
                        business_days=20)  # fmt: skip
    store(plan, "p1_defects", [(timezone.now() - dt.timedelta(days=6), 0)])

    tick.apply_async(queue=worker)

    assert wait_for(lambda: CheckRun.objects.filter(plan=plan, status="done").exists()), (
        "no check run was done within 20 s"
    )
    done = CheckRun.objects.get(plan=plan, status="done")
    assert done.attempts == 1 and done.due_at <= timezone.now()
    assert done == CheckRun.objects.filter(plan=plan).order_by("-due_at").first()
    assert set(CheckRun.objects.exclude(pk=done.pk).values_list("status", flat=True)) <= {"missed"}
    results = {r.label: r.verdict for r in done.results.all()}
    assert len(results) == 5 and results["P1 defects total = 0 defects"] == "met"
    assert DailyDigest.objects.filter(plan=plan, run=done).exists()

    # A second beat finds nothing new to do.
    tick.apply_async(queue=worker)
    assert wait_for(lambda: Heartbeat.objects.filter(name=TICK, beats=2).exists())
    assert CheckRun.objects.filter(plan=plan, status="done").count() == 1
    assert CriterionResult.objects.filter(run__plan=plan).count() == 5


def test_a_worker_killed_mid_check_and_the_next_tick_completes_the_run_once(
    worker, broker, tmp_path, team, po
):
    plan = running_plan(team=team, owner=po, start_date=timezone.now().date(), business_days=20)
    now = timezone.now()
    run = CheckRun.objects.create(
        plan=plan, due_at=now - dt.timedelta(minutes=10), local_date=now.date(),
        local_time=dt.time(0, 0), created_at=now - dt.timedelta(minutes=10),
    )  # fmt: skip
    doomed_queue = f"test-doomed-{uuid.uuid4().hex[:12]}"
    doomed = worker_start(doomed_queue, tmp_path / "doomed.log")
    try:
        with raw_connection() as blocker, raw_connection() as observer:
            observer.autocommit = True
            # The doomed worker locks the run, evaluates, then waits at its first write.
            blocker.execute("LOCK TABLE metrics_criterionresult IN SHARE MODE")
            check_run_execute.apply_async(args=[run.pk], queue=doomed_queue)
            backend = wait_until(lambda: waiting_backend(observer, "metrics_criterionresult"))
            assert backend, "the doomed worker never reached its first write"
            doomed.send_signal(signal.SIGKILL)
            assert doomed.wait(10) == -signal.SIGKILL
            blocker.rollback()
            assert wait_for(
                lambda: (
                    not observer.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend]
                    ).fetchone()
                )
            ), "the killed worker's transaction is still open"
    finally:
        if doomed.poll() is None:
            doomed.kill()
        for name in routed_queues(doomed_queue):
            broker.delete(name, f"_kombu.binding.{name}")
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("pending", 0)
    assert not CriterionResult.objects.filter(run=run).exists()

    tick.apply_async(queue=worker)  # its sweep finds the run pending for minutes

    assert wait_for(lambda: CheckRun.objects.filter(pk=run.pk, status="done").exists()), (
        "the run was not completed within 20 s"
    )
    run.refresh_from_db()
    assert run.attempts == 1
    assert CriterionResult.objects.filter(run=run).count() == 5


# Celery's own beat with the project's app, its one-minute tick shortened to two seconds and sent
# to this test's queues (the tick is routed to "triggers"); everything else (schedule entry, task
# name, routing, broker) is the real thing.
BEAT = (
    QUEUES
    + """
import sys
own_queues(sys.argv[1])
app.conf.beat_schedule = {"tick": {"task": "metrics.tasks.tick", "schedule": 2.0}}
app.start(["beat", "-s", sys.argv[2], "-l", "info"])
"""
)


def test_a_real_beat_process_ticks_and_the_worker_runs_the_due_check(worker, team, po, tmp_path):
    today = timezone.now().date()
    plan = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=7),
                        business_days=20)  # fmt: skip
    store(plan, "p1_defects", [(timezone.now() - dt.timedelta(days=6), 0)])
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "pilotplan.settings",
    }
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(
            [sys.executable, "-c", BEAT, worker, str(tmp_path / "schedule")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert wait_for(
            lambda: CheckRun.objects.filter(plan=plan, status="done").exists(), timeout=30
        ), "no check run was done within 30 s of starting beat\n" + log.read_text(errors="replace")
        # Beat keeps ticking; the slot still ran once.
        assert wait_for(lambda: Heartbeat.objects.filter(name=TICK, beats__gte=3).exists())
    finally:
        worker_stop(beat)
    assert CheckRun.objects.filter(plan=plan, status="done").count() == 1
    assert CriterionResult.objects.filter(run__plan=plan).count() == 5


def test_a_poisoned_plan_does_not_stop_a_real_workers_tick_for_the_others(worker, team, po):
    from metrics.models import PlanJobFailure
    from pilots.models import PilotPlan

    today = timezone.now().date()
    healthy = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=7),
                           business_days=20)  # fmt: skip
    poisoned = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=7))
    # Stored before dates were validated: midnight of 0001-01-01 in Tokyo is before year 1 in UTC.
    PilotPlan.objects.filter(pk=poisoned.pk).update(
        start_date=dt.date(1, 1, 1), end_date=dt.date(1, 1, 12), time_zone="Asia/Tokyo"
    )

    tick.apply_async(queue=worker)

    assert wait_for(lambda: CheckRun.objects.filter(plan=healthy, status="done").exists()), (
        "the healthy plan was not checked within 20 s"
    )
    assert wait_for(
        lambda: Heartbeat.objects.filter(name=TICK, completed_at__isnull=False).exists()
    )
    beat = Heartbeat.objects.get(name=TICK)
    assert beat.failed_plans == 1 and beat.failed_at is None
    failure = PlanJobFailure.objects.get(plan=poisoned)
    assert (failure.job, failure.category) == ("checks", "timeline")
    assert not CheckRun.objects.filter(plan=poisoned).exists()


def test_a_chunk_through_a_real_worker_checks_every_plan_and_isolates_the_one_that_fails(
    worker, team, po
):
    from metrics.models import PlanJobFailure
    from metrics.tasks import check_runs_execute
    from pilots.models import PilotPlan

    today = timezone.now().date()
    plans = [
        running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=7),
                     business_days=20)
        for _ in range(4)
    ]  # fmt: skip
    for plan in plans:
        store(plan, "p1_defects", [(timezone.now() - dt.timedelta(days=6), 0)])
    now = timezone.now()
    run_ids = [
        CheckRun.objects.create(plan=plan, due_at=now - dt.timedelta(minutes=10),
                                local_date=now.date(), local_time=dt.time(0, 0)).pk
        for plan in plans
    ]  # fmt: skip
    broken = plans[0]  # its dates broke after its slot was claimed: the chunk falls back
    PilotPlan.objects.filter(pk=broken.pk).update(
        start_date=dt.date(1, 1, 1), end_date=dt.date(1, 1, 12), time_zone="Asia/Tokyo"
    )

    check_runs_execute.apply_async(args=[run_ids], queue=worker)

    healthy = plans[1:]
    assert wait_for(
        lambda: CheckRun.objects.filter(plan__in=healthy, status="done").count() == 3
    ), "the healthy plans' runs were not done within 20 s"
    assert wait_for(lambda: PlanJobFailure.objects.filter(plan=broken).exists())
    assert PlanJobFailure.objects.get(plan=broken).job == "check_run"
    assert CheckRun.objects.get(plan=broken).status == "pending"
    assert CriterionResult.objects.filter(run__plan__in=healthy).count() == 15
    assert DailyDigest.objects.filter(plan__in=healthy).count() == 3
