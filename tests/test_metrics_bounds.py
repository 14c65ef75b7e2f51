"""Every bounded metrics structure, flooded with 1,000,000 samples, keeps its memory flat.

Each flood runs its first 960,000 samples untraced (tracing costs about 6x),
then traces the last 40,000: the first 20,000 of those turn every bounded
structure over (so its whole content is traced), the last 20,000 must not
add to it. A leak of even one byte per sample would show as 20 KB.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable

import pytest

from realtime.metrics import (
    AlertManager,
    BoundedTotals,
    RegressionDetector,
    RollingHistogram,
    Severity,
    ThroughputHistory,
)

SAMPLES = 1_000_000
UNTRACED = 960_000
TURNOVER = 20_000
ALLOWED_GROWTH_BYTES = 4096

Flood = Callable[[int, int], None]


def growth_over_the_last_samples(flood: Flood) -> int:
    """Bytes still allocated after the last :data:`TURNOVER` samples that were not before."""
    flood(0, UNTRACED)
    gc.collect()
    tracemalloc.start()
    try:
        flood(UNTRACED, UNTRACED + TURNOVER)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        flood(UNTRACED + TURNOVER, SAMPLES)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before


@pytest.fixture(scope="module")
def latencies() -> list[float]:
    rng = random.Random(42)
    # From 0.1 µs to hours: every bucket of the default layout gets used.
    return [rng.lognormvariate(-5.0, 4.0) for _ in range(10_000)]


def test_rolling_histogram_memory_is_flat_under_a_flood(latencies: list[float]) -> None:
    rolling = RollingHistogram(slice_s=10.0, slices=6)

    def flood(start: int, stop: int) -> None:
        for first in range(start, stop, len(latencies)):
            # One batch per simulated 5 s: the window turns over many times.
            rolling.record_many(latencies, now=first / 2000)

    assert growth_over_the_last_samples(flood) < ALLOWED_GROWTH_BYTES
    # The window (60 s) at the end holds the last ten batches (one per 5 s), nothing older.
    assert rolling.window(now=SAMPLES / 2000).count == 10 * len(latencies)


KEYS = 50_000
"""Distinct keys cycled through by the key floods (built once, outside the trace)."""


def test_throughput_history_memory_is_flat_under_a_flood_of_series() -> None:
    history = ThroughputHistory(history_s=3600, max_series=64)
    keys = [(f"source{n}", f"type{n % 7}") for n in range(KEYS)]

    def flood(start: int, stop: int) -> None:
        add = history.add
        for n in range(start, stop):
            add(keys[n % KEYS], 1.0, n * 0.01)

    assert growth_over_the_last_samples(flood) < ALLOWED_GROWTH_BYTES
    statistics = history.statistics()
    assert statistics["series"] == 64
    assert sum(history.totals().values()) == SAMPLES


def test_regression_detector_memory_is_flat_under_a_flood(latencies: list[float]) -> None:
    detector = RegressionDetector()

    def flood(start: int, stop: int) -> None:
        update = detector.update
        size = len(latencies)
        for n in range(start, stop):
            update(latencies[n % size])

    assert growth_over_the_last_samples(flood) < ALLOWED_GROWTH_BYTES
    assert detector.state().intervals == SAMPLES


def test_alert_manager_memory_is_flat_under_a_flood_of_keys() -> None:
    # Samples alternate between raising a key and resolving the one raised 50
    # raises before; only 40 fit, so the table is always full and evictions and
    # drops happen all along. A key comes back after its cooldown.
    alerts = AlertManager(max_active=40, history=200, cooldown_s=30.0)
    severities: tuple[Severity, ...] = ("info", "warning", "critical")
    keys = [f"key{n}" for n in range(7919)]

    def flood(start: int, stop: int) -> None:
        raise_alert, resolve = alerts.raise_alert, alerts.resolve
        for n in range(start, stop):
            raised = n // 2
            if n % 2:
                resolve(keys[(raised - 50) % 7919], n * 0.1)
            else:
                raise_alert(keys[raised % 7919], severities[raised % 3], "flooded", n * 0.1)

    assert growth_over_the_last_samples(flood) < ALLOWED_GROWTH_BYTES
    statistics = alerts.statistics()
    assert 30 <= statistics["active"] <= 40
    assert statistics["resolved"] == 200
    assert statistics["cooldown_keys"] == 200
    assert statistics["dropped"] > 0
    assert statistics["evicted"] > 0


def test_bounded_totals_memory_is_flat_under_a_flood_of_keys() -> None:
    totals = BoundedTotals(capacity=256)
    keys = [f"counter{n}" for n in range(KEYS)]

    def flood(start: int, stop: int) -> None:
        add = totals.add
        for n in range(start, stop):
            add(keys[n % KEYS], 1.0)

    assert growth_over_the_last_samples(flood) < ALLOWED_GROWTH_BYTES
    assert len(totals) == 256
