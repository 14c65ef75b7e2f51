"""The demo world shows every kind of card: a showcase of systems, our pilots off the chain."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from realtime.config import SimulatorConfig
from simulator import static_info as universe
from simulator.world import World, showcase_systems


@pytest.fixture
def world() -> Iterator[World]:
    settings = SimulatorConfig(
        kills_port=0, map_port=0, discord_port=0, kills_per_s=0.0, map_events_per_s=0.0
    )
    with World(settings, ["demo"]) as running:
        yield running


def involved(killmail: dict[str, Any]) -> set[int]:
    people = [killmail["victim"], *killmail["attackers"]]
    return {p["character_id"] for p in people if "character_id" in p}


def test_the_showcase_has_every_kind_of_space() -> None:
    infos = [universe.static_info(system) for system in showcase_systems()]
    assert all(info is not None for info in infos)
    kinds = {(i["class_title"], i["is_shattered"], "effect_name" in i) for i in infos if i}
    assert ("C4", False, True) in kinds
    assert ("C5", True, True) in kinds or ("C5", True, False) in kinds
    assert {"HS", "LS", "NS"} <= {kind for kind, _, _ in kinds}


def test_our_pilots_kill_and_die_off_the_chain(world: World) -> None:
    kills = [world.publish_kill(time.time()) for _ in range(400)]
    ours = {int(c["character_eve_id"]) for c in world.generator.map_characters()}
    on_map = {s["solar_system_id"] for s in world.generator.map_systems()}
    off_chain = [k for k in kills if k["system_id"] not in on_map and involved(k) & ours]
    assert len(off_chain) >= 40
    assert any(k["victim"].get("character_id") in ours for k in off_chain)  # a loss
    assert any(k["victim"].get("character_id") not in ours for k in off_chain)  # a kill


def test_the_opening_adds_the_showcase_systems_to_the_map(world: World) -> None:
    on_map = {s["solar_system_id"] for s in world.generator.map_systems()}
    missing = [system for system in showcase_systems() if system not in on_map]
    for _ in missing:
        world.open_next()
    assert set(showcase_systems()) <= {s["solar_system_id"] for s in world.generator.map_systems()}
    assert world.maps["demo"].statistics().events_published >= len(missing)
