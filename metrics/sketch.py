"""Mergeable log-bucket histograms ("sketches") of a metric's values, for percentiles whose cost
does not grow with the pilot's history (docs/checks.md, "Percentiles from sketches").

A value v is counted in the bin with key

    0                                    if |v| < 1e-9 (the zero bin)
    sign(v) · (⌈ln |v| / ln γ⌉ + 1100)   otherwise,  γ = (1 + α) / (1 − α),  α = 0.01

so positive bin i = key − 1100 holds the values in (γ^(i−1), γ^i], and its representative value
2γ^i / (γ + 1) is within α (1 %) of every one of them: the same relative accuracy as DDSketch
(Masson, Rim & Lee, VLDB 2019). Bin keys grow with the value (negative values have negative
keys, larger magnitudes further from 0), so counts summed in key order rank the values.

The database builds the bins (SQL functions ``metrics_sketch_key``, ``metrics_sketch_agg`` and
``metrics_sketch_add``, migration 0011) in each hour and day rollup as ingestion stores samples;
a window's sketch is the sum of its buckets' sketches. :func:`key` mirrors the SQL for tests.

What a sketch answers, for n values merged:

* the k-th smallest value, within α relative of the true one (clamped to the window's exact
  minimum and maximum, which the rollups keep, so x₍₁₎ and x₍ₙ₎ are exact);
* a percentile the way ``numpy.percentile`` computes it (Hyndman & Fan type 7) from those
  estimated order statistics: within α of the exact percentile for values of one sign;
* the order-statistic interval of ``statistics.order_statistic_ranks``: its bounds are the
  estimated x₍ₗ₎ and x₍ᵤ₎, each within α of the exact ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
OFFSET = 1100
ZERO = 1e-9
# ln γ exactly as ``metrics_sketch_key`` divides by it: PostgreSQL computes ``ln(1.01 / 0.99)`` in
# exact decimal arithmetic and rounds once to a double; ``math.log(GAMMA)`` rounds 1.01, 0.99 and
# their quotient first and lands a few units in the last place away, which could move a value
# that sits on a bin's edge into the next bin.
_LN_GAMMA = 0.020000666706669522


def key(value: float) -> int:
    """The bin of ``value`` (what ``metrics_sketch_key`` computes in the database)."""
    magnitude = abs(value)
    if magnitude < ZERO:
        return 0
    k = math.ceil(math.log(magnitude) / _LN_GAMMA) + OFFSET
    return k if value > 0 else -k


def keys(values: np.ndarray) -> np.ndarray:
    """:func:`key` of every value at once (ingestion bins a whole batch this way).

    NumPy's ``log`` may differ from the C library's (which PostgreSQL and :func:`key` call) in
    the last bit; that can change a bin only where ``ln |v| / ln γ`` is a hair from a whole
    number, so those few values are binned by :func:`key` itself and the result is the
    database's, value for value."""
    magnitude = np.abs(values)
    ratio = np.log(np.maximum(magnitude, ZERO)) / _LN_GAMMA  # below ZERO: the zero bin, set below
    out = np.ceil(ratio)
    out += OFFSET
    out = np.where(values < 0, -out, out).astype(np.int64)
    out[magnitude < ZERO] = 0
    # ±1 lies on a bin's edge exactly (ln 1 is 0 in every C library), and counts and scores
    # send it often: its bin is already right.
    near = (np.abs(ratio - np.rint(ratio)) < 1e-9) & (magnitude != 1.0)
    for i in np.flatnonzero(near):
        out[i] = key(float(values[i]))
    return out


def value_of(k: int) -> float:
    """The representative value of bin ``k``: within α of every value the bin holds."""
    if k == 0:
        return 0.0
    v = 2 * GAMMA ** (abs(k) - OFFSET) / (GAMMA + 1)
    return v if k > 0 else -v


def _array(counts: Sequence[int | None]) -> np.ndarray:
    """Counts as an array; NULL elements (empty bins) are 0. The loaders replace NULLs in SQL
    (``array_replace``), so the fast path is the usual one."""
    try:
        return np.asarray(counts, dtype=np.int64)
    except TypeError:
        return np.fromiter((c or 0 for c in counts), dtype=np.int64, count=len(counts))


# PostgreSQL's binary array format (what ``array_send`` returns) for a one-dimensional int4
# array without NULLs: dimensions, has-nulls flag and element type (4 bytes each), the length and
# lower bound of its dimension, then each element as its byte length (4) and its big-endian value.
_SENT_HEADER = 20


