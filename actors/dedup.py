"""The ``dedup`` actor: removes duplicates within and across the two feeds.

It sees every committed event (a :class:`~actors.protocol.Deliver` from the
journal), checks its key in a :class:`~realtime.dedup.DedupWindow`, settles the
duplicates with the journal and forwards the unique events to
``flow_control``. The window remembers each key's *first seq*, so an event
redelivered after a restart is not its own duplicate; at start it is rebuilt
from the journal's recent keys, so a restart does not forget.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from actors.base import ReportingActor
from actors.protocol import (
    Deduplicated,
    Deliver,
    Names,
    RecentKeys,
    Resync,
    Settled,
)
from realtime.config import Config
from realtime.dedup import DedupWindow
from realtime.event import Outcome
from supervision import ActorContext, ActorUnavailableError, ChildSpec, MailboxSpec

logger = logging.getLogger(__name__)

REBUILD_TIMEOUT_S = 30.0


class DedupActor(ReportingActor):
    def __init__(self, ctx: ActorContext, config: Config) -> None:
        super().__init__(ctx)
        self.config = config
        self.window = DedupWindow(config.dedup_window_s, config.dedup.max_entries)

    def on_start(self) -> None:
        super().on_start()
        try:
            entries = self.registry.ask(
                Names.JOURNAL,
                RecentKeys(self.config.dedup_window_s, self.config.dedup.max_entries),
                REBUILD_TIMEOUT_S,
            )
        except ActorUnavailableError:
            entries = []
            logger.warning("dedup: journal not running; starting with an empty window")
        loaded = self.window.load(entries)
        logger.info("dedup: window rebuilt with %d keys from the journal", loaded)
        if self.ctx.incarnation > 1:
            # What the previous incarnation held is lost: redeliver from the
            # checkpoint. (flow_control resyncs at every start; a journal that
            # is not running redelivers from its checkpoint when it starts.)
            with contextlib.suppress(ActorUnavailableError):
                self.registry.tell(Names.JOURNAL, Resync(self.name))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Deliver):
            self._check(message)
            return None
        return super().on_receive(message)

    def _check(self, delivery: Deliver) -> None:
        now = time.time()
        check = self.window.check
        unique = []
        duplicates = []
        for event in delivery.events:
            seq = event.committed_seq
            if check(event.key, seq, event.source, now).duplicate:
                duplicates.append(seq)
            else:
                unique.append(event)
        self.observe_many("dedup", delivery.events)
        self.counters["checked"] += len(delivery.events)
        self.counters["duplicates"] += len(duplicates)
        if duplicates:
            self.registry.tell(Names.JOURNAL, Settled(tuple(duplicates), Outcome.DUPLICATE))
        try:
            self.registry.tell(
                Names.FLOW_CONTROL,
                Deduplicated(tuple(unique), len(delivery.events), delivery.epoch),
            )
        except ActorUnavailableError:
            self.counters["forward_failed"] += len(unique)  # flow_control resyncs on start

    def report_gauges(self) -> Mapping[str, float]:
        return {"window_size": len(self.window)}

    def status(self) -> Mapping[str, Any]:
        stats = self.window.statistics()
        return asdict(stats) | {
            "duplicate_pairs": {
                f"{first}->{again}": count
                for (first, again), count in stats.duplicate_pairs.items()
            }
        }


def child_spec(config: Config) -> ChildSpec:
    return ChildSpec(
        name=Names.DEDUP,
        start=lambda ctx: DedupActor.start(ctx, config),
        mailbox=MailboxSpec(config.mailbox.dedup),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
