import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.protocol import Deduplicated
from realtime.event import Event, Priority, map_source
from realtime.flow import (
    Credits,
    FlowBuffer,
    PriorityRules,
    Transition,
    kill_deadlines,
    parse_priority,
)

CRITICAL, HIGH, NORMAL, LOW = Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW
MAP = map_source("demo")
TRACKED_SYSTEM = 31000005
TRACKED_PILOT = 2117000001
NOW = 1_800_000_000.0

_seqs = itertools.count(1)


@dataclass
class Tracked:
    systems: set[int] = field(default_factory=lambda: {TRACKED_SYSTEM})
    characters: set[int] = field(default_factory=lambda: {TRACKED_PILOT})

    def is_tracked_system(self, system_id: int) -> bool:
        return system_id in self.systems

    def is_tracked_character(self, character_id: int) -> bool:
        return character_id in self.characters


def make_event(
    type_: str = "add_system",
    priority: Priority = NORMAL,
    *,
    time: float = NOW,
    data: Mapping[str, Any] | None = None,
    source: str = MAP,
) -> Event:
    seq = next(_seqs)
    return Event(
        id=str(seq),
        source=source,
        type=type_,
        time=time,
        received_at=0,
        key=f"{source}:{seq}",
        priority=priority,
        data=data or {},
        seq=seq,
    )


def killmail(
    *,
    system_id: int = 30000142,
    victim: Any = 90000001,
    attackers: tuple[Any, ...] = (90000002,),
    preload: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "killmail_id": next(_seqs),
        "system_id": system_id,
        "victim": {"character_id": victim},
        "attackers": [{"character_id": attacker} for attacker in attackers],
    }
    if preload:
        data["preload"] = True
    return data


def assign(type_: str, data: Mapping[str, Any], rules: PriorityRules | None = None) -> Priority:
    return (rules or PriorityRules()).assign(make_event(type_, data=data), Tracked())


# --- priorities -----------------------------------------------------------


def test_rally_point_is_critical() -> None:
    assert assign("rally_point_added", {"rally_point_id": 1}) is CRITICAL


@pytest.mark.parametrize("type_", ["killmail", "map_kill"])
def test_kill_of_a_tracked_victim_is_critical(type_: str) -> None:
    assert assign(type_, killmail(victim=TRACKED_PILOT)) is CRITICAL


def test_kill_by_a_tracked_attacker_given_as_a_string_id_is_critical() -> None:
    data = killmail(attackers=(90000005, str(TRACKED_PILOT)))
    assert assign("killmail", data) is CRITICAL


def test_kill_in_a_tracked_system_is_high() -> None:
    assert assign("killmail", killmail(system_id=TRACKED_SYSTEM)) is HIGH


def test_map_kill_with_solar_system_id_in_a_tracked_system_is_high() -> None:
    data = killmail()
    del data["system_id"]
    data["solar_system_id"] = TRACKED_SYSTEM
    assert assign("map_kill", data) is HIGH


def test_preload_kill_is_low_even_in_a_tracked_system() -> None:
    assert assign("killmail", killmail(system_id=TRACKED_SYSTEM, preload=True)) is LOW


def test_preload_kill_involving_a_tracked_character_is_high() -> None:
    assert assign("killmail", killmail(attackers=(TRACKED_PILOT,), preload=True)) is HIGH


def test_live_kill_matching_nothing_tracked_is_normal() -> None:
    assert assign("killmail", killmail()) is NORMAL


@pytest.mark.parametrize(
    ("type_", "expected"),
    [
        ("kill_count_update", LOW),
        ("preload_complete", LOW),
        ("add_system", NORMAL),
        ("character_added", NORMAL),
        ("rally_point_removed", NORMAL),
        ("a_type_from_a_newer_server", NORMAL),
    ],
)
def test_priorities_by_type(type_: str, expected: Priority) -> None:
    assert assign(type_, {"system_id": TRACKED_SYSTEM}) is expected


def test_malformed_killmail_content_is_not_tracked_and_does_not_raise() -> None:
    data = {"victim": "nobody", "attackers": [{"character_id": True}, 7, None], "system_id": "x"}
    assert assign("killmail", data) is NORMAL


def test_overrides_from_config_replace_the_rules_for_their_type() -> None:
    rules = PriorityRules({"killmail": "High", "add_system": "low"})

    assert assign("killmail", killmail(victim=TRACKED_PILOT), rules) is HIGH
    assert assign("add_system", {}, rules) is LOW
    assert assign("rally_point_added", {}, rules) is CRITICAL


def test_override_with_an_unknown_priority_names_the_type() -> None:
    with pytest.raises(ValueError, match=r"'add_system'.*'urgent'"):
        PriorityRules({"add_system": "urgent"})