def sent_part(data: bytes) -> tuple[int | None, np.ndarray]:
    """``(first bin key, counts)`` of a stored sketch read as ``array_send(array_replace(sketch,
    NULL, 0))``: the counts straight from the bytes, no Python object per bin. An empty sketch
    has no dimension and no first key."""
    if int.from_bytes(data[0:4], "big") == 0:
        return None, np.zeros(0, dtype=np.int64)
    lower = int.from_bytes(data[16:20], "big", signed=True)
    return lower, np.frombuffer(data, dtype=">i4", offset=_SENT_HEADER)[1::2].astype(np.int64)


class Sketch:
    """Counts per bin, merged from any number of buckets; answers order statistics."""

    def __init__(self) -> None:
        self.lower = 0
        self.counts = np.zeros(0, dtype=np.int64)

    @classmethod
    def of(cls, parts: Iterable[tuple[int | None, Sequence[int | None]]]) -> Sketch:
        """The sum of ``(lower bound, counts)`` parts, as read with
        ``SELECT array_lower(sketch, 1), sketch`` or :func:`sent_part` (NULL elements are empty
        bins, an empty sketch has no lower bound). The bounds are found first, so the counts are
        added into one array (a 90-day window merges about a hundred parts per criterion)."""
        parts = [(lower, counts) for lower, counts in parts if lower is not None and len(counts)]
        sketch = cls()
        if not parts:
            return sketch
        lower = min(first for first, _ in parts)
        upper = max(first + len(counts) for first, counts in parts)
        total = np.zeros(upper - lower, dtype=np.int64)
        for first, counts in parts:
            at = first - lower
            total[at : at + len(counts)] += _array(counts)
        sketch.lower, sketch.counts = lower, total
        return sketch

    @classmethod
    def of_values(cls, values: Iterable[float]) -> Sketch:
        """The sketch of raw values (tests, and what the database would build from them)."""
        keys = np.array([key(v) for v in values], dtype=np.int64)
        sketch = cls()
        if len(keys):
            lower = int(keys.min())
            sketch.add(lower, np.bincount(keys - lower).tolist())
        return sketch

    def add(self, lower: int, counts: Sequence[int | None]) -> None:
        """Add ``counts`` for the bins ``lower``, ``lower + 1``, …"""
        added = _array(counts)
        upper = lower + len(added)
        if not len(self.counts):
            self.lower, self.counts = lower, added
            return
        lo = min(self.lower, lower)
        hi = max(self.lower + len(self.counts), upper)
        if lo != self.lower or hi != self.lower + len(self.counts):
            grown = np.zeros(hi - lo, dtype=np.int64)
            grown[self.lower - lo : self.lower - lo + len(self.counts)] = self.counts
            self.lower, self.counts = lo, grown
        self.counts[lower - self.lower : upper - self.lower] += added

    def merge(self, other: Sketch) -> None:
        if len(other.counts):
            self.add(other.lower, other.counts.tolist())

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def order_statistics(
        self, ranks: Sequence[int], *, minimum: float | None = None, maximum: float | None = None
    ) -> list[float]:
        """Estimates of the 1-based ``ranks``-th smallest values (each within α relative).

        ``minimum`` / ``maximum`` (the exact extremes, from the rollups) clamp the estimates and
        make rank 1 and rank n exact.
        """
        n = self.n
        if not n:
            raise ValueError("An empty sketch has no order statistics.")
        cumulative = np.cumsum(self.counts)
        out = []
        for rank in ranks:
            if not 1 <= rank <= n:
                raise ValueError(f"Rank {rank} is outside 1..{n}.")
            if rank == 1 and minimum is not None:
                out.append(float(minimum))
                continue
            if rank == n and maximum is not None:
                out.append(float(maximum))
                continue
            index = int(np.searchsorted(cumulative, rank))  # first bin reaching the rank
            value = value_of(self.lower + index)
            if minimum is not None:
                value = max(value, minimum)
            if maximum is not None:
                value = min(value, maximum)
            out.append(value)
        return out

    def quantile(
        self, q: float, *, minimum: float | None = None, maximum: float | None = None
    ) -> float:
        """The ``q``-th percentile (0–100), linear interpolation between order statistics as
        ``numpy.percentile``'s default (Hyndman & Fan type 7)."""
        n = self.n
        h = (n - 1) * q / 100  # 0-based position
        j = math.floor(h)
        g = h - j
        ranks = [j + 1] if g == 0 or j + 2 > n else [j + 1, j + 2]
        values = self.order_statistics(ranks, minimum=minimum, maximum=maximum)
        if len(values) == 1:
            return values[0]
        return values[0] + g * (values[1] - values[0])
