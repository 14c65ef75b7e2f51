from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from realtime.config import KillNotifyConfig, MapNotifyConfig
from realtime.event import KILLS_SOURCE, Event, Priority, format_time
from realtime.notifications import (
    CharacterDetails,
    Decision,
    KillDetails,
    Notification,
    NotificationKind,
    RallyPointDetails,
    SkipReason,
    SystemDetails,
    kill_notification,
    map_notification,
)
from realtime.tracking import TrackedState
from tests.support import events

NOW = 1_800_000_000.0
HOME, KSPACE = 31000005, 30000142
VICTIM, SHOOTER, FRIEND, STRANGER = 2117000001, 2117000002, 2117000003, 2117000099
MAX_AGE = 3600.0
ALL_ON = KillNotifyConfig()


def killmail(
    *,
    killmail_id: int = 123456789,
    system_id: int = KSPACE,
    victim: int | None = STRANGER,
    attackers: tuple[int | None, ...] = (STRANGER + 1,),
    age_s: float = 60.0,
    value: float = 12_500_000.0,
) -> dict[str, Any]:
    return {
        "killmail_id": killmail_id,
        "kill_time": format_time(NOW - age_s),
        "system_id": system_id,
        "victim": {
            "character_id": victim,
            "corporation_id": 98000001,
            "ship_type_id": 587,
            "character_name": "Victim Pilot",
            "corporation_name": "Victim Corp",
            "ship_name": "Rifter",
        },
        "attackers": [
            {
                "character_id": attacker,
                "ship_type_id": 11993,
                "damage_done": 100 * (index + 1),
                "final_blow": index == 0,
                "character_name": f"Attacker {index}",
                "ship_name": "Cerberus",
            }
            for index, attacker in enumerate(attackers)
        ],
        "zkb": {"totalValue": value, "hash": "0f1e"},
        "attacker_count": len(attackers),
    }


def kill_event(data: dict[str, Any], *, kind: str = "killmail", source: str = "") -> Event:
    """Seen a minute before ``NOW``, journaled as seq 42."""
    return events.kill_event(data, at=NOW - 60, seq=42, kind=kind, source=source or KILLS_SOURCE)


def decide(
    data: dict[str, Any], tracked: TrackedState, config: KillNotifyConfig = ALL_ON
) -> Notification | Decision:
    return kill_notification(kill_event(data), tracked, config, MAX_AGE, NOW)


@pytest.fixture
def tracked() -> TrackedState:
    state = TrackedState()
    state.bootstrap("home", {HOME: "J100005"}, {VICTIM: "Tracked Victim", SHOOTER: "Our Shooter"})
    return state


def notified(result: Notification | Decision) -> KillDetails:
    assert isinstance(result, Notification), result
    assert isinstance(result.details, KillDetails)
    return result.details


def skipped(result: Notification | Decision) -> SkipReason:
    assert isinstance(result, Decision), result
    return result.reason


def test_kill_in_a_tracked_system_is_notified(tracked: TrackedState) -> None:
    result = decide(killmail(system_id=HOME), tracked)
    details = notified(result)
    assert details.tracked_system
    assert details.system_name == "J100005"
    assert not details.tracked_pilots
    assert isinstance(result, Notification)
    assert result.key == "kill:123456789"
    assert result.kind is NotificationKind.KILL
    assert result.seq == 42
    assert result.title == "Rifter destroyed in J100005"


def test_kill_of_a_tracked_victim_anywhere_is_a_high_priority_loss(
    tracked: TrackedState,
) -> None:
    result = decide(killmail(victim=VICTIM), tracked)
    details = notified(result)
    assert details.victim_tracked
    assert [pilot.character_id for pilot in details.tracked_pilots] == [VICTIM]
    assert isinstance(result, Notification)
    assert result.priority is Priority.HIGH


def test_tracked_attacker_in_an_untracked_system_is_notified(tracked: TrackedState) -> None:
    data = killmail(attackers=(STRANGER + 1, STRANGER + 2, SHOOTER))
    details = notified(decide(data, tracked))
    assert not details.tracked_system
    assert not details.victim_tracked
    assert [pilot.name for pilot in details.tracked_pilots] == ["Attacker 2"]
    assert details.attacker_count == 3


def test_untracked_kill_is_not_notified(tracked: TrackedState) -> None:
    assert skipped(decide(killmail(), tracked)) is SkipReason.UNTRACKED


