"""The ``flow_control`` actor: priorities, demand and load shedding.

Between dedup and the router sits a :class:`~realtime.flow.FlowBuffer` of
``[mailbox] flow_control`` events, one FIFO per priority. Events get their
priority here (:class:`~realtime.flow.PriorityRules`, against the tracked
systems and characters that ``tracking`` publishes).

Demand flows upstream (GenStage-style): the router grants this actor credit,
and this actor grants the journal credit for as much as its buffer has room
for; the journal keeps the rest on disk. Under overload the buffer fills to
its high watermark, raising ``backpressure`` (with hysteresis down to the low
watermark); beyond capacity it sheds the lowest priority, oldest first, never
``critical``, and kills older than ``[filters] max_kill_age_s`` are dropped as
stale. Shed and stale events stay in the journal, marked, so replay sees them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from actors.base import ReportingActor
from actors.protocol import (
    Deduplicated,
    Deliver,
    Demand,
    GetTracking,
    Names,
    Resync,
    Settled,
    StreamReset,
    TrackingChanged,
)
from realtime.config import Config
from realtime.event import Outcome
from realtime.flow import Credits, FlowBuffer, PriorityRules, TrackedView, kill_deadlines
from supervision import ActorContext, ActorUnavailableError, ChildSpec, MailboxSpec

logger = logging.getLogger(__name__)

TRACKING_TIMEOUT_S = 2.0


class NothingTracked:
    """The tracked view before ``tracking`` has said anything."""

    def is_tracked_system(self, system_id: int) -> bool:
        return False

    def is_tracked_character(self, character_id: int) -> bool:
        return False


class FlowControlActor(ReportingActor):
    def __init__(self, ctx: ActorContext, config: Config) -> None:
        super().__init__(ctx)
        self.config = config
        flow = config.flow
        self.capacity = config.mailbox.flow_control
        self.buffer = self._new_buffer()
        self.rules = PriorityRules(flow.priorities)
        self.tracked: TrackedView = NothingTracked()
        self.journal_credit = Credits(self.capacity, min_grant=max(1, flow.demand // 2))
        self.router_credit = 0
        self.epoch = -1

    def _new_buffer(self) -> FlowBuffer:
        return FlowBuffer(
            self.capacity,
            self.config.flow.high_watermark,
            self.config.flow.low_watermark,
            kill_deadlines(self.config.filters.max_kill_age_s),
        )

    def on_start(self) -> None:
        super().on_start()
        try:
            changed = self.registry.ask(Names.TRACKING, GetTracking(), TRACKING_TIMEOUT_S)
            if isinstance(changed, TrackingChanged):
                self.tracked = changed.view
        except ActorUnavailableError:
            logger.info("flow_control: tracking not running yet; nothing tracked for now")
        # The journal answers with StreamReset, and then we grant it demand.
        # A journal that is not running redelivers from its checkpoint when it starts.
        with contextlib.suppress(ActorUnavailableError):
            self.registry.tell(Names.JOURNAL, Resync(self.name))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Deduplicated):
            self._offer(message)
        elif isinstance(message, Demand):
            self.router_credit = message.n if message.reset else self.router_credit + message.n
            self._dispatch()
        elif isinstance(message, StreamReset):
            # Everything after the checkpoint comes again: drop our copies.
            self.epoch = message.epoch
            self.buffer = self._new_buffer()
            self.journal_credit.reset()
            self._grant(reset=True)
            # The router drops batches of the old epoch and grants demand afresh.
            self.router_credit = 0
            with contextlib.suppress(ActorUnavailableError):
                self.registry.tell(Names.ROUTER, message)
        elif isinstance(message, TrackingChanged):
            self.tracked = message.view
        else:
            return super().on_receive(message)
        return None

    def _offer(self, batch: Deduplicated) -> None:
        if batch.epoch != self.epoch:
            self.counters["stale_epoch"] += len(batch.events)
            return  # sent before the last stream reset; redelivered since
        self.journal_credit.consume(batch.consumed)
        now = time.time()
        shed: list[int] = []
        for event in batch.events:
            priority = self.rules.assign(event, self.tracked)
            queued = event if priority == event.priority else event.with_priority(priority)
            shed.extend(e.committed_seq for e in self.buffer.offer(queued, now))
        if shed:
            self.counters["shed"] += len(shed)
            self._settle(shed, Outcome.SHED, "shed by flow control under overload")
        self._transitions()
        self._dispatch()

    def _dispatch(self) -> None:
        batch = self.config.flow.batch
        while self.router_credit > 0 and len(self.buffer):
            now = time.time()
            taken = self.buffer.take(min(self.router_credit, batch), now)
            if taken.stale:
                self.counters["stale"] += len(taken.stale)
                self._settle(
                    [e.committed_seq for e in taken.stale],
                    Outcome.STALE,
                    f"older than max_kill_age_s ({self.config.filters.max_kill_age_s:g}s)",
                )
            if not taken.events:
                continue
            try:
                self.registry.tell(Names.ROUTER, Deliver(taken.events, self.epoch))
            except ActorUnavailableError:
                # The router resyncs when it starts; these come back then.
                self.router_credit = 0
                break
            self.router_credit -= len(taken.events)
            self.observe_many("flow", taken.events)
            self.counters["dispatched"] += len(taken.events)
        self._transitions()
        self._grant()

    def _grant(self, *, reset: bool = False) -> None:
        outstanding = self.journal_credit.outstanding
        room = self.capacity - len(self.buffer) - outstanding
        grant = min(room, self.journal_credit.available)
        if grant <= 0 or (grant < self.config.flow.demand // 2 and not reset):
            return
        self.journal_credit.grant(grant)
        try:
            self.registry.tell(Names.JOURNAL, Demand(self.name, grant, reset=reset))
        except ActorUnavailableError:
            self.journal_credit.reset()  # the journal restarts and redelivers anyway

    def _settle(self, seqs: list[int], outcome: Outcome, detail: str) -> None:
        try:
            self.registry.tell(Names.JOURNAL, Settled(tuple(seqs), outcome, detail))
        except ActorUnavailableError:
            logger.warning("flow_control: journal unavailable; %d %s events", len(seqs), outcome)

    def _transitions(self) -> None:
        for transition in self.buffer.take_transitions():
            if transition.backpressure:
                logger.warning("flow_control: backpressure ON at %d events", transition.size)
                self.counters["backpressure_on"] += 1
            else:
                logger.info("flow_control: backpressure off at %d events", transition.size)

    def report_gauges(self) -> Mapping[str, float]:
        return {"size": len(self.buffer), "backpressure": float(self.buffer.backpressure)}

    def status(self) -> Mapping[str, Any]:
        stats = self.buffer.statistics()
        return {
            "backpressure": stats.backpressure,
            "size": stats.size,
            "capacity": stats.capacity,
            "high_water": stats.max_size,
            "high_watermark": stats.high_watermark,
            "low_watermark": stats.low_watermark,
            "levels": {p.name.lower(): n for p, n in stats.sizes.items()},
            "shed": {p.name.lower(): n for p, n in stats.shed.items()},
            "stale": {p.name.lower(): n for p, n in stats.stale.items()},
            "over_capacity": stats.over_capacity,
            "router_credit": self.router_credit,
            "journal_credit": self.journal_credit.outstanding,
        }


def child_spec(config: Config) -> ChildSpec:
    return ChildSpec(
        name=Names.FLOW_CONTROL,
        start=lambda ctx: FlowControlActor.start(ctx, config),
        mailbox=MailboxSpec(config.mailbox.flow_control),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
