"""Seeded traffic of the simulated EVE world: killmails and Wanderer map activity.

Pure: no I/O, no threads, no clock of its own. Time comes in as ``now`` (Unix
seconds) and every random choice comes from one ``random.Random(seed)``, so the
same seed and the same calls give the same traffic, byte for byte.

Killmails follow the wanderer-kills shape (``system_id`` and, as newer servers
send it, ``solar_system_name``; names and tickers beside ids, camelCase inside
``zkb``, nil fields omitted). Map activity follows the payloads
of the Wanderer map's SSE events. The world is bounded: a fixed population of
pilots, corporations and alliances, a fixed pool of systems, and map state that
is a subset of those pools.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

WORMHOLE_SYSTEMS: Final = range(31_000_001, 31_002_605)
"""Wormhole (J-space) solar system ids."""
KSPACE_SYSTEMS: Final = range(30_000_001, 30_005_001)
"""Known-space solar system ids."""
CHARACTER_IDS: Final = range(90_000_000, 3_000_000_001)
"""Character ids that wanderer-kills accepts in a subscription."""
MODERN_CHARACTER_IDS: Final = range(2_112_000_000, 2_130_000_000)
"""Where characters created in recent years get their ids; the population lives here."""

MIN_TOTAL_VALUE: Final = 1e6
MAX_TOTAL_VALUE: Final = 2e10


@dataclass(frozen=True, slots=True)
class Hull:
    """A class of ships: how often it dies and flies, what it is worth, what it soaks.

    Values and damage are drawn log-uniformly between their bounds.
    """

    name: str
    victim_weight: float
    attacker_weight: float
    value_range: tuple[float, float]
    damage_range: tuple[int, int]
    points: int


@dataclass(frozen=True, slots=True)
class ShipType:
    """A real EVE ship type: its type id, its name and its hull class."""

    type_id: int
    name: str
    hull: Hull


CAPSULE = Hull("capsule", 18, 0, (1e6, 2.5e8), (90, 600), 1)
FRIGATE = Hull("frigate", 20, 22, (2e6, 6e7), (800, 6_000), 5)
DESTROYER = Hull("destroyer", 9, 10, (3e6, 8e7), (1_500, 9_000), 6)
CRUISER = Hull("cruiser", 10, 14, (1.5e7, 2e8), (5_000, 30_000), 10)
ADVANCED_CRUISER = Hull("advanced_cruiser", 6, 14, (1.2e8, 7e8), (8_000, 45_000), 25)
STRATEGIC_CRUISER = Hull("strategic_cruiser", 4, 9, (4e8, 1.8e9), (20_000, 90_000), 40)
BATTLECRUISER = Hull("battlecruiser", 7, 10, (6e7, 3e8), (20_000, 80_000), 15)
BATTLESHIP = Hull("battleship", 6, 8, (2e8, 9e8), (60_000, 220_000), 20)
PIRATE_BATTLESHIP = Hull("pirate_battleship", 2, 5, (6e8, 3.5e9), (80_000, 300_000), 50)
MARAUDER = Hull("marauder", 0.6, 1, (1.8e9, 4e9), (150_000, 500_000), 60)
INDUSTRIAL = Hull("industrial", 5, 0, (1e6, 4e8), (3_000, 20_000), 1)
MINING = Hull("mining", 4, 0, (3e6, 4e8), (2_000, 40_000), 2)
CAPITAL = Hull("capital", 0.8, 0.6, (2e9, 6e9), (1_500_000, 6_000_000), 100)
SUPERCAPITAL = Hull("supercapital", 0.08, 0.05, (1.5e10, 2e10), (20_000_000, 60_000_000), 500)

SHIP_TYPES: Final[tuple[ShipType, ...]] = (
    ShipType(670, "Capsule", CAPSULE),
    ShipType(585, "Slasher", FRIGATE),
    ShipType(587, "Rifter", FRIGATE),
    ShipType(589, "Executioner", FRIGATE),
    ShipType(593, "Tristan", FRIGATE),
    ShipType(597, "Punisher", FRIGATE),
    ShipType(603, "Merlin", FRIGATE),
    ShipType(605, "Heron", FRIGATE),
    ShipType(608, "Atron", FRIGATE),
    ShipType(33468, "Astero", FRIGATE),
    ShipType(16236, "Coercer", DESTROYER),
    ShipType(16238, "Cormorant", DESTROYER),
    ShipType(16240, "Catalyst", DESTROYER),
    ShipType(16242, "Thrasher", DESTROYER),
    ShipType(620, "Osprey", CRUISER),
    ShipType(621, "Caracal", CRUISER),
    ShipType(622, "Stabber", CRUISER),
    ShipType(626, "Vexor", CRUISER),
    ShipType(627, "Thorax", CRUISER),
    ShipType(629, "Rupture", CRUISER),
    ShipType(11993, "Cerberus", ADVANCED_CRUISER),
    ShipType(12005, "Ishtar", ADVANCED_CRUISER),
    ShipType(12015, "Muninn", ADVANCED_CRUISER),
    ShipType(12003, "Zealot", ADVANCED_CRUISER),
    ShipType(11978, "Scimitar", ADVANCED_CRUISER),
    ShipType(11987, "Guardian", ADVANCED_CRUISER),
    ShipType(33470, "Stratios", ADVANCED_CRUISER),
    ShipType(29984, "Tengu", STRATEGIC_CRUISER),
    ShipType(29986, "Legion", STRATEGIC_CRUISER),
    ShipType(29988, "Proteus", STRATEGIC_CRUISER),
    ShipType(29990, "Loki", STRATEGIC_CRUISER),
    ShipType(24690, "Hurricane", BATTLECRUISER),
    ShipType(24698, "Drake", BATTLECRUISER),
    ShipType(24700, "Myrmidon", BATTLECRUISER),
    ShipType(24696, "Harbinger", BATTLECRUISER),
    ShipType(638, "Raven", BATTLESHIP),
    ShipType(639, "Tempest", BATTLESHIP),
    ShipType(641, "Megathron", BATTLESHIP),
    ShipType(642, "Apocalypse", BATTLESHIP),
    ShipType(645, "Dominix", BATTLESHIP),
    ShipType(17738, "Machariel", PIRATE_BATTLESHIP),
    ShipType(17740, "Vindicator", PIRATE_BATTLESHIP),
    ShipType(17736, "Nightmare", PIRATE_BATTLESHIP),
    ShipType(17918, "Rattlesnake", PIRATE_BATTLESHIP),
    ShipType(28710, "Golem", MARAUDER),
    ShipType(28661, "Kronos", MARAUDER),
    ShipType(648, "Badger", INDUSTRIAL),
    ShipType(2998, "Noctis", INDUSTRIAL),
    ShipType(22544, "Hulk", MINING),
    ShipType(17480, "Procurer", MINING),
    ShipType(19724, "Moros", CAPITAL),
    ShipType(23757, "Archon", CAPITAL),
    ShipType(24483, "Nidhoggur", CAPITAL),
    ShipType(23913, "Nyx", SUPERCAPITAL),
    ShipType(671, "Erebus", SUPERCAPITAL),
)

_VICTIM_CUMULATIVE_WEIGHTS: Final = tuple(
    itertools.accumulate(ship.hull.victim_weight for ship in SHIP_TYPES)
)
_ATTACKER_CUMULATIVE_WEIGHTS: Final = tuple(
    itertools.accumulate(ship.hull.attacker_weight for ship in SHIP_TYPES)
)

# Turrets, launchers and drones, by type id; ESI names none of them in a killmail.
_WEAPON_TYPE_IDS: Final = (2456, 2488, 2185, 2929, 2961, 3057, 3186, 2410, 2420, 3082)
# NPC corporations (pirate factions, CONCORD) whose rats show up as attackers.
_NPC_CORPORATIONS: Final = (1000124, 1000127, 1000128, 1000134, 1000135, 1000125)
_NPC_NAMES: Final = {
    1000124: ("Archangels", ("Angel Cartel Nephilim", "Gistum Centurion", "Gist Malakim")),
    1000127: ("Guristas", ("Dread Guristas Eliminator", "Pith Conquistador", "Pithum Nullifier")),
    1000128: ("Serpentis", ("Core Baron", "Shadow Serpentis Flotilla Admiral", "Coreli Guardian")),
    1000134: ("Blood Raiders", ("Dark Blood Archbishop", "Corpus Patriarch", "Corpior Visionary")),
    1000135: ("Sansha's Nation", ("Centus Tyrant", "True Sansha Slave Lord", "Centii Keeper")),
    1000125: ("Sleepers", ("Vigilant Tyrannos", "Awakened Defender", "Sleepless Guardian")),
}
"""An NPC attacker's faction and ship names (the feed names NPC ships like any other)."""

