"""The ``metrics`` actor's alert rules: from the statuses it polls and its
regression detectors, what should be alerted now.

:meth:`AlertRules.conditions` answers, per key prefix, the conditions that hold
(key, severity and message); the actor's :class:`~realtime.metrics.AlertManager`
raises, escalates and resolves alerts from them. The rules (see
:mod:`actors.metrics` for what each means): ``connection:{name}``,
``actor:{name}``, ``flow:backpressure``, ``flow:shedding``,
``journal:error``, ``stalled:{name}``, ``notifier:discord_auth``,
``notifier:error``, ``regression:latency:{stage}``, ``regression:throughput``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from actors.metrics.polls import StatusPolls
from actors.metrics.settings import MetricsSettings
from actors.protocol import Names
from realtime.health import LIVE_STATES
from realtime.metrics import RegressionDetector, Severity

_AUTH_FAILURE = re.compile(
    r"\b40[13]\b|unauthori[sz]ed|forbidden|invalid token|auth", re.IGNORECASE
)

_Conditions = dict[str, tuple[Severity, str]]
"""Alert key to severity and message."""


class AlertRules:
    """The rules, and what they remember between ticks: when each source stopped
    being live, and when flow control last shed an event.

    Args:
        settings: ``down_grace_s``, ``silent_ticks``, ``shed_hold_s``.
        sources: the enabled sources' actor names (each must report a connection).
        started_at: when the actor started (a source gets ``down_grace_s`` to report).
        clock: the actor's monotonic clock.
    """

    def __init__(
        self,
        settings: MetricsSettings,
        sources: Sequence[str],
        started_at: float,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._sources = tuple(sources)
        self._started_at = started_at
        self._clock = clock
        self._shed_total: float | None = None
        self._last_shed_at: float | None = None
        self._down_since: dict[str, float] = {}
        self._last_outage: dict[str, float] = {}

    def conditions(
        self,
        now: float,
        polls: StatusPolls,
        latency_detectors: Mapping[str, RegressionDetector],
        throughput_detector: RegressionDetector,
    ) -> dict[str, _Conditions]:
        """What should be alerted now, by key prefix (see the module docstring).

        Called once a tick: it also notes whether flow control shed events
        since the last call, and when each source stopped being live.
        """
        self._watch_shedding(polls.status_of(Names.FLOW_CONTROL) or {}, now)
        return {
            "connection:": self._connection_conditions(polls),
            "actor:": self._actor_conditions(polls),
            "flow:": self._flow_conditions(polls, now),
            "journal:": self._journal_conditions(polls),
            "stalled:": self._stalled_conditions(polls),
            "notifier:": self._notifier_conditions(polls),
            "regression:": self._regression_conditions(latency_detectors, throughput_detector),
        }

    def outage_began(self, source: str) -> float | None:
        """When ``source`` last stopped being live, on the monotonic clock, if seen."""
        return self._last_outage.get(source)

    def _connection_conditions(self, polls: StatusPolls) -> _Conditions:
        found: _Conditions = {}
        grace = self._settings.down_grace_s
        up_for = self._clock() - self._started_at
        for name in self._sources:
            connection = (polls.status_of(name) or {}).get("connection")
            key = f"connection:{name}"
            if not isinstance(connection, Mapping):
                if up_for >= grace:
                    found[key] = ("critical", f"{name}: no connection status")
                continue
            state = str(connection.get("state"))
            age = _number(connection.get("state_age_s")) or 0.0
            self._watch_outage(name, state, age)
            quality = connection.get("quality")
            band = quality.get("band") if isinstance(quality, Mapping) else None
            if state == "failed":
                found[key] = ("critical", f"{name}: connection failed{_last_reason(connection)}")
            elif state not in LIVE_STATES and age >= grace:
                found[key] = ("critical", f"{name}: {state} for {age:.0f} s")
            elif state == "degraded":
                found[key] = ("warning", f"{name}: degraded (quality {band})")
        return found

    def _actor_conditions(self, polls: StatusPolls) -> _Conditions:
        limit = self._settings.silent_ticks
        return {
            f"actor:{name}": ("warning", f"{name}: {poll.error}")
            for name, poll in polls.items()
            if poll.missed >= limit and poll.error
        }

    def _flow_conditions(self, polls: StatusPolls, now: float) -> _Conditions:
        found: _Conditions = {}
        flow = polls.status_of(Names.FLOW_CONTROL) or {}
        if flow.get("backpressure") is True:
            size, capacity = flow.get("size"), flow.get("capacity")
            found["flow:backpressure"] = ("warning", f"backpressure on ({size}/{capacity})")
        if self._last_shed_at is not None and now - self._last_shed_at < self._settings.shed_hold_s:
            found["flow:shedding"] = ("warning", f"shedding events ({self._shed_total:.0f} so far)")
        return found

    def _journal_conditions(self, polls: StatusPolls) -> _Conditions:
        error = (polls.status_of(Names.JOURNAL) or {}).get("error")
        return {"journal:error": ("critical", f"journal: {error}")} if error else {}

    def _stalled_conditions(self, polls: StatusPolls) -> _Conditions:
        found: _Conditions = {}
        for name, poll in polls.items():
            stalled = (poll.status or {}).get("stalled")
            if isinstance(stalled, Mapping):
                severity: Severity = (
                    "warning" if stalled.get("severity") == "warning" else "critical"
                )
                found[f"stalled:{name}"] = (severity, f"{name}: {stalled.get('message', '')}")
        return found

    def _notifier_conditions(self, polls: StatusPolls) -> _Conditions:
        status = polls.status_of(Names.NOTIFIER) or {}
        errors = [str(status["error"])] if status.get("error") else []
        sinks = status.get("sinks")
        if isinstance(sinks, Mapping):
            errors += [
                f"{sink}: {detail['error']}"
                for sink, detail in sinks.items()
                if isinstance(detail, Mapping) and detail.get("error")
            ]
        if not errors:
            return {}
        auth = [e for e in errors if _AUTH_FAILURE.search(e)]
        if auth:
            return {
                "notifier:discord_auth": ("critical", f"Discord refused our credentials: {auth[0]}")
            }
        return {"notifier:error": ("warning", f"notifier: {errors[0]}")}

    def _regression_conditions(
        self,
        latency_detectors: Mapping[str, RegressionDetector],
        throughput_detector: RegressionDetector,
    ) -> _Conditions:
        found: _Conditions = {}
        for stage, detector in latency_detectors.items():
            if detector.alarm:
                state = detector.state()
                found[f"regression:latency:{stage}"] = (
                    "warning",
                    (
                        f"p99 latency of {stage} is {_ratio_text(state.ratio)} its baseline "
                        f"({_seconds_text(state.recent)} vs {_seconds_text(state.baseline)})"
                    ),
                )
        if throughput_detector.alarm:
            state = throughput_detector.state()
            found["regression:throughput"] = (
                "warning",
                (
                    f"throughput fell to {_ratio_text(state.ratio)} its baseline "
                    f"({state.recent or 0:.0f} vs {state.baseline or 0:.0f} events per interval)"
                ),
            )
        return found

    def _watch_outage(self, name: str, state: str, age: float) -> None:
        """Remember when ``name`` stopped being live (kept after it is live again)."""
        if state in LIVE_STATES:
            self._down_since.pop(name, None)
        elif name not in self._down_since:
            self._down_since[name] = self._last_outage[name] = self._clock() - age

    def _watch_shedding(self, flow: Mapping[str, Any], now: float) -> None:
        shed = _numeric_sum(flow.get("shed"))
        if shed is None:
            return
        if self._shed_total is not None and shed > self._shed_total:
            self._last_shed_at = now
        self._shed_total = shed


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _numeric_sum(value: object) -> float | None:
    """A number, or the sum of a mapping's numbers (one level deep); ``None`` if neither."""
    number = _number(value)
    if number is not None:
        return number
    if isinstance(value, Mapping):
        numbers = [n for n in (_number(v) for v in value.values()) if n is not None]
        return sum(numbers) if numbers else 0.0
    return None


def _last_reason(connection: Mapping[str, Any]) -> str:
    transitions = connection.get("transitions")
    if isinstance(transitions, Sequence) and transitions:
        last = transitions[-1]
        if isinstance(last, Mapping) and last.get("reason"):
            return f": {last['reason']}"
    return ""


def _ratio_text(ratio: float | None) -> str:
    return "?" if ratio is None else f"{ratio:.2g}x"


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
