"""The worked examples of docs/api.md, read from the page and run as a reader would run them
(bash for the shell ones, Python for the Python ones) against a live server, and what they did
checked in the database. The webhook receiver runs as a process of its own on a free port and
gets a real delivery (metrics.webhooks.webhook_deliver)."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import EventType, Team, User, WebhookDelivery, WebhookSubscription
from accounts.tokens import personal_token_create
from backlog.models import BacklogItem
from backlog.services import backlog_item_create
from decisions.models import DecisionRecord, GateCall
from metrics import subscriptions
from metrics.models import Sample
from metrics.webhooks import webhook_deliver
from pilots.models import PilotPlan
from tests.decisions.gate_plans import go_plan
from tests.factories import running_plan

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```(\w+)\n(.*?)\n```", re.S)
RUNNERS = {"sh": ["bash", "-euo", "pipefail", "-c"], "python": [sys.executable, "-c"]}

pytestmark = pytest.mark.django_db(transaction=True)


def examples() -> dict[str, tuple[str, str]]:
    return {name: (lang, text) for name, lang, text in EXAMPLE.findall(DOC.read_text())}


def run(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    lang, text = examples()[name]
    return subprocess.run(
        [*RUNNERS[lang], text], env=env, capture_output=True, text=True, timeout=60
    )


def environment(base_url: str, key: str, plan_id: int, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTPLAN_")}
    return env | {"PILOTPLAN_URL": base_url, "PILOTPLAN_KEY": key, "PLAN_ID": str(plan_id)} | more


def test_the_page_has_every_example_once() -> None:
    found = EXAMPLE.findall(DOC.read_text())
    assert sorted(name for name, _, _ in found) == [
        "backlog-sync-python",
        "decision-curl",
        "gate-curl",
        "push-curl",
        "push-python",
        "webhook-receiver-python",
    ]
    assert DOC.read_text().count("<!-- example:") == len(found)
    assert {lang for _, lang, _ in found} <= set(RUNNERS)


def test_pushing_metrics_from_a_script(live_server, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    plan = running_plan(team=team, owner=po, start_date=timezone.localdate() - dt.timedelta(days=2))
    _, key = api_key_create(team=team, name="exporter", scopes=["ingest"], created_by=po)
    env = environment(live_server.url, key, plan.pk)

    by_curl = run("push-curl", env)
    assert by_curl.returncode == 0, by_curl.stderr + by_curl.stdout
    assert '"stored":1' in by_curl.stdout.replace(" ", "")
    by_python = run("push-python", env)
    assert by_python.returncode == 0, by_python.stderr + by_python.stdout
    assert "'stored': 2" in by_python.stdout

    stored = Sample.objects.filter(plan=plan)
    assert sorted(stored.values_list("metric__key", "source")) == [
        ("error_rate", "exporter"), ("p95_latency", "api"), ("p95_latency", "exporter"),
    ]  # fmt: skip
    again = run("push-curl", env)  # the same minute, the same Idempotency-Key: stored once
    assert again.returncode == 0 and stored.count() == 3


def test_gating_a_deployment(live_server, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    go = go_plan(team, po)
    waiting = running_plan(
        team=team, owner=po, start_date=timezone.localdate() - dt.timedelta(days=1)
    )
    _, key = api_key_create(team=team, name="deploy-bot", scopes=["read"], created_by=po)

    yes = run("gate-curl", environment(live_server.url, key, go.pk))
    assert yes.returncode == 0, yes.stderr + yes.stdout
    assert '"promotion_allowed":true' in yes.stdout.replace(" ", "")
    no = run("gate-curl", environment(live_server.url, key, waiting.pk))
    assert no.returncode == 22, no.stderr + no.stdout  # curl --fail on 409
    assert GateCall.objects.filter(pipeline_run="manual").count() == 2


def test_syncing_the_backlog_with_an_issue_tracker(live_server, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    for n in range(50):  # a full first page, so the tracker's known issue is on the second
        backlog_item_create(team_id=team.pk, user=po, title=f"Filler {n}")
    known = backlog_item_create(
        team_id=team.pk, user=po, title="Saved cards: expiry", reference="GH-102",
        status=BacklogItem.Status.IN_PROGRESS,
    )  # fmt: skip
    _, read_only = api_key_create(team=team, name="tracker", scopes=["read"], created_by=po)
    _, key = api_key_create(team=team, name="tracker", scopes=["read", "write"], created_by=po)
    items = BacklogItem.objects.filter(team=team)

    refused = run(
        "backlog-sync-python", environment(live_server.url, read_only, 0, TEAM_ID=str(team.pk))
    )
    assert refused.returncode == 1 and "403" in refused.stderr, refused.stderr + refused.stdout
    assert items.count() == 51

    synced = run("backlog-sync-python", environment(live_server.url, key, 0, TEAM_ID=str(team.pk)))

    assert synced.returncode == 0, synced.stderr + synced.stdout
    assert synced.stdout.splitlines() == [
        "added GH-101",
        "updated GH-102 {'title': 'Saved cards: show the expiry date', 'status': 'done'}",
    ]
    added = items.get(reference="GH-101")
    assert (added.title, added.status, added.position) == (
        "Checkout times out on slow networks", BacklogItem.Status.NEW, 52,
    )  # fmt: skip
    known.refresh_from_db()
    assert (known.title, known.status) == ("Saved cards: show the expiry date", "done")
    assert known.version == 2 and known.position == 51
    assert items.count() == 52

    again = run("backlog-sync-python", environment(live_server.url, key, 0, TEAM_ID=str(team.pk)))
    assert again.returncode == 0 and again.stdout == "", again.stderr + again.stdout
    assert items.count() == 52 and items.get(pk=known.pk).version == 2


def test_recording_a_decision_with_a_personal_token(  # type: ignore[no-untyped-def]
    live_server, team: Team, po: User, developer: User
) -> None:
    plan = go_plan(team, po)
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.EVALUATING)
    expires = timezone.now() + dt.timedelta(days=1)

    def token_of(user: User) -> str:
        return personal_token_create(
            user=user, name="decide", scopes=["read", "write"], expires_at=expires
        )[1]

    _, key = api_key_create(team=team, name="bot", scopes=["read", "write"], created_by=po)
    for someone_else in (token_of(developer), key):  # not the decision owner; not a person
        refused = run(
            "decision-curl", environment(live_server.url, "", plan.pk, PILOTPLAN_TOKEN=someone_else)
        )
        assert refused.returncode == 22 and '"detail"' in refused.stdout, refused.stdout
    assert not DecisionRecord.objects.exists()

    recorded = run(
        "decision-curl", environment(live_server.url, "", plan.pk, PILOTPLAN_TOKEN=token_of(po))
    )

    assert recorded.returncode == 0, recorded.stderr + recorded.stdout
    assert '"outcome":"go"' in recorded.stdout.replace(" ", "")
    record = DecisionRecord.objects.get(plan=plan)
    assert (record.outcome, record.recorded_by_id) == ("go", po.pk)
    assert PilotPlan.objects.get(pk=plan.pk).status == PilotPlan.Status.DECIDED


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int, process: subprocess.Popen[str], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the receiver did not listen on {port}")


def test_receiving_and_verifying_a_webhook(settings, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the receiver is local, as in test_webhooks
    settings.SITE_URL = "https://pilotplan.example.test"
    secret, port = subscriptions.secret_generate(), free_port()
    lang, text = examples()["webhook-receiver-python"]
    env = environment("", "", 0, WEBHOOK_SECRET=secret, PORT=str(port))
    receiver = subprocess.Popen(
        [*RUNNERS[lang], text], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        listening(port, receiver)
        url = f"http://127.0.0.1:{port}/pilotplan"
        created = EventType.BACKLOG_ITEM_CREATED
        ours = WebhookSubscription.objects.create(
            team=team, name="Ours", url=url, secret=secret, events=[created], created_by=po
        )
        forged = WebhookSubscription.objects.create(
            team=team, name="Forged", url=url, secret=subscriptions.secret_generate(),
            events=[created], created_by=po,
        )  # fmt: skip

        backlog_item_create(team_id=team.pk, user=po, title="Export the pilot's samples")

        delivery = WebhookDelivery.objects.get(subscription=ours)
        assert webhook_deliver(delivery_id=delivery.pk) is True
        other = WebhookDelivery.objects.get(subscription=forged)
        assert webhook_deliver(delivery_id=other.pk) is False
    finally:
        receiver.terminate()
        out, err = receiver.communicate(timeout=10)

    assert out.splitlines() == ["listening", f"{delivery.message_id} backlog_item.created"], err
    delivery.refresh_from_db()
    other.refresh_from_db()
    assert (delivery.last_status, delivery.delivered_at is not None) == (204, True)
    assert (other.last_status, other.delivered_at) == (401, None)
