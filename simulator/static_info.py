"""The simulated universe's static data: what a map's static-info endpoint answers.

Deterministic per system id and consistent with :mod:`simulator.traffic` (the
same names and security bands): wormhole systems get a class, a J-space region
and constellation, statics with their destinations and properties (drawn from
the real wormhole types of each class), often an effect, and a few are
shattered (no statics, as in the game); known-space systems get a security
status in their band and a region. Ids outside both ranges are unknown (the
endpoint's 404).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Final

from simulator.traffic import KSPACE_SYSTEMS, WORMHOLE_SYSTEMS, security_band, system_name

EFFECTS: Final = (
    "Pulsar",
    "Magnetar",
    "Black Hole",
    "Wolf-Rayet Star",
    "Cataclysmic Variable",
    "Red Giant",
)
EFFECT_SHARE: Final = 0.4
SHATTERED_SHARE: Final = 0.06
SUN_TYPES: Final = (45030, 45031, 45032, 45033, 45034, 45035, 45036, 45037, 45038, 45039, 45041)

_STATICS_BY_CLASS: Final[dict[int, tuple[tuple[str, str], ...]]] = {
    1: (("H121", "C1"), ("C125", "C2"), ("O883", "C3"), ("M609", "C4"), ("L614", "C5"),
        ("S804", "C6"), ("N110", "HS"), ("J244", "LS"), ("Z060", "NS")),
    2: (("Z647", "C1"), ("D382", "C2"), ("O477", "C3"), ("Y683", "C4"), ("N062", "C5"),
        ("R474", "C6"), ("B274", "HS"), ("A239", "LS"), ("E545", "NS")),
    3: (("V301", "C1"), ("I182", "C2"), ("N968", "C3"), ("T405", "C4"), ("N770", "C5"),
        ("A982", "C6"), ("D845", "HS"), ("U210", "LS"), ("K346", "NS")),
    4: (("P060", "C1"), ("N766", "C2"), ("C247", "C3"), ("X877", "C4"), ("H900", "C5"),
        ("U574", "C6"), ("S047", "HS"), ("N290", "LS"), ("K329", "NS")),
    5: (("Y790", "C1"), ("D364", "C2"), ("M267", "C3"), ("E175", "C4"), ("H296", "C5"),
        ("V753", "C6"), ("D792", "HS"), ("C140", "LS"), ("Z142", "NS")),
    6: (("Q317", "C1"), ("G024", "C2"), ("L477", "C3"), ("Z457", "C4"), ("V911", "C5"),
        ("W237", "C6"), ("B520", "HS"), ("C391", "LS"), ("Z142", "NS")),
}  # fmt: skip
_DESTINATIONS: Final = {
    **{f"C{n}": f"Class {n}" for n in range(1, 7)},
    "HS": "High-sec",
    "LS": "Low-sec",
    "NS": "Null-sec",
}
_JSPACE_REGIONS: Final = {
    1: ("A", range(1, 4)),
    2: ("B", range(4, 9)),
    3: ("C", range(9, 15)),
    4: ("D", range(15, 18)),
    5: ("E", range(18, 23)),
    6: ("F", range(23, 24)),
}
_KSPACE_REGIONS: Final = {
    "highsec": ("The Forge", "Domain", "Sinq Laison", "Metropolis", "Heimatar", "Lonetrek"),
    "lowsec": ("The Citadel", "Black Rise", "Placid", "Molden Heath", "Genesis"),
    "nullsec": ("Delve", "Fountain", "Catch", "Providence", "Venal", "Deklein"),
}
_KSPACE_CLASS: Final = {
    "highsec": (7, "HS", "High-sec", (0.45, 1.0)),
    "lowsec": (8, "LS", "Low-sec", (0.05, 0.44)),
    "nullsec": (9, "NS", "Null-sec", (-1.0, 0.0)),
}


def _properties(origin: int, destination: str) -> dict[str, Any]:
    """Lifetime and masses of a wormhole by where it leads (big holes out of C5/C6)."""
    big = origin >= 5
    if destination == "C1":
        return {"lifetime": "16", "max_mass": 1_000_000_000, "max_jump_mass": 62_000_000}
    if destination in ("C5", "C6"):
        return {
            "lifetime": "24" if big else "16",
            "max_mass": 3_000_000_000,
            "max_jump_mass": 1_350_000_000 if big else 375_000_000,
        }
    return {
        "lifetime": "16",
        "max_mass": 3_000_000_000 if big else 2_000_000_000,
        "max_jump_mass": 1_000_000_000 if big else 375_000_000,
    }


def _wormhole(system_id: int) -> dict[str, Any]:
    rng = random.Random(system_id ^ 0x5757)
    system_class = rng.randint(1, 6)
    shattered = rng.random() < SHATTERED_SHARE
    letter, regions = _JSPACE_REGIONS[system_class]
    region_number = 33 if shattered else rng.choice(regions)
    region_letter = "K" if shattered else letter
    statics = (
        [] if shattered else rng.sample(_STATICS_BY_CLASS[system_class], rng.choice((1, 1, 2)))
    )
    data: dict[str, Any] = {
        "solar_system_id": system_id,
        "solar_system_name": system_name(system_id),
        "region_id": 11_000_000 + region_number,
        "region_name": f"{region_letter}-R{region_number:05d}",
        "constellation_id": 21_000_000 + rng.randrange(1000),
        "constellation_name": f"{region_letter}-C{rng.randrange(1, 400):05d}",
        "system_class": system_class,
        "security": "-1.0",
        "type_description": f"Class {system_class}",
        "class_title": f"C{system_class}",
        "is_shattered": shattered,
        "statics": [name for name, _ in statics],
        "static_details": [
            {
                "name": name,
                "destination": {
                    "id": destination.lower(),
                    "name": _DESTINATIONS[destination],
                    "short_name": destination,
                },
                "properties": _properties(system_class, destination) | {"mass_regeneration": 0},
            }
            for name, destination in statics
        ],
        "wandering": [],
        "sun_type_id": rng.choice(SUN_TYPES),
    }
    if rng.random() < EFFECT_SHARE:
        data |= {"effect_name": rng.choice(EFFECTS), "effect_power": system_class}
    return data


def _known_space(system_id: int) -> dict[str, Any]:
    rng = random.Random(system_id ^ 0x4B4B)
    band = security_band(system_id)
    system_class, title, description, (low, high) = _KSPACE_CLASS[band]
    region = rng.choice(_KSPACE_REGIONS[band])
    return {
        "solar_system_id": system_id,
        "solar_system_name": system_name(system_id),
        "region_id": 10_000_000 + rng.randrange(1, 70),
        "region_name": region,
        "constellation_id": 20_000_000 + rng.randrange(1000),
        "constellation_name": f"{region.split()[-1][:4]}-{rng.randrange(1, 99):02d}",
        "system_class": system_class,
        "security": f"{rng.uniform(low, high):.4f}",
        "type_description": description,
        "class_title": title,
        "is_shattered": False,
        "statics": [],
        "static_details": [],
        "wandering": [],
        "sun_type_id": rng.choice(SUN_TYPES),
    }


def static_info(system_id: int) -> dict[str, Any] | None:
    """The ``data`` the endpoint answers for ``system_id``; ``None`` for an unknown system."""
    if system_id in WORMHOLE_SYSTEMS:
        return _wormhole(system_id)
    if system_id in KSPACE_SYSTEMS:
        return _known_space(system_id)
    return None


def wormholes(system_class: int, *, shattered: bool = False, effect: bool = False) -> Iterator[int]:
    """Wormhole system ids of a class, in id order (for picking a demo's showcase)."""
    for system_id in WORMHOLE_SYSTEMS:
        data = _wormhole(system_id)
        if data["system_class"] != system_class or data["is_shattered"] != shattered:
            continue
        if effect and "effect_name" not in data:
            continue
        yield system_id
