"""The ``metrics`` actor: every actor's figures, bounded series, regression checks and alerts.

It receives a :class:`~actors.protocol.StatsReport` from every actor about
once a second and keeps:

- per-second throughput per ``(source, type)`` for ``[metrics] history_s``
  seconds, from the counter ``events_total{source="...",type="..."}`` (see
  :func:`realtime.metrics.series_key`; the journal counts committed events
  so);
- latency histograms per stage (``StatsReport.latencies``) over a rolling
  window and since the start;
- error rates, from counters whose name ends in ``errors_total`` or
  ``failures_total`` (label ``kind`` or ``reason`` names the error);
- every counter's running total and every gauge's last value, per actor;
- rejects per ``(source, reason)``, from the ``rejects`` mapping of the
  statuses it polls.

Once a second (its tick) it asks every other actor for its status with a
non-blocking ask (an actor that has not answered the previous one is not
asked again, so a stuck actor's control lane does not grow), and evaluates
the alert rules:

- ``connection:{name}``: an enabled source is ``failed`` (critical), not live
  for ``down_grace_s`` (critical), or ``degraded`` (warning);
- ``actor:{name}``: an actor has not answered for ``silent_ticks`` ticks;
- ``flow:backpressure`` while flow control reports backpressure;
  ``flow:shedding`` while it shed events within ``shed_hold_s``;
- ``journal:error`` while the journal reports an error (critical);
- ``stalled:{name}`` while an actor's status reports work it cannot finish
  (``"stalled": {"severity", "message"}``: the router's deliveries failing,
  tracking unable to save), resolved when the work resumes;
- ``notifier:discord_auth`` when the notifier's (or a sink's) error is an
  authentication failure (401/403), else ``notifier:error``;
- ``regression:latency:{stage}`` and ``regression:throughput`` while their
  :class:`~realtime.metrics.RegressionDetector` is alarmed (p99 of the
  latency window, and events per regression interval, checked every
  ``regression_interval_s``).

Alerts, throughput, latency percentiles and rates are answered to
:class:`MetricsQuery`. Every table has a bound (see :class:`MetricsSettings`).
Raised, escalated and resolved alerts are logged and told to the notifier as
notifications of kind ``alert`` (:class:`~actors.protocol.Announce`; routes of
that kind take them to Discord); a resolved ``connection:{name}`` alert is also
told as :class:`~actors.protocol.FeedRecovered`, with when the connection
stopped being live, for the notifier's status message.
"""

from __future__ import annotations

import collections
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pykka

from actors.base import ReportingActor
from actors.kills_source import kills_connections
from actors.protocol import Announce, FeedRecovered, Names, StatsReport
from realtime.config import Config
from realtime.health import LIVE_STATES
from realtime.metrics import (
    OTHER,
    AlertManager,
    BoundedTotals,
    BucketCounts,
    LatencySummary,
    Notice,
    RegressionDetector,
    RegressionSettings,
    RollingHistogram,
    SeriesKey,
    Severity,
    ThroughputHistory,
    parse_series_key,
)
from realtime.notifications import alert_notification
from supervision import ActorContext, ActorUnavailableError, Control, GetStatus

logger = logging.getLogger(__name__)

EVENTS_COUNTER = "events_total"
"""Counted per committed event with labels ``source`` and ``type``: the throughput."""

ERROR_SUFFIXES = ("errors_total", "failures_total")

PROMETHEUS_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
    math.inf,
)
"""``le`` bounds of the exported latency histograms: 1 ms to an hour (a
redelivered event after a restart can be that old)."""

