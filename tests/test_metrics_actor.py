"""The metrics actor: reports into series, statuses into rates and alerts, bounded tables.

Most tests drive one actor object directly, on the test's thread, with a
hand-moved clock (its handlers are plain methods); the last ones run it in a
tree to show the asks and the polling work between threads.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import random
import tracemalloc
from typing import Any

import pytest

from actors.metrics import MetricsActor, MetricsQuery, MetricsSettings, enabled_sources
from actors.protocol import Announce, FeedRecovered, Names, StatsReport
from realtime.config import Config, MapConfig, parse
from realtime.metrics import series_key
from supervision import ActorContext, Control, MailboxSpec, Registry
from tests.support.clocks import FakeClock
from tests.support.metrics_tree import STATUSES, Emit, RejectFrame, running_tree
from tests.support.waiting import wait_for

KILLS_SERIES = series_key("events_total", source="wanderer-kills", type="killmail")


def make_actor(clock: FakeClock, config: Config | None = None, **settings: Any) -> MetricsActor:
    config = config or Config()
    ctx = ActorContext(
        name=Names.METRICS,
        registry=Registry(),
        mailbox=MailboxSpec(1000),
        report_exit=lambda _reason: None,
    )
    return MetricsActor(
        ctx,
        config,
        MetricsSettings.from_config(config, **settings),
        clock=clock,
        wall_clock=lambda: 1_700_000_000.0 + clock(),
    )


def connection(state: str, age_s: float = 0.0, band: str = "excellent") -> dict[str, Any]:
    return {
        "name": "kills",
        "kind": "websocket",
        "state": state,
        "quality": {"score": 95, "band": band},
        "state_age_s": age_s,
        "transitions": [{"from": "connected", "to": state, "at": 0.0, "reason": "socket closed"}],
    }


def active_keys(actor: MetricsActor) -> dict[str, str]:
    return {alert.key: alert.severity for alert in actor.alerts.active()}


# --- reports ------------------------------------------------------------------------------------


def test_events_counters_become_per_source_and_type_throughput() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock)
    maps_series = series_key("events_total", source="map:demo", type="add_system")
    for _ in range(20):
        actor.ingest(StatsReport("journal", counters={KILLS_SERIES: 3, maps_series: 1}))
        clock.advance(1.0)
    throughput = actor.summary()["throughput"]
    assert throughput["rate_10s"] == 4.0
    assert throughput["total"] == 80.0
    by_series = {(s["source"], s["type"]): s for s in throughput["series"]}
    assert by_series[("wanderer-kills", "killmail")]["rate_10s"] == 3.0
    assert by_series[("map:demo", "add_system")]["total"] == 20.0
    assert throughput["history"][-5:] == [4.0] * 5


def test_stage_latencies_become_window_percentiles_and_cumulative_buckets() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock)
    rng = random.Random(9)
    samples = [rng.uniform(0.001, 0.1) for _ in range(1000)]
    for first in range(0, 1000, 100):  # reports small enough to be recorded whole
        actor.ingest(
            StatsReport("router", latencies={"router": tuple(samples[first : first + 100])})
        )
    summary = actor.summary(MetricsQuery(histograms=True))
    router = summary["latency"]["stages"]["router"]
    ordered = sorted(samples)
    assert router["count"] == 1000
    assert router["p50_s"] == pytest.approx(ordered[499], rel=0.011)
    assert router["p99_s"] == pytest.approx(ordered[989], rel=0.011)
    assert router["max_s"] == ordered[-1]
    buckets = summary["histograms"]["router"]["buckets"]
    counts = [count for _, count in buckets]
    assert counts == sorted(counts)
    assert buckets[-1] == [math.inf, 1000]
    clock.advance(120.0)  # out of the 60 s window, still in the cumulative buckets
    later = actor.summary(MetricsQuery(histograms=True))
    assert later["latency"]["stages"]["router"]["count"] == 0
    assert later["histograms"]["router"]["count"] == 1000


def test_a_large_report_is_sampled_with_exact_counts_and_close_percentiles() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock, max_samples_per_report=128)
    rng = random.Random(10)
    samples = tuple(rng.lognormvariate(-4, 0.5) for _ in range(2048))
    actor.ingest(StatsReport("router", latencies={"router": samples}))
    router = actor.summary()["latency"]["stages"]["router"]
    ordered = sorted(samples)
    assert router["count"] == 2048
    assert router["max_s"] == ordered[-1]
    assert router["mean_s"] == pytest.approx(sum(samples) / 2048)
    assert router["p50_s"] == pytest.approx(ordered[1023], rel=0.1)


def test_counters_are_totalled_and_gauges_kept_per_actor() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock)
    errors = series_key("errors_total", kind="http_503")
    for _ in range(3):
        actor.ingest(StatsReport("notifier", counters={errors: 2, "sent_total": 5}))
        actor.ingest(StatsReport("dedup", gauges={"window_size": 40.0}))
    summary = actor.summary()
    assert summary["counters"]["notifier"] == {errors: 6.0, "sent_total": 15.0}
    assert summary["gauges"]["dedup"] == {"window_size": 40.0}
    assert summary["errors"]["by_actor"] == {"notifier": {"http_503": 6.0}}
    assert summary["reports"]["total"] == 6


def test_cumulative_rejects_in_statuses_become_rates() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock)
    actor.record_status("kills", {"rejects": {"invalid_json": 100}})
    actor.evaluate(clock())
    for count in (110, 120, 130):
        clock.advance(1.0)
        actor.record_status("kills", {"rejects": {"invalid_json": count}})
        actor.evaluate(clock())
    clock.advance(1.0)
    rejects = actor.summary()["rejects"]
    assert rejects["by_source"] == {"kills": {"invalid_json": 130}}
    assert rejects["rate_60s"] == pytest.approx(30 / 60)  # the first 100 were before our time


# --- alert rules ---------------------------------------------------------------------------------


def test_connection_alerts_follow_the_source_state_with_a_grace_period() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock, down_grace_s=30.0)
    actor.record_status("kills", {"connection": connection("connected")})
    actor.evaluate(clock())
    assert active_keys(actor) == {}
    actor.record_status("kills", {"connection": connection("reconnecting", age_s=5.0)})
    actor.evaluate(clock())
    assert active_keys(actor) == {}, "a short reconnect is not an alert"
    actor.record_status("kills", {"connection": connection("reconnecting", age_s=45.0)})
    actor.evaluate(clock())
    assert active_keys(actor) == {"connection:kills": "critical"}
    actor.record_status("kills", {"connection": connection("degraded", band="poor")})
    actor.evaluate(clock())
    assert active_keys(actor) == {"connection:kills": "warning"}
    actor.record_status("kills", {"connection": connection("failed")})
    actor.evaluate(clock())
    (failed,) = actor.alerts.active()
    assert failed.message == "kills: connection failed: socket closed"
    actor.record_status("kills", {"connection": connection("connected")})
    actor.evaluate(clock())
    assert active_keys(actor) == {}
    assert [n.kind for n in actor.notices] == ["raised", "escalated", "resolved"]


def test_a_source_without_any_status_is_an_alert_after_the_grace_period() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock, down_grace_s=30.0)
    actor.evaluate(clock())
    assert "connection:kills" not in active_keys(actor)
    clock.advance(31.0)
    actor.evaluate(clock())
    assert active_keys(actor)["connection:kills"] == "critical"


def test_backpressure_shedding_journal_and_discord_auth_raise_and_resolve_alerts() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock, shed_hold_s=60.0)
    actor.record_status("kills", {"connection": connection("connected")})
    flow = dict(STATUSES[Names.FLOW_CONTROL])
    actor.record_status(Names.FLOW_CONTROL, flow)
    actor.evaluate(clock())
    actor.record_status(Names.FLOW_CONTROL, {**flow, "backpressure": True, "shed": {"low": 12}})
    actor.record_status(Names.JOURNAL, {**STATUSES[Names.JOURNAL], "error": "database is locked"})
    actor.record_status(
        Names.NOTIFIER,
        {"sent": 0, "sinks": {"discord": {"error": "HTTP 401: 401 Unauthorized"}}, "error": None},
    )
    actor.evaluate(clock())
    assert active_keys(actor) == {
        "flow:backpressure": "warning",
        "flow:shedding": "warning",
        "journal:error": "critical",
        "notifier:discord_auth": "critical",
    }
    actor.record_status(Names.FLOW_CONTROL, {**flow, "shed": {"low": 12}})
    actor.record_status(Names.JOURNAL, STATUSES[Names.JOURNAL])
    actor.record_status(Names.NOTIFIER, {"sent": 1, "error": "HTTP 500 from Discord"})
    clock.advance(30.0)
    actor.evaluate(clock())
    assert active_keys(actor) == {"flow:shedding": "warning", "notifier:error": "warning"}
    clock.advance(31.0)  # nothing shed for longer than the hold
    actor.evaluate(clock())
    assert "flow:shedding" not in active_keys(actor)


def test_a_stall_an_actor_reports_is_alerted_until_its_work_resumes() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock, down_grace_s=1e9)
    stalled = {"severity": "critical", "message": "delivery to the handlers failing for 3 s"}
    actor.record_status(Names.ROUTER, {"stalled": stalled})
    actor.evaluate(clock())
    assert active_keys(actor) == {"stalled:router": "critical"}
    (alert,) = actor.alerts.active()
    assert alert.message == "router: delivery to the handlers failing for 3 s"
    actor.record_status(Names.ROUTER, {"stalled": None})
    actor.evaluate(clock())
    assert active_keys(actor) == {}
    assert [n.kind for n in actor.notices] == ["raised", "resolved"]


def test_an_actor_that_is_not_running_raises_an_alert_after_some_ticks() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock, silent_ticks=3, down_grace_s=1000.0)
    for _ in range(2):
        actor.tick()
    assert "actor:kills" not in active_keys(actor)
    actor.tick()
    assert active_keys(actor)["actor:kills"] == "warning"
    assert actor.summary()["polls"]["kills"]["error"] == "not running"


def test_a_sustained_latency_slowdown_raises_a_regression_alert_and_recovery_resolves_it() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock, regression_interval_s=60.0, down_grace_s=1e9)
    rng = random.Random(21)

    def minute(level_s: float) -> None:
        for _ in range(6):
            samples = tuple(level_s * math.exp(rng.gauss(0, 0.15)) for _ in range(20))
            actor.ingest(StatsReport("router", latencies={"router": samples}))
            clock.advance(10.0)
        actor.evaluate(clock())

    for _ in range(40):
        minute(0.010)
    assert "regression:latency:router" not in active_keys(actor)
    raised_after = None
    for interval in range(10):
        minute(0.050)
        if "regression:latency:router" in active_keys(actor):
            raised_after = interval + 1
            break
    assert raised_after is not None
    assert raised_after <= 4
    (alert,) = [a for a in actor.alerts.active() if a.key == "regression:latency:router"]
    assert "p99 latency of router" in alert.message
    for _ in range(12):
        minute(0.010)
    assert "regression:latency:router" not in active_keys(actor)
    assert actor.summary()["regression"]["latency:router"]["alarm"] is False


# --- reading and bounds --------------------------------------------------------------------------


def test_the_summary_is_plain_json() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock)
    actor.ingest(StatsReport("journal", counters={KILLS_SERIES: 1}, latencies={"journal": (0.01,)}))
    actor.record_status("kills", {"connection": connection("failed")})
    actor.evaluate(clock())
    document = json.loads(json.dumps(actor.summary(MetricsQuery(histograms=True))))
    assert document["alerts"]["active"][0]["first_seen"] == 1_700_000_000.0 + clock()
    assert set(document) >= {"throughput", "latency", "rejects", "errors", "alerts", "statistics"}


def test_reports_from_ever_new_actors_stages_and_keys_stay_bounded() -> None:
    clock = FakeClock(1000.0)
    actor = make_actor(clock, max_actors=8, max_stages=4, max_keys_per_actor=16, max_series=8)

    def flood(start: int, stop: int) -> None:
        for n in range(start, stop):
            events = series_key("events_total", source=f"s{n}", type="t")
            actor.ingest(
                StatsReport(
                    f"actor{n}",
                    counters={events: 1, f"c{n}_total": 1},
                    gauges={f"g{n}": 1.0},
                    latencies={f"stage{n}": (0.001,)},
                )
            )
            actor.record_status(f"actor{n}", {"rejects": {f"reason{n}": n}})
            if n % 100 == 0:
                clock.advance(1.0)
                actor.evaluate(clock())

    flood(0, 6_000)
    gc.collect()
    tracemalloc.start()
    try:
        flood(6_000, 8_000)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        flood(8_000, 10_000)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert growth < 16_384
    statistics = actor.statistics()
    assert statistics["actors"]["counters"] <= 8
    assert statistics["actors"]["polls"] <= 8
    assert statistics["stages"]["size"] <= 4
    assert statistics["throughput"]["series"] <= 8
    assert all(len(table) <= 16 for table in actor.actor_counters.values())


def test_enabled_sources_follow_the_configuration() -> None:
    config = dataclasses.replace(Config(), maps=(MapConfig("alpha"), MapConfig("beta")))
    assert enabled_sources(config) == ["kills", "kills:characters", "map:alpha", "map:beta"]
    kills_off = dataclasses.replace(
        config,
        sources=dataclasses.replace(
            config.sources, kills=dataclasses.replace(config.sources.kills, enabled=False)
        ),
    )
    assert enabled_sources(kills_off) == ["map:alpha", "map:beta"]


# --- in a running tree ---------------------------------------------------------------------------


def test_metrics_query_is_a_control_message_answered_ahead_of_reports() -> None:
    assert isinstance(MetricsQuery(), Control)


def test_in_a_tree_metrics_collects_reports_and_polls_statuses() -> None:
    with running_tree() as running:
        running.tell(Names.KILLS, Emit(7))
        running.tell(Names.KILLS, RejectFrame("invalid_json"))

        def collected() -> dict[str, Any]:
            summary = running.registry.ask(Names.METRICS, MetricsQuery(), 2.0)
            polls = summary["polls"]
            done = (
                summary["throughput"]["total"] == 7
                and summary["rejects"]["by_source"].get("kills") == {"invalid_json": 1}
                and polls.get(Names.JOURNAL, {}).get("answered_age_s") is not None
            )
            return summary if done else {}

        summary = wait_for(collected, timeout_s=5, what="reports and statuses collected")
        assert summary["latency"]["stages"]["journal"]["count"] == 7
        assert summary["counters"]["kills"][KILLS_SERIES] == 7
        assert summary["alerts"]["active"] == []


class TellRecorder(Registry):
    """A registry that records what is told, by name (no actors behind it)."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[tuple[str, Any]] = []

    def tell(self, name: str, message: Any) -> None:
        self.told.append((name, message))