_SYLLABLES: Final = (
    "ka", "ri", "to", "mer", "vel", "an", "sha", "dra", "lo", "vik", "ar", "en", "ta",
    "ro", "sin", "mi", "zo", "el", "thor", "gal", "ne", "bra", "qui", "dor", "fen",
    "is", "ul", "ka", "sev", "mo", "ya", "tur", "eth", "gri", "nos", "pha", "lin",
)  # fmt: skip
_SURNAME_ENDINGS: Final = ("son", "sen", "ov", "ski", "ra", "ar", "en", "is", "ane", "")
_CORPORATION_WORDS: Final = (
    "Industries", "Holdings", "Corp", "Enterprises", "Collective", "Syndicate",
    "Logistics", "Mining Consortium", "Security", "Directorate", "Explorations",
    "Research", "Salvage", "Expeditionary Force",
)  # fmt: skip
_ALLIANCE_WORDS: Final = (
    "Alliance", "Coalition", "Federation", "Legion", "Accord", "Confederacy",
    "Union", "Empire", "Compact", "Directive",
)  # fmt: skip
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


def ticker_of(name: str) -> str:
    """A ticker made from a name, as players make them: ``Kavoru Holdings`` is ``KAVOH``."""
    words = [word for word in name.split() if word[:1].isalpha()] or ["X"]
    tail = "".join(word[0] for word in words[1:])
    return (words[0][: max(1, 5 - len(tail))] + tail).upper()[:5]