def test_kill_older_than_the_max_age_is_not_notified(tracked: TrackedState) -> None:
    assert skipped(decide(killmail(system_id=HOME, age_s=MAX_AGE + 1), tracked)) is (
        SkipReason.TOO_OLD
    )
    notified(decide(killmail(system_id=HOME, age_s=MAX_AGE), tracked))
    notified(decide(killmail(system_id=HOME, age_s=-120), tracked))


def test_an_unreadable_kill_time_falls_back_to_the_event_time(tracked: TrackedState) -> None:
    data = killmail(system_id=HOME) | {"kill_time": "yesterday"}
    assert notified(decide(data, tracked)).kill_time == NOW - 60


def test_preload_kill_is_decided_like_a_live_one_with_the_same_key(
    tracked: TrackedState,
) -> None:
    data = killmail(system_id=HOME)
    live = decide(data, tracked)
    replayed = decide(data | {"preload": True}, tracked)
    assert isinstance(live, Notification)
    assert isinstance(replayed, Notification)
    assert live.key == replayed.key


def test_map_kill_from_a_map_is_decided_with_the_same_key(tracked: TrackedState) -> None:
    data = killmail()
    del data["system_id"]
    data["solar_system_id"] = HOME
    event = kill_event(data, kind="map_kill", source="map:home")
    result = kill_notification(event, tracked, ALL_ON, MAX_AGE, NOW)
    assert isinstance(result, Notification)
    assert result.key == "kill:123456789"


def test_min_value_filter_uses_the_zkillboard_total(tracked: TrackedState) -> None:
    config = KillNotifyConfig(min_value_isk=100_000_000)
    cheap = killmail(system_id=HOME, value=99_999_999)
    assert skipped(decide(cheap, tracked, config)) is SkipReason.BELOW_MIN_VALUE
    notified(decide(killmail(system_id=HOME, value=100_000_000), tracked, config))
    no_zkb = killmail(system_id=HOME)
    del no_zkb["zkb"]
    assert skipped(decide(no_zkb, tracked, config)) is SkipReason.BELOW_MIN_VALUE


def test_wormhole_only_skips_known_space(tracked: TrackedState) -> None:
    config = KillNotifyConfig(wormhole_only=True)
    assert skipped(decide(killmail(victim=VICTIM), tracked, config)) is SkipReason.NOT_WORMHOLE
    notified(decide(killmail(system_id=HOME), tracked, config))
    notified(decide(killmail(system_id=31999999, victim=VICTIM), tracked, config))
    assert skipped(decide(killmail(system_id=32000000, victim=VICTIM), tracked, config)) is (
        SkipReason.NOT_WORMHOLE
    )


def test_excluded_system_is_skipped_even_with_tracked_pilots(tracked: TrackedState) -> None:
    config = KillNotifyConfig(exclude_systems=(HOME,))
    data = killmail(system_id=HOME, victim=VICTIM)
    assert skipped(decide(data, tracked, config)) is SkipReason.EXCLUDED_SYSTEM


def test_excluded_characters_do_not_make_a_kill_relevant(tracked: TrackedState) -> None:
    config = KillNotifyConfig(exclude_characters=(SHOOTER, VICTIM))
    only_excluded = killmail(attackers=(SHOOTER,))
    assert skipped(decide(only_excluded, tracked, config)) is SkipReason.EXCLUDED_CHARACTER
    excluded_victim = killmail(system_id=HOME, victim=VICTIM)
    assert skipped(decide(excluded_victim, tracked, config)) is SkipReason.EXCLUDED_CHARACTER
    tracked.bootstrap("other", {}, {FRIEND: "Friend"})
    mixed = notified(decide(killmail(attackers=(SHOOTER, FRIEND)), tracked, config))
    assert [pilot.character_id for pilot in mixed.tracked_pilots] == [FRIEND]


def test_disabled_kills_and_other_events_are_skipped_with_a_reason(
    tracked: TrackedState,
) -> None:
    disabled = KillNotifyConfig(enabled=False)
    assert skipped(decide(killmail(system_id=HOME), tracked, disabled)) is SkipReason.DISABLED
    other = kill_event({"system_id": HOME}, kind="kill_count_update")
    assert skipped(kill_notification(other, tracked, ALL_ON, MAX_AGE, NOW)) is (
        SkipReason.NOT_A_KILL
    )
    no_system = killmail()
    del no_system["system_id"]
    assert skipped(decide(no_system, tracked)) is SkipReason.MALFORMED
    assert skipped(decide(killmail() | {"killmail_id": "x"}, tracked)) is SkipReason.MALFORMED


