"""Seeded traffic of the simulated EVE world: killmails and Wanderer map activity.

Pure: no I/O, no threads, no clock of its own. Time comes in as ``now`` (Unix
seconds) and every random choice comes from one ``random.Random(seed)``, so the
same seed and the same calls give the same traffic, byte for byte.

Killmails follow the wanderer-kills shape (``system_id`` and, as newer servers
send it, ``solar_system_name``; names and tickers beside ids, camelCase inside
``zkb``, nil fields omitted). The world is bounded: a fixed population of
pilots, corporations and alliances and a fixed pool of systems; the map's
activity (:mod:`simulator.traffic.map_activity`) is a subset of those pools.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from typing import Any, Final

from simulator.traffic.map_activity import MapActivity
from simulator.traffic.timing import iso_seconds
from simulator.traffic.universe import (
    CAPITAL,
    CAPSULE,
    KSPACE_SYSTEMS,
    MAX_TOTAL_VALUE,
    MIN_TOTAL_VALUE,
    MODERN_CHARACTER_IDS,
    SUPERCAPITAL,
    WORMHOLE_SYSTEMS,
    Alliance,
    Corporation,
    Hull,
    Pilot,
    ShipType,
    check_character_id,
    pick_ship,
    security_band,
    syllable_word,
    system_name,
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
            check_character_id(character_id)
        generated_ids = [
            character_id
            for character_id in self._rng.sample(MODERN_CHARACTER_IDS, population + len(tracked))
            if character_id not in tracked
        ][:population]
        self._pilots = {cid: self._new_pilot(cid, self._rng) for cid in (*tracked, *generated_ids)}
        self._population = tuple(self._pilots.values())
        map_pilots = tuple(self._pilots[cid] for cid in tracked) or self._population[:30]
        self._next_killmail_id = self._rng.randrange(128_000_000, 129_000_000)
        self._map = MapActivity(self._rng, self._systems, map_pilots)

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
        check_character_id(character_id)
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
        victim_ship = pick_ship(self._rng, victim=True)
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
            ship = pick_ship(self._rng, victim=True)
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
        return self._map.next(now)

    def rally_point(self, now: float) -> tuple[str, dict[str, Any]]:
        """A ``rally_point_added`` now, for a demo that wants one on a schedule.

        Raises:
            ValueError: the map has no system yet to rally in.
        """
        return self._map.rally_point(now)

    def system_added(self, system_id: int) -> tuple[str, dict[str, Any]]:
        """``add_system`` of this system of the pool now (a demo's scripted moment).

        Raises:
            ValueError: the system is not in the pool, or already on the map.
        """
        return self._map.system_added(system_id)

    def map_systems(self) -> tuple[dict[str, Any], ...]:
        """The systems on the map now, as ``add_system`` payloads (for a REST bootstrap)."""
        return self._map.systems()

    def map_characters(self) -> tuple[dict[str, Any], ...]:
        """The characters on the map now, as character event payloads."""
        return self._map.characters()

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
        ship = pick_ship(self._rng, victim=False)
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
            Alliance(aid, f"{syllable_word(self._rng, 2, 3)} {self._rng.choice(_ALLIANCE_WORDS)}")
            for aid in ids
        ]

    def _corporations_of(self, count: int, alliances: Sequence[Alliance]) -> list[Corporation]:
        ids = self._rng.sample(range(98_000_000, 98_800_000), count)
        return [
            Corporation(
                cid,
                f"{syllable_word(self._rng, 1, 3)} {self._rng.choice(_CORPORATION_WORDS)}",
                self._rng.choice(alliances) if self._rng.random() < 0.75 else None,
            )
            for cid in ids
        ]

    def _new_pilot(self, character_id: int, rng: random.Random) -> Pilot:
        first = syllable_word(rng, 1, 3)
        last = syllable_word(rng, 1, 2) + rng.choice(_SURNAME_ENDINGS)
        name = first if rng.random() < 0.2 else f"{first} {last.capitalize()}"
        return Pilot(
            character_id,
            name,
            rng.choice(self._corporations),
            round(max(-10.0, min(5.0, rng.gauss(0.5, 3.0))), 1),
        )


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
