"""The feedback link's part of ``make bench`` (issue #12): a burst of 2,000 answers through the
real widget API (``POST /api/v1/feedback/<token>``: rate limits in Redis, the answer stored,
its CSAT and NPS samples ingested with their rollups, trigger evaluation queued), then a run
that hits the per-address limit.

The burst spreads over 5 running plans' links (400 answers each, under the 600-an-hour limit per
link) and 2,000 client addresses (one answer each), so no limit stops it. Printed: answers per
second, p50 / p95 server time, and queries per answer at the start and at the end of the burst
(constant: nothing grows with the feedback already stored).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
import uuid
from zoneinfo import ZoneInfo

from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.bench_timing import p95

BURST = 2_000
PLANS = 5
LIMITED_TRIES = 15


def _links(*, po, team):  # type: ignore[no-untyped-def]
    from backlog.models import FeedbackToken
    from tests.factories import running_plan

    today = timezone.now().astimezone(ZoneInfo(team.time_zone)).date()
    tokens = []
    for i in range(PLANS):
        plan = running_plan(
            team=team,
            owner=po,
            start_date=today - dt.timedelta(days=2),
            time_zone=team.time_zone,
            template=False,
            title=f"Feedback bench {i}",
        )
        link = FeedbackToken.objects.create(plan=plan, token=f"bench-{uuid.uuid4().hex}")
        tokens.append(link.token)
    return tokens


def _body(i: int) -> str:
    return json.dumps(
        {"csat": 1 + i % 5, "nps": i % 11, "comment": f"Answer {i}: the saved card was quick."}
    )


def run(*, po, team, figures: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    from backlog.models import Feedback

    tokens = _links(po=po, team=team)
    client = Client()

    def send(i: int, token: str, address: str):  # type: ignore[no-untyped-def]
        return client.post(
            f"/api/v1/feedback/{token}",
            _body(i),
            content_type="application/json",
            REMOTE_ADDR=address,
        )

    def queries_of(i: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert send(i, tokens[0], f"10.9.{i // 250}.{i % 250}").status_code == 201
        return len(ctx)

    # A fresh counter space: an earlier bench run's counts must not limit this one.
    with override_settings(FEEDBACK_RATE_PREFIX=f"bench-feedback:{uuid.uuid4().hex}"):
        figures["feedback_queries_per_answer_first"] = queries_of(0)
        samples = []
        started = time.perf_counter()
        for i in range(BURST):
            address = f"10.{i // 62500}.{(i // 250) % 250}.{i % 250}"
            begin = time.perf_counter()
            response = send(i, tokens[i % PLANS], address)
            samples.append((time.perf_counter() - begin) * 1000)
            assert response.status_code == 201, response.content[:300]
        elapsed = time.perf_counter() - started
        figures["feedback_queries_per_answer_last"] = queries_of(1)
        figures["feedback_burst_answers"] = BURST
        figures["feedback_burst_answers_per_s"] = BURST / elapsed
        figures["feedback_burst_ms_p50"] = statistics.median(samples)
        figures["feedback_burst_ms_p95"] = p95(samples)
        assert Feedback.objects.filter(token__token__in=tokens).count() == BURST + 2

        # One address sending to one link: the first 10 (FEEDBACK_RATE_PER_ADDRESS) are taken.
        statuses = [send(i, tokens[1], "192.0.2.1").status_code for i in range(LIMITED_TRIES)]
        figures["feedback_limited_accepted"] = statuses.count(201)
        figures["feedback_limited_refused_429"] = statuses.count(429)
