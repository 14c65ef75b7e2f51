"""Metrics cores: latency histograms, throughput history, regression detection, alerts.

Pure: no threads, no I/O, no clock reads. Every ``now`` is a parameter in
seconds on one monotonic clock chosen by the caller; a ``now`` earlier than one
already seen is taken as the latest one seen. Every structure has a fixed bound
chosen by its caller and a ``statistics()`` method saying how full it is: the
Elixir notifier this replaces grew its metric and alert lists without bound
until the process held 12 GB (PROTOCOLS.md §5).

- :class:`LogHistogram`: HDR-style log-bucketed histogram. O(1) record, fixed
  memory, percentiles within a relative error chosen by the caller (1 % by
  default) over a fixed range (1 µs to 24 h by default).
- :class:`RollingHistogram`: the last ``window`` seconds as a ring of
  histograms, plus a lifetime total for cumulative (Prometheus) exposition.
- :class:`ThroughputHistory`: per-second counts per series key for the last
  ``history_s`` seconds, at most ``max_series`` series (later keys fold into
  :data:`OTHER`).
- :class:`BoundedTotals`: running totals by key, at most ``capacity`` keys.
- :class:`RegressionDetector`: EWMA baseline + one-sided CUSUM with a ratio
  gate and hysteresis, on a per-interval value (p99 latency, throughput).
- :class:`AlertManager`: alerts by key with severity, first/last seen, count,
  resolution and notification cooldown; bounded active and resolved lists.

Series and counter keys use Prometheus' syntax so that labels travel inside a
plain ``str`` key of a :class:`~actors.protocol.StatsReport`:
``series_key("events_total", source="wanderer-kills", type="killmail")`` is
``events_total{source="wanderer-kills",type="killmail"}`` and
:func:`parse_series_key` reads it back.
"""

from __future__ import annotations

import collections
import math
import operator
import re
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

OTHER: Final = "other"
"""The label value (or key) that absorbs what no longer fits a bound."""

SeriesKey = tuple[str, str]
OTHER_SERIES: Final[SeriesKey] = (OTHER, OTHER)

# --- series keys ---------------------------------------------------------------------

_KEY = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def series_key(name: str, /, **labels: str) -> str:
    """``name{a="x",b="y"}`` with labels sorted by name; just ``name`` without labels.

    Raises:
        ValueError: ``name`` or a label name is not a Prometheus identifier.
    """
    if not _KEY.match(name) or "{" in name:
        msg = f"not a metric name: {name!r}"
        raise ValueError(msg)
    if not labels:
        return name
    parts = []
    for label, value in sorted(labels.items()):
        if not label.isidentifier():
            msg = f"not a label name: {label!r}"
            raise ValueError(msg)
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{label}="{escaped}"')
    return f"{name}{{{','.join(parts)}}}"


def parse_series_key(key: str) -> tuple[str, dict[str, str]] | None:
    """The name and labels of a :func:`series_key`; ``None`` if ``key`` is malformed."""
    found = _KEY.match(key)
    if found is None:
        return None
    name, body = found.group(1), found.group(2)
    labels: dict[str, str] = {}
    if body:
        position = 0
        while position < len(body):
            label = _LABEL.match(body, position)
            if label is None:
                return None
            raw = label.group(2)
            labels[label.group(1)] = re.sub(
                r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), raw
            )
            position = label.end()
    return name, labels


# --- histograms ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistogramLayout:
    """The buckets shared by histograms that can be merged.

    Bucket 0 holds values below ``lowest`` (zero included); bucket ``i >= 1``
    holds ``[lowest * g**(i-1), lowest * g**i)`` with ``g = (1 + precision)**2``,
    so the geometric middle of a bucket is within ``precision`` (relative) of
    any value in it; the last bucket holds everything at or above ``highest``.

    Raises:
        ValueError: ``0 < lowest < highest`` and ``0 < precision < 1`` do not hold.
    """

    lowest: float = 1e-6
    highest: float = 86_400.0
    precision: float = 0.01

    def __post_init__(self) -> None:
        if not (0 < self.lowest < self.highest and math.isfinite(self.highest)):
            msg = f"need 0 < lowest < highest, got {self.lowest}, {self.highest}"
            raise ValueError(msg)
        if not 0 < self.precision < 1:
            msg = f"precision must be within (0, 1), got {self.precision}"
            raise ValueError(msg)

    @property
    def growth(self) -> float:
        return (1 + self.precision) ** 2

    @property
    def buckets(self) -> int:
        return math.ceil(math.log(self.highest / self.lowest) / math.log(self.growth)) + 2

    @property
    def overflow(self) -> int:
        """The index of the bucket of values at or above ``highest``."""
        return self.buckets - 1

    def lower_bound(self, index: int) -> float:
        return 0.0 if index == 0 else self.lowest * self.growth ** (index - 1)

    def representative(self, index: int) -> float:
        """The value reported for a sample in bucket ``index``."""
        if index == 0:
            return self.lowest / 2
        return self.lowest * self.growth ** (index - 1) * (1 + self.precision)


