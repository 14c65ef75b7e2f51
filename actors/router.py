"""The ``router`` actor: routes each event to its handlers and settles it.

Routing is by event type (the same for every source, so a replay routes as
the live run did): each type maps to an ordered list of handlers, ``tracking``
and/or ``notifier``; a type with no route, or routed to ``ignore``, is counted
and settled as ignored. ``[routing] routes`` overrides the defaults below.

A batch is handed to each handler by an *ask* (:class:`~actors.protocol.Handle`):
the handler answers once the events are safe with it. Deliveries that queue
up while a batch is with the handlers are handed on together (up to
``[flow] batch`` events per handler call), so that a busy router makes few
large asks rather than many small ones. The router grants ``flow_control``
demand only for batches it has finished, so a failing handler slows the flow
instead of piling work up: what is not handled stays in the journal.

When a handler fails, the batch is retried with backoff (``[routing]
retry_min_s`` doubling up to ``retry_max_s``) and the ``stalled:router``
alert stands until a delivery succeeds again:

- a handler that *cannot take* the events now (it is restarting, stopped,
  too slow to answer, its mailbox is full, it answered
  :class:`~actors.protocol.Refused`, or its database is busy or full) is
  retried for as long as that lasts: a passing failure never ends a
  notification;
- a handler that *raises* on the events (a bug) is retried
  ``[routing] max_attempts`` times; then the batch is retried one event at a
  time, and an event the handler still raises on after as many attempts is
  dead-lettered in the journal (outcome ``dead_letter``, counted and
  logged), so one poisonous event cannot stall the others for ever.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.base import ReportingActor
from actors.protocol import (
    Deliver,
    Demand,
    Handle,
    Names,
    Refused,
    Resync,
    Settled,
    StreamReset,
)
from actors.stall import Stall
from realtime.config import Config, Handler
from realtime.event import Event, Outcome
from realtime.storage import StorageUnavailableError
from supervision import (
    ActorContext,
    ActorUnavailableError,
    Backoff,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
)

logger = logging.getLogger(__name__)

TRACKING_TYPES = (
    "add_system",
    "deleted_system",
    "system_renamed",
    "character_added",
    "character_removed",
    "character_updated",
)
DEFAULT_ROUTES: Mapping[str, tuple[Handler, ...]] = {
    "killmail": ("notifier",),
    "map_kill": ("notifier",),
    "rally_point_added": ("notifier",),
    **dict.fromkeys(TRACKING_TYPES, ("tracking", "notifier")),
}
"""Types not listed here are ignored (counted, settled as ``ignored``)."""


def routing_table(config: Config) -> dict[str, tuple[Handler, ...]]:
    table = dict(DEFAULT_ROUTES)
    table.update(config.routing.routes)
    return {type_: handlers for type_, handlers in table.items() if handlers != ("ignore",)}


@dataclass(slots=True)
class _Work:
    """A delivered batch still being handed to its handlers."""

    events: tuple[Event, ...]
    epoch: int
    remaining: collections.deque[tuple[str, tuple[Event, ...]]]
    attempts: int = 0
    dead: set[int] = field(default_factory=set)


class _Retry:
    __slots__ = ()


class _IdleGrant:
    """Timer: an idle router re-grants its demand, healing credit lost to a restart."""

    __slots__ = ()


IDLE_GRANT_S = 1.0

_PASSING = (ActorUnavailableError, pykka.Timeout, MailboxFullError, StorageUnavailableError)
"""Handler failures that say "not now" rather than "never": retried without a limit."""


class RouterActor(ReportingActor):
    def __init__(self, ctx: ActorContext, config: Config) -> None:
        super().__init__(ctx)
        self.config = config
        self.table = routing_table(config)
        routing = config.routing
        self.backoff = Backoff(routing.retry_min_s, routing.retry_max_s)
        self.stall = Stall(self.backoff, "delivery to the handlers")
        self._waiting: _Work | None = None
        self._queue: collections.deque[_Work] = collections.deque()
        # Delivered events not yet planned, of one epoch, while more messages wait.
        self._incoming: list[Event] = []
        self._incoming_epoch = 0
        self.decisions: collections.Counter[str] = collections.Counter()
        self.epoch: int | None = None

    def on_start(self) -> None:
        super().on_start()
        if self.ctx.incarnation == 1:
            # A first start takes deliveries of any epoch and grants at once.
            self._grant(self.config.flow.demand, reset=True)
        else:
            # What the previous incarnation held is lost: redeliver from the
            # checkpoint, and take only the epoch of the StreamReset (forwarded
            # by flow_control) that this Resync causes.
            with contextlib.suppress(ActorUnavailableError):
                self.registry.tell(Names.JOURNAL, Resync(self.name))
        self.timers.send_interval(IDLE_GRANT_S, _IdleGrant())

    def on_receive(self, message: Any) -> Any:
        answer = self._receive(message)
        # Coalescing: deliveries queued behind each other become one batch,
        # planned once nothing more waits (or the batch is full).
        if self._incoming and len(self.mailbox) == 0:
            self._plan_incoming()
            self._run()
        return answer

    def _receive(self, message: Any) -> Any:
        if isinstance(message, Deliver):
            if self.epoch is not None and message.epoch != self.epoch:
                self.counters["stale_epoch"] += len(message.events)
                return None  # sent before the last stream reset; redelivered since
            if self._incoming and message.epoch != self._incoming_epoch:
                self._plan_incoming()
            self._incoming.extend(message.events)
            self._incoming_epoch = message.epoch
            if len(self._incoming) >= self.config.flow.batch:
                self._plan_incoming()
                self._run()
        elif isinstance(message, StreamReset):
            self.epoch = message.epoch
            self._plan_incoming()
            self._queue = collections.deque(w for w in self._queue if w.epoch == self.epoch)
            self._grant(self.config.flow.demand, reset=True)
        elif isinstance(message, _Retry):
            self._waiting = None
            self._run()
        elif isinstance(message, _IdleGrant):
            started = self.epoch is not None or self.ctx.incarnation == 1
            if started and not self._queue and not self._incoming and self._waiting is None:
                self._grant(self.config.flow.demand, reset=True)
        else:
            return super().on_receive(message)
        return None

    def _plan_incoming(self) -> None:
        if self._incoming:
            self._queue.append(self._plan(self._incoming, self._incoming_epoch))
            self._incoming = []

    def _plan(self, events: Sequence[Event], epoch: int) -> _Work:
        by_handler: dict[str, list[Event]] = {}
        for event in events:
            handlers = self.table.get(event.type, ())
            self.decisions[f"{event.type}->{'+'.join(handlers) or 'ignore'}"] += 1
            for handler in handlers:
                by_handler.setdefault(handler, []).append(event)
        # Tracking first: the notifier decides against what tracking knows.
        order = sorted(by_handler, key=lambda name: name != Names.TRACKING)
        steps = collections.deque((name, tuple(by_handler[name])) for name in order)
        return _Work(tuple(events), epoch, steps)

    def _run(self) -> None:
        while self._queue and self._waiting is None:
            work = self._queue[0]
            if not self._advance(work):
                return
            self._queue.popleft()
            self._finish(work)

    def _advance(self, work: _Work) -> bool:
        """Hand ``work`` to its remaining handlers; False when it must wait for a retry."""
        timeout = self.config.routing.handler_timeout_s
        while work.remaining:
            handler, events = work.remaining[0]
            try:
                answer = self.registry.ask(handler, Handle(events), timeout)
            except (ActorUnavailableError, pykka.Timeout, Exception) as error:  # noqa: BLE001 -- any handler failure is retried
                return self._failed(work, handler, error)
            if isinstance(answer, Refused):
                return self._failed(work, handler, answer.reason)
            work.remaining.popleft()
            work.attempts = 0
            if self.stall.resumed():
                logger.warning("router: delivery to %s resumed", handler)
        return True

    def _failed(self, work: _Work, handler: str, error: BaseException | str) -> bool:
        """Retry ``work`` later, or isolate what a handler raises on; see the module doc."""
        passing = isinstance(error, (str, *_PASSING))
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        detail = f"{handler}: {reason}"
        self.counters["handler_failures"] += 1
        if not passing:
            work.attempts += 1
            if work.attempts >= self.config.routing.max_attempts:
                self._isolate(work, detail)
                return self._advance(work)
        delay = self.stall.failed(detail)
        logger.warning(
            "router: %s failed (%d in a row); retry in %.2fs", detail, self.stall.attempts, delay
        )
        self._waiting = work
        self.timers.send_after(delay, _Retry())
        return False

    def _isolate(self, work: _Work, detail: str) -> None:
        """The handler keeps raising on the first step: split it, or dead-letter its one event."""
        handler, events = work.remaining.popleft()
        work.attempts = 0
        if len(events) > 1:
            logger.error(
                "router: %s raised on a batch of %d events %d times; retrying them one by one",
                detail,
                len(events),
                self.config.routing.max_attempts,
            )
            work.remaining.extendleft((handler, (event,)) for event in reversed(events))
            return
        logger.error(
            "router: event seq %d dead-lettered: %s raised on it %d times",
            events[0].committed_seq,
            detail,
            self.config.routing.max_attempts,
        )
        self._settle(events, Outcome.DEAD_LETTER, detail[:500])
        self.counters["dead_letter"] += 1
        work.dead.add(events[0].committed_seq)

    def _finish(self, work: _Work) -> None:
        handled = [
            e for e in work.events if e.type in self.table and e.committed_seq not in work.dead
        ]
        ignored = [e for e in work.events if e.type not in self.table]
        self.observe_many("router", handled)
        if handled:
            self._settle(handled, Outcome.HANDLED)
        if ignored:
            self._settle(ignored, Outcome.IGNORED, "no route for this type")
        self.counters["handled"] += len(handled)
        self.counters["ignored"] += len(ignored)
        self._grant(len(work.events))

    def _settle(self, events: Sequence[Event], outcome: Outcome, detail: str = "") -> None:
        seqs = tuple(e.committed_seq for e in events)
        try:
            self.registry.tell(Names.JOURNAL, Settled(seqs, outcome, detail))
        except ActorUnavailableError:
            logger.warning("router: journal unavailable; it redelivers %d events", len(seqs))

    def _grant(self, n: int, *, reset: bool = False) -> None:
        # A flow_control that is not running gets our demand at the next idle grant.
        with contextlib.suppress(ActorUnavailableError):
            self.registry.tell(Names.FLOW_CONTROL, Demand(self.name, n, reset=reset))

    def status(self) -> Mapping[str, Any]:
        return {
            "queued_batches": len(self._queue),
            "incoming": len(self._incoming),
            "retrying": self._waiting is not None,
            "handler_failures": self.stall.total,
            "stalled": self.stall.report(),
            "decisions": dict(self.decisions.most_common(50)),
            "routes": {k: list(v) for k, v in self.table.items()},
        }


def child_spec(config: Config) -> ChildSpec:
    return ChildSpec(
        name=Names.ROUTER,
        start=lambda ctx: RouterActor.start(ctx, config),
        mailbox=MailboxSpec(config.mailbox.router),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
