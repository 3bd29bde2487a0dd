"""The backlog's part of ``make bench`` (issue #12): the team backlog page with 5,000 items, its
first page and a later one, beside the same pages of a 500-item backlog, with their query counts
and the ratio of the medians (the page reads one page of items by the (team, position) index, so
the time and the query count should not grow with the backlog). ``BENCH_ONLY=backlog`` runs this
part alone.
"""

from __future__ import annotations

import statistics
from typing import Any

from django.db import connection
from django.test import Client

from tests.bench_timing import RUNS, p95, timed

SIZES = (500, 5000)
PAGE_SIZE = 50  # backlog.views.PAGE_SIZE


def _backlog(po: Any, size: int) -> Any:
    """A team whose backlog holds ``size`` items of every type, status and severity."""
    from accounts.models import Membership, Team
    from backlog.models import BacklogItem

    team = Team.objects.create(name=f"Backlog bench {size}", slug=f"backlog-bench-{size}")
    Membership.objects.create(team=team, user=po, role=Membership.Role.PRODUCT_OWNER)
    kinds = list(BacklogItem.Kind)
    statuses = list(BacklogItem.Status)
    items = []
    for n in range(1, size + 1):
        kind = kinds[n % len(kinds)]
        items.append(
            BacklogItem(
                team=team,
                number=n,
                position=n,
                reference=f"{BacklogItem.PREFIX[kind]}-{n}",
                title=f"Item {n}: pay with a saved card from the basket",
                kind=kind,
                severity="p2" if kind == BacklogItem.Kind.DEFECT else "",
                status=statuses[n % len(statuses)],
                estimate=n % 13,
                created_by=po,
            )
        )
    BacklogItem.objects.bulk_create(items, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE backlog_backlogitem")
    return team


def run(*, po: Any, team: Any, figures: dict[str, float]) -> None:
    client = Client()
    client.force_login(po)
    medians: dict[tuple[int, str], float] = {}
    for size in SIZES:
        bench_team = _backlog(po, size)
        pages = {"first": 1, "later": (size // PAGE_SIZE) * 6 // 10}
        for which, number in pages.items():
            url = f"/teams/{bench_team.pk}/backlog?page={number}"

            def get(url: str = url) -> object:
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                return response

            queries: list[str] = []
            with connection.execute_wrapper(
                lambda execute, *args, seen=queries: (seen.append(args[0]), execute(*args))[1]
            ):
                get()
            samples = timed(get, RUNS // 2)
            name = f"backlog_{size}_{which}_page"
            medians[(size, which)] = statistics.median(samples)
            figures[f"{name}_ms_p50"] = medians[(size, which)]
            figures[f"{name}_ms_p95"] = p95(samples)
            figures[f"{name}_queries"] = len(queries)
    for which in ("first", "later"):
        figures[f"backlog_{which}_page_ratio_5000_to_500"] = (
            medians[(5000, which)] / medians[(500, which)]
        )
