"""Flow control: who goes first, what is dropped under overload, and demand.

Three cores, used by the ``flow_control`` actor (and :class:`Credits` by every
stage that grants demand upstream):

- :class:`PriorityRules` gives each event a :class:`~realtime.event.Priority`
  from its type and content: rally points and kills involving tracked
  characters are critical, kills in tracked systems high, map changes normal,
  kill counts and preload low. Overridable per event type.
- :class:`FlowBuffer` holds events between dedup and the router: one FIFO per
  priority, handed out most urgent first. It raises a backpressure state
  between two watermarks (with hysteresis), sheds the least urgent and oldest
  events when it is full (never a critical one), and sets aside events that are
  too old to be worth handling (stale). Shed and stale events are returned to
  the caller, which settles them in the journal (``Outcome.SHED``/``STALE``):
  they stay there, marked.
- :class:`Credits` accounts the demand a consumer granted its producer
  (GenStage-style): how much is outstanding, how much more may be asked for.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from realtime.event import Event, Priority
from realtime.ids import as_id
from realtime.keys import KILLMAIL_TYPES

PRIORITY_NAMES: Mapping[str, Priority] = {priority.name.lower(): priority for priority in Priority}
"""Priority names as written in configuration: ``critical``, ``high``, ``normal``, ``low``."""

TYPE_PRIORITIES: Mapping[str, Priority] = {
    "rally_point_added": Priority.CRITICAL,
    "kill_count_update": Priority.LOW,
    "preload_complete": Priority.LOW,
}
"""Default priorities of event types that do not depend on content. Killmails
depend on what is tracked; every other type (the map's changes) is normal."""

_LEVELS = tuple(Priority)
_SHEDDABLE = tuple(sorted((p for p in Priority if p is not Priority.CRITICAL), reverse=True))


class TrackedView(Protocol):
    """What the maps track, as far as priorities are concerned."""

    def is_tracked_system(self, system_id: int) -> bool: ...

    def is_tracked_character(self, character_id: int) -> bool: ...


def parse_priority(name: str) -> Priority:
    """The priority called ``name`` (case-insensitive, see :data:`PRIORITY_NAMES`).

    Raises:
        ValueError: no priority has that name.
    """
    priority = PRIORITY_NAMES.get(name.strip().lower())
    if priority is None:
        expected = ", ".join(PRIORITY_NAMES)
        raise ValueError(f"unknown priority {name!r}: expected one of {expected}")
    return priority


class PriorityRules:
    """Assigns a priority to each event from its type and content.

    The default rules:

    - ``rally_point_added``: critical;
    - a killmail (``killmail`` or ``map_kill``) whose victim or any attacker is
      a tracked character: critical, or high when it comes from a preload
      (``data["preload"]`` true: an old kill, but perhaps never notified);
    - any other preload killmail: low;
    - a live killmail in a tracked system: high; in no tracked system and with
      no tracked character: normal (the router decides; tracking may lag
      behind the subscription);
    - ``kill_count_update``, ``preload_complete``: low;
    - every other type (the map's changes): normal.

    Args:
        overrides: event type -> priority name (``critical``, ``high``,
            ``normal``, ``low``); an overridden type always gets that priority,
            whatever its content.

    Raises:
        ValueError: an override names no priority (the message names the type).
    """

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self._overrides: dict[str, Priority] = {}
        for type_, name in (overrides or {}).items():
            try:
                self._overrides[type_] = parse_priority(name)
            except ValueError as exc:
                raise ValueError(f"priority of event type {type_!r}: {exc}") from exc

    def assign(self, event: Event, tracked: TrackedView) -> Priority:
        """The priority of ``event`` given what is ``tracked`` now."""
        override = self._overrides.get(event.type)
        if override is not None:
            return override
        if event.type in KILLMAIL_TYPES:
            return _kill_priority(event.data, tracked)
        return TYPE_PRIORITIES.get(event.type, Priority.NORMAL)


def _kill_priority(killmail: Mapping[str, Any], tracked: TrackedView) -> Priority:
    preload = killmail.get("preload") is True
    if any(tracked.is_tracked_character(pilot) for pilot in _pilots(killmail)):
        return Priority.HIGH if preload else Priority.CRITICAL
    if preload:
        return Priority.LOW
    system_id = as_id(killmail.get("system_id"))
    if system_id is None:
        system_id = as_id(killmail.get("solar_system_id"))
    if system_id is not None and tracked.is_tracked_system(system_id):
        return Priority.HIGH
    return Priority.NORMAL


def _pilots(killmail: Mapping[str, Any]) -> Iterable[int]:
    """The character ids of the victim and the attackers, malformed entries skipped."""
    victim = killmail.get("victim")
    if isinstance(victim, Mapping):
        victim_id = as_id(victim.get("character_id"))
        if victim_id is not None:
            yield victim_id
    attackers = killmail.get("attackers")
    if isinstance(attackers, list):
        for attacker in attackers:
            if isinstance(attacker, Mapping):
                attacker_id = as_id(attacker.get("character_id"))
                if attacker_id is not None:
                    yield attacker_id


def kill_deadlines(max_kill_age_s: float) -> dict[str, float]:
    """The :class:`FlowBuffer` deadlines that make kills older than ``max_kill_age_s`` stale."""
    return dict.fromkeys(sorted(KILLMAIL_TYPES), max_kill_age_s)


@dataclass(frozen=True, slots=True)
class Taken:
    """What :meth:`FlowBuffer.take` hands out.

    Attributes:
        events: the events to handle, in dispatch order.
        waited_s: for each of ``events``, how long it waited in the buffer
            (its queueing delay, seconds, on the caller's clock).
        stale: events met on the way that were past their deadline; they are
            not handled (settle them as stale).
    """

    events: tuple[Event, ...]
    waited_s: tuple[float, ...]
    stale: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Transition:
    """The backpressure state changed.

    Attributes:
        backpressure: the new state (``True``: raised, at the high watermark).
        at: when, on the caller's clock.
        size: the buffer's size then.
    """

    backpressure: bool
    at: float
    size: int


@dataclass(frozen=True, slots=True)
class FlowStatistics:
    """A snapshot of a :class:`FlowBuffer`.

    Attributes:
        size: events held now.
        sizes: events held now, per priority.
        capacity: the bound beyond which events are shed.
        high_watermark: backpressure is raised at this size.
        low_watermark: backpressure is resolved at this size.
        max_size: the largest size ever reached (high-water mark).
        offered, taken, shed, stale: events per priority since the start.
        over_capacity: critical events admitted beyond ``capacity`` because
            nothing else was left to shed (since the start).
        backpressure: the current state.
        transitions: backpressure changes since the start.
    """

    size: int
    sizes: Mapping[Priority, int]
    capacity: int
    high_watermark: int
    low_watermark: int
    max_size: int
    offered: Mapping[Priority, int]
    taken: Mapping[Priority, int]
    shed: Mapping[Priority, int]
    stale: Mapping[Priority, int]
    over_capacity: int
    backpressure: bool
    transitions: int


class FlowBuffer:
    """A bounded buffer of events with one FIFO per priority.

    **Order.** :meth:`take` hands out the most urgent event first (critical,
    then high, normal, low), FIFO within a priority. So that low priorities
    are not starved while the buffer is *not* under backpressure, every
    ``fair_share``-th event handed out is instead the one that has waited
    longest, whatever its priority: a queued event then waits at most about
    ``fair_share`` times the number of events queued before it. Under
    backpressure the order is strictly by priority, so that overload costs the
    urgent events nothing.

    **Watermarks.** Backpressure is raised when the size reaches
    ``high_watermark`` and resolved when it falls to ``low_watermark``; each
    change is recorded as a :class:`Transition` (see :meth:`take_transitions`)
    so that the actor can raise and resolve an alert, and reduce the demand
    it grants upstream. Nothing is shed below ``capacity``: with the high
    watermark below it, backpressure warns before anything is lost.

    **Shedding.** Beyond ``capacity``, :meth:`offer` sheds one event per event
    it admits: from the least urgent non-empty priority, the oldest first.
    Critical events are never shed: when only critical events are left, the
    buffer grows past ``capacity`` rather than lose one, and counts it
    (``statistics().over_capacity``). Losing a critical notification is the
    failure this buffer exists to prevent; critical events are few (tracked
    characters' kills, rally points) and the actor bounds the growth by
    granting no more upstream demand while the buffer is over capacity (the
    journal keeps the rest on disk).

    **Staleness.** ``max_age_s`` maps event types to a deadline: an event of
    such a type whose ``Event.time`` is more than that many seconds before
    ``now`` when it reaches the front is set aside as stale instead of being
    handed out (e.g. :func:`kill_deadlines`: a kill older than
    ``[filters] max_kill_age_s`` is no longer worth notifying). Deadlines go
    by type, not priority: a kill expires whatever priority it was given
    (critical to low), and a map change has no deadline at all. ``now`` for
    :meth:`take` must then be wall-clock seconds like ``Event.time``; queueing
    delays are measured on the same clock.

    Args:
        capacity: events held before shedding starts (>= 1).
        high_watermark: size at which backpressure is raised
            (``low_watermark < high_watermark <= capacity``).
        low_watermark: size at which it is resolved (>= 0).
        max_age_s: event type -> deadline in seconds; ``None``: nothing is stale.
        fair_share: one event in this many is the longest-waiting one while
            not under backpressure (>= 2); ``None``: strict priority always.
        max_transitions: transitions kept until :meth:`take_transitions`
            (>= 1); older ones are dropped (still counted in statistics).

    Raises:
        ValueError: a bound is out of range.
    """

    def __init__(
        self,
        capacity: int,
        high_watermark: int,
        low_watermark: int,
        max_age_s: Mapping[str, float] | None = None,
        *,
        fair_share: int | None = 8,
        max_transitions: int = 16,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity!r}")
        if not 0 <= low_watermark < high_watermark <= capacity:
            raise ValueError(
                "watermarks must satisfy 0 <= low < high <= capacity, not "
                f"low={low_watermark!r} high={high_watermark!r} capacity={capacity!r}"
            )
        if fair_share is not None and fair_share < 2:
            raise ValueError(f"fair_share must be >= 2 or None, not {fair_share!r}")
        if max_transitions < 1:
            raise ValueError(f"max_transitions must be >= 1, not {max_transitions!r}")
        self._capacity = capacity
        self._high = high_watermark
        self._low = low_watermark
        self._deadlines = dict(max_age_s or {})
        self._fair_share = fair_share
        # Per priority, (offered at, event) oldest first.
        self._queues: tuple[deque[tuple[float, Event]], ...] = tuple(deque() for _ in _LEVELS)
        self._size = 0
        self._max_size = 0
        self._backpressure = False
        self._pending: deque[Transition] = deque(maxlen=max_transitions)
        self._transitions = 0
        self._handed_out = 0
        self._offered = [0] * len(_LEVELS)
        self._taken = [0] * len(_LEVELS)
        self._shed = [0] * len(_LEVELS)
        self._stale = [0] * len(_LEVELS)
        self._over_capacity = 0

    def __len__(self) -> int:
        return self._size

    @property
    def backpressure(self) -> bool:
        """Whether backpressure is raised (see the class description)."""
        return self._backpressure

    def offer(self, event: Event, now: float) -> list[Event]:
        """Admit ``event`` (at its ``priority``) and return the events shed to make room.

        The returned list is empty unless the buffer was full; it may contain
        ``event`` itself, when it is the least urgent event held.
        """
        level = event.priority
        self._queues[level].append((now, event))
        self._offered[level] += 1
        self._size += 1
        shed: list[Event] = []
        if self._size > self._capacity:
            victim = self._shed_one()
            if victim is None:
                self._over_capacity += 1
            else:
                shed.append(victim)
        self._max_size = max(self._max_size, self._size)
        if not self._backpressure and self._size >= self._high:
            self._change(backpressure=True, now=now)
        return shed

    def take(self, n: int, now: float) -> Taken:
        """Hand out up to ``n`` events (see the class description for the order).

        Stale events met on the way are set aside in :attr:`Taken.stale` and
        do not count towards ``n``.
        """
        events: list[Event] = []
        waited: list[float] = []
        stale: list[Event] = []
        while len(events) < n and self._size:
            queue = self._next_queue()
            offered_at, event = queue.popleft()
            self._size -= 1
            deadline = self._deadlines.get(event.type)
            if deadline is not None and now - event.time > deadline:
                self._stale[event.priority] += 1
                stale.append(event)
                continue
            self._taken[event.priority] += 1
            self._handed_out += 1
            events.append(event)
            waited.append(now - offered_at)
        if self._backpressure and self._size <= self._low:
            self._change(backpressure=False, now=now)
        return Taken(tuple(events), tuple(waited), tuple(stale))

    def take_transitions(self) -> list[Transition]:
        """The backpressure changes since the previous call, oldest first."""
        transitions = list(self._pending)
        self._pending.clear()
        return transitions

    def statistics(self) -> FlowStatistics:
        """A snapshot of the sizes, bounds and counters."""
        return FlowStatistics(
            size=self._size,
            sizes={level: len(self._queues[level]) for level in _LEVELS},
            capacity=self._capacity,
            high_watermark=self._high,
            low_watermark=self._low,
            max_size=self._max_size,
            offered=dict(zip(_LEVELS, self._offered, strict=True)),
            taken=dict(zip(_LEVELS, self._taken, strict=True)),
            shed=dict(zip(_LEVELS, self._shed, strict=True)),
            stale=dict(zip(_LEVELS, self._stale, strict=True)),
            over_capacity=self._over_capacity,
            backpressure=self._backpressure,
            transitions=self._transitions,
        )

    def _next_queue(self) -> deque[tuple[float, Event]]:
        """The queue whose head goes next; the buffer is not empty."""
        fair_share = self._fair_share
        if (
            fair_share is not None
            and not self._backpressure
            and self._handed_out % fair_share == fair_share - 1
        ):
            return min((queue for queue in self._queues if queue), key=lambda queue: queue[0][0])
        return next(queue for queue in self._queues if queue)

    def _shed_one(self) -> Event | None:
        """Drop the oldest event of the least urgent non-critical priority, if any."""
        for level in _SHEDDABLE:
            queue = self._queues[level]
            if queue:
                self._size -= 1
                self._shed[level] += 1
                return queue.popleft()[1]
        return None

    def _change(self, *, backpressure: bool, now: float) -> None:
        self._backpressure = backpressure
        self._transitions += 1
        self._pending.append(Transition(backpressure, now, self._size))


@dataclass(frozen=True, slots=True)
class CreditStatistics:
    """A snapshot of :class:`Credits`.

    Attributes:
        limit: the most that may be outstanding.
        outstanding: granted and not yet consumed.
        granted: granted since the start.
        consumed: consumed since the start (as accounted, see
            :meth:`Credits.consume`).
        overdelivered: events the producer sent beyond what was outstanding
            (a protocol violation upstream; 0 when all is well).
        resets: times the account was reset.
    """

    limit: int
    outstanding: int
    granted: int
    consumed: int
    overdelivered: int
    resets: int


class Credits:
    """The demand a consumer granted its producer (GenStage / Reactive Streams style).

    The consumer grants ``n`` (sends ``Demand(n)``) and the producer may then
    send up to ``n`` events; each delivery is consumed. At most ``limit``
    credits are outstanding at any time, which bounds what can be in flight
    to the consumer. :meth:`refill` asks for more only once at least
    ``min_grant`` can be granted, so demand goes out in batches rather than
    one event at a time (GenStage's ``min_demand``).

    Account deliveries by what the producer *sent*, not by what arrived. Flow
    control grants demand to the journal, but the journal's deliveries reach it
    through dedup, which forwards only the unique events: consume
    ``Deduplicated.consumed`` (the size of the journal's delivery, duplicates
    included), not ``len(events)``, or every duplicate would leak one credit
    until no demand was left.

    Args:
        limit: the most credit that may be outstanding (>= 1).
        min_grant: the smallest grant :meth:`refill` makes (1 to ``limit``).

    Raises:
        ValueError: a bound is out of range.
    """

    def __init__(self, limit: int, *, min_grant: int = 1) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit!r}")
        if not 1 <= min_grant <= limit:
            raise ValueError(f"min_grant must be in 1..limit, not {min_grant!r}")
        self._limit = limit
        self._min_grant = min_grant
        self._outstanding = 0
        self._granted = 0
        self._consumed = 0
        self._overdelivered = 0
        self._resets = 0

    @property
    def outstanding(self) -> int:
        """Credit granted and not yet consumed."""
        return self._outstanding

    @property
    def available(self) -> int:
        """How much more may be granted now (``limit - outstanding``)."""
        return self._limit - self._outstanding

    def grant(self, n: int) -> None:
        """Record that ``n`` more credits were granted upstream.

        Raises:
            ValueError: ``n`` is not in ``1..available`` (a bug in the caller:
                Reactive Streams forbids non-positive demand).
        """
        if not 1 <= n <= self.available:
            raise ValueError(f"cannot grant {n!r}: {self.available} available")
        self._outstanding += n
        self._granted += n

    def refill(self) -> int:
        """Grant everything available if that is at least ``min_grant``.

        Returns:
            the amount granted (send ``Demand`` for it), or 0: grant nothing yet.
        """
        available = self.available
        if available < self._min_grant:
            return 0
        self.grant(available)
        return available

    def consume(self, n: int) -> None:
        """Record that the producer delivered ``n`` events (>= 0).

        A producer that delivers more than was outstanding broke the protocol;
        the excess is counted in ``overdelivered`` and the account stays at 0
        rather than going negative (which would grant demand never asked for).

        Raises:
            ValueError: ``n`` is negative.
        """
        if n < 0:
            raise ValueError(f"cannot consume {n!r}")
        used = min(n, self._outstanding)
        self._outstanding -= used
        self._consumed += used
        self._overdelivered += n - used

    def reset(self) -> None:
        """Forget what is outstanding: the producer restarted or the stream resynced.

        After a ``Resync`` the journal redelivers from its checkpoint and
        expects fresh demand; credit granted to the old stream is void.
        """
        self._outstanding = 0
        self._resets += 1

    def statistics(self) -> CreditStatistics:
        """A snapshot of the account."""
        return CreditStatistics(
            limit=self._limit,
            outstanding=self._outstanding,
            granted=self._granted,
            consumed=self._consumed,
            overdelivered=self._overdelivered,
            resets=self._resets,
        )
