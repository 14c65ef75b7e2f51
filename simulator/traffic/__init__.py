"""Seeded traffic of the simulated EVE world: killmails and Wanderer map activity.

Pure: no I/O, no threads, no clock of its own. Time comes in as ``now`` (Unix
seconds) and every random choice comes from one ``random.Random(seed)``, so the
same seed and the same calls give the same traffic, byte for byte.

Killmails follow the wanderer-kills shape (``system_id`` and, as newer servers
send it, ``solar_system_name``; names and tickers beside ids, camelCase inside
``zkb``, nil fields omitted). Map activity follows the payloads of the Wanderer
map's SSE events. The world is bounded: a fixed population of pilots,
corporations and alliances, a fixed pool of systems, and map state that is a
subset of those pools.

Where things live:

- :mod:`~simulator.traffic.generator`: :class:`TrafficGenerator`, killmails
  and fights, and the entry points for map activity;
- :mod:`~simulator.traffic.map_activity`: what is on the map and what happens
  on it next;
- :mod:`~simulator.traffic.universe`: id pools, ship types and hulls, pilots
  and their corporations and alliances, system names;
- :mod:`~simulator.traffic.timing`: :class:`Schedule` (Poisson arrivals and
  bursts) and the ISO 8601 time formats.
"""

from simulator.traffic.generator import TrafficGenerator
from simulator.traffic.timing import Schedule, iso_micros, iso_seconds, parse_iso
from simulator.traffic.universe import (
    ADVANCED_CRUISER,
    BATTLECRUISER,
    BATTLESHIP,
    CAPITAL,
    CAPSULE,
    CHARACTER_IDS,
    CRUISER,
    DESTROYER,
    FRIGATE,
    INDUSTRIAL,
    KSPACE_SYSTEMS,
    MARAUDER,
    MAX_TOTAL_VALUE,
    MIN_TOTAL_VALUE,
    MINING,
    MODERN_CHARACTER_IDS,
    PIRATE_BATTLESHIP,
    SHIP_TYPES,
    STRATEGIC_CRUISER,
    SUPERCAPITAL,
    WORMHOLE_SYSTEMS,
    Alliance,
    Corporation,
    Hull,
    Pilot,
    ShipType,
    security_band,
    system_name,
    ticker_of,
)

__all__ = [
    "ADVANCED_CRUISER",
    "BATTLECRUISER",
    "BATTLESHIP",
    "CAPITAL",
    "CAPSULE",
    "CHARACTER_IDS",
    "CRUISER",
    "DESTROYER",
    "FRIGATE",
    "INDUSTRIAL",
    "KSPACE_SYSTEMS",
    "MARAUDER",
    "MAX_TOTAL_VALUE",
    "MINING",
    "MIN_TOTAL_VALUE",
    "MODERN_CHARACTER_IDS",
    "PIRATE_BATTLESHIP",
    "SHIP_TYPES",
    "STRATEGIC_CRUISER",
    "SUPERCAPITAL",
    "WORMHOLE_SYSTEMS",
    "Alliance",
    "Corporation",
    "Hull",
    "Pilot",
    "Schedule",
    "ShipType",
    "TrafficGenerator",
    "iso_micros",
    "iso_seconds",
    "parse_iso",
    "security_band",
    "system_name",
    "ticker_of",
]
