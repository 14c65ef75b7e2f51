from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.event import Event, Priority
from realtime.tracking import (
    Change,
    TrackedState,
    characters_from_rest,
    systems_from_rest,
)
from tests.support import events

J1, J2, J3 = 31000001, 31000002, 31000003
PILOT_A, PILOT_B = 2117000001, 2117000002


def map_event(slug: str, kind: str, payload: dict[str, Any], sse_id: str = "01J") -> Event:
    return events.map_event(kind, payload, sse_id, slug=slug, at=0.0, seq=1)


def test_bootstrap_tracks_systems_and_characters_and_reports_what_was_added() -> None:
    state = TrackedState()
    change = state.bootstrap("a", {J1: "J1", J2: "J2"}, {PILOT_A: "Alice"})
    assert change == Change(
        systems_added=frozenset({J1, J2}), characters_added=frozenset({PILOT_A})
    )
    assert state.is_tracked_system(J1)
    assert state.is_tracked_character(PILOT_A)
    assert state.system_name(J2) == "J2"
    assert state.character_name(PILOT_A) == "Alice"
    assert state.subscription() == (frozenset({J1, J2}), frozenset({PILOT_A}))


def test_bootstrap_replaces_only_that_maps_sets() -> None:
    state = TrackedState()
    state.bootstrap("a", {J1: "J1", J2: "J2"}, {PILOT_A: "Alice"})
    state.bootstrap("b", {J2: "J2"}, {})
    change = state.bootstrap("a", {J3: "J3"}, {})
    assert change == Change(
        systems_added=frozenset({J3}),
        systems_removed=frozenset({J1}),
        characters_removed=frozenset({PILOT_A}),
    )
    assert state.systems() == {J2: "J2", J3: "J3"}


def test_same_bootstrap_twice_is_no_change() -> None:
    state = TrackedState()
    state.bootstrap("a", {J1: "J1"}, {PILOT_A: "Alice"})
    assert state.bootstrap("a", {J1: "J1"}, {PILOT_A: "Alice"}) is None


def test_system_tracked_by_two_maps_stays_tracked_until_both_remove_it() -> None:
    state = TrackedState()
    assert state.apply(map_event("a", "add_system", {"solar_system_id": J1})) == Change(
        systems_added=frozenset({J1})
    )
    assert state.apply(map_event("b", "add_system", {"solar_system_id": J1})) is None
    assert state.apply(map_event("a", "deleted_system", {"solar_system_id": J1})) is None
    assert state.is_tracked_system(J1)
    assert state.apply(map_event("b", "deleted_system", {"solar_system_id": J1})) == Change(
        systems_removed=frozenset({J1})
    )
    assert not state.is_tracked_system(J1)


def test_removing_an_unknown_system_changes_nothing() -> None:
    state = TrackedState()
    assert state.apply(map_event("a", "deleted_system", {"solar_system_id": J1})) is None
    assert state.statistics().events_ignored == 1


def test_rename_changes_the_name_but_not_the_subscription() -> None:
    state = TrackedState()
    state.apply(map_event("a", "add_system", {"solar_system_id": J1, "name": "J1"}))
    renamed = map_event("a", "system_renamed", {"solar_system_id": J1, "name": "Home"})
    assert state.apply(renamed) is None
    assert state.system_name(J1) == "Home"
    assert state.statistics().events_applied == 2


def test_characters_are_keyed_by_eve_id_given_as_string_or_integer() -> None:
    state = TrackedState()
    added = state.apply(
        map_event("a", "character_added", {"character_eve_id": str(PILOT_A), "name": "Alice"})
    )
    assert added == Change(characters_added=frozenset({PILOT_A}))
    state.apply(map_event("a", "character_added", {"eve_id": PILOT_B, "name": "Bob"}))
    assert state.characters() == {PILOT_A: "Alice", PILOT_B: "Bob"}
    removed = state.apply(map_event("a", "character_removed", {"eve_id": str(PILOT_A)}))
    assert removed == Change(characters_removed=frozenset({PILOT_A}))


def test_character_update_renames_a_tracked_character_and_never_starts_tracking() -> None:
    state = TrackedState()
    state.apply(map_event("a", "character_added", {"eve_id": PILOT_A, "name": "Alice"}))
    assert state.apply(map_event("a", "character_updated", {"eve_id": PILOT_A, "name": "Al"})) is (
        None
    )
    assert state.character_name(PILOT_A) == "Al"
    state.apply(map_event("a", "character_updated", {"eve_id": PILOT_B, "name": "Bob"}))
    assert not state.is_tracked_character(PILOT_B)


