"""Plausible metric samples for demo pilots: what `make run` shows while nobody pushes real data.

``samples_for`` generates the samples of one plan's metrics for a span of minutes, as pure data
(no database); the ``simulate_samples`` command pushes them through the real ingestion service
once a minute, and ``pilotplan.demo`` backfills the history of the demo's running pilots with the
same generator. One plan can be given an *incident*: its p95 latency breaches 300 ms from
``incident_start`` for ``INCIDENT_MINUTES``, which is how a sustained rollback trigger fires on
the demo a few minutes after start.

Values are deterministic per (plan, metric, minute), so backfilling a span twice yields the same
samples and the natural keys make the second push store nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

SOURCE = "simulator"
# Minutes between two samples of a metric: survey answers arrive every few minutes, everything
# else (gauges, and counts such as defects, reported as "0 new" in a quiet minute) every minute —
# well inside any metric's expected interval, so no demo metric ever looks stale.
EVERY_MINUTES = {"csat": 4, "nps": 6}
INCIDENT_MINUTES = 75
INCIDENT_LEAD = dt.timedelta(minutes=27)  # the incident "began" this long before the simulator


@dataclass(frozen=True)
class SimSample:
    metric_key: str
    observed_at: dt.datetime
    value: float


def _rng(plan_id: int, key: str, minute: int) -> np.random.Generator:
    return np.random.default_rng([plan_id, zlib.crc32(key.encode()), minute])


def _day_shape(minute: int) -> float:
    """0 at night, 1 in the afternoon (UTC), for traffic-like curves."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * ((minute % 1440) - 180) / 1440)


def _value(key: str, kind: str, plan_id: int, minute: int, incident: bool) -> float | None:
    """The sample of ``key`` for one minute (epoch minutes), or None if none is due then."""
    if minute % every_minutes(key):
        return None
    r = _rng(plan_id, key, minute)
    shape = _day_shape(minute)
    if key == "p95_latency":
        if incident:
            return round(340 + 40 * r.random(), 1)
        return round(max(40.0, 170 + 40 * shape + r.normal(0, 15)), 1)
    if key == "error_rate":
        return round(max(0.0, 0.15 + 0.15 * shape + r.normal(0, 0.05)), 3)
    if key == "sessions":
        return float(r.poisson(8 + 20 * shape))
    if key == "requests":
        return float(r.poisson(400 + 900 * shape))
    if key == "errors":
        return float(r.poisson(1 + 2 * shape))
    if key == "p1_defects":
        return 0.0  # P1s stay at zero in the demo
    if key == "p2_defects":
        return float(r.poisson(0.25 / 60))  # about one every four hours
    if key == "p3_defects":
        return float(r.poisson(0.3 / 60))
    if key == "csat":
        return float(r.choice([1, 2, 3, 4, 5], p=[0.02, 0.03, 0.07, 0.28, 0.60]))
    if key == "nps":
        return float(r.choice(range(11), p=[0.01] * 6 + [0.04, 0.1, 0.2, 0.3, 0.3]))
    if kind == "count":
        return float(r.poisson(5))
    if kind == "score":
        return float(r.integers(1, 6))
    return round(100 + r.normal(0, 10), 3)


def every_minutes(key: str) -> int:
    """Minutes between two simulated samples of ``key``."""
    return EVERY_MINUTES.get(key, 1)


def samples_for(
    *,
    plan_id: int,
    metrics: Iterable[tuple[str, str]],
    start: dt.datetime,
    end: dt.datetime,
    incident_start: dt.datetime | None = None,
) -> Iterator[SimSample]:
    """Samples of ``metrics`` ((key, kind) pairs) for each whole minute in ``[start, end)``."""
    first = math.ceil(start.timestamp() / 60)
    last = math.ceil(end.timestamp() / 60)  # exclusive
    incident_from = incident_to = None
    if incident_start is not None:
        incident_from = math.floor(incident_start.timestamp() / 60)
        incident_to = incident_from + INCIDENT_MINUTES
    for key, kind in metrics:
        for minute in range(first, last):
            incident = incident_from is not None and incident_from <= minute < incident_to
            value = _value(key, kind, plan_id, minute, incident)
            if value is not None:
                at = dt.datetime.fromtimestamp(minute * 60, tz=dt.UTC)
                yield SimSample(key, at, value)
