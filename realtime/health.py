"""Connection health: one state machine and quality score per connection.

A source actor owns one :class:`ConnectionHealth` and reports what happens
(``connecting``, ``connected``, ``message``, ``rtt``, ``error``,
``disconnected``, ``reconnecting``, ``failed``); the web actor serves
:meth:`ConnectionHealth.snapshot` as one entry of ``/api/health`` and
:func:`overall` as its ``status``. Time is a parameter: every ``now`` comes
from one monotonic clock chosen by the caller, in seconds. A ``now`` earlier
than one already seen is taken as the latest one seen.

States and the transitions that reports may cause (any other report raises
:class:`IllegalTransitionError`)::

    disconnected -> connecting | reconnecting | failed      (the initial state)
    connecting   -> connected | disconnected | failed
    connected    -> disconnected | failed
    degraded     -> disconnected | failed
    reconnecting -> connecting | disconnected | failed
    failed       -> connecting | reconnecting | disconnected

``connected <-> degraded`` is never reported: a live connection (``connected``
or ``degraded``) is re-evaluated after every report and on :meth:`tick`. It
becomes ``degraded`` when its score falls below 70 or on a watchdog warning
(nothing received for ``stale_after_s``, well before the actor's watchdog
gives up at ``silence_timeout_s``), and ``connected`` again once the score is
back to 75 or more without a warning (the gap stops it flapping).

**Quality score** (0-100, rounded): a weighted mean of components in [0, 1].

- ``uptime``: the fraction of the last ``uptime_window_s`` spent connected or
  degraded, counted from the first successful connection (the time it takes
  to connect the first time is start-up, not downtime).
- ``errors``: ``max(0, 1 - e / error_budget)`` where ``e`` is the number of
  errors reported in the last ``error_window_s`` (heartbeat misses, decode
  errors, HTTP errors: whatever the actor reports with :meth:`error`).
- ``freshness``: 1 while the last message is at most ``stale_after_s`` old,
  falling linearly to 0 at ``silence_timeout_s``; 0 when not live.
- ``rtt`` (WebSocket only): 1 while the p95 RTT is at most ``rtt_good_s``,
  falling linearly to 0 at ``rtt_bad_s``; 0 when not live; left out of the
  mean while live with no sample yet.

Weights: WebSocket ``rtt`` 0.25, ``errors`` 0.25, ``uptime`` 0.25,
``freshness`` 0.25; SSE (no ping, so freshness against its keepalive timeout
stands in for it) ``uptime`` 0.35, ``errors`` 0.30, ``freshness`` 0.35. A
``failed`` connection scores 0. Bands: ``excellent`` >= 90, ``good`` >= 70,
``poor`` >= 40, else ``critical``.

Every history is bounded by the caller: RTT samples, error timestamps, error
kinds (new kinds beyond the bound are counted as ``other``), transitions, and
uptime buckets (the window slides by ``uptime_window_s / uptime_buckets``, and
may reach that much further back).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

State = Literal["connecting", "connected", "degraded", "reconnecting", "disconnected", "failed"]
Kind = Literal["websocket", "sse"]
Band = Literal["excellent", "good", "poor", "critical"]
Status = Literal["pass", "warn", "fail"]

LIVE_STATES: Final = frozenset({"connected", "degraded"})
OTHER_ERRORS: Final = "other"
"""The error kind that counts kinds reported after the kind bound was reached."""

DEGRADE_BELOW: Final = 70
RECOVER_AT: Final = 75

WEIGHTS: Final[Mapping[Kind, Mapping[str, float]]] = {
    "websocket": {"rtt": 0.25, "errors": 0.25, "uptime": 0.25, "freshness": 0.25},
    "sse": {"uptime": 0.35, "errors": 0.30, "freshness": 0.35},
}

_REPORTED_TRANSITIONS: Final[Mapping[State, frozenset[State]]] = {
    "disconnected": frozenset({"connecting", "reconnecting", "failed"}),
    "connecting": frozenset({"connected", "disconnected", "failed"}),
    "connected": frozenset({"disconnected", "failed"}),
    "degraded": frozenset({"disconnected", "failed"}),
    "reconnecting": frozenset({"connecting", "disconnected", "failed"}),
    "failed": frozenset({"connecting", "reconnecting", "disconnected"}),
}


class IllegalTransitionError(ValueError):
    """A report that the state machine does not allow from the current state."""


def band(score: int) -> Band:
    """The quality band of a score."""
    if score >= 90:
        return "excellent"
    if score >= 70:
        return "good"
    if score >= 40:
        return "poor"
    return "critical"


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change: from ``source`` to ``target`` at ``at``, and why."""

    source: State
    target: State
    at: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.target, "at": self.at, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """A connection's health at one moment.

    Attributes:
        rtt_ms: median of the RTT samples held, ``None`` without any.
        rtt_p95_ms: their 95th percentile (nearest rank).
        uptime_pct: see the module docstring; 0 before the first connection.
        reconnects: reconnections scheduled so far (:meth:`ConnectionHealth.reconnecting`).
        last_message_age_s: ``None`` before the first message.
        errors: counts per kind since the start, sorted by kind.
        recent_errors: errors within the error window.
        state_since: when the current state began (the caller's clock).
        transitions: the most recent transitions, oldest first.
    """

    name: str
    kind: Kind
    state: State
    score: int
    band: Band
    rtt_ms: float | None
    rtt_p95_ms: float | None
    uptime_pct: float
    reconnects: int
    last_message_age_s: float | None
    errors: tuple[tuple[str, int], ...]
    recent_errors: int
    state_since: float
    state_age_s: float
    transitions: tuple[Transition, ...]

    def to_dict(self) -> dict[str, Any]:
        """The ``/api/health`` connection object (docs/operations.md), with extra fields."""
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "quality": {"score": self.score, "band": self.band},
            "rtt_ms": self.rtt_ms,
            "uptime_pct": self.uptime_pct,
            "reconnects": self.reconnects,
            "last_message_age_s": self.last_message_age_s,
            "rtt_p95_ms": self.rtt_p95_ms,
            "errors": dict(self.errors),
            "recent_errors": self.recent_errors,
            "state_since": self.state_since,
            "state_age_s": self.state_age_s,
            "transitions": [transition.to_dict() for transition in self.transitions],
        }


