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

Where things live:

- :mod:`~actors.metrics.actor`: :class:`MetricsActor` (reports, series,
  regression checks, the tick, the summary and exposition);
- :mod:`~actors.metrics.rules`: :class:`~actors.metrics.rules.AlertRules`,
  the alert rules above;
- :mod:`~actors.metrics.polls`: the status polls;
- :mod:`~actors.metrics.settings`: :class:`MetricsSettings`, the queries, the
  counter names read and the exported buckets.
"""

from actors.metrics.actor import MetricsActor
from actors.metrics.settings import (
    ERROR_SUFFIXES,
    EVENTS_COUNTER,
    PROMETHEUS_BUCKETS_S,
    ExpositionQuery,
    MetricsQuery,
    MetricsSettings,
    enabled_sources,
)

__all__ = [
    "ERROR_SUFFIXES",
    "EVENTS_COUNTER",
    "PROMETHEUS_BUCKETS_S",
    "ExpositionQuery",
    "MetricsActor",
    "MetricsQuery",
    "MetricsSettings",
    "enabled_sources",
]