def test_alerts_are_told_to_the_notifier_and_a_feed_back_from_an_outage_too() -> None:
    clock = FakeClock(1000.0)
    registry = TellRecorder()
    config = Config()
    ctx = ActorContext(Names.METRICS, registry, MailboxSpec(1000), lambda _reason: None)
    actor = MetricsActor(
        ctx,
        config,
        MetricsSettings.from_config(config, down_grace_s=30.0),
        clock=clock,
        wall_clock=lambda: 1_700_000_000.0 + clock(),
    )
    down_at = clock()
    actor.record_status("kills", {"connection": connection("reconnecting", age_s=0.0)})
    actor.evaluate(clock())
    clock.advance(45.0)
    actor.record_status("kills", {"connection": connection("reconnecting", age_s=45.0)})
    actor.evaluate(clock())
    clock.advance(75.0)
    actor.record_status("kills", {"connection": connection("connected")})
    actor.evaluate(clock())
    assert {name for name, _ in registry.told} == {Names.NOTIFIER}
    raised, resolved, recovered = (message for _, message in registry.told)
    assert isinstance(raised, Announce)
    assert isinstance(resolved, Announce)
    (alert,) = raised.notifications
    assert alert.kind == "alert"
    assert alert.title == "Alert raised: connection:kills"
    assert resolved.notifications[0].title == "Alert resolved: connection:kills"
    assert recovered == FeedRecovered("kills", 1_700_000_000.0 + down_at, 1_700_000_000.0 + clock())


def test_a_source_down_longer_than_the_configured_grace_raises_its_connection_alert() -> None:
    clock = FakeClock()
    config = parse({"alerts": {"down_grace_s": 5.0}}, {})
    actor = make_actor(clock, config)
    actor.record_status("kills", {"connection": connection("reconnecting", age_s=6.0)})
    actor.evaluate(clock())
    assert [alert.key for alert in actor.alerts.active()] == ["connection:kills"]