class LogHistogram:
    """Counts of non-negative values (seconds) in :class:`HistogramLayout` buckets.

    ``record`` is O(1) and allocation-free; memory is one 8-byte counter per
    bucket (1,270 buckets, 10 KB, for the default layout). Percentiles are
    nearest-rank over the buckets, so the reported value is within the layout's
    precision of the exact nearest-rank percentile, and always within the
    observed ``[min, max]``; a percentile that falls among the values below
    ``lowest`` is reported as the smallest value seen, one among those at or
    above ``highest`` as the largest. Negative, NaN and infinite values are not recorded
    and are counted in :attr:`invalid`.
    """

    __slots__ = (
        "_counts",
        "_inverse_log",
        "_offset",
        "count",
        "invalid",
        "layout",
        "max",
        "min",
        "sum",
    )

    def __init__(self, layout: HistogramLayout | None = None) -> None:
        self.layout = layout or HistogramLayout()
        self._counts = array("q", bytes(8 * self.layout.buckets))
        self._inverse_log = 1 / math.log(self.layout.growth)
        # index = int(log(v) * _inverse_log + _offset) for lowest <= v < highest
        self._offset = 1 - math.log(self.layout.lowest) * self._inverse_log
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.invalid = 0

    def _index(self, value: float) -> int:
        layout = self.layout
        if value < layout.lowest:
            return 0
        if value >= layout.highest:
            return layout.overflow
        # The very expression record_many uses, so that a value lands in the same
        # bucket either way (and _used() covers every count).
        index = int(math.log(value) * self._inverse_log + self._offset)
        return min(max(index, 0), layout.overflow)

    def record(self, value: float) -> None:
        """Count one value."""
        if not 0 <= value < math.inf:
            self.invalid += 1
            return
        self._counts[self._index(value)] += 1
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def record_many(self, values: Sequence[float], *, limit: int | None = None) -> None:
        """Count each of ``values`` (far faster than calling :meth:`record` for each).

        With ``limit``, at most that many values are placed in buckets: every
        ``k``-th value (``k = ceil(len / limit)``) stands for ``k`` values, the
        last one for what remains. ``count``, ``sum``, ``min`` and ``max``
        stay exact; the distribution becomes a systematic sample, which keeps
        the cost of a large batch bounded.
        """
        if not values:
            return
        low, high = min(values), max(values)
        total = sum(values)
        # A NaN makes the sum NaN and an infinity makes it infinite: both fail here.
        if not (low >= 0 and total < math.inf):
            for value in values:
                self.record(value)
            return
        stride = 1 if limit is None or len(values) <= limit else -(-len(values) // limit)
        picked = values[::stride] if stride > 1 else values
        counts = self._counts
        layout = self.layout
        if layout.lowest <= low and high < layout.highest:
            log, scale, offset = math.log, self._inverse_log, self._offset
            for value in picked:
                counts[int(log(value) * scale + offset)] += stride
        else:
            index = self._index
            for value in picked:
                counts[index(value)] += stride
        remainder = len(values) - stride * len(picked)
        if remainder:
            counts[self._index(picked[-1])] += remainder
        self.count += len(values)
        self.sum += total
        self.min = min(self.min, low)
        self.max = max(self.max, high)

    def _used(self) -> tuple[int, int]:
        """The range of buckets that can hold counts: those of the minimum to the maximum
        (a bucket's index grows with its values), so that a merge, a clear or a
        percentile walks a few hundred buckets, not all."""
        if not self.count:
            return 0, 0
        return self._index(self.min), self._index(self.max) + 1

    def merge(self, other: LogHistogram) -> None:
        """Add ``other``'s counts to this one.

        Raises:
            ValueError: the layouts differ.
        """
        if other.layout != self.layout:
            msg = "cannot merge histograms with different layouts"
            raise ValueError(msg)
        if not other.count:
            return
        first, last = other._used()
        counts = self._counts
        counts[first:last] = array(
            "q", map(operator.add, counts[first:last], other._counts[first:last])
        )
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.invalid += other.invalid

    def clear(self) -> None:
        """Forget every value (the memory is kept)."""
        if self.count:
            first, last = self._used()
            self._counts[first:last] = array("q", bytes(8 * (last - first)))
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.invalid = 0

    def percentile(self, fraction: float) -> float | None:
        """The nearest-rank ``fraction`` percentile (0.99 for p99); ``None`` when empty."""
        return self.percentiles((fraction,))[0]

    def percentiles(self, fractions: Sequence[float]) -> list[float | None]:
        """Several percentiles in one pass over the buckets.

        Raises:
            ValueError: a fraction is outside ``[0, 1]``.
        """
        if any(not 0 <= f <= 1 for f in fractions):
            msg = f"percentile fractions must be within [0, 1]: {fractions}"
            raise ValueError(msg)
        if not self.count:
            return [None] * len(fractions)
        order = sorted(range(len(fractions)), key=lambda i: fractions[i])
        ranks = [max(1, math.ceil(fractions[i] * self.count)) for i in order]
        results: list[float | None] = [None] * len(fractions)
        seen = 0
        position = 0
        first, last = self._used()
        for index in range(first, last):
            count = self._counts[index]
            if not count:
                continue
            seen += count
            while position < len(ranks) and ranks[position] <= seen:
                if index == 0:
                    value = self.min
                elif index == self.layout.overflow:
                    value = self.max
                else:
                    value = self.layout.representative(index)
                results[order[position]] = min(max(value, self.min), self.max)
                position += 1
            if position == len(ranks):
                break
        return results

    def cumulative(self, bounds: Sequence[float]) -> list[int]:
        """For each of the ascending ``bounds``, the count of values at most about it.

        A bucket counts under a bound when its representative value does, so
        the split is exact to the layout's precision and the counts only ever
        grow as values are recorded (they suit Prometheus ``le`` buckets).
        """
        cuts = [self._cut(bound) for bound in bounds]
        counts = self._counts
        results = []
        total = 0
        previous = 0
        for cut in cuts:
            total += sum(counts[previous:cut])
            previous = max(previous, cut)
            results.append(total)
        return results

    def _cut(self, bound: float) -> int:
        """The number of leading buckets whose representative is at most ``bound``."""
        if bound == math.inf:
            return len(self._counts)
        cut = self._index(max(bound, 0.0))
        while cut < len(self._counts) and self.layout.representative(cut) <= bound:
            cut += 1
        return cut

    def buckets_used(self) -> int:
        """How many buckets hold at least one value."""
        return sum(1 for count in self._counts if count)

    def nbytes(self) -> int:
        """Bytes held by the counters (fixed by the layout)."""
        return self._counts.itemsize * len(self._counts)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles of a histogram, in seconds (``None`` when it is empty)."""

    count: int
    mean_s: float | None
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None

    @classmethod
    def of(cls, histogram: LogHistogram) -> LatencySummary:
        p50, p95, p99 = histogram.percentiles((0.5, 0.95, 0.99))
        count = histogram.count
        return cls(
            count=count,
            mean_s=histogram.sum / count if count else None,
            p50_s=p50,
            p95_s=p95,
            p99_s=p99,
            max_s=histogram.max if count else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean_s": self.mean_s,
            "p50_s": self.p50_s,
            "p95_s": self.p95_s,
            "p99_s": self.p99_s,
            "max_s": self.max_s,
        }


class RollingHistogram:
    """Values of the last ``slices * slice_s`` seconds, and of all time.

    Values go into the slice of their ``now``; a slice leaving the window is
    folded into the lifetime histogram and reused, so memory is
    ``slices + 2`` histograms whatever the rate.

    Raises:
        ValueError: ``slice_s`` is not positive or ``slices`` is below 1.
    """

    __slots__ = ("_latest", "_numbers", "_scratch", "_slices", "layout", "lifetime", "slice_s")

    def __init__(self, slice_s: float, slices: int, layout: HistogramLayout | None = None) -> None:
        if slice_s <= 0 or slices < 1:
            msg = f"need slice_s > 0 and slices >= 1, got {slice_s}, {slices}"
            raise ValueError(msg)
        self.layout = layout or HistogramLayout()
        self.slice_s = slice_s
        self._slices = [LogHistogram(self.layout) for _ in range(slices)]
        self._numbers = [-1] * slices
        self._latest = -math.inf
        self.lifetime = LogHistogram(self.layout)
        self._scratch = LogHistogram(self.layout)

    @property
    def window_s(self) -> float:
        return self.slice_s * len(self._slices)

    def _number(self, now: float) -> int:
        self._latest = max(self._latest, now)
        return math.floor(self._latest / self.slice_s)

    def record(self, value: float, now: float) -> None:
        self.record_many((value,), now)

    def record_many(self, values: Sequence[float], now: float, *, limit: int | None = None) -> None:
        """Count ``values`` at ``now``; see :meth:`LogHistogram.record_many` for ``limit``."""
        number = self._number(now)
        position = number % len(self._slices)
        held = self._slices[position]
        if self._numbers[position] != number:
            self.lifetime.merge(held)
            held.clear()
            self._numbers[position] = number
        held.record_many(values, limit=limit)

    def window(self, now: float) -> LogHistogram:
        """The values of the window ending at ``now``, merged.

        The result is a scratch histogram owned by this object, valid until
        the next call; copy what you need from it.
        """
        scratch = self._scratch
        scratch.clear()
        oldest = self._number(now) - len(self._slices) + 1
        for number, held in zip(self._numbers, self._slices, strict=True):
            if number >= oldest:
                scratch.merge(held)
        return scratch

    def total(self) -> LogHistogram:
        """Everything ever recorded (lifetime + the slices), as a scratch histogram."""
        scratch = self._scratch
        scratch.clear()
        scratch.merge(self.lifetime)
        for held in self._slices:
            scratch.merge(held)
        return scratch

    def nbytes(self) -> int:
        return sum(h.nbytes() for h in (*self._slices, self.lifetime, self._scratch))


# --- throughput ------------------------------------------------------------------------------


class _Ring:
    """Per-second amounts of one series over a sliding window of whole seconds."""

    __slots__ = ("_head", "_values")

    def __init__(self, seconds: int) -> None:
        self._values = array("d", bytes(8 * seconds))
        self._head = -1  # the newest second held

    def _advance(self, second: int) -> None:
        size = len(self._values)
        if second <= self._head:
            return
        gap = second - self._head
        if self._head < 0 or gap >= size:
            self._values[:] = array("d", bytes(8 * size))
        else:
            for moved in range(self._head + 1, second + 1):
                self._values[moved % size] = 0.0
        self._head = second

    def add(self, second: int, amount: float) -> None:
        """Add to the slot of ``second``, the newest second (the clock never goes back)."""
        self._advance(second)
        self._values[second % len(self._values)] += amount

    def values(self, first: int, last: int) -> list[float]:
        """The amounts of seconds ``first..last`` (inclusive); zero outside the data."""
        self._advance(last)
        size = len(self._values)
        held_first = max(first, self._head - size + 1)
        held_last = min(last, self._head)
        if held_first > held_last:
            return [0.0] * (last - first + 1)
        start, stop = held_first % size, held_last % size
        if start <= stop:
            held = self._values[start : stop + 1].tolist()
        else:  # the window wraps around the end of the ring
            held = self._values[start:].tolist() + self._values[: stop + 1].tolist()
        return [0.0] * (held_first - first) + held + [0.0] * (last - held_last)


class ThroughputHistory:
    """Per-second counts per series over the last ``history_s`` seconds.

    A series is keyed by ``(source, type)``. At most ``max_series`` series are
    kept, :data:`OTHER_SERIES` included: a new key arriving when the table is
    full is counted under ``("other", "other")`` (see :attr:`folded`). Counts
    are also totalled per series since the start (:meth:`totals`).

    Memory is ``8 * history_s`` bytes per series (28 KB for an hour).

    Raises:
        ValueError: ``history_s`` or ``max_series`` is below 2.
    """

    def __init__(self, history_s: int, max_series: int) -> None:
        if history_s < 2 or max_series < 2:
            msg = f"need history_s >= 2 and max_series >= 2, got {history_s}, {max_series}"
            raise ValueError(msg)
        self.history_s = history_s
        self.max_series = max_series
        self._rings: dict[SeriesKey, _Ring] = {}
        self._totals: dict[SeriesKey, float] = {}
        self._latest = -math.inf
        self.folded = 0

    def _second(self, now: float) -> int:
        self._latest = max(self._latest, now)
        return math.floor(self._latest)

    def add(self, key: SeriesKey, count: float, now: float) -> None:
        """Count ``count`` for ``key`` at ``now``."""
        second = self._second(now)
        ring = self._rings.get(key)
        if ring is None:
            if len(self._rings) >= self.max_series - 1 and key != OTHER_SERIES:
                self.folded += 1
                key = OTHER_SERIES
            ring = self._rings.get(key)
            if ring is None:
                ring = self._rings[key] = _Ring(self.history_s)
        ring.add(second, count)
        self._totals[key] = self._totals.get(key, 0.0) + count

    def series(self) -> list[SeriesKey]:
        """The series held, sorted."""
        return sorted(self._rings)

    def recent(self, key: SeriesKey | None, seconds: int, now: float) -> list[float]:
        """Per-second counts of the last ``seconds`` complete seconds before ``now``,
        oldest first; ``key=None`` sums every series."""
        last = self._second(now) - 1
        seconds = max(0, min(seconds, self.history_s - 1))
        first = last - seconds + 1
        rings = list(self._rings.values()) if key is None else [self._rings.get(key)]
        summed = [0.0] * seconds
        for ring in rings:
            if ring is not None:
                summed = list(map(operator.add, summed, ring.values(first, last)))
        return summed

    def total(self, key: SeriesKey | None, seconds: int, now: float) -> float:
        """The count over the last ``seconds`` complete seconds before ``now``."""
        return sum(self.recent(key, seconds, now))

    def rate(self, key: SeriesKey | None, seconds: int, now: float) -> float:
        """Mean count per second over the last ``seconds`` complete seconds."""
        seconds = max(0, min(seconds, self.history_s - 1))
        return self.total(key, seconds, now) / seconds if seconds else 0.0

    def totals(self) -> dict[SeriesKey, float]:
        """Counts per series since the start (folded keys under ``other``)."""
        return dict(self._totals)

    def statistics(self) -> dict[str, int]:
        return {
            "series": len(self._rings),
            "series_capacity": self.max_series,
            "seconds": self.history_s,
            "folded": self.folded,
        }


class BoundedTotals:
    """Running totals by string key; at most ``capacity`` keys, the rest under ``other``.

    Raises:
        ValueError: ``capacity`` is below 2.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            msg = f"capacity must be at least 2, got {capacity}"
            raise ValueError(msg)
        self.capacity = capacity
        self._totals: dict[str, float] = {}
        self.folded = 0

    def add(self, key: str, amount: float) -> None:
        if key not in self._totals and len(self._totals) >= self.capacity - 1 and key != OTHER:
            self.folded += 1
            key = OTHER
        self._totals[key] = self._totals.get(key, 0.0) + amount

    def set(self, key: str, value: float) -> None:
        """Replace the value of ``key`` (a gauge), under the same bound."""
        if key not in self._totals and len(self._totals) >= self.capacity - 1 and key != OTHER:
            self.folded += 1
            key = OTHER
        self._totals[key] = value

    def items(self) -> list[tuple[str, float]]:
        return sorted(self._totals.items())

    def get(self, key: str, default: float = 0.0) -> float:
        return self._totals.get(key, default)

    def __len__(self) -> int:
        return len(self._totals)

    def statistics(self) -> dict[str, int]:
        return {"keys": len(self._totals), "capacity": self.capacity, "folded": self.folded}


# --- regression detection ----------------------------------------------------------------------

Direction = Literal["up", "down"]


@dataclass(frozen=True, slots=True)
class RegressionSettings:
    """How a :class:`RegressionDetector` judges a series of per-interval values.

    Attributes:
        direction: ``up`` when larger is worse (latency), ``down`` when
            smaller is worse (throughput).
        ratio: the smallest sustained change worth an alarm: the recent level
            must be at least ``ratio`` times the baseline (``up``) or at most
            ``1 / ratio`` of it (``down``).
        warmup: intervals learned before any alarm is possible.
        baseline_alpha: EWMA weight of a new interval in the baseline (mean
            and variance of the log value); ``0.05`` is a memory of about 20
            intervals.
        recent_alpha: EWMA weight of a new interval in the recent level.
        allowance: CUSUM allowance ``k``, in baseline standard deviations.
        threshold: CUSUM decision threshold ``h``, in standard deviations.
        min_sigma: floor of the baseline's standard deviation (log units), so
            that a very steady baseline does not make every wobble significant.
        floor: values below it count as it (a zero throughput has no log).
        min_baseline: no alarm while the baseline level is below this (too
            little traffic to judge a drop, or latencies too small to matter).
        clear_after: consecutive intervals with the recent level back below
            the halfway point (``sqrt(ratio)`` times the baseline) to clear an
            alarm: the gap between raise and clear levels is the hysteresis.
        accept_after: intervals an alarm may last before the new level is
            accepted as the baseline and the alarm clears (a permanent change
            is reported, then learned, not shown for months).
        settle_after: intervals a significant shift smaller than ``ratio``
            freezes the baseline before it is accepted as the new baseline.
    """

    direction: Direction = "up"
    ratio: float = 2.0
    warmup: int = 20
    baseline_alpha: float = 0.05
    recent_alpha: float = 0.3
    allowance: float = 0.5
    threshold: float = 5.0
    min_sigma: float = 0.05
    floor: float = 1e-6
    min_baseline: float = 0.0
    clear_after: int = 3
    accept_after: int = 360
    settle_after: int = 20

    def __post_init__(self) -> None:
        if self.ratio <= 1:
            msg = f"ratio must be above 1, got {self.ratio}"
            raise ValueError(msg)
        if not (0 < self.baseline_alpha <= 1 and 0 < self.recent_alpha <= 1):
            msg = "the EWMA weights must be within (0, 1]"
            raise ValueError(msg)
        counts = (self.clear_after, self.accept_after, self.settle_after)
        if self.floor <= 0 or self.min_sigma <= 0 or min(counts) < 1:
            msg = "floor, min_sigma, clear_after, accept_after and settle_after must be positive"
            raise ValueError(msg)


RegressionChange = Literal["raised", "cleared", "accepted"]


@dataclass(frozen=True, slots=True)
class RegressionState:
    """A detector's view, for display. Levels are in the series' own unit."""

    intervals: int
    baseline: float | None
    recent: float | None
    last: float | None
    cusum: float
    alarm: bool
    ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "intervals": self.intervals,
            "baseline": self.baseline,
            "recent": self.recent,
            "last": self.last,
            "cusum": round(self.cusum, 3),
            "alarm": self.alarm,
            "ratio": self.ratio,
        }


