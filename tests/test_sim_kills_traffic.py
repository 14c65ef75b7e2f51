"""The seeded traffic generator: determinism, the wanderer-kills shape, realistic sizes."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from simulator.traffic import (
    CHARACTER_IDS,
    KSPACE_SYSTEMS,
    MAX_TOTAL_VALUE,
    MIN_TOTAL_VALUE,
    SHIP_TYPES,
    WORMHOLE_SYSTEMS,
    Schedule,
    TrafficGenerator,
    system_name,
)

NOW = 1_800_000_000.0
ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ISO_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ZKB_KEYS = {
    "locationID", "hash", "totalValue", "fittedValue", "droppedValue", "destroyedValue",
    "points", "npc", "solo", "awox", "labels",
}  # fmt: skip


def kills(seed: int, n: int, **kwargs: Any) -> list[dict[str, Any]]:
    generator = TrafficGenerator(seed, **kwargs)
    return [generator.killmail(NOW + i) for i in range(n)]


def unix(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_same_seed_gives_the_same_traffic_byte_for_byte() -> None:
    first, second = TrafficGenerator(11), TrafficGenerator(11)
    for generator in (first, second):
        generator.burst(7, NOW)
    assert orjson.dumps(kills(11, 50)) == orjson.dumps(kills(11, 50))
    assert [first.map_activity(NOW) for _ in range(40)] == [
        second.map_activity(NOW) for _ in range(40)
    ]


def test_another_seed_gives_other_traffic() -> None:
    assert orjson.dumps(kills(11, 5)) != orjson.dumps(kills(12, 5))


def test_killmail_has_the_wanderer_kills_shape() -> None:
    ship_ids = {ship.type_id for ship in SHIP_TYPES}
    for offset, kill in enumerate(kills(3, 400)):
        assert ISO_SECONDS.match(kill["kill_time"])
        assert NOW + offset - 1800 <= unix(kill["kill_time"]) <= NOW + offset
        assert kill["system_id"] in WORMHOLE_SYSTEMS or kill["system_id"] in KSPACE_SYSTEMS
        assert "solar_system_id" not in kill
        victim = kill["victim"]
        assert victim["character_id"] in CHARACTER_IDS
        assert victim["ship_type_id"] in ship_ids
        assert {"corporation_id", "character_name", "corporation_name", "ship_name"} <= set(victim)
        assert ("alliance_id" in victim) == ("alliance_name" in victim)
        attackers = kill["attackers"]
        assert kill["attacker_count"] == len(attackers) >= 1
        assert sum(a["final_blow"] for a in attackers) == 1
        assert sum(a["damage_done"] for a in attackers) == victim["damage_taken"]
        assert all(None not in a.values() for a in attackers)
        assert set(kill["zkb"]) == ZKB_KEYS
        assert re.fullmatch(r"[0-9a-f]{40}", kill["zkb"]["hash"])
        assert MIN_TOTAL_VALUE <= kill["zkb"]["totalValue"] <= MAX_TOTAL_VALUE
        assert kill["zkb"]["solo"] == (len(attackers) == 1 and not kill["zkb"]["npc"])


def test_killmail_ids_increase_and_never_repeat() -> None:
    generator = TrafficGenerator(5)
    ids = [generator.killmail(NOW)["killmail_id"] for _ in range(200)]
    ids += [kill["killmail_id"] for kill in generator.burst(50, NOW)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_sizes_attackers_and_values_are_spread_like_real_traffic() -> None:
    sample = kills(8, 2000)
    sizes = [len(orjson.dumps(kill)) for kill in sample]
    assert 1500 <= statistics.median(sizes) <= 3500
    counts = [kill["attacker_count"] for kill in sample]
    assert sum(1 <= c <= 10 for c in counts) / len(counts) > 0.7
    assert any(c > 30 for c in counts)
    values = [kill["zkb"]["totalValue"] for kill in sample]
    assert min(values) < 1e7
    assert max(values) > 1e9


def test_given_systems_are_where_kills_happen() -> None:
    pool = [31000005, 30000142]
    assert {kill["system_id"] for kill in kills(2, 100, systems=pool)} == set(pool)


def test_given_characters_belong_to_the_world_and_can_be_involved() -> None:
    tracked = [2117000001, 2117000002]
    generator = TrafficGenerator(4, characters=tracked)
    assert generator.characters[:2] == tuple(tracked)
    for _ in range(50):
        kill = generator.killmail(NOW, system_id=31000005, involving=2117000002)
        involved = {kill["victim"]["character_id"]} | {
            a.get("character_id") for a in kill["attackers"]
        }
        assert 2117000002 in involved
        assert kill["system_id"] == 31000005


def test_an_outsider_can_be_involved_and_gets_a_stable_name() -> None:
    generator = TrafficGenerator(4)
    assert generator.pilot(95465499) == generator.pilot(95465499)
    kill = generator.killmail(NOW, involving=95465499)
    names = {kill["victim"].get("character_name")} | {
        a.get("character_name") for a in kill["attackers"]
    }
    assert generator.pilot(95465499).name in names


@pytest.mark.parametrize(
    "arguments",
    [
        {"systems": []},
        {"systems": [29_999_999]},
        {"systems": [50_000_000]},
        {"characters": [89_999_999]},
        {"characters": [3_000_000_001]},
    ],
)
def test_ids_outside_the_world_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        TrafficGenerator(1, **arguments)


def test_burst_is_a_fight_in_one_system_oldest_first() -> None:
    fight = TrafficGenerator(9).burst(40, NOW)
    assert len(fight) == 40
    assert len({kill["system_id"] for kill in fight}) == 1
    times = [unix(kill["kill_time"]) for kill in fight]
    assert times == sorted(times)
    attackers = [a["character_id"] for kill in fight for a in kill["attackers"]]
    assert len(set(attackers)) < len(attackers)  # the same fleet shoots many ships


def test_map_activity_follows_the_map_payload_shapes_and_its_own_state() -> None:
    generator = TrafficGenerator(6, characters=[2117000001, 2117000002, 2117000003])
    on_map: set[int] = set()
    pilots: set[str] = set()
    seen = set()
    for step in range(600):
        kind, payload = generator.map_activity(NOW + step)
        seen.add(kind)
        if kind == "add_system":
            assert set(payload) == {"solar_system_id", "name", "position_x", "position_y"}
            on_map.add(payload["solar_system_id"])
        elif kind == "deleted_system":
            on_map.remove(payload["solar_system_id"])
        elif kind == "connection_added":
            assert {payload["solar_system_source_id"], payload["solar_system_target_id"]} <= on_map
        elif kind == "signature_added":
            assert payload["solar_system_id"] in on_map
            assert re.fullmatch(r"[A-Z]{3}-\d{3}", payload["signature_id"])
        elif kind == "character_added":
            assert set(payload) == {
                "character_eve_id", "name", "corporation_id", "corporation_ticker",
                "alliance_id", "alliance_ticker", "ship_type_id", "solar_system_id", "online",
            }  # fmt: skip
            assert isinstance(payload["character_eve_id"], str)
            pilots.add(payload["character_eve_id"])
        elif kind == "character_removed":
            pilots.remove(payload["character_eve_id"])
        elif kind == "character_updated":
            assert payload["character_eve_id"] in pilots
        else:
            assert kind == "rally_point_added"
            assert payload["solar_system_id"] in on_map
            assert payload["character_eve_id"] in pilots
            assert ISO_MICROS.match(payload["created_at"])
    assert seen == {
        "add_system", "deleted_system", "connection_added", "signature_added",
        "character_added", "character_removed", "character_updated", "rally_point_added",
    }  # fmt: skip
    assert {s["solar_system_id"] for s in generator.map_systems()} == on_map
    assert {c["character_eve_id"] for c in generator.map_characters()} == pilots
    assert pilots <= {"2117000001", "2117000002", "2117000003"}


def test_map_kill_payload_is_a_copy_keyed_by_killmail_id() -> None:
    generator = TrafficGenerator(1)
    kill = generator.killmail(NOW)
    payload = generator.map_kill_payload(kill)
    assert payload["killmail_id"] == kill["killmail_id"]
    assert payload["solar_system_id"] == kill["system_id"]
    payload["victim"]["character_name"] = "changed"
    assert kill["victim"]["character_name"] != "changed"


def test_system_names_are_deterministic_and_wormholes_are_j_names() -> None:
    assert re.fullmatch(r"J\d{6}", system_name(31000005))
    assert system_name(30000142) == system_name(30000142)


def test_schedule_starts_at_zero_and_averages_its_rate() -> None:
    schedule = Schedule(5.0, seed=1)
    assert schedule.due(1000.0) == 0
    total = sum(schedule.due(1000.0 + t / 10) for t in range(1, 10_001))
    assert 4750 <= total <= 5250


def test_schedule_adds_bursts_on_top_of_its_rate() -> None:
    schedule = Schedule(0.0, burst_every_s=10.0, burst_size=25, seed=2)
    schedule.due(0.0)
    counts = [schedule.due(float(t)) for t in range(1, 101)]
    assert set(counts) == {0, 25}
    assert 6 <= counts.count(25) <= 20


def test_schedule_is_deterministic_under_a_seed() -> None:
    def run(seed: int) -> list[int]:
        schedule = Schedule(3.0, burst_every_s=5.0, burst_size=4, seed=seed)
        return [schedule.due(t / 4) for t in range(200)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_schedule_bounds_a_clock_jump_and_ignores_a_clock_going_back() -> None:
    schedule = Schedule(1000.0, seed=1, max_due=50)
    schedule.due(0.0)
    assert schedule.due(86_400.0) == 50
    assert schedule.due(86_400.0 - 10) == 0
    assert schedule.due(86_400.1) < 500


@pytest.mark.parametrize(
    "arguments",
    [
        {"rate_per_s": -1.0},
        {"rate_per_s": 1.0, "burst_every_s": 0.0},
        {"rate_per_s": 1.0, "max_due": 0},
    ],
)
def test_schedule_refuses_nonsense(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        Schedule(**arguments)