def test_priority_names_parse_case_insensitively() -> None:
    assert [parse_priority(name) for name in (" critical", "HIGH", "Normal", "low")] == list(
        Priority
    )


# --- the buffer -----------------------------------------------------------


def pressured(buffer: FlowBuffer) -> bool:
    # A function, so that mypy does not narrow the property between calls.
    return buffer.backpressure


def test_take_hands_out_the_most_urgent_first_and_fifo_within_a_priority() -> None:
    buffer = FlowBuffer(100, 80, 60, fair_share=None)
    offered = [make_event(priority=level) for level in (LOW, NORMAL, CRITICAL, HIGH, LOW, CRITICAL)]
    for event in offered:
        buffer.offer(event, NOW)

    taken = buffer.take(10, NOW)

    assert [event.priority for event in taken.events] == [
        CRITICAL,
        CRITICAL,
        HIGH,
        NORMAL,
        LOW,
        LOW,
    ]
    assert [event.seq for event in taken.events if event.priority is LOW] == [
        offered[0].seq,
        offered[4].seq,
    ]
    assert len(buffer) == 0


def test_take_reports_how_long_each_event_waited() -> None:
    buffer = FlowBuffer(100, 80, 60)
    buffer.offer(make_event(priority=LOW), NOW)
    buffer.offer(make_event(priority=CRITICAL), NOW + 0.25)

    taken = buffer.take(2, NOW + 1.0)

    assert [event.priority for event in taken.events] == [CRITICAL, LOW]
    assert taken.waited_s == (0.75, 1.0)


def test_take_hands_out_at_most_n() -> None:
    buffer = FlowBuffer(100, 80, 60)
    for _ in range(5):
        buffer.offer(make_event(), NOW)

    assert len(buffer.take(3, NOW).events) == 3
    assert len(buffer) == 2


def test_backpressure_is_raised_at_the_high_watermark_and_resolved_at_the_low_one() -> None:
    buffer = FlowBuffer(10, 8, 4)
    for step in range(7):
        buffer.offer(make_event(), NOW + step)
    assert not pressured(buffer)
    buffer.offer(make_event(), NOW + 7)
    assert pressured(buffer)

    buffer.take(3, NOW + 8)
    assert pressured(buffer), "hysteresis: 5 is above the low watermark"
    buffer.offer(make_event(), NOW + 9)
    buffer.take(1, NOW + 10)
    assert pressured(buffer)
    buffer.take(1, NOW + 11)
    assert not pressured(buffer)

    assert buffer.take_transitions() == [
        Transition(backpressure=True, at=NOW + 7, size=8),
        Transition(backpressure=False, at=NOW + 11, size=4),
    ]
    assert buffer.take_transitions() == []
    assert buffer.statistics().transitions == 2


def test_pending_transitions_are_bounded_and_all_are_counted() -> None:
    buffer = FlowBuffer(2, 2, 1, max_transitions=3)
    for step in range(10):
        buffer.offer(make_event(), float(step))
        buffer.offer(make_event(), float(step))
        buffer.take(2, float(step))

    transitions = buffer.take_transitions()
    assert len(transitions) == 3
    assert transitions[-1] == Transition(backpressure=False, at=9.0, size=0)
    assert buffer.statistics().transitions == 20


def test_full_buffer_sheds_the_least_urgent_priority_first() -> None:
    buffer = FlowBuffer(3, 3, 1)
    normal = make_event(priority=NORMAL)
    low = make_event(priority=LOW)
    buffer.offer(normal, NOW)
    buffer.offer(low, NOW)
    buffer.offer(make_event(priority=HIGH), NOW)

    assert buffer.offer(make_event(priority=HIGH), NOW) == [low]
    assert buffer.offer(make_event(priority=CRITICAL), NOW) == [normal]
    assert len(buffer) == 3


def test_full_buffer_sheds_the_oldest_event_within_a_priority() -> None:
    buffer = FlowBuffer(3, 3, 1)
    lows = [make_event(priority=LOW) for _ in range(3)]
    for event in lows:
        buffer.offer(event, NOW)

    newest = make_event(priority=LOW)
    assert buffer.offer(newest, NOW) == [lows[0]]
    assert [event.seq for event in buffer.take(3, NOW).events] == [
        lows[1].seq,
        lows[2].seq,
        newest.seq,
    ]


def test_offered_event_is_itself_shed_when_it_is_the_least_urgent() -> None:
    buffer = FlowBuffer(2, 2, 1)
    buffer.offer(make_event(priority=HIGH), NOW)
    buffer.offer(make_event(priority=NORMAL), NOW)

    low = make_event(priority=LOW)
    assert buffer.offer(low, NOW) == [low]


