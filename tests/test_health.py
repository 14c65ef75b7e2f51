"""Connection health: state machine, quality score, bounded histories, /api/health shape."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from realtime.health import (
    OTHER_ERRORS,
    ConnectionHealth,
    HealthSnapshot,
    IllegalTransitionError,
    Kind,
    State,
    band,
    overall,
)


def sse(now: float = 0.0, **kwargs: float) -> ConnectionHealth:
    return ConnectionHealth("map:demo", "sse", now=now, silence_timeout_s=75.0, **kwargs)  # type: ignore[arg-type]


def websocket(now: float = 0.0, **kwargs: float) -> ConnectionHealth:
    return ConnectionHealth(
        "kills",
        "websocket",
        now=now,
        silence_timeout_s=60.0,
        stale_after_s=45.0,
        **kwargs,  # type: ignore[arg-type]
    )


def state_of(health: ConnectionHealth) -> State:
    # A function call, so that mypy does not narrow the property across reports.
    return health.state


def live(health: ConnectionHealth, now: float = 0.0) -> ConnectionHealth:
    health.connecting(now)
    health.connected(now)
    return health


# --- the state machine ----------------------------------------------------------


def test_a_new_connection_is_disconnected_and_has_never_been_up() -> None:
    snapshot = sse(now=5.0).snapshot(5.0)
    assert snapshot.state == "disconnected"
    assert snapshot.uptime_pct == 0.0
    assert snapshot.last_message_age_s is None
    assert snapshot.rtt_ms is None
    assert snapshot.reconnects == 0
    assert snapshot.state_since == 5.0


def drive_to(state: State) -> ConnectionHealth:
    health = sse()
    if state == "connecting":
        health.connecting(0)
    elif state in ("connected", "degraded"):
        live(health)
        if state == "degraded":
            health.tick(40.0)  # silent beyond stale_after_s (37.5)
    elif state == "reconnecting":
        health.reconnecting(0, 1.0)
    elif state == "failed":
        health.failed("unknown map", 0)
    assert state_of(health) == state
    return health


REPORTS: dict[State, Callable[[ConnectionHealth], None]] = {
    "connecting": lambda health: health.connecting(50.0),
    "connected": lambda health: health.connected(50.0),
    "disconnected": lambda health: health.disconnected("closed", 50.0),
    "reconnecting": lambda health: health.reconnecting(50.0, 2.0),
    "failed": lambda health: health.failed("http 401", 50.0),
}

LEGAL = {
    ("disconnected", "connecting"),
    ("disconnected", "reconnecting"),
    ("disconnected", "failed"),
    ("connecting", "connected"),
    ("connecting", "disconnected"),
    ("connecting", "failed"),
    ("connected", "disconnected"),
    ("connected", "failed"),
    ("degraded", "disconnected"),
    ("degraded", "failed"),
    ("reconnecting", "connecting"),
    ("reconnecting", "disconnected"),
    ("reconnecting", "failed"),
    ("failed", "connecting"),
    ("failed", "reconnecting"),
    ("failed", "disconnected"),
}

STATES: list[State] = [
    "disconnected",
    "connecting",
    "connected",
    "degraded",
    "reconnecting",
    "failed",
]


@pytest.mark.parametrize("source", STATES)
@pytest.mark.parametrize("target", list(REPORTS))
def test_every_report_is_legal_exactly_where_the_table_says(source: State, target: State) -> None:
    health = drive_to(source)
    if (source, target) in LEGAL:
        REPORTS[target](health)
        # A fresh connection may degrade at once; either way the report landed.
        assert state_of(health) == target or (target == "connected" and health.state == "degraded")
        assert health.snapshot(50.0).transitions[-1].source in (source, "connected")
    else:
        with pytest.raises(IllegalTransitionError, match=f"{source} -> {target}"):
            REPORTS[target](health)
        assert state_of(health) == source


def test_a_full_connection_life_is_recorded_as_transitions() -> None:
    health = sse()
    live(health, 1.0)
    health.disconnected("server closed", 10.0)
    health.reconnecting(10.0, 2.5)
    health.connecting(12.5)
    health.connected(13.0)
    health.failed("http 404", 20.0)
    moves = [(t.source, t.target, t.at, t.reason) for t in health.snapshot(20.0).transitions]
    assert moves == [
        ("disconnected", "connecting", 1.0, ""),
        ("connecting", "connected", 1.0, ""),
        ("connected", "disconnected", 10.0, "server closed"),
        ("disconnected", "reconnecting", 10.0, "retry in 2.5 s"),
        ("reconnecting", "connecting", 12.5, ""),
        ("connecting", "connected", 13.0, ""),
        ("connected", "failed", 20.0, "http 404"),
    ]


def test_reconnects_count_scheduled_reconnections() -> None:
    health = sse()
    for attempt in range(3):
        health.reconnecting(attempt * 10.0, 1.0)
        health.connecting(attempt * 10.0 + 1)
        health.disconnected("refused", attempt * 10.0 + 2)
    assert health.snapshot(30.0).reconnects == 3


# --- degraded -----------------------------------------------------------------------


def test_silence_beyond_stale_after_degrades_and_a_message_recovers() -> None:
    health = live(sse())
    health.tick(37.5)
    assert state_of(health) == "connected"
    health.tick(38.0)
    assert state_of(health) == "degraded"
    assert health.snapshot(38.0).transitions[-1].reason == "silent for 38 s"
    health.message(39.0)
    assert state_of(health) == "connected"


def test_a_keepalive_every_30_seconds_keeps_an_sse_connection_connected() -> None:
    health = live(sse())
    for second in range(1, 600):
        if second % 30 == 0:
            health.message(float(second))
        health.tick(float(second))
        assert state_of(health) == "connected"
    assert health.snapshot(600.0).band == "excellent"


def test_the_stale_threshold_counts_from_connection_not_from_an_old_message() -> None:
    health = live(sse())
    health.message(1.0)
    health.disconnected("reset", 2.0)
    health.connecting(3.0)
    health.connected(3.0)
    health.tick(40.0)  # 39 s after the message, 37 s after connecting
    assert state_of(health) == "connected"
    health.tick(41.0)
    assert state_of(health) == "degraded"


def test_a_low_score_degrades_and_hysteresis_needs_75_to_recover() -> None:
    # rtt_good 0, rtt_bad 1: the RTT component is 1 - p95. Error budget 4.
    health = websocket(rtt_good_s=0.0, rtt_bad_s=1.0, rtt_samples=1, error_budget=4)
    live(health)
    health.message(0.0)
    health.rtt(1.0, 0.0)
    assert (state_of(health), health.snapshot(0.0).score) == ("connected", 75)
    health.error("heartbeat_timeout", 1.0)  # 75 - 6.25
    assert (state_of(health), health.snapshot(1.0).score) == ("degraded", 69)
    health.rtt(0.9, 2.0)  # 68.75 + 2.5
    assert (state_of(health), health.snapshot(2.0).score) == ("degraded", 71)
    health.rtt(0.7, 3.0)  # 68.75 + 7.5
    assert (state_of(health), health.snapshot(3.0).score) == ("connected", 76)


def test_errors_leave_the_error_window_and_the_connection_recovers() -> None:
    health = websocket(rtt_good_s=0.0, rtt_bad_s=1.0, error_budget=2, error_window_s=60.0)
    live(health)
    health.rtt(1.0, 0.0)
    health.error("decode", 10.0)
    health.error("decode", 10.0)
    assert state_of(health) == "degraded"
    health.message(69.0)
    assert state_of(health) == "degraded"
    health.message(71.0)
    assert state_of(health) == "connected"
    assert health.snapshot(71.0).recent_errors == 0


def test_a_connection_may_degrade_the_moment_it_connects() -> None:
    health = websocket(error_budget=1)
    health.connecting(0.0)
    health.rtt(5.0, 0.0)
    health.error("http_500", 0.0)
    health.connected(0.0)
    assert state_of(health) == "degraded"


# --- the score ---------------------------------------------------------------------


def test_a_perfect_sse_connection_scores_100() -> None:
    health = live(sse())
    health.message(10.0)
    snapshot = health.snapshot(10.0)
    assert (snapshot.score, snapshot.band) == (100, "excellent")


def test_a_websocket_without_rtt_samples_yet_is_scored_on_the_rest() -> None:
    health = live(websocket())
    assert health.snapshot(1.0).score == 100


def test_sse_errors_weigh_30_points_across_the_budget() -> None:
    health = live(sse(error_budget=5))
    health.error("invalid_json", 1.0)
    health.error("invalid_json", 1.0)
    assert health.snapshot(2.0).score == 88


def test_freshness_falls_linearly_between_stale_and_silence_timeout() -> None:
    health = live(sse())
    # 60 s of silence: (60 - 37.5) / 37.5 = 0.6 lost of the 35-point weight.
    snapshot = health.snapshot(60.0)
    assert (snapshot.state, snapshot.score) == ("degraded", 79)
    assert health.snapshot(75.0).score == 65
    assert health.snapshot(500.0).score == 65


def test_rtt_p95_at_the_bad_threshold_costs_the_whole_rtt_weight() -> None:
    health = live(websocket(rtt_good_s=0.25, rtt_bad_s=2.0))
    for _ in range(19):
        health.rtt(0.01, 0.0)
    health.rtt(3.0, 0.0)
    snapshot = health.snapshot(0.0)
    assert snapshot.rtt_ms == pytest.approx(10.0)
    assert snapshot.rtt_p95_ms == pytest.approx(10.0)  # nearest rank: 19th of 20
    health.rtt(3.0, 0.0)
    assert health.snapshot(0.0).rtt_p95_ms == pytest.approx(3000.0)
    assert health.snapshot(0.0).score == 75


def test_a_reconnecting_sse_connection_with_a_good_past_is_poor_then_critical() -> None:
    health = live(sse(uptime_window_s=600.0, uptime_buckets=60))
    health.message(300.0)
    health.disconnected("keepalive timeout", 300.0)
    health.error("keepalive_timeout", 300.0)
    health.reconnecting(300.0, 1.0)
    assert health.snapshot(301.0).band == "poor"
    # Ten minutes later the window holds only downtime, and the error is old.
    assert health.snapshot(900.0).score == 30
    assert health.snapshot(900.0).band == "critical"


def test_a_failed_connection_scores_zero() -> None:
    health = live(sse())
    health.failed("http 401", 1.0)
    snapshot = health.snapshot(1.0)
    assert (snapshot.score, snapshot.band) == (0, "critical")


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (100, "excellent"),
        (90, "excellent"),
        (89, "good"),
        (70, "good"),
        (69, "poor"),
        (40, "poor"),
        (39, "critical"),
        (0, "critical"),
    ],
)
def test_bands_follow_the_contract_thresholds(score: int, expected: str) -> None:
    assert band(score) == expected


# --- uptime ----------------------------------------------------------------------------


def test_uptime_counts_from_the_first_connection_not_from_start_up() -> None:
    health = sse()
    health.connecting(0.0)
    health.connected(50.0)
    assert health.snapshot(60.0).uptime_pct == 100.0


def test_uptime_is_the_share_of_the_window_spent_live() -> None:
    health = sse(uptime_window_s=100.0, uptime_buckets=100)
    live(health)
    health.tick(60.0)  # degraded from 37.5 s on: still up
    health.disconnected("reset", 75.0)
    assert health.snapshot(100.0).uptime_pct == pytest.approx(75.0)


def test_uptime_slides_with_its_window() -> None:
    health = sse(uptime_window_s=100.0, uptime_buckets=10)
    live(health)
    health.disconnected("reset", 100.0)
    assert health.snapshot(100.0).uptime_pct == pytest.approx(100.0)
    assert health.snapshot(150.0).uptime_pct == pytest.approx(100 * 50 / 100, abs=10)
    assert health.snapshot(300.0).uptime_pct == 0.0
    health.connecting(300.0)
    health.connected(300.0)
    assert health.snapshot(350.0).uptime_pct == pytest.approx(50.0, abs=10)


def test_failed_and_reconnecting_count_as_downtime() -> None:
    health = sse(uptime_window_s=100.0, uptime_buckets=100)
    live(health)
    health.message(25.0)
    health.disconnected("reset", 25.0)
    health.reconnecting(25.0, 25.0)
    health.failed("circuit open", 50.0)
    assert health.snapshot(100.0).uptime_pct == pytest.approx(25.0)


# --- reports ---------------------------------------------------------------------------


def test_last_message_age_is_measured_from_the_latest_message() -> None:
    health = live(sse())
    health.message(3.0)
    health.message(7.0)
    assert health.snapshot(10.0).last_message_age_s == pytest.approx(3.0)


@pytest.mark.parametrize("sample", [-0.1, float("nan"), float("inf")])
def test_an_impossible_rtt_sample_is_refused(sample: float) -> None:
    with pytest.raises(ValueError, match="RTT sample"):
        live(websocket()).rtt(sample, 0.0)


def test_errors_are_counted_per_kind() -> None:
    health = sse()
    health.error("http_503", 0.0)
    health.error("http_503", 1.0)
    health.error("invalid_json", 2.0)
    snapshot = health.snapshot(3.0)
    assert dict(snapshot.errors) == {"http_503": 2, "invalid_json": 1}
    assert snapshot.recent_errors == 3


def test_time_going_backwards_is_taken_as_the_latest_time_seen() -> None:
    health = live(sse())
    health.message(10.0)
    health.message(5.0)
    snapshot = health.snapshot(8.0)
    assert snapshot.last_message_age_s == 0.0
    assert snapshot.state_since == 0.0


# --- bounds: every history floods to its capacity and no further -------------------


def test_rtt_samples_are_bounded_and_hold_the_most_recent() -> None:
    health = live(websocket(rtt_samples=16))
    for index in range(10_000):
        health.rtt(10.0 if index < 9_990 else 0.001, 0.0)
    stats = health.statistics()
    assert (stats.rtt_samples, stats.rtt_capacity) == (16, 16)
    assert health.snapshot(0.0).rtt_ms == pytest.approx(1.0)


def test_error_kinds_are_bounded_with_the_excess_counted_as_other() -> None:
    health = sse(error_kinds=8)
    for index in range(10_000):
        health.error(f"kind_{index}", float(index))
    errors = dict(health.snapshot(10_000.0).errors)
    assert len(errors) == 8
    assert errors[OTHER_ERRORS] == 10_000 - 7
    assert sum(errors.values()) == 10_000
    assert health.statistics().error_kinds == 8


def test_error_timestamps_are_bounded_under_a_burst() -> None:
    health = sse(error_times=32)
    for _ in range(10_000):
        health.error("decode", 1.0)
    stats = health.statistics()
    assert (stats.error_times, stats.error_times_capacity) == (32, 32)
    assert health.snapshot(1.0).recent_errors == 32


def test_transitions_are_bounded_and_hold_the_most_recent() -> None:
    health = sse(transitions=10)
    for cycle in range(5_000):
        now = float(cycle)
        health.connecting(now)
        health.connected(now)
        health.disconnected(f"cycle {cycle}", now)
    transitions = health.snapshot(5_000.0).transitions
    assert len(transitions) == 10
    assert transitions[-1].reason == "cycle 4999"
    assert health.statistics().transitions == 10


def test_uptime_buckets_are_bounded_over_a_long_flapping_run() -> None:
    health = sse(uptime_window_s=60.0, uptime_buckets=12)
    live(health)
    for second in range(1, 20_000):
        if second % 2:
            health.disconnected("flap", float(second))
        else:
            health.connecting(float(second))
            health.connected(float(second))
            health.message(float(second))
    stats = health.statistics()
    assert stats.uptime_buckets <= stats.uptime_buckets_capacity == 13  # one beyond the window
    assert health.snapshot(20_000.0).uptime_pct == pytest.approx(50.0, abs=5)


def test_a_week_long_gap_costs_no_more_work_than_the_window() -> None:
    health = live(sse(uptime_window_s=60.0, uptime_buckets=12))
    health.disconnected("reset", 1.0)
    health.tick(7 * 24 * 3600.0)
    assert health.statistics().uptime_buckets <= 13
    assert health.snapshot(7 * 24 * 3600.0).uptime_pct == 0.0


# --- construction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"silence_timeout_s": 0.0}, "silence_timeout_s must be positive"),
        ({"stale_after_s": 75.0}, "stale_after_s"),
        ({"stale_after_s": 0.0}, "stale_after_s"),
        ({"rtt_good_s": 2.0, "rtt_bad_s": 1.0}, "rtt_good_s"),
        ({"uptime_window_s": 0.0}, "windows"),
        ({"error_window_s": -1.0}, "windows"),
        ({"rtt_samples": 0}, "bounds"),
        ({"transitions": 0}, "bounds"),
        ({"uptime_buckets": 0}, "bounds"),
        ({"error_times": 0}, "bounds"),
        ({"error_budget": 0}, "bounds"),
        ({"error_kinds": 1}, "error_kinds"),
    ],
)
def test_settings_out_of_range_are_refused(kwargs: dict[str, float], message: str) -> None:
    settings: dict[str, float] = {"silence_timeout_s": 75.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        ConnectionHealth("x", "sse", now=0.0, **settings)  # type: ignore[arg-type]


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        ConnectionHealth("x", "grpc", now=0.0, silence_timeout_s=1.0)  # type: ignore[arg-type]


# --- serialisation and overall status ----------------------------------------------


def test_a_snapshot_serialises_to_the_contract_connection_object() -> None:
    health = live(websocket())
    health.message(1.0)
    health.rtt(0.05, 1.0)
    health.error("heartbeat_timeout", 1.0)
    document = health.snapshot(2.0).to_dict()
    contract = {
        "name",
        "kind",
        "state",
        "quality",
        "rtt_ms",
        "uptime_pct",
        "reconnects",
        "last_message_age_s",
    }
    assert contract <= document.keys()
    assert document["quality"] == {"score": 95, "band": "excellent"}  # one error in five
    assert document["name"] == "kills"
    assert document["kind"] == "websocket"
    assert document["state"] == "connected"
    assert document["rtt_ms"] == pytest.approx(50.0)
    assert document["uptime_pct"] == 100.0
    assert document["reconnects"] == 0
    assert document["last_message_age_s"] == pytest.approx(1.0)
    assert document["errors"] == {"heartbeat_timeout": 1}
    assert document["state_since"] == 0.0
    assert document["transitions"][-1] == {
        "from": "connecting",
        "to": "connected",
        "at": 0.0,
        "reason": "",
    }
    assert orjson.loads(orjson.dumps(document)) == document


def test_an_sse_snapshot_has_null_rtt() -> None:
    assert live(sse()).snapshot(1.0).to_dict()["rtt_ms"] is None


def snapshot_of(state: State, score: int = 100, kind: Kind = "sse") -> HealthSnapshot:
    return HealthSnapshot(
        name="x",
        kind=kind,
        state=state,
        score=score,
        band=band(score),
        rtt_ms=None,
        rtt_p95_ms=None,
        uptime_pct=100.0,
        reconnects=0,
        last_message_age_s=None,
        errors=(),
        recent_errors=0,
        state_since=0.0,
        state_age_s=0.0,
        transitions=(),
    )


@pytest.mark.parametrize(
    ("states", "status"),
    [
        ([], "pass"),
        (["connected"], "pass"),
        (["connected", "connected"], "pass"),
        (["connected", "degraded"], "warn"),
        (["connected", "reconnecting"], "warn"),
        (["connected", "connecting"], "warn"),
        (["connected", "disconnected"], "warn"),
        (["degraded"], "warn"),
        (["connected", "failed"], "fail"),
        (["reconnecting", "disconnected"], "fail"),
        (["connecting"], "fail"),
    ],
)
def test_overall_status_follows_the_worst_connection(states: list[State], status: str) -> None:
    assert overall(snapshot_of(state) for state in states) == status


def test_overall_warns_about_a_connected_connection_of_poor_quality() -> None:
    assert overall([snapshot_of("connected", 100), snapshot_of("connected", 50)]) == "warn"
