"""What the source actors (``kills``, ``map:{slug}``) share: the way to the journal and reject logs.

A source's reader thread hands every decoded batch to the journal itself, as
one :class:`~actors.protocol.Ingest` (a reader waits for nothing but the
journal), through its actor's :class:`IngestGate`. No batch read from a
socket is ever dropped on the way:

- When the journal's mailbox is full (it is behind) or the journal is
  restarting, the reader keeps the batch and waits, retrying with a short
  backoff (:meth:`IngestGate.wait_for_room`). While it waits it reads
  nothing more: the socket's flow control slows the server, and the
  connection stays up (see :class:`~actors.connection.ReaderThread`).
- When the journal answers :class:`~actors.protocol.IngestRefused` (its disk
  is full), the refused batch goes back to the source actor, which keeps it in
  :class:`JournalLink` and closes the gate: readers then wait at the gate, so
  that batches reach the journal in the order they were read. The actor
  offers the held batches again in rounds with a growing delay; a round with
  no refusal since the previous one opens the gate again.

What is held is bounded without a drop: a refused batch is one the journal
had accepted into its bounded mailbox, and nothing new is read while the gate
is closed. A reader holds at most one batch of its own.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from actors.protocol import Ingest, IngestRefused, Names
from realtime.controls import escape_controls
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
    """Reader thread -> its actor: a batch the reader could not deliver before it was retired."""

    ingest: Ingest


@dataclass(frozen=True, slots=True)
class GateStatistics:
    """What the readers of one actor waited for.

    Attributes:
        open: whether readers may send to the journal (closed while refused
            batches are held).
        waiting: readers waiting now (each holding one batch, reading nothing).
        waits_total: times a reader had to wait.
        waited_s: total time readers spent waiting.
    """

    open: bool
    waiting: int
    waits_total: int
    waited_s: float


class IngestGate:
    """Where reader threads send their batches: the journal, when it takes them.

    Thread-safe: :meth:`send` and :meth:`wait_for_room` are called by reader
    threads, :meth:`close` and :meth:`reopen` by the actor.

    Args:
        registry: to reach the journal by name.
        retry: the delays between tries while the journal's mailbox is full.
    """

    def __init__(self, registry: Registry, retry: Backoff) -> None:
        self._registry = registry
        self._retry = retry
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._waiting = 0
        self._waits_total = 0
        self._waited_s = 0.0

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def close(self) -> None:
        self._open.clear()

    def reopen(self) -> None:
        self._open.set()

    def send(self, ingest: Ingest) -> bool:
        """Tell the journal ``ingest`` if the gate is open and the journal takes it now."""
        return self._open.is_set() and send_to_journal(self._registry, ingest)

    def wait_for_room(self, ingest: Ingest, aborted: threading.Event) -> bool:
        """Send ``ingest``, waiting as long as it takes; ``False`` if ``aborted`` was set first.

        Waits at the closed gate, or retries a journal that cannot take it
        with growing delays (``retry``). ``aborted`` is checked at least every
        ``retry.max_s``.
        """
        started = time.monotonic()
        with self._lock:
            self._waiting += 1
            self._waits_total += 1
        attempt = 0
        try:
            while not aborted.is_set():
                if not self._open.is_set():
                    # Woken at once when the gate opens; the timeout is for ``aborted``.
                    self._open.wait(self._retry.max_s)
                elif send_to_journal(self._registry, ingest):
                    return True
                else:
                    aborted.wait(self._retry.ceiling(attempt))
                    attempt += 1
            return False
        finally:
            with self._lock:
                self._waiting -= 1
                self._waited_s += time.monotonic() - started

    def statistics(self) -> GateStatistics:
        with self._lock:
            return GateStatistics(
                open=self._open.is_set(),
                waiting=self._waiting,
                waits_total=self._waits_total,
                waited_s=self._waited_s,
            )


@dataclass(frozen=True, slots=True)
class HeldStatistics:
    """The held batches and what went through them.

    Attributes:
        size: batches held now; ``events``: events in them.
        high_water: the largest ``size`` seen.
        held_total: batches that had to be held.
        resent_total: batches sent to the journal again.
        refused_total: refusals and failed resends.
        resend_round: consecutive resend rounds that met a refusal.
        gate: what the readers waited for.
    """

    size: int
    events: int
    high_water: int
    held_total: int
    resent_total: int
    refused_total: int
    resend_round: int
    gate: GateStatistics


class Resend:
    """Timer message: offer the held batches to the journal again."""

    __slots__ = ()


RESEND: Final = Resend()


class JournalLink:
    """The actor's side of the way to the journal: held batches, resends, the gate.

    Owned by one actor and used from its thread only (the :attr:`gate` is what
    its readers use). The actor passes every :class:`Held` and
    :class:`~actors.protocol.IngestRefused` to :meth:`take` and every
    :class:`Resend` timer message to :meth:`resend`.

    Resends go in rounds, the first ``backoff.delay(0)`` after a refusal: a
    round sends everything held; the next round, if no refusal came back in
    between, opens the gate, else the delay grows.

    Args:
        registry: to reach the journal by name.
        timers: the actor's timers (for :class:`Resend`).
        backoff: the delays between resend rounds.
        wait: the delays between a waiting reader's tries.
        rand: the jitter's random source.
    """

    def __init__(
        self,
        registry: Registry,
        timers: Timers,
        *,
        backoff: Backoff,
        wait: Backoff,
        rand: Callable[[], float],
    ) -> None:
        self.gate = IngestGate(registry, wait)
        self._registry = registry
        self._timers = timers
        self._backoff = backoff
        self._rand = rand
        self._queue: collections.deque[Ingest] = collections.deque()
        self._events = 0
        self._high_water = 0
        self._held_total = 0
        self._resent_total = 0
        self._refused_total = 0
        self._round = 0
        self._refused_since_round = False
        self._timer: TimerHandle | None = None

    @property
    def held(self) -> int:
        return len(self._queue)

    def take(self, message: Held | IngestRefused) -> None:
        """Hold a batch and close the gate until the journal takes the held ones."""
        if isinstance(message, IngestRefused):
            self._refused_total += 1
            self._refused_since_round = True
        self.gate.close()
        self._queue.append(message.ingest)
        self._events += len(message.ingest.events)
        self._held_total += 1
        self._high_water = max(self._high_water, len(self._queue))
        if self._timer is None:
            self._schedule()

    def resend(self) -> bool:
        """A resend round; ``True`` when the gate opened again."""
        self._timer = None
        clean = not self._refused_since_round
        self._refused_since_round = False
        self._round = 0 if clean else self._round + 1
        sent_all = self._send_held()
        if not sent_all:
            self._refused_total += 1
            self._refused_since_round = True
        if clean and sent_all:
            self.gate.reopen()
            return True
        self._schedule()
        return False

    def flush(self) -> int:
        """Send what is held now, once (the actor stops); how many events could not be sent."""
        self._send_held()
        return self._events

    def statistics(self) -> HeldStatistics:
        return HeldStatistics(
            size=len(self._queue),
            events=self._events,
            high_water=self._high_water,
            held_total=self._held_total,
            resent_total=self._resent_total,
            refused_total=self._refused_total,
            resend_round=self._round,
            gate=self.gate.statistics(),
        )

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

    The reject's text comes from outside: it is logged with its control
    characters escaped (:func:`~realtime.controls.escape_controls`).

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
            escape_controls(reject.reason),
            escape_controls(reject.detail),
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
