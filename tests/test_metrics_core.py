"""Metrics cores: histogram accuracy, rolling windows, throughput, regression, alerts."""

from __future__ import annotations

import math
import random

import pytest

from realtime.metrics import (
    OTHER,
    OTHER_SERIES,
    AlertManager,
    BoundedTotals,
    BucketCounts,
    HistogramLayout,
    LatencySummary,
    LogHistogram,
    RegressionDetector,
    RegressionSettings,
    RollingHistogram,
    ThroughputHistory,
    parse_series_key,
    series_key,
)


def exact_percentile(ordered: list[float], fraction: float) -> float:
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


FRACTIONS = (0.01, 0.5, 0.9, 0.95, 0.99, 0.999)

# --- series keys ------------------------------------------------------------------------------


def test_series_key_round_trips_labels_with_quotes_and_backslashes() -> None:
    key = series_key("rejects_total", source="map:demo", reason='bad "json" \\ here')
    assert key == 'rejects_total{reason="bad \\"json\\" \\\\ here",source="map:demo"}'
    assert parse_series_key(key) == (
        "rejects_total",
        {"reason": 'bad "json" \\ here', "source": "map:demo"},
    )


def test_series_key_without_labels_is_the_bare_name() -> None:
    assert series_key("events_total") == "events_total"
    assert parse_series_key("events_total") == ("events_total", {})


@pytest.mark.parametrize("key", ["", "1abc", 'x{a="1"', "x{a=1}", "x{}y", 'x{a="1",,}'])
def test_malformed_series_keys_are_none(key: str) -> None:
    assert parse_series_key(key) is None


def test_series_key_refuses_names_that_are_not_identifiers() -> None:
    with pytest.raises(ValueError, match="metric name"):
        series_key("bad name")
    with pytest.raises(ValueError, match="label name"):
        series_key("ok", **{"bad-label": "x"})


# --- the histogram -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "draw"),
    [
        ("lognormal", lambda rng: rng.lognormvariate(-4.0, 1.5)),
        (
            "bimodal",
            lambda rng: rng.gauss(0.004, 0.0005) if rng.random() < 0.9 else rng.uniform(1, 30),
        ),
        ("exponential", lambda rng: rng.expovariate(20.0)),
    ],
)
def test_percentiles_are_within_the_layout_precision_of_the_exact_ones(
    name: str, draw: object
) -> None:
    rng = random.Random(20240601)
    values = [abs(draw(rng)) for _ in range(100_000)]  # type: ignore[operator]
    histogram = LogHistogram(HistogramLayout(precision=0.01))
    histogram.record_many(values)
    ordered = sorted(values)
    for fraction, estimate in zip(FRACTIONS, histogram.percentiles(FRACTIONS), strict=True):
        exact = exact_percentile(ordered, fraction)
        assert estimate is not None
        assert abs(estimate / exact - 1) <= 0.0101, (name, fraction, exact, estimate)
    assert histogram.count == len(values)
    assert histogram.min == ordered[0]
    assert histogram.max == ordered[-1]
    assert histogram.sum == pytest.approx(sum(values))


def test_a_coarser_layout_trades_accuracy_for_fewer_buckets() -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(-3, 1) for _ in range(20_000)]
    coarse = LogHistogram(HistogramLayout(precision=0.05))
    coarse.record_many(values)
    exact = exact_percentile(sorted(values), 0.99)
    estimate = coarse.percentile(0.99)
    assert estimate is not None
    assert abs(estimate / exact - 1) <= 0.0501
    assert coarse.layout.buckets < LogHistogram().layout.buckets / 4


def test_record_and_record_many_agree() -> None:
    values = [0.0, 1e-9, 0.5e-6, 1e-6, 0.00123, 0.5, 7.0, 86_400.0, 1e9]
    one, many = LogHistogram(), LogHistogram()
    for value in values:
        one.record(value)
    many.record_many(values)
    assert one.percentiles(FRACTIONS) == many.percentiles(FRACTIONS)
    assert (one.count, one.sum, one.min, one.max) == (many.count, many.sum, many.min, many.max)


