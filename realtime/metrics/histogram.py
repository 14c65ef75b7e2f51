"""Latency histograms: fixed memory, O(1) record, percentiles within a chosen relative error.

Pure: no threads, no I/O, no clock reads (every ``now`` is a parameter; a
``now`` earlier than one already seen is taken as the latest one seen).

- :class:`LogHistogram`: HDR-style log-bucketed histogram over a fixed range
  (1 µs to 24 h by default) at 1 % relative error by default.
- :class:`RollingHistogram`: the last ``window`` seconds as a ring of histograms.
- :class:`BucketCounts`: a cumulative histogram at fixed bounds, for
  Prometheus' ``le`` buckets (no merge needed to export it).
- :class:`LatencySummary`: the percentiles the dashboard shows.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


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
    """Values of the last ``slices * slice_s`` seconds.

    Values go into the slice of their ``now``; a slice leaving the window is
    cleared and reused, so memory is ``slices + 1`` histograms whatever the
    rate.

    Raises:
        ValueError: ``slice_s`` is not positive or ``slices`` is below 1.
    """

    __slots__ = ("_latest", "_numbers", "_scratch", "_slices", "layout", "slice_s")

    def __init__(self, slice_s: float, slices: int, layout: HistogramLayout | None = None) -> None:
        if slice_s <= 0 or slices < 1:
            msg = f"need slice_s > 0 and slices >= 1, got {slice_s}, {slices}"
            raise ValueError(msg)
        self.layout = layout or HistogramLayout()
        self.slice_s = slice_s
        self._slices = [LogHistogram(self.layout) for _ in range(slices)]
        self._numbers = [-1] * slices
        self._latest = -math.inf
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

    def nbytes(self) -> int:
        return sum(h.nbytes() for h in (*self._slices, self._scratch))


class BucketCounts:
    """A cumulative histogram at fixed upper bounds, as Prometheus exports one.

    ``record_many`` sorts the values it places and searches each bound once;
    memory is one counter per bound. Counts only grow (nothing leaves the histogram), so
    they suit ``le`` buckets. Negative, NaN and infinite values are counted
    in :attr:`invalid` only.

    Raises:
        ValueError: ``bounds`` is empty, not ascending, or does not end at infinity.
    """

    __slots__ = ("_counts", "bounds", "count", "invalid", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        if not bounds or list(bounds) != sorted(set(bounds)) or bounds[-1] != math.inf:
            msg = f"bounds must ascend and end at infinity, got {bounds}"
            raise ValueError(msg)
        self.bounds = tuple(bounds)
        self._counts = [0] * len(bounds)
        self.count = 0
        self.sum = 0.0
        self.invalid = 0

    def record_many(self, values: Sequence[float], *, limit: int | None = None) -> None:
        """Count ``values``; with ``limit``, a systematic sample stands for them as in
        :meth:`LogHistogram.record_many` (``count`` and ``sum`` stay exact)."""
        if not values:
            return
        if not (min(values) >= 0 and sum(values) < math.inf):
            valid = [v for v in values if 0 <= v < math.inf]
            self.invalid += len(values) - len(valid)
            values = valid
            if not values:
                return
        stride = 1 if limit is None or len(values) <= limit else -(-len(values) // limit)
        picked = values[::stride] if stride > 1 else values
        counts, bounds = self._counts, self.bounds
        # One sort and a binary search per bound: cheaper than one search per value.
        ordered = sorted(picked)
        below = 0
        for index, bound in enumerate(bounds):
            upto = bisect.bisect_right(ordered, bound)
            counts[index] += (upto - below) * stride
            below = upto
            if below == len(ordered):
                break
        remainder = len(values) - stride * len(picked)
        if remainder:
            counts[bisect.bisect_left(bounds, picked[-1])] += remainder
        self.count += len(values)
        self.sum += sum(values)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(bound, count of values at most bound)`` for each bound, ascending."""
        return list(zip(self.bounds, itertools.accumulate(self._counts), strict=True))
