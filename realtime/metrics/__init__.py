"""Metrics cores: latency histograms, throughput history, regression detection, alerts.

Pure: no threads, no I/O, no clock reads. Every ``now`` is a parameter in
seconds on one monotonic clock chosen by the caller; a ``now`` earlier than one
already seen is taken as the latest one seen. Every structure has a fixed bound
chosen by its caller and a ``statistics()`` method saying how full it is: the
Elixir notifier this replaces grew its metric and alert lists without bound
until the process held 12 GB.

One module per concern; import from this package:

- :mod:`~realtime.metrics.keys`: series keys in Prometheus' syntax
  (:func:`series_key`, :func:`parse_series_key`, :data:`OTHER`).
- :mod:`~realtime.metrics.histogram`: :class:`LogHistogram`,
  :class:`RollingHistogram`, :class:`LatencySummary`, :class:`BucketCounts`.
- :mod:`~realtime.metrics.throughput`: :class:`ThroughputHistory`,
  :class:`BoundedTotals`.
- :mod:`~realtime.metrics.regression`: :class:`RegressionDetector`.
- :mod:`~realtime.metrics.alerts`: :class:`AlertManager`.
"""

from realtime.metrics.alerts import SEVERITY_RANK, Alert, AlertManager, Notice, NoticeKind, Severity
from realtime.metrics.histogram import (
    BucketCounts,
    HistogramLayout,
    LatencySummary,
    LogHistogram,
    RollingHistogram,
)
from realtime.metrics.keys import OTHER, OTHER_SERIES, SeriesKey, parse_series_key, series_key
from realtime.metrics.regression import (
    Direction,
    RegressionChange,
    RegressionDetector,
    RegressionSettings,
    RegressionState,
)
from realtime.metrics.throughput import BoundedTotals, ThroughputHistory

__all__ = [
    "OTHER",
    "OTHER_SERIES",
    "SEVERITY_RANK",
    "Alert",
    "AlertManager",
    "BoundedTotals",
    "BucketCounts",
    "Direction",
    "HistogramLayout",
    "LatencySummary",
    "LogHistogram",
    "Notice",
    "NoticeKind",
    "RegressionChange",
    "RegressionDetector",
    "RegressionSettings",
    "RegressionState",
    "RollingHistogram",
    "SeriesKey",
    "Severity",
    "ThroughputHistory",
    "parse_series_key",
    "series_key",
]
