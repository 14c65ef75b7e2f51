"""Flow control under 10x overload, in simulated time.

Run with ``python -m bench.flow``. Targets (the issue): under 10x overload,
no critical or high event lost, p99 queueing delay of critical events at most
50 ms while the low priorities are shed, and memory flat.

A consumer handles 1,000 events/s (10 every 10 ms). The stream runs at half
that for a warm-up, then at 10x the consumer's rate, then at half again while
the backlog drains. The stream is mixed like a busy kill feed with its maps:
rally points and tracked pilots' kills (critical, 1 %), kills in tracked
systems (high, 5 %), map changes (normal, 24 %), kill counts and preload
replays of old kills (low, 70 %; some older than ``max_kill_age_s``, hence
stale). Priorities come from :class:`~realtime.flow.PriorityRules`.

The clock is injected: one step is 1 ms of simulated time, so the figures do
not depend on the machine, and memory is traced (``tracemalloc``) throughout.
The bench's own bookkeeping is fixed-size (delay histograms); what stays traced
after the recovery is CPython's free lists (tuples, floats) and the samples.
The baseline is what a plain bounded queue does with the same stream and the
same capacity: one FIFO that drops its oldest event when full (GenStage's
``buffer_keep: :last``).
"""

from __future__ import annotations

import random
import tracemalloc
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from realtime.event import KILLS_SOURCE, Event, Priority, map_source
from realtime.flow import FlowBuffer, PriorityRules, kill_deadlines

SEED = 20261128
STEP_S = 0.001
CONSUMER_EVERY_STEPS = 10
CONSUMER_BATCH = 10
CONSUMER_RATE = CONSUMER_BATCH / (CONSUMER_EVERY_STEPS * STEP_S)
WARMUP_S = 5.0
OVERLOAD_S = 30.0
RECOVERY_S = 30.0
OVERLOAD = 10.0
CALM = 0.5
CAPACITY = 10_000
HIGH_WATERMARK = 8_000
LOW_WATERMARK = 6_000
MAX_KILL_AGE_S = 3600.0
EPOCH = 1_800_000_000.0
TARGET_P99_CRITICAL_S = 0.050
MEMORY_SAMPLE_EVERY_STEPS = round(5.0 / STEP_S)
DELAY_BIN_S = 0.0005
DELAY_BINS = 40_000

TRACKED_SYSTEM = 31000005
TRACKED_PILOT = 2117000001
MAP = map_source("demo")

LEVELS = tuple(Priority)


@dataclass
class Tracked:
    systems: frozenset[int] = frozenset({TRACKED_SYSTEM})
    characters: frozenset[int] = frozenset({TRACKED_PILOT})

    def is_tracked_system(self, system_id: int) -> bool:
        return system_id in self.systems

    def is_tracked_character(self, character_id: int) -> bool:
        return character_id in self.characters