def test_a_limit_samples_a_large_batch_but_keeps_count_sum_and_extremes_exact() -> None:
    rng = random.Random(77)
    values = [rng.expovariate(50.0) for _ in range(10_001)]
    sampled, whole = LogHistogram(), LogHistogram()
    sampled.record_many(values, limit=100)
    whole.record_many(values)
    assert sampled.count == whole.count == 10_001
    assert sampled.buckets_used() <= 100 + 1
    assert (sampled.sum, sampled.min, sampled.max) == (whole.sum, whole.min, whole.max)
    for fraction in (0.5, 0.9):
        estimate, exact = sampled.percentile(fraction), whole.percentile(fraction)
        assert estimate is not None
        assert exact is not None
        assert estimate == pytest.approx(exact, rel=0.15)


def test_a_batch_with_invalid_values_records_the_valid_ones() -> None:
    histogram = LogHistogram()
    histogram.record_many([0.1, math.nan, 0.2, -1.0, math.inf], limit=2)
    assert histogram.count == 2
    assert histogram.invalid == 3
    assert histogram.max == 0.2


def test_out_of_range_values_are_clamped_to_the_observed_extremes() -> None:
    histogram = LogHistogram()
    histogram.record_many([0.0, 1e-7, 5e9])
    assert histogram.percentile(0.0) == 0.0
    assert histogram.percentile(0.6) == 0.0  # below the layout's lowest: the minimum seen
    assert histogram.percentile(1.0) == 5e9


def test_invalid_values_are_counted_not_recorded() -> None:
    histogram = LogHistogram()
    histogram.record_many([-1.0, math.nan, math.inf, 0.25])
    histogram.record(-0.5)
    assert histogram.count == 1
    assert histogram.invalid == 4
    assert histogram.percentile(0.5) == 0.25


def test_an_empty_histogram_has_no_percentiles() -> None:
    histogram = LogHistogram()
    assert histogram.percentiles((0.5, 0.99)) == [None, None]
    summary = LatencySummary.of(histogram)
    assert summary.count == 0
    assert summary.p99_s is None
    assert summary.mean_s is None


def test_percentile_fractions_outside_zero_one_are_refused() -> None:
    with pytest.raises(ValueError, match="within"):
        LogHistogram().percentiles((1.5,))


def test_merge_adds_counts_and_refuses_another_layout() -> None:
    left, right = LogHistogram(), LogHistogram()
    left.record_many([0.001] * 10)
    right.record_many([1.0] * 10)
    left.merge(right)
    assert left.count == 20
    assert left.percentile(0.5) == pytest.approx(0.001, rel=0.01)
    assert left.percentile(0.95) == pytest.approx(1.0, rel=0.01)
    with pytest.raises(ValueError, match="layouts"):
        left.merge(LogHistogram(HistogramLayout(precision=0.02)))


def test_bucket_counts_are_prometheus_le_buckets() -> None:
    counts = BucketCounts([0.0005, 0.005, 0.05, 1.0, 5.0, math.inf])
    counts.record_many([0.001] * 5 + [0.02] * 3 + [4.0] * 2 + [5.0])
    assert [n for _, n in counts.cumulative()] == [0, 5, 8, 8, 11, 11]
    assert counts.cumulative()[-1] == (math.inf, counts.count)
    assert counts.sum == pytest.approx(0.005 + 0.06 + 8.0 + 5.0)


def test_bucket_counts_sample_a_large_batch_with_exact_count_and_sum() -> None:
    rng = random.Random(78)
    values = [rng.expovariate(50.0) for _ in range(10_001)]
    sampled, whole = BucketCounts([0.01, 0.05, math.inf]), BucketCounts([0.01, 0.05, math.inf])
    sampled.record_many(values, limit=100)
    whole.record_many(values)
    assert (sampled.count, sampled.sum) == (whole.count, whole.sum)
    assert sampled.cumulative()[-1] == (math.inf, 10_001)
    for (_, estimate), (_, exact) in zip(sampled.cumulative(), whole.cumulative(), strict=True):
        assert estimate == pytest.approx(exact, rel=0.05)


def test_bucket_counts_count_invalid_values_apart_and_want_ascending_bounds() -> None:
    counts = BucketCounts([1.0, math.inf])
    counts.record_many([0.5, -1.0, math.nan, math.inf, 2.0])
    assert counts.cumulative() == [(1.0, 1), (math.inf, 2)]
    assert counts.invalid == 3
    for bounds in ([], [1.0, 0.5, math.inf], [1.0, 2.0]):
        with pytest.raises(ValueError, match="ascend"):
            BucketCounts(bounds)