def test_kill_of_a_billion_isk_is_high_priority(tracked: TrackedState) -> None:
    cheap = decide(killmail(system_id=HOME, value=999_999_999), tracked)
    costly = decide(killmail(system_id=HOME, value=1_000_000_000), tracked)
    assert isinstance(cheap, Notification)
    assert isinstance(costly, Notification)
    assert (cheap.priority, costly.priority) == (Priority.NORMAL, Priority.HIGH)


def test_final_blow_is_the_flagged_attacker_else_the_hardest_hitter(
    tracked: TrackedState,
) -> None:
    data = killmail(system_id=HOME, attackers=(STRANGER + 1, STRANGER + 2, STRANGER + 3))
    details = notified(decide(data, tracked))
    assert details.final_blow is not None
    assert details.final_blow.character_id == STRANGER + 1
    for attacker in data["attackers"]:
        attacker["final_blow"] = False
    details = notified(decide(data, tracked))
    assert details.final_blow is not None
    assert details.final_blow.character_id == STRANGER + 3
    details = notified(decide(killmail(system_id=HOME, attackers=()), tracked))
    assert (details.final_blow, details.attacker_count) == (None, 0)


def test_a_missing_victim_name_is_taken_from_the_tracked_characters(
    tracked: TrackedState,
) -> None:
    data = killmail(victim=VICTIM)
    del data["victim"]["character_name"]
    assert notified(decide(data, tracked)).victim.name == "Tracked Victim"


# -- map notifications ----------------------------------------------------------


def map_event(kind: str, payload: dict[str, Any], *, slug: str = "home") -> Event:
    """Happened at ``NOW``, journaled as seq 7 (keyed on map ``home`` whatever ``slug``)."""
    sse_id = "01JDZ3J9Q5V8K2M4N6P8R0T2W4"
    return events.map_event(
        kind, payload, sse_id, slug=slug, at=NOW, seq=7, key=f"map:home:{sse_id}"
    )


SYSTEM_ADDED = ("add_system", {"solar_system_id": HOME, "name": "J100005"})
CHARACTER_ADDED = ("character_added", {"character_eve_id": str(FRIEND), "name": "Friend"})
CHARACTER_REMOVED = ("character_removed", {"eve_id": FRIEND, "name": "Friend"})
RALLY = (
    "rally_point_added",
    {
        "rally_point_id": "rp-1",
        "solar_system_id": HOME,
        "system_name": "J100005",
        "character_name": "Fleet Boss",
        "character_eve_id": str(FRIEND),
        "message": "Form up on me",
        "created_at": "2026-11-27T12:00:00Z",
    },
)


def test_system_added_is_notified_with_a_key_of_map_system_and_sse_id(
    tracked: TrackedState,
) -> None:
    result = map_notification(map_event(*SYSTEM_ADDED), tracked, MapNotifyConfig())
    assert result is not None
    assert result.key == f"system:home:{HOME}:01JDZ3J9Q5V8K2M4N6P8R0T2W4"
    assert result.kind is NotificationKind.SYSTEM_ADDED
    assert result.details == SystemDetails(slug="home", system_id=HOME, name="J100005")
    assert result.seq == 7


def test_character_added_and_removed_are_notified_with_distinct_keys(
    tracked: TrackedState,
) -> None:
    added = map_notification(map_event(*CHARACTER_ADDED), tracked, MapNotifyConfig())
    removed = map_notification(map_event(*CHARACTER_REMOVED), tracked, MapNotifyConfig())
    assert added is not None
    assert removed is not None
    assert added.key == f"character:home:{FRIEND}:added:01JDZ3J9Q5V8K2M4N6P8R0T2W4"
    assert removed.key == f"character:home:{FRIEND}:removed:01JDZ3J9Q5V8K2M4N6P8R0T2W4"
    assert (added.kind, removed.kind) == (
        NotificationKind.CHARACTER_ADDED,
        NotificationKind.CHARACTER_REMOVED,
    )
    assert isinstance(added.details, CharacterDetails)
    assert added.details.name == "Friend"
    assert added.priority is Priority.LOW


def test_rally_point_is_notified_with_its_message(tracked: TrackedState) -> None:
    result = map_notification(map_event(*RALLY), tracked, MapNotifyConfig())
    assert result is not None
    assert result.key == "rally:home:rp-1"
    assert result.priority is Priority.HIGH
    assert isinstance(result.details, RallyPointDetails)
    assert result.details.message == "Form up on me"
    assert result.details.character_id == FRIEND


