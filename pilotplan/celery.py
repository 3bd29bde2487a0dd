"""The Celery application. Settings come from Django's settings under the ``CELERY_`` namespace."""

import os

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilotplan.settings")

app = Celery("pilotplan")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def freeze_start_up_objects(**kwargs: object) -> None:
    """Each worker process, once started: what it loaded so far (Django, apps, tasks) lives as
    long as the process, so leave it out of the cyclic collector's full collections, with the
    collector's thresholds of the web process (pilotplan.collector, docs/operations.md, "The
    collector")."""
    from pilotplan.collector import collector_settle

    collector_settle()


@worker_process_shutdown.connect
def publish_what_is_held(**kwargs: object) -> None:
    """A worker process that ends sends what its publisher thread still holds first (a pool
    process may end without running ``atexit``; core.queue)."""
    from core.queue import flush

    flush()
