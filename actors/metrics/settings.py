"""What the ``metrics`` actor is asked and how it is bounded: its queries, its
settings, the counter names it reads and the exported histogram buckets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from actors.kills_source import kills_connections
from actors.protocol import Names
from realtime.config import Config
from supervision import Control

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
            "down_grace_s": config.alerts.down_grace_s,
            "silent_ticks": config.alerts.silent_ticks,
            "shed_hold_s": config.alerts.shed_hold_s,
        }
        values.update(overrides)
        return cls(**values)


def enabled_sources(config: Config) -> list[str]:
    """The actor names of the sources the configuration enables, in start order."""
    names = [name for name, _ in kills_connections(config)]
    return names + [Names.map_source(m.slug) for m in config.maps]
