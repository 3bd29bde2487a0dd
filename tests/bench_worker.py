"""A real Celery worker for the bench parts: ``celery -A pilotplan worker`` in a subprocess, on
the default queue, against the bench's own database (the ``test_`` copy it runs on)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """A DATABASE_URL naming the database this process is connected to."""
    s = connection.settings_dict
    user = quote(s["USER"] or "", safe="")
    password = f":{quote(str(s['PASSWORD']), safe='')}" if s["PASSWORD"] else ""
    host = s["HOST"] or "127.0.0.1"
    port = f":{s['PORT']}" if s["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{quote(s['NAME'], safe='')}"


@contextlib.contextmanager
def worker(*, concurrency: int = 4, queues: list[str] | None = None) -> Iterator[str]:
    """A worker process with ``concurrency`` pool processes, ready when the block starts;
    yields its node name. It is shut down (warm, then killed) when the block ends, and its
    log printed if it did not start."""
    from pilotplan.celery import app

    queues = queues or [app.conf.task_default_queue]
    node = f"bench-{uuid.uuid4().hex[:8]}@%h"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "pilotplan.settings",
    }
    log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        sys.executable, "-m", "celery", "-A", "pilotplan", "worker",
        "--concurrency", str(concurrency), "-Q", ",".join(queues), "-n", node,
        "--without-gossip", "--without-mingle", "-l", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        name = node.replace("%h", _hostname())
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[name], timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "The bench worker did not start:\n" + Path(log.name).read_text(errors="replace")
                )
        yield name
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        os.unlink(log.name)


def _hostname() -> str:
    import socket

    return socket.gethostname()