@dataclass(frozen=True, slots=True)
class Alliance:
    alliance_id: int
    name: str

    @property
    def ticker(self) -> str:
        return ticker_of(self.name)


@dataclass(frozen=True, slots=True)
class Corporation:
    corporation_id: int
    name: str
    alliance: Alliance | None

    @property
    def ticker(self) -> str:
        return ticker_of(self.name)


@dataclass(frozen=True, slots=True)
class Pilot:
    """A character of the simulated world, with a stable corporation and security status."""

    character_id: int
    name: str
    corporation: Corporation
    security_status: float


def system_name(system_id: int) -> str:
    """The simulated name of a solar system; deterministic, independent of any seed.

    Wormholes are named ``J`` and six digits; known space gets syllable names
    (high/low security) or null-security designations like ``X47L-Q``.
    """
    rng = random.Random(system_id)
    if system_id in WORMHOLE_SYSTEMS:
        return f"J{rng.randrange(100_000, 1_000_000)}"
    if security_band(system_id) == "nullsec":
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        head = "".join(rng.choice(alphabet) for _ in range(4))
        tail = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 2)))
        return f"{head}-{tail}"
    return _syllable_word(rng, 2, 3)


def security_band(system_id: int) -> str:
    """``w-space``, ``highsec``, ``lowsec`` or ``nullsec``; deterministic per system id."""
    if system_id in WORMHOLE_SYSTEMS:
        return "w-space"
    return ("highsec", "lowsec", "nullsec")[system_id % 3]