def test_critical_events_are_never_shed_the_buffer_grows_past_capacity_instead() -> None:
    buffer = FlowBuffer(3, 2, 1)
    for _ in range(3):
        buffer.offer(make_event(priority=CRITICAL), NOW)

    assert buffer.offer(make_event(priority=CRITICAL), NOW) == []
    high = make_event(priority=HIGH)
    assert buffer.offer(high, NOW) == [high]

    stats = buffer.statistics()
    assert (stats.size, stats.over_capacity, stats.max_size) == (4, 1, 4)
    assert stats.shed == {CRITICAL: 0, HIGH: 1, NORMAL: 0, LOW: 0}


def test_kill_older_than_its_deadline_is_set_aside_as_stale() -> None:
    buffer = FlowBuffer(100, 80, 60, kill_deadlines(3600.0))
    old_kill = make_event("killmail", CRITICAL, time=NOW - 3601.0)
    fresh_kill = make_event("map_kill", HIGH, time=NOW - 3599.0)
    old_map_change = make_event("add_system", NORMAL, time=NOW - 86400.0)
    for event in (old_kill, fresh_kill, old_map_change):
        buffer.offer(event, NOW)

    taken = buffer.take(2, NOW)

    assert taken.events == (fresh_kill, old_map_change)
    assert taken.stale == (old_kill,)
    assert buffer.statistics().stale == {CRITICAL: 1, HIGH: 0, NORMAL: 0, LOW: 0}


def test_stale_events_do_not_count_towards_n() -> None:
    buffer = FlowBuffer(100, 80, 60, {"killmail": 10.0})
    for _ in range(5):
        buffer.offer(make_event("killmail", LOW, time=NOW - 60.0), NOW)
    fresh = make_event("killmail", LOW, time=NOW)
    buffer.offer(fresh, NOW)

    taken = buffer.take(1, NOW)

    assert taken.events == (fresh,)
    assert len(taken.stale) == 5


def test_low_priority_gets_a_fair_share_while_not_under_backpressure() -> None:
    buffer = FlowBuffer(1000, 900, 100, fair_share=4)
    low = make_event(priority=LOW)
    buffer.offer(low, NOW)
    handed_out: list[Event] = []
    for step in range(8):
        buffer.offer(make_event(priority=CRITICAL), NOW + 1 + step)
        handed_out.extend(buffer.take(1, NOW + 1 + step).events)

    assert low in handed_out
    assert handed_out.index(low) == 3


def test_under_backpressure_order_is_strictly_by_priority() -> None:
    buffer = FlowBuffer(100, 10, 5, fair_share=2)
    low = make_event(priority=LOW)
    buffer.offer(low, NOW)
    for step in range(20):
        buffer.offer(make_event(priority=HIGH), NOW + step)
    assert pressured(buffer)

    taken = buffer.take(16, NOW + 30)

    assert low not in taken.events
    assert not pressured(buffer)
    assert low in buffer.take(100, NOW + 31).events


def test_statistics_count_every_event_by_priority() -> None:
    buffer = FlowBuffer(4, 3, 1, {"killmail": 60.0}, fair_share=None)
    for level in (CRITICAL, HIGH, LOW, LOW, NORMAL):
        buffer.offer(make_event(priority=level), NOW)
    buffer.offer(make_event("killmail", HIGH, time=NOW - 120.0), NOW)
    buffer.take(3, NOW)

    stats = buffer.statistics()
    assert stats.offered == {CRITICAL: 1, HIGH: 2, NORMAL: 1, LOW: 2}
    assert stats.shed == {CRITICAL: 0, HIGH: 0, NORMAL: 0, LOW: 2}
    assert stats.taken == {CRITICAL: 1, HIGH: 1, NORMAL: 1, LOW: 0}
    assert stats.stale == {CRITICAL: 0, HIGH: 1, NORMAL: 0, LOW: 0}
    assert stats.sizes == {CRITICAL: 0, HIGH: 0, NORMAL: 0, LOW: 0}
    assert (stats.size, stats.capacity, stats.high_watermark, stats.low_watermark) == (0, 4, 3, 1)
    assert (stats.max_size, stats.backpressure, stats.transitions) == (4, False, 2)


