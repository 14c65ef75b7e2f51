"""The embedded demo world: wanderer-kills, Wanderer maps and Discord on loopback.

``python run.py`` on the shipped configuration (``[simulator] enabled``)
starts a :class:`World` before the supervision tree and points the sources and
the Discord sink at it. The world is real protocol traffic: a seeded
generator publishes killmails to the kills server (which pushes each live kill
twice, as the real one does), republishes some of them as a map's
``map_kill`` (the cross-source duplicate), and plays map activity (systems and
characters coming and going, rally points). The map serves each system's
static info.

So that a new user sees every kind of card within a minute, the systems are a
showcase (wormholes of every class, a C4 with an effect, a shattered C5,
known space of every band), a share of the kills are the map's own pilots
killing or dying outside the chain (what only the characters-only kills
connection receives), and an opening script adds the showcase systems to the
map one by one.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

from realtime.config import Config, Secret, SimulatorConfig
from simulator import static_info as universe
from simulator.discord_fake import DiscordFake
from simulator.kills_server import KillsServer
from simulator.map_server import MapServer
from simulator.traffic import KSPACE_SYSTEMS, Schedule, TrafficGenerator

logger = logging.getLogger(__name__)

MAP_API_KEY = "demo-map-key"
DISCORD_CHANNEL = "100000000000000001"
INITIAL_MAP_EVENTS = 20
"""Map activity played before anyone connects, so the map starts with systems."""
MAP_KILL_SHARE = 0.25
"""Share of kills that a map also reports as ``map_kill``."""
TICK_S = 0.1
RALLY_EVERY_S = 45.0
"""Rally points are rare on a real map; the demo raises one this often, first at half."""
PILOTS_ANYWHERE_SHARE = 0.2
"""Share of kills that involve a pilot on the map in a system off the map."""
OPENING_STEP_S = 6.0
"""The opening script adds one showcase system this often."""


def showcase_systems() -> tuple[int, ...]:
    """The systems the opening adds, in order: a C4 with an effect (and its statics),
    a shattered C5, a C2, known space of each band, a C6 with an effect."""
    kspace = [next(s for s in KSPACE_SYSTEMS if s % 3 == band) for band in (0, 1, 2)]
    return (
        next(universe.wormholes(4, effect=True)),
        next(universe.wormholes(5, shattered=True)),
        next(universe.wormholes(2)),
        *kspace,
        next(universe.wormholes(6, effect=True)),
    )


def demo_systems(seed: int) -> tuple[int, ...]:
    """The showcase, then a seeded mix of other wormholes and known space."""
    rng = random.Random(seed)
    showcase = showcase_systems()
    others = [
        *rng.sample(range(31_000_001, 31_002_605), 24),
        *rng.sample(KSPACE_SYSTEMS, 16),
    ]
    return (*showcase, *(s for s in others if s not in showcase))


class World:
    """Every simulated service, and the traffic between them.

    Args:
        settings: ``[simulator]``: ports (0 = any free port), seed, rates.
        slugs: one map server per configured map slug.
    """

    def __init__(self, settings: SimulatorConfig, slugs: Sequence[str]) -> None:
        self.settings = settings
        self.generator = TrafficGenerator(settings.seed, systems=demo_systems(settings.seed))
        self.kills = KillsServer(port=settings.kills_port)
        self.maps = {
            slug: MapServer(
                slug,
                MAP_API_KEY,
                port=settings.map_port + index if settings.map_port else 0,
                seed=settings.seed + index,
            )
            for index, slug in enumerate(slugs)
        }
        self.discord = DiscordFake(port=settings.discord_port)
        self._random = random.Random(settings.seed)
        self._opening: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published_kills = 0
        self.published_map_events = 0

    def start(self) -> World:
        self.kills.start()
        for server in self.maps.values():
            server.start()
        self.discord.start()
        now = time.time()
        for _ in range(INITIAL_MAP_EVENTS):
            self._map_event(now)
        self._opening = [s for s in showcase_systems() if s not in self._on_map()]
        self._thread = threading.Thread(target=self._run, name="world-traffic", daemon=True)
        self._thread.start()
        logger.info(
            "demo world: kills %s, maps %s, discord %s",
            self.kills.url,
            ", ".join(server.base_url for server in self.maps.values()),
            self.discord.base_url,
        )
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.discord.stop()
        for server in self.maps.values():
            server.stop()
        self.kills.stop()

    def __enter__(self) -> World:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def apply(self, config: Config) -> Config:
        """``config`` with the sources and the Discord sink pointed at this world."""
        kills = dataclasses.replace(config.sources.kills, url=self.kills.url)
        maps = tuple(
            dataclasses.replace(
                map_config,
                base_url=self.maps[map_config.slug].base_url,
                api_key=Secret(MAP_API_KEY, "simulator"),
            )
            for map_config in config.maps
        )
        discord = dataclasses.replace(
            config.notify.discord,
            api_base=self.discord.base_url,
            bot_token=Secret(self.discord.bot_token, "simulator"),
            channel_id=config.notify.discord.channel_id or DISCORD_CHANNEL,
            webhook_url=Secret(self.discord.add_webhook(DISCORD_CHANNEL), "simulator"),
        )
        return dataclasses.replace(
            config,
            sources=dataclasses.replace(config.sources, kills=kills),
            maps=maps,
            notify=dataclasses.replace(config.notify, discord=discord),
        )

    def _run(self) -> None:
        kills = Schedule(self.settings.kills_per_s, seed=self.settings.seed)
        activity = Schedule(self.settings.map_events_per_s, seed=self.settings.seed + 1)
        next_rally = time.time() + RALLY_EVERY_S / 2
        next_opening = time.time() + OPENING_STEP_S
        while not self._stop.wait(TICK_S):
            now = time.time()
            try:
                for _ in range(kills.due(now)):
                    self.publish_kill(now)
                for _ in range(activity.due(now)):
                    self._map_event(now)
                if now >= next_rally and self.maps:
                    next_rally = now + RALLY_EVERY_S
                    self._publish_map(*self.generator.rally_point(now))
                if now >= next_opening and self._opening and self.maps:
                    next_opening = now + OPENING_STEP_S
                    self.open_next()
            except Exception:
                logger.exception("demo world: traffic failed; it goes on")

    def open_next(self) -> None:
        """Add the next showcase system that is not on the map (it may have come meanwhile)."""
        while self._opening:
            system_id = self._opening.pop(0)
            if system_id not in self._on_map():
                self._publish_map(*self.generator.system_added(system_id))
                return

    def _on_map(self) -> set[int]:
        return {int(s["solar_system_id"]) for s in self.generator.map_systems()}

    def publish_kill(self, now: float) -> dict[str, Any]:
        """Publish the next kill (sometimes also as a map's ``map_kill``); returns it."""
        pilots = [int(c["character_eve_id"]) for c in self.generator.map_characters()]
        if pilots and self._random.random() < PILOTS_ANYWHERE_SHARE:
            # one of ours, off the chain: only a characters-only join receives it
            outside = [s for s in self.generator.systems if s not in self._on_map()]
            killmail = self.generator.killmail(
                now,
                system_id=self._random.choice(outside) if outside else None,
                involving=self._random.choice(pilots),
            )
        else:
            killmail = self.generator.killmail(now, system_id=self._tracked_system())
        self.kills.publish(killmail)
        self.published_kills += 1
        on_map = killmail["system_id"] in self._on_map()
        # a map reports the kills in its own systems only
        if self.maps and on_map and self._random.random() < MAP_KILL_SHARE:
            server = next(iter(self.maps.values()))
            server.publish_map_kill(self.generator.map_kill_payload(killmail))
        return killmail

    def _tracked_system(self) -> int | None:
        """Half of the kills happen in a system on the map, so the demo notifies."""
        systems = [s["solar_system_id"] for s in self.generator.map_systems()]
        if systems and self._random.random() < 0.5:
            return int(self._random.choice(systems))
        return None

    def _map_event(self, now: float) -> None:
        if not self.maps:
            return
        self._publish_map(*self.generator.map_activity(now))

    def _publish_map(self, event_type: str, payload: dict[str, Any]) -> None:
        for server in self.maps.values():
            server.publish(event_type, payload)
        self.published_map_events += 1
