"""The simulated EVE universe: solar system ids and names, ships, pilots and their
corporations and alliances.

Deterministic: a system's name and security band come from its id alone;
ships are drawn by :func:`pick_ship` from the generator's random source.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Final

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

_VICTIM_WEIGHTS: Final = tuple(itertools.accumulate(ship.hull.victim_weight for ship in SHIP_TYPES))
_ATTACKER_WEIGHTS: Final = tuple(
    itertools.accumulate(ship.hull.attacker_weight for ship in SHIP_TYPES)
)

# Turrets, launchers and drones, by type id; ESI names none of them in a killmail.
_SYLLABLES: Final = (
    "ka", "ri", "to", "mer", "vel", "an", "sha", "dra", "lo", "vik", "ar", "en", "ta",
    "ro", "sin", "mi", "zo", "el", "thor", "gal", "ne", "bra", "qui", "dor", "fen",
    "is", "ul", "ka", "sev", "mo", "ya", "tur", "eth", "gri", "nos", "pha", "lin",
)  # fmt: skip


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
    return syllable_word(rng, 2, 3)


def security_band(system_id: int) -> str:
    """``w-space``, ``highsec``, ``lowsec`` or ``nullsec``; deterministic per system id."""
    if system_id in WORMHOLE_SYSTEMS:
        return "w-space"
    return ("highsec", "lowsec", "nullsec")[system_id % 3]


def pick_ship(rng: random.Random, *, victim: bool) -> ShipType:
    """A ship type, weighted by how often its hull dies (``victim``) or flies."""
    weights = _VICTIM_WEIGHTS if victim else _ATTACKER_WEIGHTS
    return rng.choices(SHIP_TYPES, cum_weights=weights)[0]


def check_character_id(character_id: int) -> None:
    """Check that ``character_id`` is in :data:`CHARACTER_IDS`.

    Raises:
        ValueError: it is not.
    """
    if isinstance(character_id, bool) or character_id not in CHARACTER_IDS:
        bounds = f"{CHARACTER_IDS.start}..{CHARACTER_IDS.stop - 1}"
        msg = f"character id {character_id!r} is outside {bounds}"
        raise ValueError(msg)


def syllable_word(rng: random.Random, low: int, high: int) -> str:
    """A made-up capitalised word of ``low`` to ``high`` syllables."""
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(low, high))).capitalize()