class Stream:
    """The mixed event stream, generated on the fly (holding it would hide the buffer's memory)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._rules = PriorityRules()
        self._tracked = Tracked()
        self._seq = 0

    def event(self, now: float) -> Event:
        draw = self._rng.random()
        if draw < 0.005:
            type_, data, time = "rally_point_added", {"rally_point_id": self._seq}, now
        elif draw < 0.01:
            type_, data, time = "killmail", self._kill(30000142, TRACKED_PILOT), now
        elif draw < 0.06:
            type_, data, time = "killmail", self._kill(TRACKED_SYSTEM, 90000001), now
        elif draw < 0.30:
            type_, data, time = "character_ship_changed", {"ship_type_id": 587}, now
        elif draw < 0.65:
            type_, data, time = "kill_count_update", {"system_id": TRACKED_SYSTEM, "count": 3}, now
        else:
            data = {**self._kill(TRACKED_SYSTEM, 90000001), "preload": True}
            type_, time = "killmail", now - self._rng.uniform(0.0, 2 * MAX_KILL_AGE_S)
        self._seq += 1
        event = Event(
            id=str(self._seq),
            source=KILLS_SOURCE if type_.startswith("kill") else MAP,
            type=type_,
            time=time,
            received_at=0,
            key=f"bench:{self._seq}",
            priority=Priority.NORMAL,
            data=data,
            seq=self._seq,
        )
        return event.with_priority(self._rules.assign(event, self._tracked))

    def _kill(self, system_id: int, victim: int) -> dict[str, Any]:
        return {
            "killmail_id": 100_000_000 + self._seq,
            "system_id": system_id,
            "victim": {"character_id": victim},
            "attackers": [{"character_id": 90000002}],
        }


class Contender(Protocol):
    def offer(self, event: Event, now: float) -> list[Event]: ...

    def take(self, n: int, now: float) -> tuple[list[Event], list[float], list[Event]]: ...

    def __len__(self) -> int: ...


class PriorityContender:
    """The flow buffer under test."""

    def __init__(self) -> None:
        self.buffer = FlowBuffer(
            CAPACITY, HIGH_WATERMARK, LOW_WATERMARK, kill_deadlines(MAX_KILL_AGE_S)
        )

    def offer(self, event: Event, now: float) -> list[Event]:
        return self.buffer.offer(event, now)

    def take(self, n: int, now: float) -> tuple[list[Event], list[float], list[Event]]:
        taken = self.buffer.take(n, now)
        return list(taken.events), list(taken.waited_s), list(taken.stale)

    def __len__(self) -> int:
        return len(self.buffer)


class FifoBaseline:
    """One bounded FIFO that drops its oldest event when full; same deadlines."""

    def __init__(self) -> None:
        self._queue: deque[tuple[float, Event]] = deque()
        self._deadlines = kill_deadlines(MAX_KILL_AGE_S)

    def offer(self, event: Event, now: float) -> list[Event]:
        self._queue.append((now, event))
        if len(self._queue) > CAPACITY:
            return [self._queue.popleft()[1]]
        return []

    def take(self, n: int, now: float) -> tuple[list[Event], list[float], list[Event]]:
        events: list[Event] = []
        waited: list[float] = []
        stale: list[Event] = []
        while len(events) < n and self._queue:
            offered_at, event = self._queue.popleft()
            deadline = self._deadlines.get(event.type)
            if deadline is not None and now - event.time > deadline:
                stale.append(event)
            else:
                events.append(event)
                waited.append(now - offered_at)
        return events, waited, stale

    def __len__(self) -> int:
        return len(self._queue)


class DelayHistogram:
    """Queueing delays in fixed bins: the bench's own bookkeeping must not grow with time."""

    def __init__(self) -> None:
        self._counts = array("q", bytes(8 * DELAY_BINS))
        self.count = 0

    def add(self, delay_s: float) -> None:
        self._counts[min(DELAY_BINS - 1, int(delay_s / DELAY_BIN_S))] += 1
        self.count += 1

    def quantile(self, q: float) -> float:
        """The upper edge of the bin holding the ``q`` quantile (0 when empty)."""
        rank = q * self.count
        seen = 0
        for index, count in enumerate(self._counts):
            seen += count
            if count and seen >= rank:
                return (index + 1) * DELAY_BIN_S
        return 0.0