def test_events_of_other_sources_and_types_are_ignored() -> None:
    state = TrackedState()
    kill = Event("1", "wanderer-kills", "killmail", 0.0, 0, "killmail:1", Priority.NORMAL, {})
    assert state.apply(kill) is None
    assert state.apply(map_event("a", "connection_added", {"solar_system_id": J1})) is None
    assert state.apply(map_event("a", "add_system", {"solar_system_id": "J1"})) is None
    assert state.statistics().events_ignored == 3


def test_an_sse_envelope_as_data_is_unwrapped() -> None:
    state = TrackedState()
    envelope = {"id": "01J", "type": "add_system", "payload": {"solar_system_id": J1}}
    assert state.apply(map_event("a", "add_system", envelope)) == Change(
        systems_added=frozenset({J1})
    )


def test_ids_the_kill_feed_would_refuse_are_never_tracked() -> None:
    state = TrackedState()
    state.bootstrap("a", {0: "zero", 60_000_000: "too big", J1: "J1"}, {3_000_000: "NPC"})
    assert state.subscription() == (frozenset({J1}), frozenset())
    assert state.statistics().refused_invalid == 3


def test_flooding_systems_and_characters_stops_at_the_bounds() -> None:
    state = TrackedState(max_systems=5, max_characters=3)
    state.bootstrap(
        "a",
        {J1 + i: f"J{i}" for i in range(100)},
        {PILOT_A + i: f"P{i}" for i in range(100)},
    )
    for i in range(100, 200):
        state.apply(map_event("b", "add_system", {"solar_system_id": J1 + i}))
    stats = state.statistics()
    assert (stats.systems, stats.max_systems) == (5, 5)
    assert (stats.characters, stats.max_characters) == (3, 3)
    assert stats.refused_full == 95 + 97 + 100
    systems, characters = state.subscription()
    assert len(systems) == 5
    assert len(characters) == 3


def test_a_full_state_still_accepts_a_second_map_of_a_tracked_system() -> None:
    state = TrackedState(max_systems=1)
    state.apply(map_event("a", "add_system", {"solar_system_id": J1}))
    state.apply(map_event("b", "add_system", {"solar_system_id": J1}))
    state.apply(map_event("a", "deleted_system", {"solar_system_id": J1}))
    assert state.is_tracked_system(J1)


def test_maps_beyond_the_bound_are_refused() -> None:
    state = TrackedState(max_maps=2)
    for slug in ("a", "b", "c"):
        state.apply(map_event(slug, "add_system", {"solar_system_id": J1}))
    assert state.bootstrap("d", {J2: "J2"}, {}) is None
    stats = state.statistics()
    assert (stats.maps, stats.refused_maps) == (2, 2)
    assert not state.is_tracked_system(J2)


def test_rest_bodies_give_systems_and_characters_by_eve_id() -> None:
    systems = systems_from_rest(
        {
            "data": {
                "systems": [
                    {"solar_system_id": J1, "name": "Home", "original_name": "J100001"},
                    {"solar_system_id": J2, "original_name": "J100002"},
                    {"name": "no id"},
                ],
                "connections": [],
            }
        }
    )
    assert systems == {J1: "Home", J2: "J100002"}
    characters = characters_from_rest(
        {
            "data": [
                {
                    "id": "x",
                    "character_id": "0b8f2c61-uuid",
                    "tracked": True,
                    "character": {"eve_id": str(PILOT_A), "name": "Alice"},
                },
                {"tracked": False, "character": {"eve_id": str(PILOT_B), "name": "Bob"}},
                {"tracked": True, "character": {"eve_id": "not a number"}},
            ]
        }
    )
    assert characters == {PILOT_A: "Alice"}
    assert systems_from_rest({"error": "x"}) == {}
    assert characters_from_rest({"data": {"unexpected": 1}}) == {}


operations = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["add_system", "deleted_system"]),
        st.integers(min_value=J1, max_value=J1 + 6),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(operations)
def test_the_union_and_its_changes_follow_a_per_map_model(
    ops: list[tuple[str, str, int]],
) -> None:
    state = TrackedState(max_systems=4)
    model: dict[str, set[int]] = {}
    subscribed: set[int] = set()
    for slug, kind, system_id in ops:
        union = set().union(*model.values())
        if kind == "add_system" and (system_id in union or len(union) < 4):
            model.setdefault(slug, set()).add(system_id)
        elif kind == "deleted_system":
            model.get(slug, set()).discard(system_id)
        change = state.apply(map_event(slug, kind, {"solar_system_id": system_id}))
        if change is not None:
            subscribed |= change.systems_added
            subscribed -= change.systems_removed
        expected = set().union(*model.values())
        assert state.subscription()[0] == expected
        assert subscribed == expected
        assert len(expected) <= 4