def test_clear_keeps_the_layout_and_forgets_values_even_on_bucket_edges() -> None:
    histogram = LogHistogram()
    layout = histogram.layout
    edges = [layout.lower_bound(i) for i in range(1, layout.buckets - 1, 7)]
    histogram.record_many([layout.lowest, math.nextafter(layout.highest, 0), *edges])
    histogram.record_many([0.0, 1e12])
    assert histogram.buckets_used() > 100
    histogram.clear()
    assert histogram.count == 0
    assert histogram.buckets_used() == 0
    assert histogram.percentile(0.5) is None


def test_layout_validates_its_range_and_precision() -> None:
    with pytest.raises(ValueError, match="lowest"):
        HistogramLayout(lowest=1.0, highest=0.5)
    with pytest.raises(ValueError, match="precision"):
        HistogramLayout(precision=0.0)


# --- rolling windows ---------------------------------------------------------------------------


def test_rolling_window_keeps_only_recent_slices() -> None:
    rolling = RollingHistogram(slice_s=10.0, slices=6)
    rolling.record_many([0.001] * 100, now=5.0)
    assert rolling.window(now=59.9).count == 100
    rolling.record_many([2.0] * 10, now=65.0)
    window = rolling.window(now=65.0)
    assert window.count == 10  # the slice at t=5 left the 60 s window
    assert window.percentile(0.5) == pytest.approx(2.0, rel=0.01)


def test_a_clock_going_back_counts_values_as_of_the_latest_time_seen() -> None:
    rolling = RollingHistogram(slice_s=1.0, slices=3)
    rolling.record(0.5, now=100.0)
    rolling.record(9.0, now=10.0)
    assert rolling.window(now=100.0).count == 2
    assert rolling.window(now=50.0).count == 2


def test_rolling_histogram_validates_its_shape() -> None:
    with pytest.raises(ValueError, match="slice_s"):
        RollingHistogram(slice_s=0, slices=3)


# --- throughput ----------------------------------------------------------------------------------


def test_throughput_rates_and_history_per_series_and_in_total() -> None:
    history = ThroughputHistory(history_s=3600, max_series=8)
    kills = ("wanderer-kills", "killmail")
    systems = ("map:demo", "add_system")
    for second in range(100, 160):
        history.add(kills, 2.0, now=second + 0.5)
        if second % 2 == 0:
            history.add(systems, 1.0, now=second + 0.1)
    assert history.rate(kills, 10, now=160.0) == 2.0
    assert history.rate(systems, 10, now=160.0) == 0.5
    assert history.rate(None, 10, now=160.0) == 2.5
    assert history.recent(systems, 4, now=160.0) == [1.0, 0.0, 1.0, 0.0]
    assert history.totals() == {kills: 120.0, systems: 30.0}
    # Nothing for 100 s: the window slides to zeros.
    assert history.rate(None, 60, now=260.0) == 0.0


def test_throughput_forgets_seconds_older_than_the_history() -> None:
    history = ThroughputHistory(history_s=10, max_series=4)
    key = ("s", "t")
    history.add(key, 5.0, now=1.0)
    history.add(key, 1.0, now=30.0)
    assert history.recent(key, 9, now=31.0) == [0.0] * 8 + [1.0]
    history.add(key, 7.0, now=2.0)  # the clock never goes back: counted as of 31
    assert history.recent(key, 9, now=32.0) == [0.0] * 7 + [1.0, 7.0]
    assert history.totals()[key] == 13.0


def test_series_beyond_the_bound_are_folded_into_other() -> None:
    history = ThroughputHistory(history_s=60, max_series=3)
    for index in range(10):
        history.add((f"source{index}", "t"), 1.0, now=5.0)
    assert history.series() == [OTHER_SERIES, ("source0", "t"), ("source1", "t")]
    assert history.totals()[OTHER_SERIES] == 8.0
    assert history.statistics()["folded"] == 8
    history.add(("source0", "t"), 1.0, now=5.0)  # known keys still count as themselves
    assert history.totals()[("source0", "t")] == 2.0


