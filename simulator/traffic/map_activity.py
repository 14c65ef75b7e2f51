"""The simulated Wanderer map's activity: systems added and deleted, connections,
signatures, characters coming, going and moving, rally points.

:class:`MapActivity` keeps what is on the map (a subset of the world's systems
and map pilots) and draws every choice from the generator's random source, so
the same seed gives the same activity.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

from simulator.traffic.timing import iso_micros
from simulator.traffic.universe import Pilot, pick_ship, system_name

_SIGNATURE_GROUPS: Final = ("wormhole", "wormhole", "data", "relic", "gas", "combat", "ore")
_WORMHOLE_TYPES: Final = ("K162", "H296", "V753", "C247", "N110", "B274", "D382", "X877")
_RALLY_MESSAGES: Final = (
    "Form up, hostiles in chain",
    "Need help, tackled",
    "Roam leaving in 10",
    "Eviction fleet forming",
    "Dread bait on field",
)
_MAP_ACTIVITY_WEIGHTS: Final = {
    "add_system": 3.0,
    "deleted_system": 1.0,
    "connection_added": 3.0,
    "signature_added": 4.0,
    "character_added": 2.0,
    "character_removed": 1.0,
    "character_updated": 6.0,
    "rally_point_added": 0.3,
}


class MapActivity:
    """What is on the map, and the next thing that happens on it.

    Args:
        rng: the generator's random source (shared: one sequence for the world).
        systems: the world's systems; the map's are a subset.
        pilots: the pilots that may be on the map.
    """

    def __init__(self, rng: random.Random, systems: Sequence[int], pilots: Sequence[Pilot]) -> None:
        self._rng = rng
        self._systems = systems
        self._pilots = pilots
        self._map_systems: dict[int, dict[str, Any]] = {}
        self._map_characters: dict[int, dict[str, Any]] = {}

    def next(self, now: float) -> tuple[str, dict[str, Any]]:
        """See :meth:`~simulator.traffic.TrafficGenerator.map_activity`."""
        candidates = {
            kind: weight
            for kind, weight in _MAP_ACTIVITY_WEIGHTS.items()
            if self._map_event_possible(kind)
        }
        kind = self._rng.choices(list(candidates), weights=list(candidates.values()))[0]
        return kind, self._map_event(kind, now)

    def rally_point(self, now: float) -> tuple[str, dict[str, Any]]:
        """See :meth:`~simulator.traffic.TrafficGenerator.rally_point`."""
        if not self._map_event_possible("rally_point_added"):
            msg = "a rally point needs a system on the map"
            raise ValueError(msg)
        return "rally_point_added", self._map_event("rally_point_added", now)

    def system_added(self, system_id: int) -> tuple[str, dict[str, Any]]:
        """See :meth:`~simulator.traffic.TrafficGenerator.system_added`."""
        if system_id not in self._systems or system_id in self._map_systems:
            msg = f"system {system_id} is not in the pool or is on the map already"
            raise ValueError(msg)
        return "add_system", self._place_system(system_id)

    def systems(self) -> tuple[dict[str, Any], ...]:
        """The systems on the map now, as ``add_system`` payloads."""
        return tuple(copy.deepcopy(list(self._map_systems.values())))

    def characters(self) -> tuple[dict[str, Any], ...]:
        """The characters on the map now, as character event payloads."""
        return tuple(copy.deepcopy(list(self._map_characters.values())))

    def _map_event_possible(self, kind: str) -> bool:
        systems, pilots = len(self._map_systems), len(self._map_characters)
        possible = {
            "add_system": systems < len(self._systems),
            "deleted_system": systems > 2,
            "connection_added": systems >= 2,
            "signature_added": systems >= 1,
            "character_added": pilots < len(self._pilots),
            "character_removed": pilots > 1,
            "character_updated": pilots >= 1,
            "rally_point_added": systems >= 1 and pilots >= 1,
        }
        return possible[kind]

    def _map_event(self, kind: str, now: float) -> dict[str, Any]:
        makers: dict[str, Callable[[float], dict[str, Any]]] = {
            "add_system": self._add_system,
            "deleted_system": self._deleted_system,
            "connection_added": self._connection_added,
            "signature_added": self._signature_added,
            "character_added": self._character_added,
            "character_removed": self._character_removed,
            "character_updated": self._character_updated,
            "rally_point_added": self._rally_point_added,
        }
        return makers[kind](now)

    def _add_system(self, _now: float) -> dict[str, Any]:
        return self._place_system(
            self._rng.choice([s for s in self._systems if s not in self._map_systems])
        )

    def _place_system(self, system: int) -> dict[str, Any]:
        payload = {
            "solar_system_id": system,
            "name": system_name(system),
            "position_x": self._rng.randrange(0, 3000, 10),
            "position_y": self._rng.randrange(0, 2000, 10),
        }
        self._map_systems[system] = payload
        return dict(payload)

    def _deleted_system(self, _now: float) -> dict[str, Any]:
        system = self._rng.choice(list(self._map_systems))
        del self._map_systems[system]
        return {"solar_system_id": system}

    def _connection_added(self, _now: float) -> dict[str, Any]:
        source, target = self._rng.sample(list(self._map_systems), 2)
        return {
            "connection_id": _uuid(self._rng),
            "solar_system_source_id": source,
            "solar_system_target_id": target,
            "type": 0,
            "ship_size_type": self._rng.choice((0, 1, 2, 2, 2, 3)),
            "mass_status": 0,
            "time_status": 0,
        }

    def _signature_added(self, _now: float) -> dict[str, Any]:
        rng = self._rng
        group = rng.choice(_SIGNATURE_GROUPS)
        letters = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(3))
        return {
            "solar_system_id": rng.choice(list(self._map_systems)),
            "signature_id": f"{letters}-{rng.randrange(1000):03d}",
            "name": "Unstable Wormhole" if group == "wormhole" else "",
            "kind": "cosmic_signature",
            "group": group,
            "type": rng.choice(_WORMHOLE_TYPES) if group == "wormhole" else None,
        }

    def _character_added(self, _now: float) -> dict[str, Any]:
        absent = [p for p in self._pilots if p.character_id not in self._map_characters]
        pilot = self._rng.choice(absent)
        payload = self._character_payload(
            pilot, self._rng.choice(list(self._map_systems) or self._systems)
        )
        self._map_characters[pilot.character_id] = payload
        return dict(payload)

    def _character_removed(self, _now: float) -> dict[str, Any]:
        return self._map_characters.pop(self._rng.choice(list(self._map_characters)))

    def _character_updated(self, _now: float) -> dict[str, Any]:
        payload = self._map_characters[self._rng.choice(list(self._map_characters))]
        change = self._rng.random()
        if change < 0.5:
            payload["solar_system_id"] = self._rng.choice(self._systems)
        elif change < 0.8:
            payload["ship_type_id"] = pick_ship(self._rng, victim=False).type_id
        else:
            payload["online"] = not payload["online"]
        return dict(payload)

    def _rally_point_added(self, now: float) -> dict[str, Any]:
        pilot = self._map_characters[self._rng.choice(list(self._map_characters))]
        system = self._rng.choice(list(self._map_systems))
        return {
            "rally_point_id": _uuid(self._rng),
            "solar_system_id": system,
            "system_name": self._map_systems[system]["name"],
            "character_name": pilot["name"],
            "character_eve_id": pilot["character_eve_id"],
            "message": self._rng.choice(_RALLY_MESSAGES),
            "created_at": iso_micros(now),
        }

    def _character_payload(self, pilot: Pilot, system: int) -> dict[str, Any]:
        alliance = pilot.corporation.alliance
        return {
            "character_eve_id": str(pilot.character_id),
            "name": pilot.name,
            "corporation_id": pilot.corporation.corporation_id,
            "corporation_ticker": pilot.corporation.ticker,
            "alliance_id": alliance.alliance_id if alliance else None,
            "alliance_ticker": alliance.ticker if alliance else None,
            "ship_type_id": pick_ship(self._rng, victim=False).type_id,
            "solar_system_id": system,
            "online": True,
        }


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
