"""A stall: work an actor cannot finish now, retried with backoff and alerted until it resumes.

An actor whose work fails for a reason that passes (a handler restarting, the
database busy or full) keeps the work, retries it after a growing delay, and
reports the stall in its status under ``"stalled"`` (``severity``,
``message``); the metrics actor raises the alert ``stalled:{actor}`` while it
is there, and resolves it once the work succeeds again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from realtime.config import Config
from supervision import Backoff


def storage_backoff(config: Config) -> Backoff:
    """The delays between retries of a failing database write (``[journal] retry_*``)."""
    return Backoff(config.journal.retry_min_s, config.journal.retry_max_s, jitter=0.5)


@dataclass(slots=True)
class Stall:
    """The state of one kind of failing work (see the module doc).

    Attributes:
        backoff: the delays between retries.
        what: what is stalled, for the alert ("delivery to notifier").
        severity: the alert's severity.
        clock: monotonic seconds.
        error: the last failure, ``None`` while the work succeeds.
        attempts: failures in a row.
        since: when the first of them happened.
        total: failures ever, for the statistics.
    """

    backoff: Backoff
    what: str
    severity: str = "critical"
    clock: Callable[[], float] = time.monotonic
    error: str | None = None
    attempts: int = 0
    since: float = 0.0
    total: int = field(default=0)

    def failed(self, error: BaseException | str) -> float:
        """Record a failure; the delay before the next attempt."""
        if self.error is None:
            self.since = self.clock()
        self.error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.attempts += 1
        self.total += 1
        return self.backoff.delay(self.attempts - 1)

    def resumed(self) -> bool:
        """Record a success; whether the work was stalled until now."""
        stalled = self.error is not None
        self.error = None
        self.attempts = 0
        return stalled

    @property
    def stalled(self) -> bool:
        return self.error is not None

    def report(self) -> Mapping[str, str] | None:
        """The ``"stalled"`` entry of the actor's status: ``None`` while all is well."""
        if self.error is None:
            return None
        for_s = self.clock() - self.since
        return {
            "severity": self.severity,
            "message": (
                f"{self.what} failing for {for_s:.0f} s ({self.attempts} attempts, retrying): "
                f"{self.error}"
            )[:500],
        }