def test_throughput_validates_its_bounds() -> None:
    with pytest.raises(ValueError, match="max_series"):
        ThroughputHistory(history_s=60, max_series=1)


def test_bounded_totals_fold_new_keys_into_other() -> None:
    totals = BoundedTotals(capacity=3)
    for key in "abcde":
        totals.add(key, 1.0)
    totals.set("a", 10.0)
    assert totals.items() == [("a", 10.0), ("b", 1.0), (OTHER, 3.0)]
    assert totals.statistics() == {"keys": 3, "capacity": 3, "folded": 3}


# --- regression detection --------------------------------------------------------------------


def noisy(rng: random.Random, level: float, sigma: float) -> float:
    return level * math.exp(rng.gauss(0.0, sigma))


def test_regression_fires_on_a_sustained_slowdown_and_clears_after_recovery() -> None:
    rng = random.Random(11)
    detector = RegressionDetector(RegressionSettings(direction="up", ratio=2.0))
    for _ in range(200):
        assert detector.update(noisy(rng, 0.050, 0.2)) is None
    raised_at = None
    for interval in range(30):
        if detector.update(noisy(rng, 0.150, 0.2)) == "raised":
            raised_at = interval
            break
    assert raised_at is not None
    assert raised_at <= 5, "a 3x slowdown is flagged within a few intervals"
    assert detector.alarm
    state = detector.state()
    assert state.baseline == pytest.approx(0.050, rel=0.15)
    cleared_at = None
    for interval in range(30):
        if detector.update(noisy(rng, 0.050, 0.2)) == "cleared":
            cleared_at = interval
            break
    assert cleared_at is not None
    assert cleared_at <= 10
    assert not detector.alarm


def test_regression_is_silent_on_stationary_noise_with_a_fixed_seed() -> None:
    rng = random.Random(1234)
    detector = RegressionDetector(RegressionSettings(direction="up", ratio=2.0))
    changes = [detector.update(noisy(rng, 0.2, 0.3)) for _ in range(50_000)]
    assert changes.count("raised") == 0


def test_regression_learns_a_shift_smaller_than_the_ratio_without_alarm() -> None:
    rng = random.Random(3)
    detector = RegressionDetector(RegressionSettings(direction="up", ratio=2.0))
    changes = [detector.update(noisy(rng, 0.1, 0.1)) for _ in range(100)]
    changes += [detector.update(noisy(rng, 0.15, 0.1)) for _ in range(300)]
    assert "raised" not in changes
    assert detector.state().baseline == pytest.approx(0.15, rel=0.1)


def test_regression_does_not_alarm_during_warmup() -> None:
    detector = RegressionDetector(RegressionSettings(warmup=20))
    changes = [detector.update(v) for v in [0.01] * 5 + [10.0] * 15]
    assert "raised" not in changes


def test_throughput_drop_is_detected_and_a_tiny_baseline_is_ignored() -> None:
    rng = random.Random(8)
    settings = RegressionSettings(direction="down", ratio=2.0, floor=1.0, min_baseline=10.0)
    busy = RegressionDetector(settings)
    for _ in range(100):
        assert busy.update(rng.gauss(600, 25)) is None
    changes = [busy.update(rng.gauss(60, 8)) for _ in range(10)]
    assert "raised" in changes
    quiet = RegressionDetector(settings)
    changes = [quiet.update(float(rng.choice((0, 1, 2, 3, 4)))) for _ in range(2000)]
    changes += [quiet.update(0.0) for _ in range(100)]
    assert "raised" not in changes


def test_a_permanent_change_is_accepted_as_the_new_baseline() -> None:
    detector = RegressionDetector(RegressionSettings(accept_after=50, warmup=5))
    for _ in range(30):
        detector.update(0.01)
    changes = [detector.update(0.1) for _ in range(60)]
    assert changes.count("raised") == 1
    assert changes.count("accepted") == 1
    assert not detector.alarm
    baseline = detector.state().baseline
    assert baseline is not None
    assert baseline > 0.05


def test_regression_ignores_values_it_cannot_judge() -> None:
    detector = RegressionDetector()
    assert detector.update(math.nan) is None
    assert detector.update(-1.0) is None
    assert detector.state().intervals == 0