@dataclass(frozen=True, slots=True)
class HealthStatistics:
    """How full each bounded history is."""

    rtt_samples: int
    rtt_capacity: int
    error_times: int
    error_times_capacity: int
    error_kinds: int
    error_kinds_capacity: int
    transitions: int
    transitions_capacity: int
    uptime_buckets: int
    uptime_buckets_capacity: int


def overall(snapshots: Iterable[HealthSnapshot]) -> Status:
    """The ``/api/health`` status over all connections.

    ``fail`` when a connection has ``failed`` or none is live; ``warn`` when
    one is not ``connected`` or its band is ``poor`` or ``critical``; else
    ``pass`` (also with no connections at all).
    """
    held = list(snapshots)
    if not held:
        return "pass"
    states = {snapshot.state for snapshot in held}
    if "failed" in states or not LIVE_STATES & states:
        return "fail"
    if all(s.state == "connected" and s.band in ("excellent", "good") for s in held):
        return "pass"
    return "warn"


class _UptimeWindow:
    """Up and observed seconds in fixed-width buckets covering a sliding window."""

    __slots__ = ("_buckets", "_width", "_window_s")

    def __init__(self, window_s: float, buckets: int) -> None:
        self._window_s = window_s
        self._width = window_s / buckets
        # Each bucket is [index, up seconds, observed seconds]; one more than
        # the window holds, as the oldest is partly outside it.
        self._buckets: deque[list[float]] = deque(maxlen=buckets + 1)

    def __len__(self) -> int:
        return len(self._buckets)

    def add(self, start: float, end: float, *, up: bool) -> None:
        # Time older than the window would fall out at once: skip it.
        start = max(start, end - self._window_s - self._width)
        index = math.floor(start / self._width)
        while start < end:
            bucket_end = min(end, (index + 1) * self._width)
            if bucket_end > start:
                self._credit(index, bucket_end - start, up=up)
                start = bucket_end
            index += 1

    def _credit(self, index: int, seconds: float, *, up: bool) -> None:
        if self._buckets and self._buckets[-1][0] == index:
            bucket = self._buckets[-1]
        else:
            bucket = [index, 0.0, 0.0]
            self._buckets.append(bucket)
        bucket[1] += seconds if up else 0.0
        bucket[2] += seconds

    def totals(self, now: float) -> tuple[float, float]:
        """Up and observed seconds in the buckets that the window ending at ``now`` touches."""
        oldest = math.floor((now - self._window_s) / self._width)
        up = observed = 0.0
        for index, bucket_up, bucket_observed in self._buckets:
            if index >= oldest:
                up += bucket_up
                observed += bucket_observed
        return up, observed


