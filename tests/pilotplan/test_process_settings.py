"""Database and process settings chosen on measurements (issue #15, docs/operations.md): JIT off
on our PostgreSQL connections, and in web and worker the collector's start-up objects frozen and
its youngest generation large enough for a batch."""

from __future__ import annotations

import gc
import importlib

import orjson
import pytest
from celery.signals import worker_process_init
from django.db import connection

from pilotplan import celery as celery_app
from pilotplan.collector import GEN0_THRESHOLD, collector_settle

pytestmark = pytest.mark.django_db


def test_our_connections_run_without_jit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


@pytest.fixture
def collector():
    """The collector as CPython starts it, and as it was after the test."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, *thresholds[1:])
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_a_worker_process_freezes_what_it_loaded_at_start_up(collector):
    assert celery_app.app.main == "pilotplan"  # the worker's app, which connects the handler
    worker_process_init.send(sender=None)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == GEN0_THRESHOLD


def test_the_web_process_freezes_what_it_loaded_at_start_up(collector):
    importlib.reload(importlib.import_module("pilotplan.wsgi"))
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == GEN0_THRESHOLD


def test_a_batchs_dicts_are_not_walked_by_the_collector_again_and_again(collector):
    """What the threshold is for: reading a 5,000-sample body (5,000 dicts that live until the
    request answers) set off more than a dozen collections with CPython's threshold."""
    body = b"[" + b",".join([b'{"metric": "errors", "value": 1}'] * 5_000) + b"]"
    counted = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            counted.append(info["generation"])

    gc.callbacks.append(count)
    try:
        gc.collect()
        counted.clear()
        orjson.loads(body)
        with_default = len(counted)
        collector_settle()
        gc.collect()
        counted.clear()
        orjson.loads(body)
        settled = len(counted)
    finally:
        gc.callbacks.remove(count)
    assert with_default >= 5
    assert settled <= 1
