"""The base of the system's actors: counters, gauges and latencies reported to ``metrics``.

An actor counts what it does in :attr:`ReportingActor.counters`, sets gauges,
and records per-stage latency of events with :meth:`ReportingActor.observe`.
About once a second it sends the increments since the last report as one
:class:`~actors.protocol.StatsReport` (batched, never one message per event).
A report that cannot be delivered (metrics restarting or full) is merged into
the next one, so counts are delayed, never lost; latency samples are bounded
per stage and the oldest are dropped first.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from actors.protocol import Names, StatsReport
from realtime.event import Event
from supervision import (
    ActorContext,
    ActorUnavailableError,
    MailboxFullError,
    SupervisedActor,
)

logger = logging.getLogger(__name__)

REPORT_INTERVAL_S = 1.0
MAX_SAMPLES_PER_STAGE = 2048
"""Latency samples kept per stage between two reports (the newest win)."""

_MAX_PLAUSIBLE_LATENCY_S = 24 * 3600.0


class _Report:
    """Timer message: time to send a StatsReport."""

    __slots__ = ()


_REPORT = _Report()


class ReportingActor(SupervisedActor):
    """A supervised actor that reports its figures to ``metrics`` once a second.

    Subclasses call ``super().on_start()`` if they override ``on_start``, and
    pass unknown messages to ``super().on_receive()``.
    """

    report_interval_s = REPORT_INTERVAL_S

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        self.counters: collections.Counter[str] = collections.Counter()
        self.gauges: dict[str, float] = {}
        self._samples: dict[str, collections.deque[float]] = {}

    def on_start(self) -> None:
        if self.name != Names.METRICS:
            self.timers.send_interval(self.report_interval_s, _REPORT)

    def observe(self, stage: str, received_at_ns: int, now_ns: int | None = None) -> None:
        """Record the latency of one event from its socket read to ``stage``.

        ``received_at_ns`` is ``time.monotonic_ns()`` at the socket; Linux's
        monotonic clock is shared by every process since boot, so an event
        redelivered after a restart still gives a true (large) figure, and an
        implausible one (a reboot in between) is not recorded.
        """
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        latency_s = (now_ns - received_at_ns) / 1e9
        if not 0 <= latency_s < _MAX_PLAUSIBLE_LATENCY_S:
            return
        samples = self._samples.get(stage)
        if samples is None:
            samples = self._samples[stage] = collections.deque(maxlen=MAX_SAMPLES_PER_STAGE)
        samples.append(latency_s)

    def observe_many(self, stage: str, events: Iterable[Event]) -> None:
        """:meth:`observe` for a batch of events, reading the clock once."""
        now_ns = time.monotonic_ns()
        samples = self._samples.get(stage)
        if samples is None:
            samples = self._samples[stage] = collections.deque(maxlen=MAX_SAMPLES_PER_STAGE)
        append = samples.append
        for event in events:
            latency_s = (now_ns - event.received_at) / 1e9
            if 0 <= latency_s < _MAX_PLAUSIBLE_LATENCY_S:
                append(latency_s)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Report):
            self._send_report()
            return None
        return super().on_receive(message)

    def _send_report(self) -> None:
        report = StatsReport(
            actor=self.name,
            counters=dict(self.counters),
            gauges={**self.gauges, **self.report_gauges()},
            latencies={stage: tuple(s) for stage, s in self._samples.items() if s},
        )
        try:
            self.registry.tell(Names.METRICS, report)
        except (ActorUnavailableError, MailboxFullError):
            return  # keep the increments for the next report
        self.counters.clear()
        for samples in self._samples.values():
            samples.clear()

    def report_gauges(self) -> Mapping[str, float]:
        """Gauges computed at report time (window size, backlog...); override."""
        return {}
