"""The notifier's own notifications: status messages after a start or an outage.

What counts as an outage and how kills are counted as caught up is
:mod:`realtime.status`. Here: the program's start is one fact per process
(:class:`ProcessStart`, made with the child spec and shared by every
incarnation of the actor, so a restart of the actor after a crash is not a
new start and reopens the start's window only if it was not announced yet),
the sign of life recorded in the ledger every ``[status] heartbeat_s`` and at
the stop, and the status notifications due.

The cooldown of a route's mention and the time away both survive restarts
because both live in the ledger (``mentioned`` entries, ``notifier_state``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from realtime.config import StatusConfig
from realtime.ledger import Ledger
from realtime.notifications import Notification, StatusReason, status_notification
from realtime.status import (
    Outage,
    OutageReason,
    StatusReport,
    StatusWatch,
    StatusWatchStatistics,
)

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ProcessStart:
    """This process's start (Unix seconds), and what the notifier did about it."""

    at: float
    previous_alive: float | None = None
    """The previous run's last sign of life (read from the ledger once)."""
    read: bool = False
    announced: bool = False


class Announcer:
    """Status messages and the heartbeat (see the module docstring).

    Args:
        start: this process's start; ``None`` announces no start (a replay).
        settings: ``[status]``.
    """

    def __init__(self, start: ProcessStart | None, settings: StatusConfig) -> None:
        self._start = start
        self._watch = StatusWatch(settings.catch_up_s)
        self._heartbeat_s = settings.heartbeat_s
        self._next_heartbeat = float("inf")

    def begin(self, ledger: Ledger, now: float) -> None:
        """At the actor's start: the start's window unless announced, and a sign of life."""
        start = self._start
        if start is None:
            return
        if not start.read:
            start.previous_alive = ledger.last_alive()
            start.read = True
        if not start.announced:
            reason: OutageReason = "started" if start.previous_alive is None else "recovered"
            self._watch.open(Outage(reason, start.previous_alive, start.at, "program"), now)
        self.heartbeat(ledger, now)

    def heartbeat(self, ledger: Ledger, now: float) -> None:
        """Record a sign of life now (and when the next is due)."""
        ledger.record_alive(now)
        self._next_heartbeat = now + self._heartbeat_s

    def recovered(self, source: str, began: float, ended: float, now: float) -> list[Notification]:
        """A feed is back: open its window; the reports closed early to make room."""
        early = self._watch.open(Outage("recovered", began, ended, source), now)
        return [self._notification(report) for report in early]

    def kill(self, kill_time: float) -> None:
        """A kill notified for the first time (counted if a window is open)."""
        if self._watch.counting:
            self._watch.kill(kill_time)

    def tick(self, ledger: Ledger, now: float) -> list[Notification]:
        """The heartbeat when due; the status notifications whose window closed."""
        if now >= self._next_heartbeat:
            self.heartbeat(ledger, now)
        return [self._notification(report) for report in self._watch.due(now)]

    def _notification(self, report: StatusReport) -> Notification:
        outage = report.outage
        if outage.source == "program" and self._start is not None:
            self._start.announced = True
        detail = (
            "the program was not running"
            if outage.source == "program"
            else f"the {outage.source} feed was not connected"
        )
        reason = StatusReason.STARTED if outage.began is None else StatusReason.RECOVERED
        return status_notification(
            reason,
            outage.ended,
            away_s=outage.away_s,
            kills_caught_up=report.kills_caught_up,
            detail="" if outage.began is None else detail,
        )

    def statistics(self) -> StatusWatchStatistics:
        return self._watch.statistics()