@dataclass
class Result:
    offered: dict[Priority, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    handled: dict[Priority, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    shed: dict[Priority, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    stale: dict[Priority, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    critical_delays: DelayHistogram = field(default_factory=DelayHistogram)
    overload_critical_delays: DelayHistogram = field(default_factory=DelayHistogram)
    memory: list[tuple[str, int]] = field(default_factory=list)
    max_size: int = 0

    def lost(self, level: Priority) -> int:
        return self.offered[level] - self.handled[level] - self.stale[level]


def phases() -> Iterator[tuple[str, float, float]]:
    """(name, duration, stream rate as a multiple of the consumer's)."""
    yield "warm-up", WARMUP_S, CALM
    yield "overload", OVERLOAD_S, OVERLOAD
    yield "recovery", RECOVERY_S, CALM


def simulate(contender: Contender, *, trace_memory: bool) -> Result:
    stream = Stream(random.Random(SEED))
    result = Result()
    step = 0
    due = 0.0
    for phase, duration, rate in phases():
        for phase_step in range(round(duration / STEP_S)):
            now = EPOCH + step * STEP_S
            due += rate * CONSUMER_RATE * STEP_S
            while due >= 1.0:
                due -= 1.0
                event = stream.event(now)
                result.offered[event.priority] += 1
                for dropped in contender.offer(event, now):
                    result.shed[dropped.priority] += 1
            if step % CONSUMER_EVERY_STEPS == 0:
                _consume(contender, now, result, overload=phase == "overload")
            result.max_size = max(result.max_size, len(contender))
            step += 1
            if trace_memory and (phase_step + 1) % MEMORY_SAMPLE_EVERY_STEPS == 0:
                at = f"{phase} {(phase_step + 1) * STEP_S:.0f}s"
                result.memory.append((at, tracemalloc.get_traced_memory()[0]))
    while len(contender):
        _consume(contender, EPOCH + step * STEP_S, result, overload=False)
        step += CONSUMER_EVERY_STEPS
    return result


def _consume(contender: Contender, now: float, result: Result, *, overload: bool) -> None:
    events, waited, stale = contender.take(CONSUMER_BATCH, now)
    for event, delay in zip(events, waited, strict=True):
        result.handled[event.priority] += 1
        if event.priority is Priority.CRITICAL:
            result.critical_delays.add(delay)
            if overload:
                result.overload_critical_delays.add(delay)
    for event in stale:
        result.stale[event.priority] += 1


def main() -> None:
    contender = PriorityContender()
    tracemalloc.start()
    try:
        flow = simulate(contender, trace_memory=True)
    finally:
        tracemalloc.stop()
    stats = contender.buffer.statistics()
    fifo = simulate(FifoBaseline(), trace_memory=False)

    print(
        f"flow buffer: consumer {CONSUMER_RATE:,.0f} events/s; stream {CALM}x for {WARMUP_S:.0f} s,"
        f" {OVERLOAD:.0f}x for {OVERLOAD_S:.0f} s, {CALM}x for {RECOVERY_S:.0f} s (simulated)"
    )
    print(f"capacity {CAPACITY:,}, watermarks {HIGH_WATERMARK:,}/{LOW_WATERMARK:,}")
    print()
    header = f"{'priority':<10}{'offered':>10}{'handled':>10}{'shed':>10}{'stale':>10}{'lost':>10}"
    print(f"{'':<10}{'priority buffer':^50}  | baseline FIFO, drop oldest")
    print(f"{header}  | {'handled':>10}{'lost':>10}")
    for level in LEVELS:
        print(
            f"{level.name.lower():<10}{flow.offered[level]:>10,}{flow.handled[level]:>10,}"
            f"{flow.shed[level]:>10,}{flow.stale[level]:>10,}{flow.lost(level):>10,}"
            f"  | {fifo.handled[level]:>10,}{fifo.lost(level):>10,}"
        )
    print()
    lost_urgent = flow.lost(Priority.CRITICAL) + flow.lost(Priority.HIGH)
    flow_p99 = flow.overload_critical_delays.quantile(0.99)
    fifo_p99 = fifo.overload_critical_delays.quantile(0.99)
    print(f"{'measure':<44}{'priority':>12}{'baseline':>12}{'target':>10}  ok")
    print(
        f"{'critical + high lost':<44}{lost_urgent:>12,}"
        f"{fifo.lost(Priority.CRITICAL) + fifo.lost(Priority.HIGH):>12,}{'0':>10}"
        f"  {_yes(lost_urgent == 0)}"
    )
    print(
        f"{'p99 queueing delay, critical, overload (ms)':<44}{flow_p99 * 1000:>12.1f}"
        f"{fifo_p99 * 1000:>12.1f}{'<= 50':>10}  {_yes(flow_p99 <= TARGET_P99_CRITICAL_S)}"
    )
    print(
        f"{'p99 queueing delay, critical, all (ms)':<44}"
        f"{flow.critical_delays.quantile(0.99) * 1000:>12.1f}"
        f"{fifo.critical_delays.quantile(0.99) * 1000:>12.1f}"
    )
    print(f"{'largest size':<44}{flow.max_size:>12,}{fifo.max_size:>12,}")
    print(f"{'backpressure transitions':<44}{stats.transitions:>12,}")
    print()
    overload = [traced for at, traced in flow.memory if at.startswith("overload")]
    # Flat: once the buffer is full (first overload sample), overload adds nothing.
    growth = (max(overload) - overload[0]) / overload[0]
    print(f"traced memory (priority buffer run), growth over the overload {growth:+.1%}:")
    for at, traced in flow.memory:
        print(f"  {at:<16}{traced / 1e6:>8.2f} MB")
    print(f"memory flat under overload (< 5 % growth once full): {_yes(growth < 0.05)}")


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


if __name__ == "__main__":
    main()
