"""The outside world of the end-to-end benchmark, in a process of its own.

:class:`RemoteWorld` spawns a process that runs the simulator's wanderer-kills
server, one Wanderer map server and (for the soak) the Discord fake, and
publishes seeded traffic at the rate it is told. It lives in another process so
that the servers' CPU (JSON encoding, WebSocket framing, SSE writes, killmail
generation) runs on the other core instead of competing for the GIL of the
pipeline under test.

The traffic:

- killmails shaped by :class:`~simulator.traffic.TrafficGenerator` (names
  beside ids, ``zkb``, several attackers; 2.3 KB median, 4.3 KB mean), all in
  systems the map tracks from the start, so every kill is notifiable. A pool
  of generated killmails is reused with fresh ids and kill times, so that
  generation does not limit the rate. The kills server pushes each live kill
  twice, as the real one does;
- a share of the kills also published by the map as ``map_kill`` (the
  cross-source duplicate);
- map activity (systems and characters coming and going, signatures,
  connections) on a pool of systems disjoint from the kills' systems, so the
  churn moves the kill subscription without making a published kill
  unnotifiable.

Arrivals are Poisson (:class:`~simulator.traffic.Schedule`, seeded).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any, Final

from simulator.traffic import iso_seconds, parse_iso, system_name

SLUG: Final = "bench"
API_KEY: Final = "bench-map-key"
CHANNEL_ID: Final = "100000000000000042"
TICK_S: Final = 0.005
PUBLISH_CHUNK: Final = 500
START_TIMEOUT_S: Final = 60.0
ANSWER_TIMEOUT_S: Final = 150.0
"""The longest the world takes to answer a command (publishing a burst, waiting for frames sent)."""
_KILL_URL = re.compile(r"/kill/(\d+)/")


@dataclass(frozen=True, slots=True)
class WorldSettings:
    """What the world runs and publishes.

    Attributes:
        seed: every random choice derives from it.
        tracked_systems: how many systems the map holds from the start (the kills' systems).
        tracked_characters: how many characters the map tracks from the start.
        templates: generated killmails reused with fresh ids.
        map_kill_share: share of kills the map also publishes as ``map_kill``.
        activity_share: map activity events per kill.
        preload_per_system: kills per system the kills server replays after a join.
        outbox_capacity: frames the kills server queues per client before it
            drops it as a slow consumer.
        record_ids: remember every published killmail id (for the soak's check).
        discord: run the Discord fake too.
        discord_bucket_limit, discord_bucket_window_s, discord_global_per_s:
            the fake's rate limits (a higher limit than Discord's, so that the
            soak's rate is not throttled to a crawl).
    """

    seed: int = 42
    tracked_systems: int = 12
    tracked_characters: int = 8
    templates: int = 2000
    map_kill_share: float = 0.05
    activity_share: float = 0.01
    preload_per_system: int = 5
    outbox_capacity: int = 400_000
    record_ids: bool = False
    discord: bool = False
    discord_bucket_limit: int = 1000
    discord_bucket_window_s: float = 1.0
    discord_global_per_s: int = 1000

    @property
    def events_per_kill(self) -> float:
        """Events the pipeline receives per published kill (two pushes, map_kill, activity)."""
        return 2.0 + self.map_kill_share + self.activity_share


@dataclass(frozen=True, slots=True)
class WorldUrls:
    """Where the world's servers listen, and what the map tracks from the start."""

    kills: str
    map_base: str
    discord_base: str | None
    discord_token: str | None
    systems: tuple[int, ...]
    characters: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WorldStatistics:
    """Counters of the world since start.

    ``events_offered`` counts what the pipeline is sent: two pushes per kill
    to each joined client, every map event (``map_kill`` included).
    """

    kills_published: int
    map_kills_published: int
    map_events_published: int
    frames_sent: int
    outbox: int
    slow_consumer_drops: int
    kills_clients_joined: int
    map_streams: int
    map_events_written: int
    discord_requests: int
    discord_429: int
    discord_messages: int

    @property
    def events_offered(self) -> int:
        return 2 * self.kills_published + self.map_events_published


class _Traffic:
    """Publishes kills and map events at the current rates, from a thread of its own."""

    def __init__(self, settings: WorldSettings, kills: Any, map_server: Any) -> None:
        from simulator.traffic import Schedule, TrafficGenerator

        self._schedule_class = Schedule
        self._settings = settings
        self._kills = kills
        self._map = map_server
        generator = TrafficGenerator(settings.seed)
        pool = generator.systems
        self.tracked = pool[: settings.tracked_systems]
        churn = pool[settings.tracked_systems :]
        kill_generator = TrafficGenerator(settings.seed, systems=self.tracked)
        now = time.time()
        self._templates: list[tuple[dict[str, Any], float]] = []
        for _ in range(settings.templates):
            killmail = kill_generator.killmail(now)
            kill_time = parse_iso(killmail["kill_time"])
            self._templates.append((killmail, now - (kill_time or now)))
        self.characters = kill_generator.characters[: settings.tracked_characters]
        self._activity = TrafficGenerator(settings.seed + 1, systems=churn)
        self.pilots = {cid: kill_generator.pilot(cid) for cid in self.characters}
        self._next_id = 130_000_000
        self._index = 0
        self._lock = threading.Lock()
        self._kill_schedule: Any = None
        self._activity_schedule: Any = None
        self._share_carry = 0.0
        self.kills_published = 0
        self.map_kills_published = 0
        self.map_events_published = 0
        self.ids: list[int] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2e-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)

    def set_rate(self, kills_per_s: float, seed: int) -> None:
        """Publish ``kills_per_s`` kills a second from now on (0 stops), arrivals seeded."""
        activity = kills_per_s * self._settings.activity_share
        with self._lock:
            self._kill_schedule = (
                self._schedule_class(kills_per_s, seed=seed) if kills_per_s > 0 else None
            )
            self._activity_schedule = (
                self._schedule_class(activity, seed=seed + 1) if activity > 0 else None
            )

    def burst(self, count: int) -> None:
        """Publish ``count`` kills now, as fast as the server takes them (no map events)."""
        for first in range(0, count, PUBLISH_CHUNK):
            kills = [self._kill(time.time()) for _ in range(min(PUBLISH_CHUNK, count - first))]
            self._kills.publish_many(kills)
            self.kills_published += len(kills)

    def _kill(self, now: float) -> dict[str, Any]:
        template, age = self._templates[self._index % len(self._templates)]
        self._index += 1
        killmail = dict(template)
        killmail["killmail_id"] = self._next_id
        killmail["kill_time"] = iso_seconds(now - age)
        if self._settings.record_ids:
            self.ids.append(self._next_id)
        self._next_id += 1
        return killmail

    def _run(self) -> None:
        while not self._stopping.wait(TICK_S):
            now = time.time()
            with self._lock:
                kills_due = self._kill_schedule.due(now) if self._kill_schedule else 0
                activity_due = self._activity_schedule.due(now) if self._activity_schedule else 0
            if kills_due:
                self._publish_kills(kills_due, now)
            for _ in range(activity_due):
                event_type, payload = self._activity.map_activity(now)
                self._map.publish(event_type, payload)
                self.map_events_published += 1

    def _publish_kills(self, count: int, now: float) -> None:
        kills = [self._kill(now) for _ in range(count)]
        try:
            self._kills.publish_many(kills)
        except (RuntimeError, TimeoutError):
            logging.getLogger(__name__).warning("the kills server did not take %d kills", count)
            return
        self.kills_published += count
        for killmail in kills:
            self._share_carry += self._settings.map_kill_share
            if self._share_carry < 1.0:
                continue
            self._share_carry -= 1.0
            payload = dict(killmail)
            payload["solar_system_id"] = killmail["system_id"]
            self._map.publish_map_kill(payload)
            self.map_kills_published += 1
            self.map_events_published += 1


def _serve(pipe: Connection, settings: WorldSettings) -> None:  # noqa: PLR0912, PLR0915 -- one command loop
    from simulator.discord_fake import DiscordFake
    from simulator.kills_server import KillsServer
    from simulator.map_server import MapServer

    logging.basicConfig(level=logging.ERROR)
    kills = KillsServer(
        outbox_capacity=settings.outbox_capacity,
        history_limit=50_000,
        preload_per_system=settings.preload_per_system,
        idle_timeout_s=120.0,
    )
    kills.start()
    map_server = MapServer(SLUG, API_KEY, max_queued_per_stream=200_000, seed=settings.seed)
    traffic = _Traffic(settings, kills, map_server)
    for system in traffic.tracked:
        map_server.add_system(system, system_name(system))
    for character_id in traffic.characters:
        pilot = traffic.pilots[character_id]
        map_server.add_character(character_id, pilot.name)
    map_server.start()
    discord = None
    if settings.discord:
        discord = DiscordFake(
            bucket_limit=settings.discord_bucket_limit,
            bucket_window_s=settings.discord_bucket_window_s,
            global_per_s=settings.discord_global_per_s,
        ).start()
    traffic.start()
    pipe.send(
        WorldUrls(
            kills=kills.url,
            map_base=map_server.base_url,
            discord_base=discord.base_url if discord else None,
            discord_token=discord.bot_token if discord else None,
            systems=tuple(traffic.tracked),
            characters=tuple(traffic.characters),
        )
    )
    try:
        while True:
            command, argument = pipe.recv()
            answer: Any = None
            if command == "stop":
                break
            if command == "rate":
                kills_per_s, seed = argument
                traffic.set_rate(kills_per_s, seed)
            elif command == "burst":
                traffic.burst(int(argument))
            elif command == "statistics":
                answer = _stats(traffic, kills, map_server, discord)
            elif command == "wait_sent":
                answer = _wait_sent(kills, int(argument))
            elif command == "drop_kills":
                answer = kills.drop_all()
            elif command == "drop_map":
                answer = map_server.drop_all()
            elif command == "storm_429":
                count, retry_after = argument
                if discord is not None:
                    discord.storm_429(count, retry_after)
            elif command == "published_ids":
                answer = list(traffic.ids)
            elif command == "discord_kill_ids":
                answer = _discord_kill_ids(discord)
            elif command == "discord_messages":
                answer = len(discord.messages(CHANNEL_ID)) if discord else 0
            pipe.send(answer)
    finally:
        traffic.stop()
        if discord is not None:
            discord.stop()
        map_server.stop()
        kills.stop()
        pipe.send(None)


def _stats(traffic: _Traffic, kills: Any, map_server: Any, discord: Any) -> WorldStatistics:
    server = kills.statistics()
    map_stats = map_server.statistics()
    fake = discord.statistics() if discord is not None else None
    return WorldStatistics(
        kills_published=traffic.kills_published,
        map_kills_published=traffic.map_kills_published,
        map_events_published=traffic.map_events_published,
        frames_sent=server.frames_sent,
        outbox=sum(c.outbox_size for c in server.connections),
        slow_consumer_drops=server.slow_consumer_drops,
        kills_clients_joined=sum(1 for c in server.connections if c.joined),
        map_streams=map_stats.open_streams,
        map_events_written=map_stats.events_written,
        discord_requests=fake.requests if fake else 0,
        discord_429=fake.answered_429 if fake else 0,
        discord_messages=fake.messages if fake else 0,
    )


def _wait_sent(kills: Any, frames: int, timeout_s: float = 120.0) -> float:
    """``time.monotonic()`` once the server has written ``frames`` frames in all."""
    deadline = time.monotonic() + timeout_s
    while kills.statistics().frames_sent < frames:
        if time.monotonic() > deadline:
            msg = f"the kills server did not send {frames} frames in {timeout_s}s"
            raise TimeoutError(msg)
        time.sleep(0.002)
    return time.monotonic()


def _discord_kill_ids(discord: Any) -> list[int]:
    """The killmail id of every kill message the fake created, in creation order."""
    if discord is None:
        return []
    ids = []
    for message in discord.messages(CHANNEL_ID):
        for embed in message.get("embeds") or ():
            found = _KILL_URL.search(str(embed.get("url") or ""))
            if found:
                ids.append(int(found.group(1)))
    return ids


class RemoteWorld:
    """The world in a child process, driven by commands; a context manager."""

    def __init__(self, settings: WorldSettings) -> None:
        self.settings = settings
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, settings), name="e2e-world", daemon=True
        )
        self._process.start()
        self.urls: WorldUrls = self._answer("start", START_TIMEOUT_S)
        self._rate_seed = settings.seed

    def __enter__(self) -> RemoteWorld:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _call(self, command: str, argument: object = None) -> Any:
        self._pipe.send((command, argument))
        return self._answer(command, ANSWER_TIMEOUT_S)

    def _answer(self, command: str, timeout_s: float) -> Any:
        """The world's answer to ``command``; ``TimeoutError`` (never a hang) if none comes."""
        if not self._pipe.poll(timeout_s):
            state = "running" if self._process.is_alive() else "dead"
            msg = f"the world process ({state}) did not answer {command!r} within {timeout_s:g}s"
            raise TimeoutError(msg)
        return self._pipe.recv()

    def set_rate(self, events_per_s: float) -> None:
        """Offer about ``events_per_s`` events a second to the pipeline (0 stops)."""
        self._rate_seed += 2
        self._call("rate", (events_per_s / self.settings.events_per_kill, self._rate_seed))

    def burst(self, kills: int) -> None:
        """Publish ``kills`` kills as fast as the server takes them; returns once published."""
        self._call("burst", kills)

    def begin_burst(self, kills: int) -> None:
        """:meth:`burst` without waiting; :meth:`end_burst` waits for it."""
        self._pipe.send(("burst", kills))

    def end_burst(self) -> None:
        self._answer("burst", ANSWER_TIMEOUT_S)

    def statistics(self) -> WorldStatistics:
        stats: WorldStatistics = self._call("statistics")
        return stats

    def wait_sent(self, frames: int) -> float:
        sent: float = self._call("wait_sent", frames)
        return sent

    def drop_kills(self) -> int:
        dropped: int = self._call("drop_kills")
        return dropped

    def drop_map(self) -> int:
        dropped: int = self._call("drop_map")
        return dropped

    def storm_429(self, count: int, retry_after_s: float) -> None:
        self._call("storm_429", (count, retry_after_s))

    def published_ids(self) -> list[int]:
        ids: list[int] = self._call("published_ids")
        return ids

    def discord_kill_ids(self) -> list[int]:
        ids: list[int] = self._call("discord_kill_ids")
        return ids

    def stop(self) -> None:
        if not self._process.is_alive():
            return
        with contextlib.suppress(EOFError, OSError, TimeoutError):
            self._call("stop")
        self._process.join(20)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


def describe(stats: WorldStatistics) -> dict[str, Any]:
    return asdict(stats) | {"events_offered": stats.events_offered}


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            msg = f"{what} did not happen within {timeout_s:g}s"
            raise TimeoutError(msg)
        time.sleep(0.02)
