"""Exactly once on real PostgreSQL: ticks racing, executions racing, a worker killed mid-check.

Each thread has its own database connection (Django's are per thread), so these are real
concurrent transactions against the test database; ``transaction=True`` lets them see each
other's commits.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection, connections, transaction

from accounts.models import Notification
from metrics import checks
from metrics.models import CheckRun, CriterionResult, DailyDigest
from tests.factories import running_plan
from tests.metrics.test_checks_support import store_series
from tests.metrics.test_tick_worker import worker_database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

UTC = dt.UTC
MONDAY = dt.date(2025, 1, 6)
ROOT = Path(__file__).resolve().parents[2]


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), UTC)


@pytest.fixture(autouse=True)
def _drop_published_messages() -> Iterator[None]:
    """Committed ticks really publish to the broker's default queue; leave it empty."""
    yield
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1)
        client.delete("celery")
        client.close()
    except redis.RedisError:
        pass


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Start every call at the same moment, each in its own thread with its own connection."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[i] = call()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def raw_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"] or None, host=s["HOST"],
        port=s["PORT"] or None, autocommit=False,
    )  # fmt: skip


def test_two_ticks_racing_claim_each_slot_once(team, po):
    plans = [running_plan(team=team, owner=po, start_date=MONDAY) for _ in range(30)]
    for slot in (at(MONDAY, 10), at(MONDAY, 16), at(dt.date(2025, 1, 7), 10)):
        a, b = race(
            lambda s=slot: checks.tick_process(now=s), lambda s=slot: checks.tick_process(now=s)
        )
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(
            CheckRun.objects.filter(due_at=slot).values_list("pk", flat=True)
        )
        assert len(a + b) == len(plans)
    assert CheckRun.objects.count() == 3 * len(plans)
    assert set(CheckRun.objects.values_list("status", flat=True)) == {"pending"}


def test_two_ticks_racing_after_downtime_agree_on_late_and_missed(team, po):
    plans = [running_plan(team=team, owner=po, start_date=MONDAY) for _ in range(20)]
    now = at(dt.date(2025, 1, 8), 11, 17)
    a, b = race(lambda: checks.tick_process(now=now), lambda: checks.tick_process(now=now))
    assert len(a) + len(b) == len(plans) and not set(a) & set(b)
    for plan in plans:
        got = list(
            CheckRun.objects.filter(plan=plan).order_by("due_at").values_list("status", "late")
        )
        assert got == [("missed", False)] * 4 + [("pending", True)]


@pytest.fixture
def busy_plan(team, po, sm, developer):  # type: ignore[no-untyped-def]
    """The seed's plan with enough data that a check takes a moment (the races overlap)."""
    plan = running_plan(team=team, owner=po, start_date=MONDAY)
    store_series(plan, "p95_latency", at(MONDAY, 0), 600, "200 + mod(g, 97)")
    store_series(plan, "csat", at(MONDAY, 0), 600, "4 + mod(g, 2)")
    return plan


def test_two_executions_of_the_same_run_racing_store_one_result_set(busy_plan):
    checks.tick_process(now=at(MONDAY, 10))
    run = CheckRun.objects.get()

    outcomes = race(
        lambda: checks.check_run_execute(run_id=run.pk),
        lambda: checks.check_run_execute(run_id=run.pk),
        lambda: checks.check_run_execute(run_id=run.pk),
    )

    assert sorted(outcomes) == [False, False, True]
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("done", 1)
    assert CriterionResult.objects.filter(run=run).count() == 5
    assert sorted(CriterionResult.objects.values_list("position", flat=True)) == [1, 2, 3, 4, 5]
    assert DailyDigest.objects.count() == 1


