"""Per-second counts per series over a sliding history, and bounded running totals.

Pure: no threads, no I/O, no clock reads (every ``now`` is a parameter; a
``now`` earlier than one already seen is taken as the latest one seen).

- :class:`ThroughputHistory`: per-second counts per series key for the last
  ``history_s`` seconds, at most ``max_series`` series (later keys fold into
  :data:`~realtime.metrics.keys.OTHER_SERIES`).
- :class:`BoundedTotals`: running totals by key, at most ``capacity`` keys.
"""

from __future__ import annotations

import math
import operator
from array import array

from realtime.metrics.keys import OTHER, OTHER_SERIES, SeriesKey


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
