"""Realistic inputs for card tests: killmails as wanderer-kills sends them, static
info as a map's static-info endpoint answers, map events as a map streams them."""

from __future__ import annotations

from typing import Any

from realtime.event import Event, format_time
from realtime.static_info import StaticInfoView, SystemStaticInfo, parse_static_info
from realtime.tracking import TrackedState
from tests.support import events

NOW = 1_800_000_000.0
HOME, KSPACE = 31000005, 30000142
OUR_PILOT, OUR_WINGMAN = 2117000001, 2117000002
HOME_NAME = "Home Hole"


def pilot(
    character_id: int | None,
    name: str,
    organisation: tuple[str, str],
    hull: tuple[str, int],
    *,
    damage: int = 0,
    final_blow: bool = False,
    alliance_ticker: str = "",
) -> dict[str, Any]:
    (corporation, ticker), (ship, ship_type_id) = organisation, hull
    entry: dict[str, Any] = {
        "corporation_id": 98000000 + len(ticker),
        "ship_type_id": ship_type_id,
        "corporation_name": corporation,
        "ship_name": ship,
    }
    if character_id is not None:
        entry |= {"character_id": character_id, "character_name": name}
    if ticker:
        entry["corporation_ticker"] = ticker
    if alliance_ticker:
        entry |= {"alliance_id": 99000001, "alliance_ticker": alliance_ticker}
    if final_blow:
        entry["final_blow"] = True
    entry["damage_done"] = damage
    return entry


def killmail(
    victim: dict[str, Any],
    attackers: list[dict[str, Any]],
    *,
    system_id: int = HOME,
    value: float = 85_300_000.0,
    npc: bool = False,
    solar_system_name: str | None = None,
    killmail_id: int = 128_400_001,
) -> dict[str, Any]:
    victim = {k: v for k, v in victim.items() if k not in ("final_blow", "damage_done")}
    victim["damage_taken"] = sum(a.get("damage_done", 0) for a in attackers)
    data: dict[str, Any] = {
        "killmail_id": killmail_id,
        "kill_time": format_time(NOW - 90),
        "system_id": system_id,
        "victim": victim,
        "attackers": attackers,
        "zkb": {
            "totalValue": value,
            "hash": "0f1e2d3c",
            "npc": npc,
            "solo": len(attackers) == 1,
        },
        "attacker_count": len(attackers),
    }
    if solar_system_name is not None:
        data["solar_system_name"] = solar_system_name
    return data


def kill_event(data: dict[str, Any]) -> Event:
    """The card tests' kill: seen a minute before :data:`NOW`, journaled as seq 7."""
    return events.kill_event(data, at=NOW - 60, seq=7)


def map_event(event_type: str, payload: dict[str, Any], sse_id: str) -> Event:
    """The card tests' map event on map ``home``: 30 s before :data:`NOW`, seq 8."""
    return events.map_event(event_type, payload, sse_id, at=NOW - 30, seq=8)


def tracked() -> TrackedState:
    state = TrackedState()
    state.bootstrap("home", {HOME: HOME_NAME}, {OUR_PILOT: "Aria Vance", OUR_WINGMAN: "Bren Osk"})
    return state


def static_answer(
    system_id: int,
    name: str,
    *,
    region: str,
    constellation: str,
    system_class: int,
    class_title: str,
    type_description: str,
    security: str,
    shattered: bool = False,
    effect: str | None = None,
    statics: tuple[tuple[str, str, str, int, int, int], ...] = (),
    sun_type_id: int = 45041,
) -> dict[str, Any]:
    """The endpoint's answer; a static is (name, short destination, destination,
    lifetime h, max mass kg, max jump mass kg)."""
    data: dict[str, Any] = {
        "solar_system_id": system_id,
        "solar_system_name": name,
        "region_id": 11000000 + system_class,
        "region_name": region,
        "constellation_id": 21000000 + system_class,
        "constellation_name": constellation,
        "system_class": system_class,
        "security": security,
        "type_description": type_description,
        "class_title": class_title,
        "is_shattered": shattered,
        "statics": [static[0] for static in statics],
        "static_details": [
            {
                "name": static[0],
                "destination": {
                    "id": static[1].lower(),
                    "name": static[2],
                    "short_name": static[1],
                },
                "properties": {
                    "lifetime": str(static[3]),
                    "max_mass": static[4],
                    "max_jump_mass": static[5],
                    "mass_regeneration": 0,
                },
            }
            for static in statics
        ],
        "wandering": [],
        "sun_type_id": sun_type_id,
    }
    if effect is not None:
        data |= {"effect_name": effect, "effect_power": system_class}
    return {"data": data}


C4_PULSAR = static_answer(
    HOME,
    "J100005",
    region="D-R00016",
    constellation="D-C00143",
    system_class=4,
    class_title="C4",
    type_description="Class 4",
    security="-1.0",
    effect="Pulsar",
    statics=(
        ("X877", "C4", "Class 4", 16, 2_000_000_000, 375_000_000),
        ("H296", "C5", "Class 5", 24, 3_000_000_000, 1_350_000_000),
    ),
)
SHATTERED_C5 = static_answer(
    31002472,
    "J005923",
    region="K-R00033",
    constellation="K-C00333",
    system_class=5,
    class_title="C5",
    type_description="Class 5",
    security="-1.0",
    shattered=True,
    effect="Wolf-Rayet Star",
)
JITA = static_answer(
    KSPACE,
    "Jita",
    region="The Forge",
    constellation="Kimotoro",
    system_class=7,
    class_title="HS",
    type_description="High-sec",
    security="0.9459",
    sun_type_id=45040,
)


def static_view(*answers: dict[str, Any]) -> StaticInfoView:
    infos: dict[int, SystemStaticInfo] = {}
    for answer in answers:
        system_id = answer["data"]["solar_system_id"]
        infos[system_id] = parse_static_info(answer, system_id)
    return StaticInfoView(infos)
