"""Database and process settings chosen on measurements (issue #15, docs/operations.md): JIT off
on our PostgreSQL connections, and the collector's start-up objects frozen in web and worker."""

from __future__ import annotations

import gc
import importlib

import pytest
from celery.signals import worker_process_init
from django.db import connection

from pilotplan import celery as celery_app

pytestmark = pytest.mark.django_db


def test_our_connections_run_without_jit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_a_worker_process_freezes_what_it_loaded_at_start_up():
    assert celery_app.app.main == "pilotplan"  # the worker's app, which connects the handler
    gc.unfreeze()
    try:
        worker_process_init.send(sender=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_web_process_freezes_what_it_loaded_at_start_up():
    gc.unfreeze()
    try:
        importlib.reload(importlib.import_module("pilotplan.wsgi"))
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
