"""A circuit breaker and the reconnect policy built on it (pure: time is a parameter).

The breaker stops a client from hammering a source that keeps failing: after
``failure_threshold`` consecutive failures it *opens* and refuses attempts for
``open_s`` seconds, then lets exactly one probe through (*half-open*); the
probe's success closes it, its failure opens it again.

:class:`ReconnectPolicy` combines the breaker with a :class:`DelayPolicy`
(the actors pass ``supervision.Backoff`` with full jitter) for a connection's
reconnect loop. Only a connection that was
established *and* joined its channel can reset the backoff, and only once it
has stayed up for ``stable_s``: a TCP connect that then fails to join, or a
server that accepts and drops every connection, keeps the delays growing (the
Elixir notifier reset its counter on connect and retried a failing server
every second).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class DelayPolicy(Protocol):
    """Delays between retries: what the reconnect policy needs of a backoff."""

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        """The delay before retry number ``attempt`` (0 first); ``rand`` is in [0, 1)."""
        ...


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitStatistics:
    """A snapshot of a :class:`CircuitBreaker`.

    Attributes:
        state: the state as of the last call (``open`` turns ``half_open``
            only when :meth:`CircuitBreaker.allow` is asked after ``open_s``).
        consecutive_failures: failures since the last success.
        failure_threshold: failures that open the circuit.
        times_opened: how often the circuit has opened, half-open probes included.
    """

    state: CircuitState
    consecutive_failures: int
    failure_threshold: int
    times_opened: int


class CircuitBreaker:
    """Closed → open after ``failure_threshold`` consecutive failures → half-open
    after ``open_s`` → closed on success, or open again on failure.

    ``now`` is any monotonic clock in seconds, the same for every call.
    In the half-open state a single attempt (the probe) is allowed; further
    attempts are refused until the probe's outcome is recorded.
    """

    def __init__(self, failure_threshold: int, open_s: float) -> None:
        """Raises:
        ValueError: ``failure_threshold`` is below 1 or ``open_s`` is negative.
        """
        if failure_threshold < 1:
            msg = f"failure_threshold must be at least 1, got {failure_threshold}"
            raise ValueError(msg)
        if open_s < 0:
            msg = f"open_s must not be negative, got {open_s}"
            raise ValueError(msg)
        self._failure_threshold = failure_threshold
        self._open_s = open_s
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._times_opened = 0

    @property
    def state(self) -> CircuitState:
        return self._state

    def allow(self, now: float) -> bool:
        """Whether an attempt may be made now.

        In the open state, once ``open_s`` has passed, this moves the breaker
        to half-open and returns ``True`` for that one probe.
        """
        if self._state is CircuitState.CLOSED:
            return True
        if self._state is CircuitState.OPEN and now >= self._opened_at + self._open_s:
            self._state = CircuitState.HALF_OPEN
            return True
        return False

    def record_success(self) -> None:
        """An attempt succeeded: the circuit closes and the failure count restarts."""
        self._state = CircuitState.CLOSED
        self._failures = 0

    def record_failure(self, now: float) -> None:
        """An attempt failed at ``now``.

        A failed probe re-opens the circuit for another ``open_s``; so does a
        failure reported while open (an attempt that ignored :meth:`allow` is
        still fresh evidence that the source is down).
        """
        self._failures += 1
        if self._state is not CircuitState.CLOSED or self._failures >= self._failure_threshold:
            self._open(now)

    def retry_in(self, now: float) -> float | None:
        """Seconds until :meth:`allow` would return ``True``.

        ``0.0`` when closed or when the open period is over; ``None`` while a
        half-open probe is outstanding (its outcome decides).
        """
        if self._state is CircuitState.CLOSED:
            return 0.0
        if self._state is CircuitState.HALF_OPEN:
            return None
        return max(0.0, self._opened_at + self._open_s - now)

    def statistics(self) -> CircuitStatistics:
        return CircuitStatistics(
            state=self._state,
            consecutive_failures=self._failures,
            failure_threshold=self._failure_threshold,
            times_opened=self._times_opened,
        )

    def _open(self, now: float) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = now
        self._times_opened += 1


@dataclass(frozen=True, slots=True)
class ReconnectStatistics:
    """A snapshot of a :class:`ReconnectPolicy`.

    Attributes:
        attempt: the backoff attempt number the next failure will use.
        failures: failures recorded over the policy's lifetime.
        resets: how often a stable connection reset the attempt number.
        circuit: the breaker's snapshot.
    """

    attempt: int
    failures: int
    resets: int
    circuit: CircuitStatistics


class ReconnectPolicy:
    """When to reconnect: capped exponential backoff with jitter, behind a breaker.

    The connection loop asks :meth:`attempt_allowed` before connecting, calls
    :meth:`connected_and_joined` once the channel join succeeded, and calls
    :meth:`next_delay` after every failure (connect refused, join failed or
    timed out, connection lost) to learn how long to wait.

    Args:
        backoff: delays per attempt number; use ``jitter=1.0`` (full jitter).
        breaker: the source's circuit breaker; this policy records into it.
        rand: returns a float in ``[0, 1)`` for the jitter (inject a seeded one).
        stable_s: how long a joined connection must last before its end
            resets the attempt number; ``0`` resets on every successful join.
    """

    def __init__(
        self,
        backoff: DelayPolicy,
        breaker: CircuitBreaker,
        *,
        rand: Callable[[], float],
        stable_s: float = 60.0,
    ) -> None:
        if stable_s < 0:
            msg = f"stable_s must not be negative, got {stable_s}"
            raise ValueError(msg)
        self._backoff = backoff
        self._breaker = breaker
        self._rand = rand
        self._stable_s = stable_s
        self._attempt = 0
        self._joined_at: float | None = None
        self._failures = 0
        self._resets = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    def attempt_allowed(self, now: float) -> bool:
        """Whether the breaker lets a connection attempt through now."""
        return self._breaker.allow(now)

    def connected_and_joined(self, now: float) -> None:
        """The connection is up and its channel joined: the breaker closes.

        This is the only thing that can reset the backoff; the reset takes
        effect at the next failure if the connection lasted ``stable_s``.
        """
        self._breaker.record_success()
        self._joined_at = now

    def next_delay(self, now: float) -> float:
        """Record a failure at ``now`` and return the seconds to wait before retrying.

        The delay is the backoff's jittered delay for the current attempt
        number, or the rest of the breaker's open period if that is longer.
        """
        if self._joined_at is not None and now - self._joined_at >= self._stable_s:
            self._attempt = 0
            self._resets += 1
        self._joined_at = None
        self._failures += 1
        self._breaker.record_failure(now)
        delay = self._backoff.delay(self._attempt, self._rand)
        self._attempt += 1
        return max(delay, self._breaker.retry_in(now) or 0.0)

    def statistics(self) -> ReconnectStatistics:
        return ReconnectStatistics(
            attempt=self._attempt,
            failures=self._failures,
            resets=self._resets,
            circuit=self._breaker.statistics(),
        )
