"""core.queue: messages queued at commit are published by the process's publisher thread, in
order, and a commit never waits on the broker, even one that accepts connections and never
answers."""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import transaction

from core import queue as core_queue
from core.queue import Publisher, enqueue_on_commit, flush
from pilotplan.celery import app
from tests.metrics.test_ingest_redis import RedisServer, broker, own_redis  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TASK = "metrics.tasks.triggers_evaluate"  # routed to the "triggers" queue


def _queued(server: RedisServer) -> list[list[object]]:
    """The args of every message waiting in the "triggers" queue, oldest first."""
    client = server.client()
    try:
        raw = client.lrange("triggers", 0, -1)
    finally:
        client.close()
    # LPUSH puts the newest first.
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[0] for m in reversed(raw)]


@contextmanager
def _celery_broker(url: str, socket_timeout: float) -> Iterator[None]:
    """Celery publishing to ``url`` (as the ``broker`` fixture does), with a short timeout."""
    saved = (
        app.conf.broker_url,
        app.conf.broker_transport_options,
        app._pool,
        app.amqp._producer_pool,
    )
    app.conf.broker_url = url
    app.conf.broker_transport_options = {
        **saved[1],
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
    }
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        if app._pool is not None:
            app._pool.force_close_all()
        (
            app.conf.broker_url,
            app.conf.broker_transport_options,
            app._pool,
            app.amqp._producer_pool,
        ) = saved


@pytest.fixture
def silent_broker() -> Iterator[None]:
    """A local server that accepts connections and never answers: a hanging Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    port = listener.getsockname()[1]
    try:
        with _celery_broker(f"redis://127.0.0.1:{port}/0", socket_timeout=1):
            yield
            # Every message given up on before the broker is restored.
            assert flush(timeout=30)
    finally:
        stop.set()
        acceptor.join()
        for connection in held:
            connection.close()
        listener.close()


def test_messages_queued_in_a_transaction_are_published_after_commit_in_order(broker):  # noqa: F811
    with transaction.atomic():
        for i in range(30):
            enqueue_on_commit(TASK, i)
        assert flush()
        assert _queued(broker) == []  # nothing before the commit

    assert flush()
    assert _queued(broker) == [[i] for i in range(30)]


def test_a_rolled_back_transaction_publishes_nothing(broker):  # noqa: F811
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(TASK, 1)
        raise RuntimeError("rolled back")
    assert flush()
    assert _queued(broker) == []


def test_a_commit_does_not_wait_on_a_broker_that_never_answers(silent_broker, caplog):
    caplog.set_level(logging.WARNING, logger="core.queue")
    started = time.monotonic()
    with transaction.atomic():
        enqueue_on_commit(TASK, 1)
        enqueue_on_commit(TASK, 2)
    took = time.monotonic() - started

    # Publishing inside the commit would have waited for the 1 s socket timeout at least.
    assert took < 0.5, f"the commit waited {took:.2f} s on the broker"
    assert not flush(timeout=0.2)  # the thread is still waiting on the silent broker
    assert flush(timeout=30)
    failed = [r.getMessage() for r in caplog.records if "left to the sweep" in r.getMessage()]
    assert len(failed) == 2, failed


def test_past_the_limit_new_messages_are_dropped_and_logged(silent_broker, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="core.queue")
    monkeypatch.setattr(core_queue, "MAX_PENDING", 3)
    publisher = Publisher()
    publisher.put(TASK, (0,))
    # The thread takes it and waits on the silent broker.
    deadline = time.monotonic() + 10
    while publisher._queue.qsize() and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(1, 10):
        publisher.put(TASK, (i,))
    dropped = [
        r.getMessage() for r in caplog.records if "messages wait for the broker" in r.getMessage()
    ]
    # One message is being sent, three wait, the other six are dropped.
    assert [m.split("triggers_evaluate")[1] for m in dropped] == [
        f"(({i},)) left to the sweep" for i in range(4, 10)
    ]
    assert publisher.flush(timeout=30)


def _child_publishes(url: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with _celery_broker(url, socket_timeout=2):
        enqueue_on_commit(TASK, "from the child")  # outside a transaction: at once
        results.put(flush(timeout=10))


def test_a_forked_process_publishes_with_a_thread_of_its_own(broker):  # noqa: F811
    enqueue_on_commit(TASK, "from the parent")  # the parent's thread runs before the fork
    assert flush()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_child_publishes, args=(broker.url, results))
    child.start()
    child.join(30)

    assert child.exitcode == 0
    assert results.get(timeout=1) is True
    enqueue_on_commit(TASK, "from the parent again")
    assert flush()
    assert _queued(broker) == [["from the parent"], ["from the child"], ["from the parent again"]]
