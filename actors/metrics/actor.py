"""The ``metrics`` actor: :class:`MetricsActor` (see :mod:`actors.metrics`).

It takes the reports, keeps the bounded series and histograms, runs the
regression checks, drives the tick (polls, rules, alerts) and answers the
queries; the polls are :mod:`actors.metrics.polls`, the alert rules
:mod:`actors.metrics.rules`.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from actors.base import ReportingActor
from actors.metrics.polls import StatusPolls
from actors.metrics.rules import AlertRules
from actors.metrics.settings import (
    ERROR_SUFFIXES,
    EVENTS_COUNTER,
    PROMETHEUS_BUCKETS_S,
    ExpositionQuery,
    MetricsQuery,
    MetricsSettings,
    enabled_sources,
)
from actors.protocol import Announce, FeedRecovered, Names, StatsReport
from realtime.config import Config
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
    ThroughputHistory,
    parse_series_key,
)
from realtime.notifications import alert_notification
from supervision import ActorContext, ActorUnavailableError

logger = logging.getLogger(__name__)


class _Tick:
    __slots__ = ()


_TICK = _Tick()


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
        self.polls = StatusPolls(s.max_actors, clock)
        self._reject_totals = BoundedTotals(4 * s.max_series)
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
        self.rules = AlertRules(s, self.sources, self.started_at, clock)
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
        self.polls.harvest()
        names = [n for n in self.registry.names() if n != self.name]
        self.polls.ask(self.registry, dict.fromkeys([*self.sources, *names]))
        self.evaluate(self.clock())

    def record_status(self, name: str, status: Any) -> None:
        """Take the status ``name`` answered (the tick does this with each answer)."""
        self.polls.record(name, status)

    def evaluate(self, now: float) -> None:
        """Rates from the statuses, regression checks when due, then the alert rules."""
        self._count_rejects(now)
        if now >= self._next_regression_check:
            self._check_regressions(now)
            self._next_regression_check = now + self.settings.regression_interval_s
        conditions = self.rules.conditions(
            now, self.polls, self.latency_detectors, self.throughput_detector
        )
        for prefix, held in conditions.items():
            for notice in self.alerts.sync(prefix, held, now):
                self._announce(notice)

    def status_of(self, name: str) -> Mapping[str, Any] | None:
        """The last status ``name`` answered, if any."""
        return self.polls.status_of(name)

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
            began = self.rules.outage_began(source)
            if began is None:
                began = alert.first_seen - self.settings.down_grace_s
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


def _nest(totals: Mapping[SeriesKey, float]) -> dict[str, dict[str, float]]:
    nested: dict[str, dict[str, float]] = {}
    for (outer, inner), value in sorted(totals.items()):
        nested.setdefault(outer, {})[inner] = value
    return nested