class RegressionDetector:
    """Flags a sustained shift of a per-interval value away from its baseline.

    Method (all in log space, so that a shift is a ratio and a latency that
    doubles weighs the same at 10 ms as at 10 s; ``down`` flips the sign so
    that "worse" is always "up"):

    1. Baseline: EWMA mean and variance of ``x = log(value)``, learned from
       every interval in control; during warm-up the weight is
       ``max(alpha, 1/n)`` (a plain mean), afterwards each value is clipped to
       the baseline +/- 3 sigma before learning so that one outlier cannot inflate
       the noise estimate. The baseline freezes while the CUSUM signals a
       shift and while an alarm is raised, so that a regression is not learned
       as normal while the recent level catches up with it.
    2. Significance: a one-sided tabular CUSUM (Page, 1954) of the standardised
       deviation ``z = (x - mean) / max(sigma, min_sigma)``:
       ``S = max(0, S + z - k)``, significant when ``S > h``.
    3. Size: the recent level (a fast EWMA of ``x``) must be at least ``ratio``
       times the baseline. CUSUM alone flags small shifts that are real but
       harmless (and would fire on any busy day); the ratio gate limits alarms
       to shifts an operator cares about.
    4. Hysteresis: an alarm clears once the recent level has stayed below the
       halfway point (``sqrt(ratio)``) for ``clear_after`` intervals, or after
       ``accept_after`` intervals (the new level becomes the baseline). A
       significant shift that stays below ``ratio`` for ``settle_after``
       intervals becomes the baseline without an alarm.

    False alarms: on stationary Gaussian noise CUSUM with ``k = 0.5, h = 5``
    has an in-control average run length of about 930 intervals; the ratio
    gate must also hold, which needs the fast EWMA (standard deviation
    ``sigma * sqrt(a / (2 - a))``, 0.42 sigma for ``a = 0.3``) to sit
    ``log(ratio)`` above the mean: for ``ratio = 2`` and a p99 that varies by
    +/-30 % (sigma = 0.26 in log) that is a 6-sigma event, so in practice noise
    never raises an alarm unless the series varies by a factor of two from one
    interval to the next (the tests run 50,000 noisy intervals without one).
    Detection: a 3-fold shift raises an alarm within 3 to 5 intervals (the
    fast EWMA catching up); shifts below ``ratio`` freeze the baseline for
    ``settle_after`` intervals, become the new baseline, and never raise one.
    """

    def __init__(self, settings: RegressionSettings | None = None) -> None:
        self.settings = settings or RegressionSettings()
        self._sign = 1.0 if self.settings.direction == "up" else -1.0
        minimum = self.settings.min_baseline
        self._log_min_baseline = math.log(minimum) if minimum > 0 else -math.inf
        self._intervals = 0
        self._mean = 0.0
        self._variance = 0.0
        self._recent = 0.0
        self._last: float | None = None
        self._cusum = 0.0
        self._alarm = False
        self._calm = 0
        self._alarmed_for = 0
        self._suspect = 0

    @property
    def alarm(self) -> bool:
        return self._alarm

    def update(self, value: float) -> RegressionChange | None:
        """Take one interval's value; what changed, if anything.

        Non-finite or negative values are ignored (``None``).
        """
        if not 0 <= value < math.inf:
            return None
        s = self.settings
        self._last = value
        x = self._sign * math.log(max(value, s.floor))
        self._intervals += 1
        if self._intervals == 1:
            self._mean = self._recent = x
            return None
        sigma = max(math.sqrt(self._variance), s.min_sigma)
        self._recent += s.recent_alpha * (x - self._recent)
        shift = self._recent - self._mean
        if self._alarm:
            return self._while_alarmed(shift)
        armed = self._intervals > s.warmup and self._sign * self._mean >= self._log_min_baseline
        if armed:
            self._cusum = max(0.0, self._cusum + (x - self._mean) / sigma - s.allowance)
        if not armed or self._cusum <= s.threshold:
            self._suspect = 0
            self._learn(x, sigma)
            return None
        return self._while_suspected(shift)

    def _while_suspected(self, shift: float) -> RegressionChange | None:
        s = self.settings
        if shift >= math.log(s.ratio):
            self._alarm = True
            self._calm = 0
            self._alarmed_for = 0
            self._suspect = 0
            return "raised"
        self._suspect += 1
        if self._suspect >= s.settle_after:
            self._mean = self._recent
            self._cusum = 0.0
            self._suspect = 0
        return None

    def _while_alarmed(self, shift: float) -> RegressionChange | None:
        s = self.settings
        self._alarmed_for += 1
        self._calm = self._calm + 1 if shift < math.log(s.ratio) / 2 else 0
        if self._calm >= s.clear_after:
            self._alarm = False
            self._cusum = 0.0
            return "cleared"
        if self._alarmed_for >= s.accept_after:
            self._alarm = False
            self._cusum = 0.0
            self._mean = self._recent
            return "accepted"
        return None

    def _learn(self, x: float, sigma: float) -> None:
        s = self.settings
        if self._intervals <= s.warmup:
            alpha = max(s.baseline_alpha, 1 / self._intervals)
        else:
            alpha = s.baseline_alpha
            x = min(max(x, self._mean - 3 * sigma), self._mean + 3 * sigma)
        difference = x - self._mean
        increment = alpha * difference
        self._mean += increment
        self._variance = (1 - alpha) * (self._variance + difference * increment)

    def _baseline_level(self) -> float:
        return math.exp(self._sign * self._mean)

    def state(self) -> RegressionState:
        if not self._intervals:
            return RegressionState(0, None, None, None, 0.0, alarm=False, ratio=None)
        baseline = self._baseline_level()
        recent = math.exp(self._sign * self._recent)
        return RegressionState(
            intervals=self._intervals,
            baseline=baseline,
            recent=recent,
            last=self._last,
            cusum=self._cusum,
            alarm=self._alarm,
            ratio=recent / baseline if baseline > 0 else None,
        )