class ConnectionHealth:
    """The health of one connection; see the module docstring for the rules.

    Args:
        name: the connection's name in ``/api/health`` (``kills``, ``map:{slug}``).
        kind: ``websocket`` or ``sse``; chooses the score weights.
        now: the creation time; the connection starts ``disconnected``.
        silence_timeout_s: how long without any message the actor's watchdog
            waits before it drops the connection (heartbeat or keepalive timeout).
        stale_after_s: silence that raises the watchdog warning; half of
            ``silence_timeout_s`` by default. For a WebSocket with heartbeats
            every ``h`` seconds, pass about ``1.5 * h``.
        rtt_samples: RTT samples kept.
        rtt_good_s, rtt_bad_s: the p95 RTT scoring 1 and 0.
        uptime_window_s, uptime_buckets: the uptime window and its resolution.
        error_window_s, error_budget: errors in that window that bring the
            error component to 0.
        error_times: error timestamps kept (counting recent errors).
        error_kinds: distinct error kinds counted, ``other`` included.
        transitions: transitions kept.

    Raises:
        ValueError: an unknown kind, or a bound or duration out of range.
    """

    def __init__(
        self,
        name: str,
        kind: Kind,
        *,
        now: float,
        silence_timeout_s: float,
        stale_after_s: float | None = None,
        rtt_samples: int = 128,
        rtt_good_s: float = 0.25,
        rtt_bad_s: float = 2.0,
        uptime_window_s: float = 3600.0,
        uptime_buckets: int = 60,
        error_window_s: float = 300.0,
        error_budget: int = 5,
        error_times: int = 256,
        error_kinds: int = 32,
        transitions: int = 64,
    ) -> None:
        if kind not in get_args(Kind):
            msg = f"kind must be 'websocket' or 'sse', got {kind!r}"
            raise ValueError(msg)
        stale = silence_timeout_s / 2 if stale_after_s is None else stale_after_s
        _check(silence_timeout_s > 0, "silence_timeout_s must be positive")
        _check(0 < stale < silence_timeout_s, "stale_after_s must be within (0, silence_timeout_s)")
        _check(0 <= rtt_good_s < rtt_bad_s, "rtt_good_s must be below rtt_bad_s")
        _check(uptime_window_s > 0 and error_window_s > 0, "windows must be positive")
        _check(
            min(rtt_samples, uptime_buckets, error_budget, error_times, transitions) >= 1,
            "bounds must be at least 1",
        )
        _check(error_kinds >= 2, "error_kinds must be at least 2 (one is 'other')")
        self.name = name
        self.kind: Kind = kind
        self._weights = WEIGHTS[kind]
        self._silence_timeout_s = silence_timeout_s
        self._stale_after_s = stale
        self._rtt_good_s = rtt_good_s
        self._rtt_bad_s = rtt_bad_s
        self._error_window_s = error_window_s
        self._error_budget = error_budget
        self._error_kinds_capacity = error_kinds
        self._rtts: deque[float] = deque(maxlen=rtt_samples)
        self._error_times: deque[float] = deque(maxlen=error_times)
        self._errors: dict[str, int] = {}
        self._transitions: deque[Transition] = deque(maxlen=transitions)
        self._uptime = _UptimeWindow(uptime_window_s, uptime_buckets)
        self._uptime_buckets_capacity = uptime_buckets + 1
        self._state: State = "disconnected"
        self._state_since = now
        self._latest = now
        self._accounted_until = now
        self._ever_connected = False
        self._live_since = now
        self._last_message_at: float | None = None
        self._reconnects = 0

    @property
    def state(self) -> State:
        return self._state

    # --- reports from the actor ------------------------------------------------

    def connecting(self, now: float) -> None:
        """A connection attempt starts."""
        self._report("connecting", self._clock(now), "")

    def connected(self, now: float) -> None:
        """The connection is established (handshake done, stream open)."""
        now = self._clock(now)
        self._report("connected", now, "")
        if not self._ever_connected:
            self._ever_connected = True
            self._accounted_until = now
        self._live_since = now
        self._evaluate(now)

    def message(self, now: float) -> None:
        """Something arrived: any frame, keepalive comment or heartbeat reply."""
        now = self._clock(now)
        self._last_message_at = now
        self._evaluate(now)

    def rtt(self, sample_s: float, now: float) -> None:
        """A round-trip time measured (ping/pong or heartbeat reply).

        Raises:
            ValueError: ``sample_s`` is negative or not finite.
        """
        if not (math.isfinite(sample_s) and sample_s >= 0):
            msg = f"an RTT sample must be a finite, non-negative number of seconds: {sample_s}"
            raise ValueError(msg)
        now = self._clock(now)
        self._rtts.append(sample_s)
        self._evaluate(now)

    def error(self, kind: str, now: float) -> None:
        """An error of ``kind`` (``heartbeat_timeout``, ``http_503``, ...); no state change."""
        now = self._clock(now)
        if kind not in self._errors and len(self._errors) >= self._error_kinds_capacity - 1:
            kind = OTHER_ERRORS
        self._errors[kind] = self._errors.get(kind, 0) + 1
        self._error_times.append(now)
        self._evaluate(now)

    def disconnected(self, reason: str, now: float) -> None:
        """The connection is closed or an attempt failed; report the cause with :meth:`error`."""
        self._report("disconnected", self._clock(now), reason)

    def reconnecting(self, now: float, delay_s: float) -> None:
        """A reconnection is scheduled in ``delay_s`` seconds."""
        self._report("reconnecting", self._clock(now), f"retry in {delay_s:.3g} s")
        self._reconnects += 1

    def failed(self, reason: str, now: float) -> None:
        """The actor gave up (bad credentials, unknown map, circuit open...)."""
        self._report("failed", self._clock(now), reason)

    def tick(self, now: float) -> None:
        """Re-evaluate what time alone changes (staleness, the sliding windows)."""
        self._evaluate(self._clock(now))

    # --- reading -----------------------------------------------------------------

    def snapshot(self, now: float) -> HealthSnapshot:
        """The health at ``now``, after a :meth:`tick`."""
        now = self._clock(now)
        self._evaluate(now)
        score = self._score(now)
        rtts = sorted(self._rtts)
        return HealthSnapshot(
            name=self.name,
            kind=self.kind,
            state=self._state,
            score=score,
            band=band(score),
            rtt_ms=_rank(rtts, 0.50) * 1000 if rtts else None,
            rtt_p95_ms=_rank(rtts, 0.95) * 1000 if rtts else None,
            uptime_pct=round(self._uptime_fraction(now) * 100, 3),
            reconnects=self._reconnects,
            last_message_age_s=(
                None if self._last_message_at is None else now - self._last_message_at
            ),
            errors=tuple(sorted(self._errors.items())),
            recent_errors=self._recent_errors(now),
            state_since=self._state_since,
            state_age_s=now - self._state_since,
            transitions=tuple(self._transitions),
        )

    def statistics(self) -> HealthStatistics:
        """How full each bounded history is."""
        return HealthStatistics(
            rtt_samples=len(self._rtts),
            rtt_capacity=self._rtts.maxlen or 0,
            error_times=len(self._error_times),
            error_times_capacity=self._error_times.maxlen or 0,
            error_kinds=len(self._errors),
            error_kinds_capacity=self._error_kinds_capacity,
            transitions=len(self._transitions),
            transitions_capacity=self._transitions.maxlen or 0,
            uptime_buckets=len(self._uptime),
            uptime_buckets_capacity=self._uptime_buckets_capacity,
        )

    # --- internals -------------------------------------------------------------------

    def _clock(self, now: float) -> float:
        self._latest = max(self._latest, now)
        if self._ever_connected:
            self._uptime.add(self._accounted_until, self._latest, up=self._state in LIVE_STATES)
            self._accounted_until = self._latest
        return self._latest

    def _report(self, target: State, now: float, reason: str) -> None:
        if target not in _REPORTED_TRANSITIONS[self._state]:
            msg = f"{self.name}: {self._state} -> {target} is not a legal transition"
            raise IllegalTransitionError(msg)
        self._move(target, now, reason)

    def _move(self, target: State, now: float, reason: str) -> None:
        self._transitions.append(Transition(self._state, target, now, reason))
        self._state = target
        self._state_since = now

    def _evaluate(self, now: float) -> None:
        if self._state not in LIVE_STATES:
            return
        score = self._score(now)
        stale = self._silence(now) > self._stale_after_s
        if self._state == "connected" and (score < DEGRADE_BELOW or stale):
            reason = f"silent for {self._silence(now):.3g} s" if stale else f"quality {score}"
            self._move("degraded", now, reason)
        elif self._state == "degraded" and score >= RECOVER_AT and not stale:
            self._move("connected", now, f"quality {score}")

    def _silence(self, now: float) -> float:
        last = self._last_message_at
        since = self._live_since if last is None else max(last, self._live_since)
        return now - since

    def _score(self, now: float) -> int:
        if self._state == "failed":
            return 0
        live = self._state in LIVE_STATES
        components = {
            "uptime": self._uptime_fraction(now),
            "errors": max(0.0, 1.0 - self._recent_errors(now) / self._error_budget),
            "freshness": self._freshness(now) if live else 0.0,
        }
        if "rtt" in self._weights and (self._rtts or not live):
            components["rtt"] = self._rtt_component() if live else 0.0
        total_weight = sum(self._weights[name] for name in components)
        mean = sum(self._weights[name] * value for name, value in components.items())
        return round(100 * mean / total_weight)

    def _freshness(self, now: float) -> float:
        silence = self._silence(now)
        if silence <= self._stale_after_s:
            return 1.0
        span = self._silence_timeout_s - self._stale_after_s
        return max(0.0, 1.0 - (silence - self._stale_after_s) / span)

    def _rtt_component(self) -> float:
        p95 = _rank(sorted(self._rtts), 0.95)
        if p95 <= self._rtt_good_s:
            return 1.0
        return max(0.0, 1.0 - (p95 - self._rtt_good_s) / (self._rtt_bad_s - self._rtt_good_s))

    def _uptime_fraction(self, now: float) -> float:
        up, observed = self._uptime.totals(now)
        if observed > 0:
            return up / observed
        return 1.0 if self._state in LIVE_STATES else 0.0

    def _recent_errors(self, now: float) -> int:
        horizon = now - self._error_window_s
        while self._error_times and self._error_times[0] <= horizon:
            self._error_times.popleft()
        return len(self._error_times)


def _rank(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
