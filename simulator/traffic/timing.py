"""When traffic happens and how its times are written.

:class:`Schedule` says how many events are due (a Poisson stream plus
bursts); :func:`iso_seconds`, :func:`iso_micros` and :func:`parse_iso` write
and read times the way ESI and Elixir write them.
"""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime


class Schedule:
    """How many events are due at a given time: a Poisson stream plus periodic bursts.

    Arrivals follow a Poisson process of ``rate_per_s``; every ``burst_every_s``
    (jittered between half and one and a half times that) ``burst_size`` more
    are due at once. The first :meth:`due` call starts the schedule and returns
    0. A clock that jumps far ahead does not make the schedule catch up without
    bound: at most ``max_due`` arrivals are returned by one call and the rest of
    the gap is skipped. A clock that goes backwards yields 0.

    Raises:
        ValueError: a negative rate or burst size, a non-positive burst interval,
            or ``max_due`` below 1.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst_every_s: float | None = None,
        burst_size: int = 0,
        seed: int = 0,
        *,
        max_due: int = 10_000,
    ) -> None:
        if rate_per_s < 0 or burst_size < 0 or max_due < 1:
            msg = f"invalid schedule: rate {rate_per_s}, burst size {burst_size}, max_due {max_due}"
            raise ValueError(msg)
        if burst_every_s is not None and burst_every_s <= 0:
            msg = f"burst_every_s must be positive, not {burst_every_s}"
            raise ValueError(msg)
        self._rate = rate_per_s
        self._burst_every = burst_every_s
        self._burst_size = burst_size
        self._max_due = max_due
        self._rng = random.Random(seed)
        self._last: float | None = None
        self._next_arrival = math.inf
        self._next_burst = math.inf

    def due(self, now: float) -> int:
        """How many events to emit at ``now`` (Unix or monotonic seconds, consistently)."""
        if self._last is None:
            self._last = now
            self._next_arrival = now + self._gap()
            if self._burst_every is not None:
                self._next_burst = now + self._burst_interval()
            return 0
        if now < self._last:
            return 0
        self._last = now
        count = 0
        while self._next_arrival <= now and count < self._max_due:
            count += 1
            self._next_arrival += self._gap()
        if self._next_arrival <= now:
            self._next_arrival = now + self._gap()
        if self._next_burst <= now:
            count += self._burst_size
            self._next_burst = now + self._burst_interval()
        return count

    def _gap(self) -> float:
        return self._rng.expovariate(self._rate) if self._rate > 0 else math.inf

    def _burst_interval(self) -> float:
        assert self._burst_every is not None
        return self._burst_every * self._rng.uniform(0.5, 1.5)


def iso_seconds(unix_seconds: float) -> str:
    """``2026-11-27T12:00:00Z``: whole seconds, UTC, as ESI writes kill times."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.floor(unix_seconds)))


def iso_micros(unix_seconds: float) -> str:
    """``2026-11-27T12:00:00.123456Z``: microseconds, UTC, as Elixir's DateTime writes."""
    whole = math.floor(unix_seconds)
    micros = min(999_999, round((unix_seconds - whole) * 1e6))
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{micros:06d}Z"


def parse_iso(text: str) -> float | None:
    """Unix seconds of an ISO 8601 time (``Z`` or an offset; naive is UTC), None if unparseable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