def test_regression_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="ratio"):
        RegressionSettings(ratio=1.0)
    with pytest.raises(ValueError, match="EWMA"):
        RegressionSettings(baseline_alpha=0.0)


# --- alerts ----------------------------------------------------------------------------------


def test_alert_lifecycle_announces_raise_escalation_and_resolution_once() -> None:
    alerts = AlertManager(max_active=10, history=10, cooldown_s=300)
    raised = alerts.raise_alert("connection:kills", "warning", "degraded", now=10.0)
    assert raised is not None
    assert raised.kind == "raised"
    assert alerts.raise_alert("connection:kills", "warning", "still degraded", now=11.0) is None
    escalated = alerts.raise_alert("connection:kills", "critical", "failed", now=12.0)
    assert escalated is not None
    assert escalated.kind == "escalated"
    (active,) = alerts.active()
    assert (active.first_seen, active.last_seen, active.count) == (10.0, 12.0, 2)
    assert active.message == "failed"
    resolved = alerts.resolve("connection:kills", now=20.0)
    assert resolved is not None
    assert resolved.kind == "resolved"
    assert resolved.alert.resolved_at == 20.0
    assert alerts.active() == []
    assert [a.key for a in alerts.resolved()] == ["connection:kills"]
    assert alerts.resolve("connection:kills", now=21.0) is None


def test_a_flapping_alert_is_revived_silently_within_the_cooldown() -> None:
    alerts = AlertManager(max_active=10, history=10, cooldown_s=300)
    assert alerts.raise_alert("backpressure", "warning", "on", now=0.0) is not None
    assert alerts.resolve("backpressure", now=5.0) is not None
    assert alerts.raise_alert("backpressure", "warning", "on again", now=10.0) is None
    (revived,) = alerts.active()
    assert (revived.first_seen, revived.count) == (0.0, 2)
    assert alerts.resolve("backpressure", now=15.0) is None  # its raise was not announced
    later = alerts.raise_alert("backpressure", "warning", "on", now=400.0)
    assert later is not None
    assert later.kind == "raised"
    assert later.alert.first_seen == 400.0


def test_a_full_alert_table_drops_equal_severity_and_evicts_for_more_severe() -> None:
    alerts = AlertManager(max_active=2, history=5, cooldown_s=0)
    alerts.raise_alert("a", "warning", "a", now=1.0)
    alerts.raise_alert("b", "warning", "b", now=2.0)
    assert alerts.raise_alert("c", "warning", "c", now=3.0) is None
    assert alerts.statistics()["dropped"] == 1
    notice = alerts.raise_alert("d", "critical", "d", now=4.0)
    assert notice is not None
    assert [a.key for a in alerts.active()] == ["d", "b"]
    evicted = alerts.resolved()[0]
    assert evicted.key == "a"
    assert "evicted" in evicted.message
    assert alerts.statistics()["evicted"] == 1


def test_sync_raises_present_conditions_and_resolves_absent_ones() -> None:
    alerts = AlertManager(max_active=10, history=10, cooldown_s=0)
    alerts.raise_alert("journal", "critical", "disk full", now=0.0)
    first = alerts.sync(
        "connection:",
        {"connection:kills": ("warning", "down"), "connection:map:a": ("warning", "down")},
        now=1.0,
    )
    assert sorted(n.alert.key for n in first) == ["connection:kills", "connection:map:a"]
    second = alerts.sync("connection:", {"connection:kills": ("warning", "down")}, now=2.0)
    assert [(n.kind, n.alert.key) for n in second] == [("resolved", "connection:map:a")]
    assert [a.key for a in alerts.active()] == ["journal", "connection:kills"]
    with pytest.raises(ValueError, match="does not start with"):
        alerts.sync("connection:", {"journal": ("info", "x")}, now=3.0)


def test_alert_json_converts_times_with_an_offset() -> None:
    alerts = AlertManager(max_active=1, history=1, cooldown_s=0)
    alerts.raise_alert("x", "info", "m", now=5.0)
    shown = alerts.active()[0].to_dict(clock_offset=1000.0)
    assert shown == {
        "key": "x",
        "severity": "info",
        "message": "m",
        "first_seen": 1005.0,
        "last_seen": 1005.0,
        "count": 1,
        "active": True,
        "resolved_at": None,
    }