def test_an_execution_finding_the_run_locked_returns_at_once_and_leaves_it_pending(busy_plan):
    checks.tick_process(now=at(MONDAY, 10))
    run = CheckRun.objects.get()
    with raw_connection() as other:
        other.execute("SELECT id FROM metrics_checkrun WHERE id = %s FOR UPDATE", [run.pk])
        started = time.monotonic()
        assert checks.check_run_execute(run_id=run.pk) is False
        assert time.monotonic() - started < 1.0  # skipped, not waited for
        other.rollback()
    assert CheckRun.objects.get().status == "pending"
    assert checks.check_run_execute(run_id=run.pk) is True


def test_two_runs_of_one_day_finishing_together_send_one_digest(busy_plan, team):
    ten = CheckRun.objects.create(plan=busy_plan, due_at=at(MONDAY, 10), local_date=MONDAY,
                                  local_time=dt.time(10))  # fmt: skip
    four = CheckRun.objects.create(plan=busy_plan, due_at=at(MONDAY, 16), local_date=MONDAY,
                                   local_time=dt.time(16))  # fmt: skip

    assert race(
        lambda: checks.check_run_execute(run_id=ten.pk),
        lambda: checks.check_run_execute(run_id=four.pk),
    ) == [True, True]

    assert DailyDigest.objects.filter(plan=busy_plan, local_date=MONDAY).count() == 1
    members = team.memberships.count()
    assert Notification.objects.filter(kind=Notification.Kind.DAILY_DIGEST).count() == members


# --- a worker killed mid-check ------------------------------------------------------------------

CHECK_IN_SUBPROCESS = """
import django, sys
django.setup()
from metrics import checks
checks.check_run_execute(run_id=int(sys.argv[1]))
"""


def waiting_backend(cursor: psycopg.Cursor, table: str) -> int | None:
    """The pid of a backend blocked on a lock while writing ``table``."""
    cursor.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE %s",
        [f"%INSERT INTO {table}%"],  # the check's results statement starts WITH …
    )
    row = cursor.fetchone()
    return None if row is None else int(row[0])


def wait(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s")


def test_a_worker_killed_mid_check_leaves_the_run_pending_and_the_sweep_completes_it_once(
    busy_plan,
):
    checks.tick_process(now=at(MONDAY, 10))
    run = CheckRun.objects.get()
    env = {**os.environ, "DATABASE_URL": worker_database_url(),
           "DJANGO_SETTINGS_MODULE": "pilotplan.settings"}  # fmt: skip

    with raw_connection() as blocker, raw_connection() as observer:
        observer.autocommit = True
        # Hold up the check at its first write, after it has locked the run and evaluated
        # every criterion: the moment a crash costs the most.
        blocker.execute("LOCK TABLE metrics_criterionresult IN SHARE MODE")
        proc = subprocess.Popen(
            [sys.executable, "-c", CHECK_IN_SUBPROCESS, str(run.pk)], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            pid = wait(lambda: waiting_backend(observer.cursor(), "metrics_criterionresult"))
            # It holds the run: a sweep now skips it rather than publishing it twice.
            with transaction.atomic():
                assert checks._sweep(at(MONDAY, 10) + dt.timedelta(minutes=5)) == []
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
            blocker.rollback()  # the orphaned backend finds its client gone and rolls back
        wait(lambda: not observer.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone())  # fmt: skip

    run.refresh_from_db()
    assert (run.status, run.attempts, run.finished_at) == ("pending", 0, None)
    assert not CriterionResult.objects.exists()
    assert not DailyDigest.objects.exists()

    # The next tick more than two minutes on publishes it again; the worker runs it once.
    later = run.created_at + dt.timedelta(minutes=3)
    with transaction.atomic():
        assert checks._sweep(later) == [run.pk]
    assert checks.tick_process(now=later) == []
    assert checks.check_run_execute(run_id=run.pk) is True
    assert checks.check_run_execute(run_id=run.pk) is False
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("done", 1)
    assert CriterionResult.objects.filter(run=run).count() == 5
    assert DailyDigest.objects.count() == 1
