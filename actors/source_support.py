"""What the source actors (``kills``, ``map:{slug}``) share: the way to the journal and reject logs.

A source's reader thread hands every decoded batch to the journal itself, as
one :class:`~actors.protocol.Ingest` (DESIGN.md principle 5: a reader never
waits for processing, only for a put into a mailbox). When the journal cannot
take it (restarting, mailbox refusing, or answering
:class:`~actors.protocol.IngestRefused` because its disk is full), the batch
goes to the source actor instead, which keeps it in a bounded FIFO
(:class:`JournalLink`) and sends it again later. While anything is held, the
reader routes every batch through the actor too (:class:`IngestGate`), so
that batches reach the journal in the order they were read.

The held FIFO has a bound: when it is full the actor stops reading (closes
its connection) until the journal takes everything back, and counts what it
had to drop. An SSE source loses nothing that way (it resumes from the
journal's committed cursor); the kill feed relies on the preload replay.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pykka

from actors.protocol import Ingest, IngestRefused, Names
from realtime.event import Reject
from supervision import (
    ActorUnavailableError,
    Backoff,
    MailboxFullError,
    Registry,
    TimerHandle,
    Timers,
)


@dataclass(frozen=True, slots=True)
class Held:
    """Reader thread -> its actor: a batch for the journal that must go through the actor.

    ``journal_unavailable`` tells whether the reader found the journal not
    running (or refusing puts), rather than the gate merely being paused.
    """

    ingest: Ingest
    journal_unavailable: bool


class IngestGate:
    """Where a reader thread sends its batches: to the journal, or to its actor while paused.

    Thread-safe; :meth:`deliver` is called by reader threads, :meth:`pause`
    and :meth:`resume` by the actor.
    """

    def __init__(self, registry: Registry, owner: pykka.ActorRef[Any]) -> None:
        self._registry = registry
        self._owner = owner
        self._paused = threading.Event()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def deliver(self, ingest: Ingest) -> bool:
        """Send ``ingest`` on; ``False`` only when the owning actor is gone (the reader should end).

        A put into a full journal mailbox waits for room (the mailbox's policy
        decides); a journal that is not running pauses the gate.
        """
        unavailable = False
        if not self._paused.is_set():
            if send_to_journal(self._registry, ingest):
                return True
            unavailable = True
            self._paused.set()
        try:
            self._owner.tell(Held(ingest, unavailable))
        except pykka.ActorDeadError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class HeldStatistics:
    """How full the held FIFO is and what went through it.

    Attributes:
        size: batches held now; ``events``: events in them.
        capacity: the bound on ``size``.
        high_water: the largest ``size`` seen.
        held_total: batches that had to wait.
        resent_total: batches sent to the journal again.
        refused_total: batches the journal refused or could not take.
        dropped_batches, dropped_events: what did not fit.
        paused: whether the reader's batches go through the actor now.
        resend_round: consecutive resend rounds that met a refusal.
    """

    size: int
    events: int
    capacity: int
    high_water: int
    held_total: int
    resent_total: int
    refused_total: int
    dropped_batches: int
    dropped_events: int
    paused: bool
    resend_round: int


class Resend:
    """Timer message: offer the held batches to the journal again."""

    __slots__ = ()


RESEND: Final = Resend()


class JournalLink:
    """The actor's side of the way to the journal: held batches, resends, pause and resume.

    Owned by one actor and used from its thread only (the :attr:`gate` is what
    its readers use). The actor passes every :class:`Held` and
    :class:`~actors.protocol.IngestRefused` to :meth:`take` and every
    :class:`Resend` timer message to :meth:`resend`.

    Resends go in rounds, the first ``backoff.delay(0)`` after a refusal: a
    round sends everything held; the next round, if no refusal came back in
    between, resumes the gate, else the delay grows. A batch that does not
    fit is dropped and counted; the actor stops reading while :attr:`full`.
    """

    def __init__(
        self,
        registry: Registry,
        owner: pykka.ActorRef[Any],
        timers: Timers,
        *,
        capacity: int,
        backoff: Backoff,
        rand: Callable[[], float],
    ) -> None:
        if capacity < 1:
            msg = f"the held-batch capacity must be at least 1, got {capacity}"
            raise ValueError(msg)
        self.gate = IngestGate(registry, owner)
        self._registry = registry
        self._timers = timers
        self._backoff = backoff
        self._rand = rand
        self._capacity = capacity
        self._queue: collections.deque[Ingest] = collections.deque()
        self._events = 0
        self._high_water = 0
        self._held_total = 0
        self._resent_total = 0
        self._refused_total = 0
        self._dropped_batches = 0
        self._dropped_events = 0
        self._round = 0
        self._refused_since_round = False
        self._timer: TimerHandle | None = None

    @property
    def full(self) -> bool:
        return len(self._queue) >= self._capacity

    @property
    def held(self) -> int:
        return len(self._queue)

    def take(self, message: Held | IngestRefused) -> bool:
        """Hold (or, when the gate is open again, forward) a batch; ``False`` if it was dropped."""
        if isinstance(message, IngestRefused):
            refused = True
        else:
            refused = message.journal_unavailable
            if not refused and not self.gate.paused:
                # Routed to the actor just before the gate opened again.
                if send_to_journal(self._registry, message.ingest):
                    return True
                refused = True
        if refused:
            self._refused_total += 1
            self._refused_since_round = True
        self.gate.pause()
        kept = self._hold(message.ingest)
        if self._timer is None:
            self._schedule()
        return kept

    def resend(self) -> bool:
        """A resend round; ``True`` when the gate opened again (the actor may read again)."""
        self._timer = None
        clean = not self._refused_since_round
        self._refused_since_round = False
        self._round = 0 if clean else self._round + 1
        sent_all = self._send_held()
        if not sent_all:
            self._refused_total += 1
            self._refused_since_round = True
        if clean and sent_all:
            self.gate.resume()
            return True
        self._schedule()
        return False

    def statistics(self) -> HeldStatistics:
        return HeldStatistics(
            size=len(self._queue),
            events=self._events,
            capacity=self._capacity,
            high_water=self._high_water,
            held_total=self._held_total,
            resent_total=self._resent_total,
            refused_total=self._refused_total,
            dropped_batches=self._dropped_batches,
            dropped_events=self._dropped_events,
            paused=self.gate.paused,
            resend_round=self._round,
        )

    def _hold(self, ingest: Ingest) -> bool:
        if self.full:
            self._dropped_batches += 1
            self._dropped_events += len(ingest.events)
            return False
        self._queue.append(ingest)
        self._events += len(ingest.events)
        self._held_total += 1
        self._high_water = max(self._high_water, len(self._queue))
        return True

    def _send_held(self) -> bool:
        while self._queue:
            ingest = self._queue[0]
            if not send_to_journal(self._registry, ingest):
                return False
            self._queue.popleft()
            self._events -= len(ingest.events)
            self._resent_total += 1
        return True

    def _schedule(self) -> None:
        self._timer = self._timers.send_after(self._backoff.delay(self._round, self._rand), RESEND)


def send_to_journal(registry: Registry, ingest: Ingest) -> bool:
    """Tell the journal ``ingest`` now; ``False`` when it cannot take it."""
    try:
        registry.tell(Names.JOURNAL, ingest)
    except (ActorUnavailableError, MailboxFullError):
        return False
    return True


class RejectLog:
    """Warns about rejected input, at most once per reason per ``interval_s``.

    The lines it holds back are counted and reported with the next line for
    that reason. Reasons beyond ``max_reasons`` share one budget (``other``).
    Thread-safe: a reader thread logs, the actor reads :meth:`suppressed`.
    """

    def __init__(
        self,
        logger: logging.Logger,
        source: str,
        *,
        interval_s: float = 60.0,
        max_reasons: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._source = source
        self._interval_s = interval_s
        self._max_reasons = max_reasons
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def note(self, reject: Reject) -> None:
        """Log ``reject`` unless its reason was logged within the interval."""
        now = self._clock()
        with self._lock:
            budget = reject.reason
            if budget not in self._last and len(self._last) >= self._max_reasons:
                budget = "other"
            last = self._last.get(budget)
            if last is not None and now - last < self._interval_s:
                self._suppressed[budget] = self._suppressed.get(budget, 0) + 1
                return
            self._last[budget] = now
            held_back = self._suppressed.pop(budget, 0)
        self._logger.warning(
            "%s: rejected input (%s): %s%s",
            self._source,
            reject.reason,
            reject.detail,
            f" ({held_back} more of this reason not logged)" if held_back else "",
        )

    def suppressed(self) -> dict[str, int]:
        """Lines held back per reason since each reason's last logged line."""
        with self._lock:
            return dict(self._suppressed)


def join_threads(threads: list[threading.Thread], timeout_s: float) -> list[str]:
    """Join ``threads`` within ``timeout_s`` in all; the names of those still alive."""
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    return [thread.name for thread in threads if thread.is_alive()]
