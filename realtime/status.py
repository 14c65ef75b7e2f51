"""Status messages: when to say "started" or "back", and how many kills were caught up.

An **outage** is either

- the program not running: from the previous run's last sign of life (the
  notifier records one every ``[status] heartbeat_s`` and when it stops) to
  this start. Every start is announced (``started``), with the time away when
  an earlier run is on record; or
- a feed (a source connection: ``kills``, ``kills:characters``,
  ``map:{slug}``) not live long enough to raise its ``connection:{name}``
  alert, from when it stopped being live to when that alert resolved
  (``recovered``). A shorter blip raises no alert and is no outage.

After a start or a recovery the :class:`StatusWatch` keeps a **catch-up
window** open for ``[status] catch_up_s``: every kill notified for the first
time while it is open, whose kill time lies within the outage, counts as
caught up. When the window closes the status message is due, with the time
away and the count. At most :data:`MAX_WINDOWS` windows are open at once; a
further one closes the oldest early (counted in ``closed_early``).

Pure: wall-clock Unix seconds are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_WINDOWS = 16
"""Catch-up windows open at once (a feed flapping cannot grow them)."""

OutageReason = Literal["started", "recovered"]


@dataclass(frozen=True, slots=True)
class Outage:
    """What a status message reports on.

    Attributes:
        reason: ``started`` (the program started) or ``recovered`` (a feed).
        began: when the outage began (``None``: the first start on record).
        ended: when the program started or the feed came back.
        source: the feed's connection name for ``recovered`` ("" otherwise).
    """

    reason: OutageReason
    began: float | None
    ended: float
    source: str = ""

    @property
    def away_s(self) -> float | None:
        """How long it lasted (``None`` for a first start)."""
        return None if self.began is None else max(0.0, self.ended - self.began)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A status message that is due: its outage and the kills caught up after it."""

    outage: Outage
    kills_caught_up: int


@dataclass(slots=True)
class _Window:
    outage: Outage
    closes_at: float
    kills: int = 0


@dataclass(frozen=True, slots=True)
class StatusWatchStatistics:
    open_windows: int
    reported: int
    closed_early: int


class StatusWatch:
    """Catch-up windows after starts and recoveries (see the module docstring).

    Args:
        catch_up_s: how long a window stays open.
    """

    def __init__(self, catch_up_s: float) -> None:
        self._catch_up_s = catch_up_s
        self._windows: list[_Window] = []
        self._reported = 0
        self._closed_early = 0

    def open(self, outage: Outage, now: float) -> list[StatusReport]:
        """Start counting after ``outage``; the reports closed early to make room."""
        early: list[StatusReport] = []
        while len(self._windows) >= MAX_WINDOWS:
            oldest = self._windows.pop(0)
            self._closed_early += 1
            early.append(self._report(oldest))
        self._windows.append(_Window(outage, now + self._catch_up_s))
        return early

    def kill(self, kill_time: float) -> None:
        """A kill notified for the first time: caught up by each open window it falls in."""
        for window in self._windows:
            began = window.outage.began
            if began is not None and began <= kill_time <= window.outage.ended:
                window.kills += 1

    @property
    def counting(self) -> bool:
        """Some window is open (kills are worth reporting to :meth:`kill`)."""
        return bool(self._windows)

    def due(self, now: float) -> list[StatusReport]:
        """The reports whose window has closed by ``now``, oldest first."""
        closed = [window for window in self._windows if window.closes_at <= now]
        if not closed:
            return []
        self._windows = [window for window in self._windows if window.closes_at > now]
        return [self._report(window) for window in closed]

    def _report(self, window: _Window) -> StatusReport:
        self._reported += 1
        return StatusReport(window.outage, window.kills)

    def statistics(self) -> StatusWatchStatistics:
        return StatusWatchStatistics(
            open_windows=len(self._windows),
            reported=self._reported,
            closed_early=self._closed_early,
        )
