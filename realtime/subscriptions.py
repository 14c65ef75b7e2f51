"""A kill feed connection's subscription: what it should be, what the server has confirmed.

:class:`Subscriptions` is the part of :class:`~realtime.phoenix.PhoenixClient`
that keeps the server's subscription in step with the tracked systems and
characters, without I/O: the client frames what it returns and hands it the
server's replies. The quirks of the real server it follows:

- one invalid id rejects a whole join, so ids are filtered (and counted)
  before they are sent, and at most ``max_systems``/``max_characters`` of
  each go (the lowest ids are kept);
- subscriptions change with ``subscribe_*``/``unsubscribe_*`` pushes, never by
  re-joining (a re-join replays the preload), at most ``updates_per_minute``
  of them in any minute, removals before additions.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from realtime.ids import CHARACTER_ID_RANGE, SYSTEM_ID_RANGE, is_int

_WINDOW_S: Final = 60.0


class UpdateKind(enum.StrEnum):
    """A subscription change; the value is the event name pushed to the server.

    Members are in sending order: removals first, so that the server's limits
    on subscribed ids are not exceeded while a change is under way.
    """

    UNSUBSCRIBE_SYSTEMS = "unsubscribe_systems"
    UNSUBSCRIBE_CHARACTERS = "unsubscribe_characters"
    SUBSCRIBE_SYSTEMS = "subscribe_systems"
    SUBSCRIBE_CHARACTERS = "subscribe_characters"

    @property
    def adds(self) -> bool:
        return self in (UpdateKind.SUBSCRIBE_SYSTEMS, UpdateKind.SUBSCRIBE_CHARACTERS)

    @property
    def systems(self) -> bool:
        return self in (UpdateKind.SUBSCRIBE_SYSTEMS, UpdateKind.UNSUBSCRIBE_SYSTEMS)

    @property
    def field(self) -> str:
        """The payload field that carries the ids."""
        return "systems" if self.systems else "character_ids"


@dataclass(frozen=True, slots=True)
class Subscription:
    """Sets of valid system and character ids."""

    systems: frozenset[int] = frozenset()
    characters: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class SubscriptionAck:
    """The server answered a subscription change.

    ``ok`` false means it refused (``reason``); the change is retried by a
    later :meth:`Subscriptions.pending`, within the rate limit.
    """

    kind: UpdateKind
    ids: frozenset[int]
    ok: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Update:
    """A change to push now: ``kind`` with ``ids`` (sorted), under ``ref``."""

    kind: UpdateKind
    ids: list[int]
    ref: str


@dataclass(slots=True)
class _InFlight:
    ref: str
    ids: frozenset[int]
    sent_at: float


@dataclass(slots=True)
class _SlidingWindow:
    """At most ``limit`` acquisitions in any ``window_s`` interval.

    Stricter than a token bucket that starts full, which would allow twice
    the limit in the first window and break a server's per-minute limit.
    """

    limit: int
    window_s: float
    times: deque[float] = field(init=False)

    def __post_init__(self) -> None:
        self.times = deque(maxlen=self.limit)

    def forget_before(self, now: float) -> None:
        """Drop the acquisitions that are out of the window ending at ``now``."""
        while self.times and now - self.times[0] >= self.window_s:
            self.times.popleft()

    def try_acquire(self, now: float) -> bool:
        self.forget_before(now)
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


class Subscriptions:
    """One connection's subscription state; see the module docstring.

    Desired ids and the counters last across connections; the rest starts
    over with :meth:`new_connection`.

    Args:
        updates_per_minute: changes pushed in any 60 s at most.
        max_systems, max_characters: ids of each kind sent at most.
        push_timeout_s: a change unanswered this long has failed (sent again).
    """

    def __init__(
        self,
        *,
        updates_per_minute: int,
        max_systems: int,
        max_characters: int,
        push_timeout_s: float,
    ) -> None:
        self._updates_per_minute = updates_per_minute
        self._max_systems = max_systems
        self._max_characters = max_characters
        self._push_timeout_s = push_timeout_s
        self.desired = Subscription()
        """What the subscription should be (valid ids only)."""
        self.dropped_ids: dict[str, int] = {}
        self.sent = 0
        self.confirmed = 0
        self.failed = 0
        self.timed_out = 0
        self.new_connection()

    def new_connection(self) -> None:
        """Nothing acknowledged, nothing in flight, the rate window empty."""
        self.acknowledged = Subscription()
        """What the server has confirmed on this connection."""
        self._joining = Subscription()
        self._in_flight: dict[UpdateKind, _InFlight] = {}
        self._window = _SlidingWindow(self._updates_per_minute, _WINDOW_S)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def window_used(self) -> int:
        return len(self._window.times)

    @property
    def window_limit(self) -> int:
        return self._window.limit

    def set_desired(self, systems: Iterable[object], characters: Iterable[object]) -> Subscription:
        """Filter the ids (counting what is dropped) into the desired subscription."""
        self.desired = Subscription(
            self._valid_ids(systems, *SYSTEM_ID_RANGE, self._max_systems, "system"),
            self._valid_ids(characters, *CHARACTER_ID_RANGE, self._max_characters, "character"),
        )
        return self.desired

    def joining(self) -> Subscription:
        """A join carries the desired subscription: until its reply, nothing is acknowledged."""
        self._joining = self.desired
        self.acknowledged = Subscription()
        self._in_flight.clear()
        return self._joining

    def joined(self) -> Subscription:
        """The join was accepted: what it carried is acknowledged."""
        self.acknowledged = self._joining
        return self.acknowledged

    def channel_ended(self) -> None:
        """The channel closed or crashed: nothing is acknowledged any more."""
        self.acknowledged = Subscription()
        self._in_flight.clear()

    def pending(self, now: float, joined: bool, new_ref: Callable[[], str]) -> list[Update]:
        """The changes that move the server towards the desired subscription, to push now.

        Only while ``joined``. At most one change of each kind awaits a reply,
        each carries all the ids of its kind, and at most ``updates_per_minute``
        go out in any 60 s: what does not fit comes in a later call. A change
        unanswered for ``push_timeout_s`` counts as failed and is sent again.
        """
        self._window.forget_before(now)
        for kind, pending in list(self._in_flight.items()):
            if now - pending.sent_at >= self._push_timeout_s:
                del self._in_flight[kind]
                self.timed_out += 1
        if not joined:
            return []
        updates: list[Update] = []
        for kind in UpdateKind:
            if kind in self._in_flight:
                continue
            ids = self._difference(kind)
            if not ids:
                continue
            if not self._window.try_acquire(now):
                break
            ref = new_ref()
            self._in_flight[kind] = _InFlight(ref, ids, now)
            self.sent += 1
            updates.append(Update(kind, sorted(ids), ref))
        return updates

    def reply(self, ref: str | None, ok: bool, reason: str) -> SubscriptionAck | None:
        """The server's reply ``ref`` to a change; ``None`` when no change awaits it."""
        for kind, pending in self._in_flight.items():
            if pending.ref == ref:
                del self._in_flight[kind]
                return self._acknowledge(kind, pending.ids, ok, reason)
        return None

    def _acknowledge(
        self, kind: UpdateKind, ids: frozenset[int], ok: bool, reason: str
    ) -> SubscriptionAck:
        if not ok:
            self.failed += 1
            return SubscriptionAck(kind, ids, ok=False, reason=reason)
        self.confirmed += 1
        systems = self.acknowledged.systems
        characters = self.acknowledged.characters
        if kind.systems:
            systems = systems | ids if kind.adds else systems - ids
        else:
            characters = characters | ids if kind.adds else characters - ids
        self.acknowledged = Subscription(systems, characters)
        return SubscriptionAck(kind, ids, ok=True)

    def _valid_ids(
        self, ids: Iterable[object], low: int, high: int, limit: int, kind: str
    ) -> frozenset[int]:
        valid: set[int] = set()
        invalid = 0
        for value in ids:
            if is_int(value) and low <= value <= high:
                valid.add(value)
            else:
                invalid += 1
        if invalid:
            _count(self.dropped_ids, f"invalid_{kind}_ids", invalid)
        if len(valid) <= limit:
            return frozenset(valid)
        _count(self.dropped_ids, f"excess_{kind}_ids", len(valid) - limit)
        return frozenset(sorted(valid)[:limit])

    def _difference(self, kind: UpdateKind) -> frozenset[int]:
        if kind.systems:
            desired, acknowledged = self.desired.systems, self.acknowledged.systems
        else:
            desired, acknowledged = self.desired.characters, self.acknowledged.characters
        return desired - acknowledged if kind.adds else acknowledged - desired


def _count(counters: dict[str, int], name: str, amount: int) -> None:
    counters[name] = counters.get(name, 0) + amount