@pytest.mark.parametrize(
    ("capacity", "high", "low", "options"),
    [
        (0, 0, 0, {}),
        (10, 11, 5, {}),
        (10, 5, 5, {}),
        (10, 5, -1, {}),
        (10, 8, 4, {"fair_share": 1}),
        (10, 8, 4, {"max_transitions": 0}),
    ],
)
def test_out_of_range_bounds_are_refused(
    capacity: int, high: int, low: int, options: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match="must"):
        FlowBuffer(capacity, high, low, **options)  # type: ignore[arg-type]


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("offer"),
            st.sampled_from(list(Priority)),
            st.integers(min_value=0, max_value=120),  # event age, seconds
        ),
        st.tuples(st.just("take"), st.integers(min_value=0, max_value=6), st.just(0)),
    ),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(
    operations=operations,
    capacity=st.integers(min_value=1, max_value=12),
    fair_share=st.one_of(st.none(), st.integers(min_value=2, max_value=5)),
)
def test_every_offered_event_is_taken_shed_or_stale_and_no_critical_is_ever_shed(
    operations: list[tuple[str, Any, int]], capacity: int, fair_share: int | None
) -> None:
    buffer = FlowBuffer(
        capacity, capacity, capacity // 2, {"killmail": 60.0}, fair_share=fair_share
    )
    offered: list[Event] = []
    taken: list[Event] = []
    shed: list[Event] = []
    stale: list[Event] = []
    now = NOW
    for op, argument, age in operations:
        now += 1.0
        if op == "offer":
            event = make_event("killmail", argument, time=now - age)
            offered.append(event)
            shed.extend(buffer.offer(event, now))
        else:
            result = buffer.take(argument, now)
            assert len(result.events) <= argument
            assert all(waited >= 0 for waited in result.waited_s)
            taken.extend(result.events)
            stale.extend(result.stale)
        held_critical = buffer.statistics().sizes[CRITICAL]
        assert len(buffer) <= max(capacity, held_critical)
    while len(buffer):
        result = buffer.take(3, now)
        taken.extend(result.events)
        stale.extend(result.stale)

    outcomes = [event.committed_seq for event in taken + shed + stale]
    assert sorted(outcomes) == [event.committed_seq for event in offered]
    assert all(event.priority is not CRITICAL for event in shed)
    assert all(now - event.time > 60.0 for event in stale)
    for level in Priority:
        seqs = [event.committed_seq for event in taken if event.priority is level]
        assert seqs == sorted(seqs), "FIFO within a priority"


# --- credits --------------------------------------------------------------


def test_credits_account_what_was_granted_and_delivered() -> None:
    credits = Credits(100)
    credits.grant(60)
    assert (credits.outstanding, credits.available) == (60, 40)

    credits.consume(25)

    assert (credits.outstanding, credits.available) == (35, 65)
    stats = credits.statistics()
    assert (stats.granted, stats.consumed, stats.overdelivered) == (60, 25, 0)


@pytest.mark.parametrize("n", [0, -1, 41])
def test_granting_nothing_or_beyond_the_limit_is_refused(n: int) -> None:
    credits = Credits(100)
    credits.grant(60)
    with pytest.raises(ValueError, match="cannot grant"):
        credits.grant(n)


def test_refill_asks_for_more_only_in_batches_of_at_least_min_grant() -> None:
    credits = Credits(512, min_grant=256)
    assert credits.refill() == 512
    credits.consume(255)
    assert credits.refill() == 0
    credits.consume(1)
    assert credits.refill() == 256
    assert credits.outstanding == 512


def test_flow_control_accounts_the_journal_credit_by_what_dedup_consumed() -> None:
    journal_credit = Credits(10, min_grant=10)
    assert journal_credit.refill() == 10
    # The journal delivers 10 events; dedup drops 4 duplicates and forwards 6.
    delivered = Deduplicated(events=tuple(make_event() for _ in range(6)), consumed=10)

    journal_credit.consume(delivered.consumed)

    assert journal_credit.outstanding == 0
    assert journal_credit.refill() == 10


def test_overdelivery_is_counted_and_never_makes_the_account_negative() -> None:
    credits = Credits(10)
    credits.grant(3)

    credits.consume(5)

    assert (credits.outstanding, credits.available) == (0, 10)
    assert credits.statistics().overdelivered == 2
    with pytest.raises(ValueError, match="cannot consume"):
        credits.consume(-1)


def test_reset_voids_outstanding_credit_after_a_resync() -> None:
    credits = Credits(10)
    credits.grant(10)

    credits.reset()

    assert (credits.outstanding, credits.available) == (0, 10)
    assert credits.statistics().resets == 1


@pytest.mark.parametrize(("limit", "min_grant"), [(0, 1), (10, 0), (10, 11)])
def test_credit_bounds_out_of_range_are_refused(limit: int, min_grant: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Credits(limit, min_grant=min_grant)


def test_kill_deadlines_cover_both_killmail_types() -> None:
    assert kill_deadlines(3600.0) == {"killmail": 3600.0, "map_kill": 3600.0}