# --- alerts --------------------------------------------------------------------------------

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: Final[Mapping[Severity, int]] = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, active or resolved.

    Attributes:
        key: what it is about, stable across occurrences (``connection:kills``).
        count: how many times it was raised, re-raises after a short
            resolution (within the cooldown) included.
        resolved_at: ``None`` while active.
        notified: its raise was announced (see :class:`AlertManager`).
    """

    key: str
    severity: Severity
    message: str
    first_seen: float
    last_seen: float
    count: int
    resolved_at: float | None = None
    notified: bool = False

    @property
    def active(self) -> bool:
        return self.resolved_at is None

    def to_dict(self, clock_offset: float = 0.0) -> dict[str, Any]:
        """As JSON; ``clock_offset`` is added to every time (monotonic to wall clock)."""
        return {
            "key": self.key,
            "severity": self.severity,
            "message": self.message,
            "first_seen": self.first_seen + clock_offset,
            "last_seen": self.last_seen + clock_offset,
            "count": self.count,
            "active": self.active,
            "resolved_at": None if self.resolved_at is None else self.resolved_at + clock_offset,
        }


NoticeKind = Literal["raised", "escalated", "resolved"]


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth announcing (e.g. posting to Discord)."""

    kind: NoticeKind
    alert: Alert


class _Record:
    """An active alert, updated in place on every refresh (cheaper than a frozen copy)."""

    __slots__ = ("count", "first_seen", "key", "last_seen", "message", "notified", "severity")

    def __init__(
        self,
        key: str,
        severity: Severity,
        message: str,
        first_seen: float,
        count: int,
        *,
        notified: bool,
    ) -> None:
        self.key = key
        self.severity: Severity = severity
        self.message = message
        self.first_seen = first_seen
        self.last_seen = first_seen
        self.count = count
        self.notified = notified

    def view(self, resolved_at: float | None = None) -> Alert:
        return Alert(
            self.key,
            self.severity,
            self.message,
            self.first_seen,
            self.last_seen,
            self.count,
            resolved_at,
            notified=self.notified,
        )


