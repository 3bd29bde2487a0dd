"""The worked examples of docs/api.md, read from the page and run as a reader would run them
(bash for the shell ones, Python for the Python ones) against a live server."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import Team, User
from decisions.models import GateCall
from metrics.models import Sample
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


def environment(base_url: str, key: str, plan_id: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTPLAN_")}
    return env | {"PILOTPLAN_URL": base_url, "PILOTPLAN_KEY": key, "PLAN_ID": str(plan_id)}


def test_the_page_has_every_example_once() -> None:
    found = EXAMPLE.findall(DOC.read_text())
    assert sorted(name for name, _, _ in found) == ["gate-curl", "push-curl", "push-python"]
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