@pytest.mark.parametrize(
    ("event", "switch"),
    [
        (SYSTEM_ADDED, "system_added"),
        (CHARACTER_ADDED, "character_added"),
        (CHARACTER_REMOVED, "character_removed"),
        (RALLY, "rally_point_added"),
    ],
)
def test_each_map_notification_can_be_switched_off(
    tracked: TrackedState, event: tuple[str, dict[str, Any]], switch: str
) -> None:
    on = MapNotifyConfig()
    off = dataclasses.replace(on, **{switch: False})
    assert map_notification(map_event(*event), tracked, on) is not None
    assert map_notification(map_event(*event), tracked, off) is None


def test_other_map_events_and_other_sources_give_no_notification(
    tracked: TrackedState,
) -> None:
    config = MapNotifyConfig()
    assert map_notification(map_event("connection_added", {}), tracked, config) is None
    assert map_notification(map_event("add_system", {"name": "no id"}), tracked, config) is None
    assert map_notification(map_event("character_added", {"name": "x"}), tracked, config) is None
    assert (
        map_notification(map_event("rally_point_added", {"message": "x"}), tracked, config) is None
    )
    not_a_map = dataclasses.replace(map_event(*SYSTEM_ADDED), source="wanderer-kills")
    assert map_notification(not_a_map, tracked, config) is None


def test_names_missing_from_map_events_come_from_the_tracked_state(
    tracked: TrackedState,
) -> None:
    config = MapNotifyConfig()
    system = map_notification(map_event("add_system", {"solar_system_id": HOME}), tracked, config)
    removed = map_notification(map_event("character_removed", {"eve_id": SHOOTER}), tracked, config)
    rally = map_notification(
        map_event("rally_point_added", {"rally_point_id": 9, "solar_system_id": HOME}),
        tracked,
        config,
    )
    assert system is not None
    assert isinstance(system.details, SystemDetails)
    assert system.details.name == "J100005"
    assert removed is not None
    assert isinstance(removed.details, CharacterDetails)
    assert removed.details.name == "Our Shooter"
    assert rally is not None
    assert rally.key == "rally:home:9"
    assert isinstance(rally.details, RallyPointDetails)
    assert rally.details.system_name == "J100005"


def test_kill_outside_tracked_systems_is_titled_with_the_feeds_solar_system_name(
    tracked: TrackedState,
) -> None:
    data = killmail(victim=VICTIM) | {"solar_system_name": "Jita"}
    result = decide(data, tracked)
    assert notified(result).system_name == "Jita"
    assert isinstance(result, Notification)
    assert result.title == "Rifter destroyed in Jita"


def test_kill_details_name_top_damage_only_when_it_is_not_the_final_blow(
    tracked: TrackedState,
) -> None:
    # killmail(): attacker 0 has the final blow, damage grows with the index
    fleet = notified(decide(killmail(system_id=HOME, attackers=(11, 12, 13)), tracked))
    assert fleet.final_blow is not None
    assert fleet.final_blow.name == "Attacker 0"
    assert fleet.top_damage is not None
    assert fleet.top_damage.name == "Attacker 2"
    assert not fleet.solo
    solo = notified(decide(killmail(system_id=HOME), tracked))
    assert solo.solo
    assert solo.top_damage is None


def test_kill_details_carry_the_feeds_tickers_and_older_name_fields(
    tracked: TrackedState,
) -> None:
    data = killmail(system_id=HOME)
    data["victim"] = {"character_id": STRANGER, "victim_name": "Old Style", "ship_name": "Rifter",
                      "corporation_ticker": "OLD", "alliance_ticker": "ALLY"}  # fmt: skip
    victim = notified(decide(data, tracked)).victim
    assert (victim.name, victim.corporation_ticker, victim.alliance_ticker) == (
        "Old Style",
        "OLD",
        "ALLY",
    )


def test_a_kill_outside_the_chain_takes_region_and_class_from_the_static_info(
    tracked: TrackedState,
) -> None:
    from realtime.static_info import StaticInfoView, SystemStaticInfo

    static = StaticInfoView(
        {KSPACE: SystemStaticInfo(KSPACE, "Jita", region_name="The Forge", security=0.9459)}
    )
    result = kill_notification(
        kill_event(killmail(victim=VICTIM)), tracked, ALL_ON, MAX_AGE, NOW, static=static
    )
    details = notified(result)
    assert (details.system_name, details.region_name, details.system_label) == (
        "Jita",
        "The Forge",
        "High-sec 0.9",
    )


def test_map_notifications_name_their_map(tracked: TrackedState) -> None:
    event = map_event("add_system", {"solar_system_id": HOME, "name": "J100005"})
    result = map_notification(event, tracked, MapNotifyConfig())
    assert result is not None
    assert result.maps == ("home",)