class AlertManager:
    """Active alerts by key, and a bounded list of recently resolved ones.

    Notices (what to announce) follow these rules, so that a flapping
    condition cannot flood a channel:

    - raising an inactive key announces ``raised``, unless the key was
      resolved less than ``cooldown_s`` ago: then the old alert is revived
      silently (same ``first_seen``, ``count + 1``) and its later resolution is
      silent too;
    - raising an active key with a higher severity announces ``escalated``;
      otherwise it only updates ``last_seen`` and the message;
    - resolving announces ``resolved`` only if the raise was announced.

    Bounds: at most ``max_active`` active alerts. A new key beyond that evicts
    the least severe, least recently seen active alert if the new one is more
    severe (the evicted one is resolved with ``evicted`` in its message);
    otherwise the new alert is dropped and counted in :attr:`dropped`. At most
    ``history`` resolved alerts are kept (the oldest go first), and the
    cooldown remembers at most ``history`` resolution times.

    Raises:
        ValueError: a bound below 1 or a negative cooldown.
    """

    def __init__(self, *, max_active: int, history: int, cooldown_s: float) -> None:
        if max_active < 1 or history < 1 or cooldown_s < 0:
            msg = "need max_active >= 1, history >= 1 and cooldown_s >= 0"
            raise ValueError(msg)
        self.max_active = max_active
        self.history = history
        self.cooldown_s = cooldown_s
        self._active: dict[str, _Record] = {}
        self._resolved: collections.deque[Alert] = collections.deque(maxlen=history)
        self._resolved_at: collections.OrderedDict[str, Alert] = collections.OrderedDict()
        self._latest = -math.inf
        self._by_rank = [0] * len(SEVERITY_RANK)
        self.dropped = 0
        self.evicted = 0

    def _clock(self, now: float) -> float:
        self._latest = max(self._latest, now)
        return self._latest

    def raise_alert(self, key: str, severity: Severity, message: str, now: float) -> Notice | None:
        """Raise (or refresh) ``key``; the notice to announce, if any."""
        now = self._clock(now)
        current = self._active.get(key)
        if current is not None:
            current.last_seen = now
            current.message = message
            old_rank, rank = SEVERITY_RANK[current.severity], SEVERITY_RANK[severity]
            self._by_rank[old_rank] -= 1
            self._by_rank[rank] += 1
            current.severity = severity
            if rank <= old_rank:
                return None
            current.count += 1
            current.notified = True
            return Notice("escalated", current.view())
        if len(self._active) >= self.max_active and not self._make_room(severity, now):
            self.dropped += 1
            return None
        previous = self._resolved_at.get(key)
        if (
            previous is not None
            and previous.resolved_at is not None
            and now - previous.resolved_at < self.cooldown_s
        ):
            revived = _Record(
                key, severity, message, previous.first_seen, previous.count + 1, notified=False
            )
            revived.last_seen = now
            self._active[key] = revived
            self._by_rank[SEVERITY_RANK[severity]] += 1
            return None
        record = _Record(key, severity, message, now, 1, notified=True)
        self._active[key] = record
        self._by_rank[SEVERITY_RANK[severity]] += 1
        return Notice("raised", record.view())

    def _make_room(self, severity: Severity, now: float) -> bool:
        rank = SEVERITY_RANK[severity]
        if not any(self._by_rank[:rank]):
            return False  # nothing active is less severe (and no scan on this flooded path)
        weakest = min(self._active.values(), key=lambda a: (SEVERITY_RANK[a.severity], a.last_seen))
        if rank <= SEVERITY_RANK[weakest.severity]:
            return False
        self.evicted += 1
        weakest.message = f"{weakest.message} (evicted: too many active alerts)"
        self._retire(weakest, now)
        return True

    def resolve(self, key: str, now: float) -> Notice | None:
        """Resolve ``key`` if it is active; the notice to announce, if any."""
        now = self._clock(now)
        current = self._active.get(key)
        if current is None:
            return None
        resolved = self._retire(current, now)
        return Notice("resolved", resolved) if resolved.notified else None

    def _retire(self, record: _Record, now: float) -> Alert:
        del self._active[record.key]
        self._by_rank[SEVERITY_RANK[record.severity]] -= 1
        resolved = record.view(resolved_at=now)
        self._resolved.append(resolved)
        resolutions = self._resolved_at
        resolutions[record.key] = resolved
        resolutions.move_to_end(record.key)
        if len(resolutions) > self.history:
            resolutions.popitem(last=False)
        return resolved

    def sync(
        self, prefix: str, conditions: Mapping[str, tuple[Severity, str]], now: float
    ) -> list[Notice]:
        """Make the active alerts whose key starts with ``prefix`` match ``conditions``.

        Every key in ``conditions`` (``key -> (severity, message)``, each key
        starting with ``prefix``) is raised; every active key with the prefix
        that is not in ``conditions`` is resolved.

        Raises:
            ValueError: a condition's key does not start with ``prefix``.
        """
        notices: list[Notice] = []
        for key, (severity, message) in conditions.items():
            if not key.startswith(prefix):
                msg = f"condition {key!r} does not start with {prefix!r}"
                raise ValueError(msg)
            notice = self.raise_alert(key, severity, message, now)
            if notice is not None:
                notices.append(notice)
        for key in [k for k in self._active if k.startswith(prefix) and k not in conditions]:
            notice = self.resolve(key, now)
            if notice is not None:
                notices.append(notice)
        return notices

    def active(self) -> list[Alert]:
        """Active alerts, most severe first, then oldest first."""
        records = sorted(
            self._active.values(), key=lambda a: (-SEVERITY_RANK[a.severity], a.first_seen, a.key)
        )
        return [record.view() for record in records]

    def resolved(self) -> list[Alert]:
        """Recently resolved alerts, newest first."""
        return list(reversed(self._resolved))

    def statistics(self) -> dict[str, int]:
        return {
            "active": len(self._active),
            "active_capacity": self.max_active,
            "resolved": len(self._resolved),
            "resolved_capacity": self.history,
            "cooldown_keys": len(self._resolved_at),
            "dropped": self.dropped,
            "evicted": self.evicted,
        }