class TrafficGenerator:
    """Deterministic killmails and map activity for one simulated world.

    Args:
        seed: everything random derives from it.
        systems: the systems kills and map activity happen in; by default a
            seeded mix of 40 wormhole and 40 known-space systems.
        characters: character ids that belong to the world (e.g. the ones a map
            tracks); they get names and corporations like everyone else, turn up
            in kills now and then, and are the pilots of map activity.
        population: how many generated pilots the world has besides ``characters``.

    Raises:
        ValueError: an empty ``systems``, a system id outside known or wormhole
            space, or a character id outside ``CHARACTER_IDS``.

    Not thread-safe: one caller at a time.
    """

    def __init__(
        self,
        seed: int,
        systems: Sequence[int] | None = None,
        characters: Sequence[int] | None = None,
        *,
        population: int = 2_000,
    ) -> None:
        if population < 2:
            msg = f"population must be at least 2, not {population}"
            raise ValueError(msg)
        self._seed = seed
        self._rng = random.Random(seed)
        self._systems = self._system_pool(systems)
        alliances = self._alliances(max(4, population // 50))
        self._corporations = self._corporations_of(max(8, population // 12), alliances)
        tracked = tuple(dict.fromkeys(characters or ()))
        for character_id in tracked:
            _check_character_id(character_id)
        generated_ids = [
            character_id
            for character_id in self._rng.sample(MODERN_CHARACTER_IDS, population + len(tracked))
            if character_id not in tracked
        ][:population]
        self._pilots = {cid: self._new_pilot(cid, self._rng) for cid in (*tracked, *generated_ids)}
        self._population = tuple(self._pilots.values())
        self._map_pilots = tuple(self._pilots[cid] for cid in tracked) or self._population[:30]
        self._next_killmail_id = self._rng.randrange(128_000_000, 129_000_000)
        self._map_systems: dict[int, dict[str, Any]] = {}
        self._map_characters: dict[int, dict[str, Any]] = {}

    @property
    def systems(self) -> tuple[int, ...]:
        """The systems this world's kills and map activity happen in."""
        return self._systems

    @property
    def characters(self) -> tuple[int, ...]:
        """Every character id of the world: the given ones first, then the generated ones."""
        return tuple(self._pilots)

    def pilot(self, character_id: int) -> Pilot:
        """The pilot with this id; one outside the population is made up from the id alone."""
        known = self._pilots.get(character_id)
        if known is not None:
            return known
        _check_character_id(character_id)
        return self._new_pilot(character_id, random.Random(self._seed ^ character_id))

    def killmail(
        self, now: float, system_id: int | None = None, involving: int | None = None
    ) -> dict[str, Any]:
        """One killmail that reached the feed at ``now``.

        Args:
            now: Unix seconds; the kill happened a few seconds to half an hour earlier.
            system_id: where it happened; a system of the pool by default.
            involving: a character id that must be the victim or an attacker.
        """
        system = self._pick_system() if system_id is None else system_id
        delay = (
            self._rng.uniform(3, 120) if self._rng.random() < 0.93 else self._rng.uniform(120, 1800)
        )
        victim_ship = self._pick_ship(victim=True)
        if self._rng.random() < 0.04:
            return self._npc_kill(now - delay, system, victim_ship, involving)
        count = self._attacker_count()
        pilots = self._rng.sample(self._population, min(count + 1, len(self._population)))
        if involving is not None:
            chosen = self.pilot(involving)
            pilots = [chosen, *(p for p in pilots if p.character_id != involving)][: len(pilots)]
            if self._rng.random() < 0.5 and len(pilots) > 1:
                pilots[0], pilots[1] = pilots[1], pilots[0]
        victim, attackers = pilots[0], pilots[1:]
        if attackers and self._rng.random() < 0.01:
            attackers[0] = self._corporation_mate(victim) or attackers[0]
        return self._assemble(now - delay, system, victim, victim_ship, attackers)

    def burst(self, n: int, now: float) -> list[dict[str, Any]]:
        """A fight: ``n`` kills in one system over the last few minutes, oldest first.

        Two fleets meet; victims come from either side (the losing side more),
        attackers from the other, so kills share many attackers.
        """
        if n <= 0:
            return []
        system = self._pick_system()
        fleet_size = max(5, min(250, 3 * n))
        pilots = self._rng.sample(self._population, min(2 * fleet_size, len(self._population)))
        half = len(pilots) // 2
        sides = (pilots[:half], pilots[half:])
        span = min(1800.0, 20.0 + 4.0 * n)
        times = sorted(now - self._rng.uniform(0, span) for _ in range(n))
        kills = []
        for kill_time in times:
            losing = 0 if self._rng.random() < 0.7 else 1
            victim = self._rng.choice(sides[losing])
            winners = sides[1 - losing]
            count = min(len(winners), self._attacker_count(floor=2))
            attackers = self._rng.sample(winners, count)
            ship = self._pick_ship(victim=True)
            kills.append(self._assemble(kill_time, system, victim, ship, attackers))
        return kills

    def map_activity(self, now: float) -> tuple[str, dict[str, Any]]:
        """The next thing that happens on the Wanderer map: ``(event_type, payload)``.

        Event types: ``add_system``, ``deleted_system``, ``connection_added``,
        ``signature_added``, ``character_added``, ``character_removed``,
        ``character_updated``, ``rally_point_added``. The map's systems are a
        subset of :attr:`systems`; its characters a subset of the given
        ``characters`` (or of the first 30 pilots when none were given).
        """
        candidates = {
            kind: weight
            for kind, weight in _MAP_ACTIVITY_WEIGHTS.items()
            if self._map_event_possible(kind)
        }
        kind = self._rng.choices(list(candidates), weights=list(candidates.values()))[0]
        return kind, self._map_event(kind, now)

    def rally_point(self, now: float) -> tuple[str, dict[str, Any]]:
        """A ``rally_point_added`` now, for a demo that wants one on a schedule.

        Raises:
            ValueError: the map has no system yet to rally in.
        """
        if not self._map_event_possible("rally_point_added"):
            msg = "a rally point needs a system on the map"
            raise ValueError(msg)
        return "rally_point_added", self._map_event("rally_point_added", now)

    def system_added(self, system_id: int) -> tuple[str, dict[str, Any]]:
        """``add_system`` of this system of the pool now (a demo's scripted moment).

        Raises:
            ValueError: the system is not in the pool, or already on the map.
        """
        if system_id not in self._systems or system_id in self._map_systems:
            msg = f"system {system_id} is not in the pool or is on the map already"
            raise ValueError(msg)
        return "add_system", self._place_system(system_id)

    def map_systems(self) -> tuple[dict[str, Any], ...]:
        """The systems on the map now, as ``add_system`` payloads (for a REST bootstrap)."""
        return tuple(copy.deepcopy(list(self._map_systems.values())))

    def map_characters(self) -> tuple[dict[str, Any], ...]:
        """The characters on the map now, as character event payloads."""
        return tuple(copy.deepcopy(list(self._map_characters.values())))

    def map_kill_payload(self, killmail: dict[str, Any]) -> dict[str, Any]:
        """The killmail as a map's ``map_kill`` payload: keyed by ``killmail_id``.

        A deep copy of the killmail with ``solar_system_id`` beside ``system_id``
        (map payloads name systems that way); the same kill arriving both ways is
        the cross-source duplicate.
        """
        payload = copy.deepcopy(killmail)
        payload["solar_system_id"] = killmail["system_id"]
        return payload

    # -- killmails -----------------------------------------------------------

    def _assemble(
        self,
        kill_time: float,
        system: int,
        victim: Pilot,
        victim_ship: ShipType,
        attacker_pilots: Sequence[Pilot],
    ) -> dict[str, Any]:
        hull = victim_ship.hull
        damage = self._log_uniform_int(*hull.damage_range)
        attackers = [self._attacker(pilot) for pilot in attacker_pilots]
        self._share_damage(attackers, damage)
        solo = len(attackers) == 1
        awox = any(a.get("corporation_id") == victim.corporation.corporation_id for a in attackers)
        value = self._value(hull)
        labels = self._labels(system, victim_ship, len(attackers), value, npc=False, solo=solo)
        if awox:
            labels.append("awox")
        points = max(1, round(hull.points / math.sqrt(len(attackers))))
        return self._killmail_dict(
            kill_time, system, self._victim(victim, victim_ship, damage), attackers,
            value, points=points, npc=False, solo=solo, awox=awox, labels=labels,
        )  # fmt: skip

    def _npc_kill(
        self, kill_time: float, system: int, victim_ship: ShipType, involving: int | None
    ) -> dict[str, Any]:
        victim = (
            self.pilot(involving) if involving is not None else self._rng.choice(self._population)
        )
        damage = self._log_uniform_int(*victim_ship.hull.damage_range)
        attackers: list[dict[str, Any]] = [
            {
                "corporation_id": self._rng.choice(_NPC_CORPORATIONS),
                "ship_type_id": self._rng.randrange(20_000, 60_000),
                "damage_done": 0,
                "final_blow": False,
                "security_status": 0.0,
            }
            for _ in range(self._rng.randint(1, 5))
        ]
        for attacker in attackers:
            # named from the ids already drawn: the seeded sequence stays as it was
            faction, ships = _NPC_NAMES[attacker["corporation_id"]]
            attacker["corporation_name"] = faction
            attacker["ship_name"] = ships[attacker["ship_type_id"] % len(ships)]
        self._share_damage(attackers, damage)
        value = self._value(victim_ship.hull)
        labels = self._labels(system, victim_ship, len(attackers), value, npc=True, solo=False)
        return self._killmail_dict(
            kill_time, system, self._victim(victim, victim_ship, damage), attackers,
            value, points=1, npc=True, solo=False, awox=False, labels=labels,
        )  # fmt: skip

    def _killmail_dict(
        self,
        kill_time: float,
        system: int,
        victim: dict[str, Any],
        attackers: list[dict[str, Any]],
        value: float,
        *,
        points: int,
        npc: bool,
        solo: bool,
        awox: bool,
        labels: list[str],
    ) -> dict[str, Any]:
        killmail_id = self._next_killmail_id
        self._next_killmail_id += self._rng.randint(1, 40)
        dropped = value * self._rng.uniform(0.0, 0.6) * self._rng.random()
        return {
            "killmail_id": killmail_id,
            "kill_time": iso_seconds(kill_time),
            "system_id": system,
            "victim": victim,
            "attackers": attackers,
            "zkb": {
                "locationID": _location_id(system, self._rng),
                "hash": f"{self._rng.getrandbits(160):040x}",
                "totalValue": round(value, 2),
                "fittedValue": round(value * self._rng.uniform(0.3, 0.95), 2),
                "droppedValue": round(dropped, 2),
                "destroyedValue": round(value - dropped, 2),
                "points": points,
                "npc": npc,
                "solo": solo,
                "awox": awox,
                "labels": labels,
            },
            "attacker_count": len(attackers),
            "solar_system_name": system_name(system),
        }

    def _victim(self, pilot: Pilot, ship: ShipType, damage: int) -> dict[str, Any]:
        victim: dict[str, Any] = {"character_id": pilot.character_id}
        victim.update(_affiliation_ids(pilot))
        victim["ship_type_id"] = ship.type_id
        victim["damage_taken"] = damage
        victim["character_name"] = pilot.name
        victim.update(_affiliation_names(pilot))
        victim["ship_name"] = ship.name
        return victim

    def _attacker(self, pilot: Pilot) -> dict[str, Any]:
        ship = self._pick_ship(victim=False)
        attacker: dict[str, Any] = {"character_id": pilot.character_id}
        attacker.update(_affiliation_ids(pilot))
        attacker["ship_type_id"] = ship.type_id
        attacker["weapon_type_id"] = self._rng.choice(_WEAPON_TYPE_IDS)
        attacker["damage_done"] = 0
        attacker["final_blow"] = False
        attacker["security_status"] = pilot.security_status
        attacker["character_name"] = pilot.name
        attacker.update(_affiliation_names(pilot))
        attacker["ship_name"] = ship.name
        return attacker

    def _share_damage(self, attackers: list[dict[str, Any]], damage: int) -> None:
        """Split ``damage`` among attackers (some do none), pick the final blow, sort by damage."""
        weights = [
            0.0 if self._rng.random() < 0.1 else self._rng.expovariate(1.0) for _ in attackers
        ]
        if not any(weights):
            weights[0] = 1.0
        total = sum(weights)
        shares = [int(damage * w / total) for w in weights]
        shares[weights.index(max(weights))] += damage - sum(shares)
        for attacker, share in zip(attackers, shares, strict=True):
            attacker["damage_done"] = share
        dealers = [a for a in attackers if a["damage_done"] > 0]
        final = self._rng.choices(dealers, weights=[a["damage_done"] for a in dealers])[0]
        final["final_blow"] = True
        attackers.sort(key=lambda a: a["damage_done"], reverse=True)

    def _corporation_mate(self, pilot: Pilot) -> Pilot | None:
        """Someone of ``pilot``'s corporation, for an awox (a kill inside the corporation)."""
        mates = [p for p in self._population if p.corporation == pilot.corporation and p != pilot]
        return self._rng.choice(mates) if mates else None

    def _attacker_count(self, floor: int = 1) -> int:
        """Mostly 1-10 attackers, sometimes dozens, rarely hundreds."""
        roll = self._rng.random()
        if roll < 0.14:
            count = 1
        elif roll < 0.45:
            count = self._rng.randint(2, 5)
        elif roll < 0.82:
            count = self._rng.randint(6, 10)
        elif roll < 0.94:
            count = self._rng.randint(11, 30)
        elif roll < 0.99:
            count = self._rng.randint(31, 120)
        else:
            count = self._rng.randint(121, 300)
        return max(floor, count)

    def _value(self, hull: Hull) -> float:
        low, high = hull.value_range
        if hull is CAPSULE and self._rng.random() < 0.05:
            low, high = high, 3e9
        value = math.exp(self._rng.uniform(math.log(low), math.log(high)))
        return min(MAX_TOTAL_VALUE, max(MIN_TOTAL_VALUE, value))

    def _labels(
        self, system: int, ship: ShipType, attackers: int, value: float, *, npc: bool, solo: bool
    ) -> list[str]:
        labels = ["cat:6", "npc" if npc else "pvp", f"loc:{security_band(system)}"]
        labels.append(next(f"#:{n}+" for n in (1000, 100, 50, 25, 10, 5, 2, 1) if attackers >= n))
        if solo:
            labels.append("solo")
        labels.extend(
            f"isk:{tag}+" for threshold, tag in ((1e9, "1b"), (1e10, "10b")) if value >= threshold
        )
        if ship.hull in (CAPITAL, SUPERCAPITAL):
            labels.append("capital")
        return labels

    def _pick_ship(self, *, victim: bool) -> ShipType:
        weights = _VICTIM_CUMULATIVE_WEIGHTS if victim else _ATTACKER_CUMULATIVE_WEIGHTS
        return self._rng.choices(SHIP_TYPES, cum_weights=weights)[0]

    def _pick_system(self) -> int:
        # Activity clusters: a few systems see most kills (a Zipf-like tail).
        index = min(len(self._systems) - 1, int(self._rng.paretovariate(1.2)) - 1)
        if self._rng.random() < 0.5:
            return self._systems[index]
        return self._rng.choice(self._systems)

    def _log_uniform_int(self, low: int, high: int) -> int:
        return round(math.exp(self._rng.uniform(math.log(low), math.log(high))))

    # -- population ------------------------------------------------------------

    def _system_pool(self, systems: Sequence[int] | None) -> tuple[int, ...]:
        if systems is None:
            wormholes = self._rng.sample(WORMHOLE_SYSTEMS, 40)
            kspace = self._rng.sample(KSPACE_SYSTEMS, 40)
            mixed = wormholes + kspace
            self._rng.shuffle(mixed)
            return tuple(mixed)
        pool = tuple(dict.fromkeys(systems))
        if not pool:
            msg = "systems must not be empty"
            raise ValueError(msg)
        for system in pool:
            if system not in WORMHOLE_SYSTEMS and system not in KSPACE_SYSTEMS:
                msg = f"system id {system} is neither known space nor a wormhole"
                raise ValueError(msg)
        return pool

    def _alliances(self, count: int) -> list[Alliance]:
        ids = self._rng.sample(range(99_000_000, 99_014_000), count)
        return [
            Alliance(aid, f"{_syllable_word(self._rng, 2, 3)} {self._rng.choice(_ALLIANCE_WORDS)}")
            for aid in ids
        ]

    def _corporations_of(self, count: int, alliances: Sequence[Alliance]) -> list[Corporation]:
        ids = self._rng.sample(range(98_000_000, 98_800_000), count)
        return [
            Corporation(
                cid,
                f"{_syllable_word(self._rng, 1, 3)} {self._rng.choice(_CORPORATION_WORDS)}",
                self._rng.choice(alliances) if self._rng.random() < 0.75 else None,
            )
            for cid in ids
        ]

    def _new_pilot(self, character_id: int, rng: random.Random) -> Pilot:
        first = _syllable_word(rng, 1, 3)
        last = _syllable_word(rng, 1, 2) + rng.choice(_SURNAME_ENDINGS)
        name = first if rng.random() < 0.2 else f"{first} {last.capitalize()}"
        return Pilot(
            character_id,
            name,
            rng.choice(self._corporations),
            round(max(-10.0, min(5.0, rng.gauss(0.5, 3.0))), 1),
        )

    # -- map ---------------------------------------------------------------------

    def _map_event_possible(self, kind: str) -> bool:
        systems, pilots = len(self._map_systems), len(self._map_characters)
        possible = {
            "add_system": systems < len(self._systems),
            "deleted_system": systems > 2,
            "connection_added": systems >= 2,
            "signature_added": systems >= 1,
            "character_added": pilots < len(self._map_pilots),
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
        absent = [p for p in self._map_pilots if p.character_id not in self._map_characters]
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
            payload["ship_type_id"] = self._pick_ship(victim=False).type_id
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
            "ship_type_id": self._pick_ship(victim=False).type_id,
            "solar_system_id": system,
            "online": True,
        }


class Schedule:
    """How many events are due at a given time: a Poisson stream plus periodic bursts.

    Arrivals follow a Poisson process of ``rate_per_s``; every ``burst_every_s``
    (jittered between half and one and a half times that) ``burst_size`` more
    are due at once. The first :meth:`due` call starts the schedule and returns
    0. A clock that jumps far ahead does not make the schedule catch up without
    bound: at most ``max_due`` arrivals are returned by one call and the rest of
    the gap is skipped. A clock that goes backwards yields 0.

    Raises:
        ValueError: a negative rate or burst size, a non-positive burst interval,
            or ``max_due`` below 1.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst_every_s: float | None = None,
        burst_size: int = 0,
        seed: int = 0,
        *,
        max_due: int = 10_000,
    ) -> None:
        if rate_per_s < 0 or burst_size < 0 or max_due < 1:
            msg = f"invalid schedule: rate {rate_per_s}, burst size {burst_size}, max_due {max_due}"
            raise ValueError(msg)
        if burst_every_s is not None and burst_every_s <= 0:
            msg = f"burst_every_s must be positive, not {burst_every_s}"
            raise ValueError(msg)
        self._rate = rate_per_s
        self._burst_every = burst_every_s
        self._burst_size = burst_size
        self._max_due = max_due
        self._rng = random.Random(seed)
        self._last: float | None = None
        self._next_arrival = math.inf
        self._next_burst = math.inf

    def due(self, now: float) -> int:
        """How many events to emit at ``now`` (Unix or monotonic seconds, consistently)."""
        if self._last is None:
            self._last = now
            self._next_arrival = now + self._gap()
            if self._burst_every is not None:
                self._next_burst = now + self._burst_interval()
            return 0
        if now < self._last:
            return 0
        self._last = now
        count = 0
        while self._next_arrival <= now and count < self._max_due:
            count += 1
            self._next_arrival += self._gap()
        if self._next_arrival <= now:
            self._next_arrival = now + self._gap()
        if self._next_burst <= now:
            count += self._burst_size
            self._next_burst = now + self._burst_interval()
        return count

    def _gap(self) -> float:
        return self._rng.expovariate(self._rate) if self._rate > 0 else math.inf

    def _burst_interval(self) -> float:
        assert self._burst_every is not None
        return self._burst_every * self._rng.uniform(0.5, 1.5)


def iso_seconds(unix_seconds: float) -> str:
    """``2026-11-27T12:00:00Z``: whole seconds, UTC, as ESI writes kill times."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.floor(unix_seconds)))


def iso_micros(unix_seconds: float) -> str:
    """``2026-11-27T12:00:00.123456Z``: microseconds, UTC, as Elixir's DateTime writes."""
    whole = math.floor(unix_seconds)
    micros = min(999_999, round((unix_seconds - whole) * 1e6))
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{micros:06d}Z"


def parse_iso(text: str) -> float | None:
    """Unix seconds of an ISO 8601 time (``Z`` or an offset; naive is UTC), None if unparseable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _check_character_id(character_id: int) -> None:
    if isinstance(character_id, bool) or character_id not in CHARACTER_IDS:
        bounds = f"{CHARACTER_IDS.start}..{CHARACTER_IDS.stop - 1}"
        msg = f"character id {character_id!r} is outside {bounds}"
        raise ValueError(msg)


def _affiliation_ids(pilot: Pilot) -> dict[str, int]:
    ids = {"corporation_id": pilot.corporation.corporation_id}
    if pilot.corporation.alliance is not None:
        ids["alliance_id"] = pilot.corporation.alliance.alliance_id
    return ids


def _affiliation_names(pilot: Pilot) -> dict[str, str]:
    """Names and tickers, as the feed adds them to a killmail's victim and attackers."""
    corporation = pilot.corporation
    names = {"corporation_name": corporation.name, "corporation_ticker": corporation.ticker}
    if corporation.alliance is not None:
        names["alliance_name"] = corporation.alliance.name
        names["alliance_ticker"] = corporation.alliance.ticker
    return names


def _location_id(system: int, rng: random.Random) -> int:
    index = system - 30_000_000 if system < 31_000_000 else 5_000 + system - 31_000_000
    return 40_000_000 + index * 40 + rng.randrange(40)


def _syllable_word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(low, high))).capitalize()


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