_AUTH_FAILURE = re.compile(
    r"\b40[13]\b|unauthori[sz]ed|forbidden|invalid token|auth", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class MetricsQuery(Control):
    """Ask ``metrics`` for :meth:`MetricsActor.summary` (a JSON-able mapping).

    A control message: it is answered ahead of queued reports, even when the
    mailbox is full, and never blocks the asker.

    Attributes:
        history_s: seconds of per-second total throughput to include.
        histograms: include cumulative latency histograms per stage at
            :data:`PROMETHEUS_BUCKETS_S` (for ``/metrics``).
    """

    history_s: int = 60
    histograms: bool = False


@dataclass(frozen=True, slots=True)
class ExpositionQuery(Control):
    """Ask ``metrics`` for :meth:`MetricsActor.exposition`: what ``/metrics`` shows.

    A control message, like :class:`MetricsQuery`.
    """


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Bounds, windows and alert rules of the metrics actor.

    Attributes:
        history_s: per-second throughput kept (``[metrics] history_s``).
        max_series: throughput (and reject) series kept; more fold into ``other``.
        max_stages: latency stages kept; more fold into ``other``.
        max_actors: actors whose counters, gauges and statuses are kept.
        max_keys_per_actor: counters (and gauges) kept per actor.
        max_samples_per_report: latency samples of one stage in one report
            placed in buckets; beyond it a systematic sample stands for them
            all (counts, sums and extremes stay exact), so a report's cost
            does not grow with the event rate.
        slice_s, slices: the latency window is ``slices`` slices of ``slice_s``.
        regression_interval_s: how often the regression detectors take a value.
        regression_ratio: the slowdown (or throughput drop) that raises an alarm.
        min_latency_samples: fewer samples in the window skip a latency check.
        min_throughput: events per regression interval below which a drop is
            not judged (too little traffic; connection alerts cover a dead feed).
        max_alerts, alert_history, cooldown_s: see :class:`~realtime.metrics.AlertManager`.
        tick_s: how often statuses are polled and alert rules evaluated.
        down_grace_s: how long a source may be not live before it is an alert
            (a reconnect within it is not worth waking anyone).
        silent_ticks: unanswered status polls in a row before an actor alert.
        shed_hold_s: how long the shedding alert stays after the last shed event.
        notices: recent raise/resolve notices kept for the summary.
    """

    history_s: int = 3600
    max_series: int = 64
    max_stages: int = 16
    max_actors: int = 64
    max_keys_per_actor: int = 128
    max_samples_per_report: int = 128
    slice_s: float = 10.0
    slices: int = 6
    regression_interval_s: float = 60.0
    regression_ratio: float = 2.0
    min_latency_samples: int = 10
    min_throughput: float = 30.0
    max_alerts: int = 100
    alert_history: int = 200
    cooldown_s: float = 300.0
    tick_s: float = 1.0
    down_grace_s: float = 30.0
    silent_ticks: int = 5
    shed_hold_s: float = 60.0
    notices: int = 100

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> MetricsSettings:
        """The settings from ``[metrics]`` and ``[alerts]``, with ``overrides``."""
        values: dict[str, Any] = {
            "history_s": config.metrics.history_s,
            "alert_history": config.metrics.alert_history,
            "regression_ratio": config.metrics.regression_ratio,
            "cooldown_s": config.alerts.cooldown_s,
        }
        values.update(overrides)
        return cls(**values)


def enabled_sources(config: Config) -> list[str]:
    """The actor names of the sources the configuration enables, in start order."""
    names = [name for name, _ in kills_connections(config)]
    return names + [Names.map_source(m.slug) for m in config.maps]


class _Tick:
    __slots__ = ()


_TICK = _Tick()


@dataclass(slots=True)
class _Poll:
    """The status of one actor as last seen, and the ask in flight."""

    ref: pykka.ActorRef[Any] | None = None
    future: pykka.Future[Any] | None = None
    status: Mapping[str, Any] | None = None
    answered_at: float | None = None
    missed: int = 0
    error: str | None = None


class MetricsActor(ReportingActor):
    """Collects :class:`StatsReport` s, polls statuses, raises alerts; see the module doc.

    Args:
        ctx: the supervision context.
        config: the effective configuration (enabled sources, bounds).
        settings: overrides :meth:`MetricsSettings.from_config`.
        clock: monotonic seconds (injected in tests).
        wall_clock: Unix seconds, for the times shown in the summary.
    """

    def __init__(
        self,
        ctx: ActorContext,
        config: Config,
        settings: MetricsSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ctx)
        self.config = config
        self.settings = s = settings or MetricsSettings.from_config(config)
        self.clock = clock
        self.wall_clock = wall_clock
        self.sources = enabled_sources(config)
        self.started_at = clock()
        self.throughput = ThroughputHistory(s.history_s, s.max_series)
        self.rejects = ThroughputHistory(s.history_s, s.max_series)
        self.errors = ThroughputHistory(s.history_s, s.max_series)
        self.latency: dict[str, RollingHistogram] = {}
        self.exported: dict[str, BucketCounts] = {}
        self.actor_counters: dict[str, BoundedTotals] = {}
        self.actor_gauges: dict[str, BoundedTotals] = {}
        self.last_report: dict[str, float] = {}
        self.polls: dict[str, _Poll] = {}
        self._reject_totals = BoundedTotals(4 * s.max_series)
        self._shed_total: float | None = None
        self._last_shed_at: float | None = None
        self.latency_detectors: dict[str, RegressionDetector] = {}
        self.throughput_detector = RegressionDetector(
            RegressionSettings(
                direction="down",
                ratio=s.regression_ratio,
                floor=1.0,
                min_baseline=s.min_throughput,
            )
        )
        self._next_regression_check = self.started_at + s.regression_interval_s
        self._down_since: dict[str, float] = {}
        self._last_outage: dict[str, float] = {}
        self.alerts = AlertManager(
            max_active=s.max_alerts, history=s.alert_history, cooldown_s=s.cooldown_s
        )
        self.notices: collections.deque[Notice] = collections.deque(maxlen=s.notices)
        self.reports_total = 0

    # --- lifecycle and messages ------------------------------------------------------

    def on_start(self) -> None:
        super().on_start()
        self.timers.send_interval(self.settings.tick_s, _TICK)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, StatsReport):
            self.ingest(message)
            return None
        if isinstance(message, _Tick):
            self.tick()
            return None
        if isinstance(message, MetricsQuery):
            return self.summary(message)
        if isinstance(message, ExpositionQuery):
            return self.exposition()
        return super().on_receive(message)

    # --- reports ---------------------------------------------------------------------

    def ingest(self, report: StatsReport) -> None:
        """Take one actor's report (counters are increments; gauges, current values)."""
        now = self.clock()
        actor = self._actor_key(self.last_report, report.actor)
        self.last_report[actor] = now
        self.reports_total += 1
        counters = self._table(self.actor_counters, actor)
        for key, increment in report.counters.items():
            counters.add(key, increment)
            parsed = parse_series_key(key)
            if parsed is None:
                continue
            name, labels = parsed
            if name == EVENTS_COUNTER:
                series = (labels.get("source", report.actor), labels.get("type", OTHER))
                self.throughput.add(series, increment, now)
            elif name.endswith(ERROR_SUFFIXES):
                kind = labels.get("kind") or labels.get("reason") or name
                self.errors.add((report.actor, kind), increment, now)
        gauges = self._table(self.actor_gauges, actor)
        for key, value in report.gauges.items():
            gauges.set(key, value)
        s = self.settings
        limit = s.max_samples_per_report
        for reported, samples in report.latencies.items():
            stage = self._stage_key(reported)
            histogram = self.latency.get(stage)
            if histogram is None:
                histogram = self.latency[stage] = RollingHistogram(s.slice_s, s.slices)
                self.exported[stage] = BucketCounts(PROMETHEUS_BUCKETS_S)
            histogram.record_many(samples, now, limit=limit)
            self.exported[stage].record_many(samples, limit=limit)

    def _actor_key(self, table: Mapping[str, Any], actor: str) -> str:
        if actor in table or len(table) < self.settings.max_actors - 1:
            return actor
        return OTHER

    def _table(self, tables: dict[str, BoundedTotals], actor: str) -> BoundedTotals:
        actor = self._actor_key(tables, actor)
        table = tables.get(actor)
        if table is None:
            table = tables[actor] = BoundedTotals(self.settings.max_keys_per_actor)
        return table

    def _stage_key(self, stage: str) -> str:
        """``stage``, or :data:`OTHER` once ``max_stages`` are held."""
        if stage in self.latency or len(self.latency) < self.settings.max_stages - 1:
            return stage
        return OTHER

    # --- the tick: statuses, regression, alerts --------------------------------------

    def tick(self) -> None:
        """Collect the statuses answered since the last tick, ask again, evaluate."""
        self._harvest()
        self._ask_statuses()
        self.evaluate(self.clock())

    def record_status(self, name: str, status: Any) -> None:
        """Take the status ``name`` answered (the tick does this with each answer)."""
        poll = self.polls.get(name)
        if poll is None:
            if len(self.polls) >= self.settings.max_actors:
                return
            poll = self.polls[name] = _Poll()
        poll.missed = 0
        poll.error = None
        poll.answered_at = self.clock()
        poll.status = status if isinstance(status, Mapping) else {"status": status}

    def evaluate(self, now: float) -> None:
        """Rates from the statuses, regression checks when due, then the alert rules."""
        self._count_rejects(now)
        self._watch_shedding(now)
        if now >= self._next_regression_check:
            self._check_regressions(now)
            self._next_regression_check = now + self.settings.regression_interval_s
        for prefix, conditions in self.conditions(now).items():
            for notice in self.alerts.sync(prefix, conditions, now):
                self._announce(notice)

    def _harvest(self) -> None:
        for name, poll in self.polls.items():
            if poll.future is None:
                continue
            try:
                status = poll.future.get(timeout=0)
            except pykka.Timeout:
                poll.missed += 1
                poll.error = f"no answer for {poll.missed} ticks"
                continue
            except Exception as error:  # noqa: BLE001 -- an actor's failure is data here
                poll.future = None
                poll.missed += 1
                poll.error = f"{type(error).__name__}: {error}"
                continue
            poll.future = None
            self.record_status(name, status)

    def _ask_statuses(self) -> None:
        names = [n for n in self.registry.names() if n != self.name]
        for name in dict.fromkeys([*self.sources, *names]):
            if name not in self.polls and len(self.polls) >= self.settings.max_actors:
                continue
            poll = self.polls.setdefault(name, _Poll())
            ref = self.registry.lookup(name)
            if ref is None:
                poll.ref = poll.future = None
                poll.missed += 1
                poll.error = "not running"
                continue
            if poll.future is not None and poll.ref is ref:
                continue  # still waiting for the previous answer: do not pile up asks
            poll.ref = ref
            try:
                poll.future = ref.ask(GetStatus(), block=False)
            except pykka.ActorDeadError:
                poll.future = None
                poll.missed += 1
                poll.error = "not running"

    def status_of(self, name: str) -> Mapping[str, Any] | None:
        """The last status ``name`` answered, if any."""
        poll = self.polls.get(name)
        return None if poll is None else poll.status

    def _count_rejects(self, now: float) -> None:
        """Turn the cumulative ``rejects`` of the polled statuses into per-second rates."""
        for name, poll in self.polls.items():
            rejects = (poll.status or {}).get("rejects")
            if not isinstance(rejects, Mapping):
                continue
            for reason, value in rejects.items():
                if not isinstance(value, int | float):
                    continue
                key = f"{name}\x00{reason}"
                previous = self._reject_totals.get(key, -1.0)
                if previous < 0:
                    # First sight: its past is not this second's rate.
                    self._reject_totals.set(key, value)
                    continue
                delta = value - previous if value >= previous else value  # a restart resets it
                self._reject_totals.set(key, value)
                if delta > 0:
                    self.rejects.add((name, str(reason)), delta, now)

    def _watch_shedding(self, now: float) -> None:
        flow = self.status_of(Names.FLOW_CONTROL) or {}
        shed = _numeric_sum(flow.get("shed"))
        if shed is None:
            return
        if self._shed_total is not None and shed > self._shed_total:
            self._last_shed_at = now
        self._shed_total = shed

    def _check_regressions(self, now: float) -> None:
        s = self.settings
        for stage, histogram in self.latency.items():
            window = histogram.window(now)
            p99 = window.percentile(0.99)
            if window.count < s.min_latency_samples or p99 is None:
                continue
            detector = self.latency_detectors.get(stage)
            if detector is None:
                detector = self.latency_detectors[stage] = RegressionDetector(
                    RegressionSettings(direction="up", ratio=s.regression_ratio)
                )
            self._log_change(f"p99 latency of {stage}", detector.update(p99))
        seconds = max(1, round(s.regression_interval_s))
        total = self.throughput.total(None, seconds, now)
        self._log_change("throughput", self.throughput_detector.update(total))

    @staticmethod
    def _log_change(what: str, change: str | None) -> None:
        if change is not None:
            logger.info("metrics: regression check of %s: %s", what, change)

    def conditions(self, now: float) -> dict[str, dict[str, tuple[Severity, str]]]:
        """What should be alerted now, by key prefix (see the module docstring)."""
        return {
            "connection:": self._connection_conditions(),
            "actor:": self._actor_conditions(),
            "flow:": self._flow_conditions(now),
            "journal:": self._journal_conditions(),
            "stalled:": self._stalled_conditions(),
            "notifier:": self._notifier_conditions(),
            "regression:": self._regression_conditions(),
        }

    def _connection_conditions(self) -> dict[str, tuple[Severity, str]]:
        found: dict[str, tuple[Severity, str]] = {}
        grace = self.settings.down_grace_s
        up_for = self.clock() - self.started_at
        for name in self.sources:
            connection = (self.status_of(name) or {}).get("connection")
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

    def _actor_conditions(self) -> dict[str, tuple[Severity, str]]:
        limit = self.settings.silent_ticks
        return {
            f"actor:{name}": ("warning", f"{name}: {poll.error}")
            for name, poll in self.polls.items()
            if poll.missed >= limit and poll.error
        }

    def _flow_conditions(self, now: float) -> dict[str, tuple[Severity, str]]:
        found: dict[str, tuple[Severity, str]] = {}
        flow = self.status_of(Names.FLOW_CONTROL) or {}
        if flow.get("backpressure") is True:
            size, capacity = flow.get("size"), flow.get("capacity")
            found["flow:backpressure"] = ("warning", f"backpressure on ({size}/{capacity})")
        if self._last_shed_at is not None and now - self._last_shed_at < self.settings.shed_hold_s:
            found["flow:shedding"] = ("warning", f"shedding events ({self._shed_total:.0f} so far)")
        return found

    def _journal_conditions(self) -> dict[str, tuple[Severity, str]]:
        error = (self.status_of(Names.JOURNAL) or {}).get("error")
        return {"journal:error": ("critical", f"journal: {error}")} if error else {}

    def _stalled_conditions(self) -> dict[str, tuple[Severity, str]]:
        found: dict[str, tuple[Severity, str]] = {}
        for name, poll in self.polls.items():
            stalled = (poll.status or {}).get("stalled")
            if isinstance(stalled, Mapping):
                severity: Severity = (
                    "warning" if stalled.get("severity") == "warning" else "critical"
                )
                found[f"stalled:{name}"] = (severity, f"{name}: {stalled.get('message', '')}")
        return found

    def _notifier_conditions(self) -> dict[str, tuple[Severity, str]]:
        status = self.status_of(Names.NOTIFIER) or {}
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

    def _regression_conditions(self) -> dict[str, tuple[Severity, str]]:
        found: dict[str, tuple[Severity, str]] = {}
        for stage, detector in self.latency_detectors.items():
            if detector.alarm:
                state = detector.state()
                found[f"regression:latency:{stage}"] = (
                    "warning",
                    (
                        f"p99 latency of {stage} is {_ratio_text(state.ratio)} its baseline "
                        f"({_seconds_text(state.recent)} vs {_seconds_text(state.baseline)})"
                    ),
                )
        if self.throughput_detector.alarm:
            state = self.throughput_detector.state()
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
            self._down_since[name] = self._last_outage[name] = self.clock() - age

    def _announce(self, notice: Notice) -> None:
        self.notices.append(notice)
        alert = notice.alert
        level = logging.INFO if notice.kind == "resolved" else logging.WARNING
        logger.log(level, "alert %s: [%s] %s", notice.kind, alert.severity, alert.message)
        self._tell_notifier(notice)

    def _tell_notifier(self, notice: Notice) -> None:
        """The notice as an alert notification; a resolved connection alert as a recovery."""
        alert = notice.alert
        offset = self.wall_clock() - self.clock()
        at = alert.last_seen if alert.resolved_at is None else alert.resolved_at
        messages: list[Announce | FeedRecovered] = [
            Announce(
                (
                    alert_notification(
                        alert.key,
                        alert.severity,
                        notice.kind,
                        alert.message,
                        first_seen=alert.first_seen + offset,
                        at=at + offset,
                        count=alert.count,
                    ),
                )
            )
        ]
        source = alert.key.removeprefix("connection:")
        if notice.kind == "resolved" and source != alert.key:
            began = self._last_outage.get(source, alert.first_seen - self.settings.down_grace_s)
            messages.append(FeedRecovered(source, began + offset, at + offset))
        for message in messages:
            try:
                self.registry.tell(Names.NOTIFIER, message)
            except ActorUnavailableError as error:
                self.counters["alerts_not_told_total"] += 1
                logger.warning("metrics: the notifier did not take %s: %s", alert.key, error)

    # --- reading -------------------------------------------------------------------------

    def summary(self, query: MetricsQuery | None = None) -> dict[str, Any]:
        """Everything the dashboard and ``/metrics`` show; JSON-able."""
        query = query or MetricsQuery()
        now = self.clock()
        offset = self.wall_clock() - now
        result: dict[str, Any] = {
            "at": now + offset,
            "uptime_s": now - self.started_at,
            "throughput": self._throughput_summary(query, now),
            "latency": {
                "window_s": self.settings.slice_s * self.settings.slices,
                "stages": {
                    stage: LatencySummary.of(histogram.window(now)).to_dict()
                    for stage, histogram in sorted(self.latency.items())
                },
            },
            "rejects": self._rejects_summary(now),
            "errors": {
                "rate_60s": self.errors.rate(None, 60, now),
                "by_actor": _nest(self.errors.totals()),
            },
            "counters": {
                actor: dict(t.items()) for actor, t in sorted(self.actor_counters.items())
            },
            "gauges": {actor: dict(t.items()) for actor, t in sorted(self.actor_gauges.items())},
            "reports": {
                "total": self.reports_total,
                "age_s": {actor: now - at for actor, at in sorted(self.last_report.items())},
            },
            "polls": {
                name: {
                    "answered_age_s": None if poll.answered_at is None else now - poll.answered_at,
                    "missed": poll.missed,
                    "error": poll.error,
                }
                for name, poll in sorted(self.polls.items())
            },
            "alerts": {
                "active": [alert.to_dict(offset) for alert in self.alerts.active()],
                "resolved": [alert.to_dict(offset) for alert in self.alerts.resolved()],
                "statistics": self.alerts.statistics(),
            },
            "regression": {
                **{
                    f"latency:{stage}": detector.state().to_dict()
                    for stage, detector in sorted(self.latency_detectors.items())
                },
                "throughput": self.throughput_detector.state().to_dict(),
            },
            "statistics": self.statistics(),
        }
        if query.histograms:
            result["histograms"] = self._histograms()
        return result

    def exposition(self) -> dict[str, Any]:
        """What ``/metrics`` exports, as cheaply as it can be had (no percentile, no copy of
        a status): running totals, cumulative latency histograms, the last status each
        actor answered (``statuses``; ``errors`` for those that did not), whether it
        answered the last poll (``answered``), active alerts by severity and alarms."""
        polls = sorted(self.polls.items())
        alarms = {f"latency:{stage}": d.alarm for stage, d in self.latency_detectors.items()}
        severities: dict[str, int] = {}
        for alert in self.alerts.active():
            severities[alert.severity] = severities.get(alert.severity, 0) + 1
        return {
            "series": [(s, kind, n) for (s, kind), n in sorted(self.throughput.totals().items())],
            "histograms": self._histograms(),
            "counters": {actor: t.items() for actor, t in sorted(self.actor_counters.items())},
            "gauges": {actor: t.items() for actor, t in sorted(self.actor_gauges.items())},
            "statuses": {name: poll.status for name, poll in polls if poll.status is not None},
            "errors": {name: poll.error for name, poll in polls if poll.status is None},
            "answered": {
                name: poll.missed == 0 and poll.status is not None for name, poll in polls
            },
            "alerts": severities,
            "regression": {**alarms, "throughput": self.throughput_detector.alarm},
            "reports_total": self.reports_total,
        }

    def _throughput_summary(self, query: MetricsQuery, now: float) -> dict[str, Any]:
        history = self.throughput
        totals = history.totals()
        hour = min(3600, history.history_s - 1)
        series = [
            {
                "source": source,
                "type": kind,
                "rate_10s": history.rate(key, 10, now),
                "rate_60s": history.rate(key, 60, now),
                "last_hour": history.total(key, hour, now),
                "total": totals.get(key, 0.0),
            }
            for key in history.series()
            for source, kind in (key,)
        ]
        return {
            "rate_10s": history.rate(None, 10, now),
            "rate_60s": history.rate(None, 60, now),
            "total": sum(totals.values()),
            "history": history.recent(None, max(0, query.history_s), now),
            "series": series,
        }

    def _rejects_summary(self, now: float) -> dict[str, Any]:
        by_source: dict[str, dict[str, float]] = {}
        for name, poll in sorted(self.polls.items()):
            rejects = (poll.status or {}).get("rejects")
            if isinstance(rejects, Mapping):
                counts = {str(r): v for r, v in rejects.items() if isinstance(v, int | float)}
                if counts:
                    by_source[name] = counts
        return {"rate_60s": self.rejects.rate(None, 60, now), "by_source": by_source}

    def _histograms(self) -> dict[str, Any]:
        return {
            stage: {
                "buckets": [list(bucket) for bucket in counts.cumulative()],
                "count": counts.count,
                "sum": counts.sum,
            }
            for stage, counts in sorted(self.exported.items())
        }

    def statistics(self) -> dict[str, Any]:
        """How full every bounded structure is."""
        s = self.settings
        return {
            "throughput": self.throughput.statistics(),
            "rejects": self.rejects.statistics(),
            "errors": self.errors.statistics(),
            "stages": {"size": len(self.latency), "capacity": s.max_stages},
            "actors": {
                "counters": len(self.actor_counters),
                "gauges": len(self.actor_gauges),
                "polls": len(self.polls),
                "capacity": s.max_actors,
            },
            "alerts": self.alerts.statistics(),
            "notices": {"size": len(self.notices), "capacity": s.notices},
        }

    def status(self) -> Mapping[str, Any]:
        return {"reports_total": self.reports_total, "statistics": self.statistics()}


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


def _nest(totals: Mapping[SeriesKey, float]) -> dict[str, dict[str, float]]:
    nested: dict[str, dict[str, float]] = {}
    for (outer, inner), value in sorted(totals.items()):
        nested.setdefault(outer, {})[inner] = value
    return nested


def _ratio_text(ratio: float | None) -> str:
    return "?" if ratio is None else f"{ratio:.2g}x"


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
