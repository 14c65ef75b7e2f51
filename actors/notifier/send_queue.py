"""The send queue: deliveries waiting for Discord, each at its due time, most urgent first."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.discord_http import RetryState
from realtime.event import Priority
from realtime.ledger import LedgerKey


@dataclass(slots=True)
class Delivery:
    """One ledger entry on its way to Discord.

    Attributes:
        key: the ledger key.
        nonce: the entry's nonce (the same for every attempt, in every process).
        body: the message body stored at claim time.
        received_at: the event's ``received_at`` (``None`` for a resumed entry,
            whose socket read happened in an earlier run).
        priority: the event's priority from flow control; among deliveries
            due, the most urgent is sent first (a resumed entry's is unknown:
            normal).
        retry: attempts and failures so far (this run).
    """

    key: LedgerKey
    nonce: str
    body: Mapping[str, Any]
    received_at: int | None
    priority: Priority = Priority.NORMAL
    retry: RetryState = field(default_factory=RetryState)


@dataclass(frozen=True, slots=True)
class SendQueueStatistics:
    """How full a :class:`SendQueue` is.

    Attributes:
        waiting: deliveries waiting for their due time (new ones and retries).
        in_flight: deliveries taken by a worker and not given back yet.
        capacity: the bound on ``waiting + in_flight``.
        high_water: the largest ``waiting + in_flight`` seen.
        refused: offers refused because the queue was full.
        closed: the queue no longer hands out deliveries.
    """

    waiting: int
    in_flight: int
    capacity: int
    high_water: int
    refused: int
    closed: bool


class SendQueue:
    """Deliveries waiting to be sent, each at its due time; bounded and thread-safe.

    A delivery is *held* from :meth:`offer` until :meth:`done`, whether it is
    waiting or taken by a worker; at most ``capacity`` are held, and a key is
    held at most once. New deliveries are due at once, retries after their
    delay. :meth:`take` hands out the most urgent due delivery (by
    :attr:`Delivery.priority`; equal priorities in the order they fell due,
    so in offer order for new ones) and blocks until one is due: when Discord
    is the bottleneck, a critical notification passes the low ones queued
    before it. :meth:`again` puts a taken delivery back with a delay; it
    always fits, as the delivery is still held.
    """

    def __init__(self, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            msg = f"send queue capacity must be at least 1, got {capacity}"
            raise ValueError(msg)
        self._capacity = capacity
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._due: list[tuple[Priority, int, Delivery]] = []
        self._later: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._held: set[LedgerKey] = set()
        self._in_flight = 0
        self._high_water = 0
        self._refused = 0
        self._closed = False

    def offer(self, delivery: Delivery) -> bool:
        """Hold ``delivery``, due now; ``False`` if full, closed, or its key is already held."""
        with self._cond:
            if self._closed or delivery.key in self._held:
                return False
            if len(self._held) >= self._capacity:
                self._refused += 1
                return False
            self._held.add(delivery.key)
            self._high_water = max(self._high_water, len(self._held))
            self._push(delivery, 0.0)
            return True

    def room(self) -> int:
        """How many more deliveries :meth:`offer` would accept now."""
        with self._cond:
            return 0 if self._closed else self._capacity - len(self._held)

    def held(self) -> int:
        with self._cond:
            return len(self._held)

    def _push(self, delivery: Delivery, delay_s: float) -> None:
        if delay_s <= 0:
            heapq.heappush(self._due, (delivery.priority, next(self._order), delivery))
        else:
            heapq.heappush(self._later, (self._clock() + delay_s, next(self._order), delivery))
        self._cond.notify()

    def _promote(self) -> float | None:
        """Move the retries whose time came to the due heap; seconds until the next one."""
        later, now = self._later, self._clock()
        while later and later[0][0] <= now:
            _, _, delivery = heapq.heappop(later)
            heapq.heappush(self._due, (delivery.priority, next(self._order), delivery))
        return later[0][0] - now if later else None

    def take(self) -> Delivery | None:
        """The most urgent due delivery, blocking until there is one; ``None`` once closed."""
        with self._cond:
            while not self._closed:
                wait_s = self._promote()
                if self._due:
                    _, _, delivery = heapq.heappop(self._due)
                    self._in_flight += 1
                    return delivery
                self._cond.wait(wait_s)
            return None

    def again(self, delivery: Delivery, delay_s: float) -> None:
        """Put back a taken ``delivery``, due in ``delay_s``; forget it if the queue closed."""
        with self._cond:
            self._in_flight -= 1
            if self._closed:
                self._held.discard(delivery.key)
                return
            self._push(delivery, max(0.0, delay_s))

    def done(self, delivery: Delivery) -> None:
        """Release a taken ``delivery`` for good."""
        with self._cond:
            self._in_flight -= 1
            self._held.discard(delivery.key)

    def close(self) -> None:
        """Stop handing out deliveries: waiting ones are forgotten, workers wake up."""
        with self._cond:
            self._closed = True
            for _, _, delivery in (*self._due, *self._later):
                self._held.discard(delivery.key)
            self._due.clear()
            self._later.clear()
            self._cond.notify_all()

    def statistics(self) -> SendQueueStatistics:
        with self._cond:
            return SendQueueStatistics(
                waiting=len(self._due) + len(self._later),
                in_flight=self._in_flight,
                capacity=self._capacity,
                high_water=self._high_water,
                refused=self._refused,
                closed=self._closed,
            )
