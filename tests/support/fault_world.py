"""The world of the fault-injection suite: the real program against loopback servers.

:func:`fault_world` starts a wanderer-kills server, one Wanderer map and a
Discord fake in the test process, writes a configuration that points
``python run.py`` at them (``[simulator] enabled = false``, the Discord sink in
bot mode, fault injection allowed, every heartbeat, keepalive, timeout and
backoff short so that faults are found within a second), and yields a
:class:`FaultWorld` that runs the program as a subprocess, publishes traffic,
and checks what reached Discord. Everything is stopped when the ``with``
block ends, whatever happened in it: the program is killed, the servers stop.

The map tracks :data:`TRACKED_SYSTEMS` and :data:`TRACKED_CHARACTER`. A kill
published with :meth:`FaultWorld.publish_kill` is *notifiable* (it must
produce exactly one Discord message) when it happened in a tracked system or
involves the tracked character, and is younger than ``max_kill_age_s``; every
other published kill is *silent* (it must produce none). Map events published
with :meth:`FaultWorld.add_system`, :meth:`FaultWorld.character_added` and
:meth:`FaultWorld.rally_point` must each produce one message too.

Messages are recognised by what a user sees, not by the program's internals:
a kill by the zKillboard link in its embed, a system or character by the id in
the footer, a rally point by its text (:func:`identity`).
"""

from __future__ import annotations

import collections
import random
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import requests

from realtime.event import parse_time
from simulator.discord_fake import DiscordFake
from simulator.kills_server import KillsServer
from simulator.map_server import MapServer
from simulator.traffic import TrafficGenerator, iso_seconds
from tests.support.process import Program, run_cli, start
from tests.support.sockets import free_port
from tests.support.waiting import wait_for

SLUG = "faults"
MAP_API_KEY = "fault-suite-map-key"
CHANNEL = "100000000000000077"
TRACKED_SYSTEMS = (31000101, 31000102, 31000103)
UNTRACKED_SYSTEMS = (30000142, 30002187)
TRACKED_CHARACTER = 95_000_001
"""Outside the generator's population: random kills never involve it by chance."""
PRELOAD_PER_SYSTEM = 5
"""What the kills server replays per system after a (re)join, as the real one does."""
MAX_KILL_AGE_S = 3600.0

Identity = tuple[str, str]
"""What a Discord message is about: ``("kill", "123")``, ``("system", "31000001")``..."""

_ZKILLBOARD = re.compile(r"^https://zkillboard\.com/kill/(\d+)/$")
_FOOTER_ID = re.compile(r"\b(system|character) (\d+)\b")

_CONFIG = """\
[app]
data_dir = "{data_dir}"
log_level = "INFO"

[http]
port = {http_port}

[simulator]
enabled = false

[sources.kills]
url = "{kills_url}"
heartbeat_interval_s = {heartbeat_s}
heartbeat_timeout_s = {heartbeat_timeout_s}
reconnect_min_s = 0.05
reconnect_max_s = 0.4
circuit_failures = 1000
circuit_open_s = 0.5

[[maps]]
slug = "{slug}"
base_url = "{map_url}"
api_key = "{map_key}"
keepalive_timeout_s = 1.5
connect_timeout_s = 2.0
reconnect_min_s = 0.05
reconnect_max_s = 0.4
config_error_retry_s = 0.4

[notify]
sinks = ["discord"]

[notify.discord]
mode = "bot"
api_base = "{discord_url}"
bot_token = "{bot_token}"
channel_id = "{channel}"
request_timeout_s = 0.6
max_attempts = 1000
retry_min_s = 0.05
retry_max_s = 0.4

[filters]
max_kill_age_s = {max_kill_age_s}

# every kind but the program's own (alerts and status messages would be
# "unexpected" here: this world counts what the outside world caused)
[[routes]]
name = "world"
kinds = ["kill", "system_added", "character_added", "character_removed", "rally_point"]

[supervision]
max_restarts = 100
max_seconds = 30.0
backoff_min_s = 0.01
backoff_max_s = 0.2
shutdown_timeout_s = 2.0

[debug]
allow_fault_injection = true
"""


def identity(message: Mapping[str, Any]) -> Identity:
    """What a Discord message created by the program is about, as a user reads it.

    ``("kill", killmail_id)`` from the zKillboard link; ``("system", id)``,
    ``("character_added", id)`` or ``("character_removed", id)`` from the
    footer; ``("rally", text)`` for a rally point (its quoted message);
    ``("unknown", ...)`` else.
    """
    embeds = message.get("embeds") or [{}]
    embed = embeds[0]
    url = _ZKILLBOARD.match(str(embed.get("url", "")))
    if url is not None:
        return ("kill", url.group(1))
    footer = str((embed.get("footer") or {}).get("text", ""))
    description = str(embed.get("description", ""))
    about = _FOOTER_ID.search(footer)
    if about is not None and about.group(1) == "system":
        return ("system", about.group(2))
    if about is not None:
        added = "is now tracked" in description
        return ("character_added" if added else "character_removed", about.group(2))
    if footer.startswith(f"Map {SLUG} \u2022 rally point"):
        # the rally's message is quoted on the description's last line
        return ("rally", description.rsplit("\n> ", 1)[-1])
    return ("unknown", repr(message)[:200])


@dataclass
class FaultWorld:
    """The servers, the program and the ledger of what was published (see the module doc)."""

    directory: Path
    kills: KillsServer
    map: MapServer
    discord: DiscordFake
    http_port: int
    seed: int
    heartbeat_s: float = 0.4
    config_extra: str = ""
    """TOML appended to the configuration (tables the template does not have)."""
    generator: TrafficGenerator = field(init=False)
    rand: random.Random = field(init=False)
    expected: collections.Counter[Identity] = field(default_factory=collections.Counter)
    silent: set[str] = field(default_factory=set)
    program: Program | None = None
    runs: int = 0
    _rally_points: int = 0
    _systems_used: int = 0
    _characters_added: int = 0

    def __post_init__(self) -> None:
        self.generator = TrafficGenerator(self.seed, population=200)
        self.rand = random.Random(self.seed)

    # -- the program ------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.directory / "config.toml"

    @property
    def database(self) -> Path:
        return self.directory / "data" / "journal.sqlite3"

    def write_config(self) -> None:
        self.config_path.write_text(
            _CONFIG.format(
                data_dir=self.directory / "data",
                http_port=self.http_port,
                kills_url=self.kills.url,
                slug=SLUG,
                map_url=self.map.base_url,
                map_key=MAP_API_KEY,
                discord_url=self.discord.base_url,
                bot_token=self.discord.bot_token,
                channel=CHANNEL,
                max_kill_age_s=MAX_KILL_AGE_S,
                heartbeat_s=self.heartbeat_s,
                heartbeat_timeout_s=3 * self.heartbeat_s,
            )
            + self.config_extra,
            encoding="utf-8",
        )

    def start_program(self, *, wait_connected: bool = True) -> Program:
        """Run ``python run.py --config ...``; wait until it is live (and connected to both feeds).

        Connected means: the kills server has a joined channel subscribed to
        every tracked system and the tracked character, and the map server an
        open event stream.
        """
        assert self.program is None or not self.program.alive(), "the program already runs"
        self.runs += 1
        log = self.directory / f"run-{self.runs}.log"
        self.program = start(self.config_path, self.http_port, log=log)
        if wait_connected:
            self.wait_connected()
        return self.program

    def wait_connected(self, timeout_s: float = 15.0) -> None:
        """Wait until the program is joined on the kills feed and streaming the map."""
        wait_for(self.kills_joined, timeout_s=timeout_s, interval_s=0.01, what="kills joined")
        wait_for(self.map_streaming, timeout_s=timeout_s, interval_s=0.01, what="map stream")

    def wait_rejoined(self, joins_before: int, timeout_s: float = 15.0) -> None:
        """Wait for a join after ``joins_before`` (a ``joins_ok`` count); :meth:`wait_connected`."""
        wait_for(
            lambda: self.kills.statistics().joins_ok > joins_before,
            timeout_s=timeout_s,
            interval_s=0.01,
            what="a new join",
        )
        self.wait_connected(timeout_s)

    def kills_joined(self) -> bool:
        program = self.program
        if program is not None:
            program.check_running()
        joined = [c for c in self.kills.statistics().connections if c.joined]
        # kills joins with the systems, kills:characters with the characters; the
        # server may still count an abandoned socket as joined, so the program
        # must say both of its connections are joined (connected) now
        systems = set().union(*(c.systems for c in joined))
        characters = set().union(*(c.characters for c in joined))
        if not (set(TRACKED_SYSTEMS) <= systems and TRACKED_CHARACTER in characters):
            return False
        return program is None or self._kills_connected(program)

    @staticmethod
    def _kills_connected(program: Program) -> bool:
        try:
            health = requests.get(f"{program.url}/api/health", timeout=2).json()
        except (requests.RequestException, ValueError):
            return False
        states = {c["name"]: c["state"] for c in health.get("connections", [])}
        return all(
            states.get(name) in ("connected", "degraded") for name in ("kills", "kills:characters")
        )

    def map_streaming(self) -> bool:
        return self.map.statistics().open_streams > 0

    def wait_map_request(self, requests_before: int, timeout_s: float = 10.0) -> None:
        """Wait for a stream request after ``requests_before`` (``connect_attempts_total``)."""
        wait_for(
            lambda: self.map.statistics().connect_attempts_total > requests_before,
            timeout_s=timeout_s,
            interval_s=0.01,
            what="a new request for the map's event stream",
        )

    def wait_messages(self, count: int, timeout_s: float = 20.0) -> None:
        """Wait until Discord holds at least ``count`` messages in the channel."""
        wait_for(
            lambda: len(self.messages()) >= count,
            timeout_s=timeout_s,
            interval_s=0.01,
            what=f"{count} Discord messages",
        )

    def program_running(self) -> Program:
        program = self.program
        assert program is not None, "the program was never started"
        assert program.alive(), "the program is not running"
        return program

    # -- publishing -------------------------------------------------------------------

    def killmail(
        self, system_id: int | None = None, *, involving: int | None = None, age_s: float = 0.0
    ) -> dict[str, Any]:
        """A generated killmail; ``age_s`` makes it older.

        By default it happens in a tracked system, taking them in turn, so that
        ``n`` kills put at most ``ceil(n / 3)`` in any one system.
        """
        if system_id is None:
            self._systems_used += 1
            system_id = TRACKED_SYSTEMS[self._systems_used % len(TRACKED_SYSTEMS)]
        killmail = self.generator.killmail(time.time(), system_id=system_id, involving=involving)
        if age_s:
            killmail["kill_time"] = iso_seconds(time.time() - age_s)
        return killmail

    def expect_kill(self, killmail: Mapping[str, Any]) -> None:
        """Record a published killmail as notifiable or silent, by the rules in the module doc."""
        killmail_id = str(killmail["killmail_id"])
        if _notifiable(killmail):
            self.expected[("kill", killmail_id)] = 1
        else:
            self.silent.add(killmail_id)

    def publish_kill(
        self,
        killmail: Mapping[str, Any] | None = None,
        *,
        websocket: bool = True,
        map_kill: bool = False,
    ) -> dict[str, Any]:
        """Publish a kill over the WebSocket, as the map's ``map_kill``, or both."""
        kill = dict(killmail) if killmail is not None else self.killmail()
        self.expect_kill(kill)
        if websocket:
            self.kills.publish(kill)
        if map_kill:
            self.map.publish_map_kill(self.generator.map_kill_payload(kill))
        return kill

    def publish_mix(self, count: int, *, cross_source_every: int = 3) -> list[dict[str, Any]]:
        """``count`` kills: mostly notifiable, some silent, every n-th also as ``map_kill``.

        The mix, by position: a kill involving the tracked character in an
        untracked system, a kill too old to notify, a kill in an untracked
        system seen only by the map, and the rest in tracked systems.
        """
        published = []
        for index in range(count):
            both = index % cross_source_every == 0
            if index % 7 == 3:
                kill = self.killmail(
                    self.rand.choice(UNTRACKED_SYSTEMS), involving=TRACKED_CHARACTER
                )
            elif index % 7 == 5:
                kill = self.killmail(age_s=2 * MAX_KILL_AGE_S)
            elif index % 7 == 6:
                kill = self.killmail(self.rand.choice(UNTRACKED_SYSTEMS))
                published.append(self.publish_kill(kill, websocket=False, map_kill=True))
                continue
            else:
                kill = self.killmail()
            published.append(self.publish_kill(kill, map_kill=both))
        return published

    def publish_recoverable(
        self, per_system: int, *, map_kill_every: int = 2
    ) -> list[dict[str, Any]]:
        """``per_system`` kills in each tracked system, every n-th also as ``map_kill``.

        These are the kills a (re)join's preload brings back when they were
        published while the socket was down: keep ``per_system`` plus what was
        published since the last join within :data:`PRELOAD_PER_SYSTEM`.
        """
        return [
            self.publish_kill(self.killmail(), map_kill=index % map_kill_every == 0)
            for index in range(per_system * len(TRACKED_SYSTEMS))
        ]

    def send_preload(self, system_id: int, count: int) -> list[dict[str, Any]]:
        """``count`` ten-minute-old kills in ``system_id`` as one preload frame (``send_raw``).

        The server does not remember them: if the frame is lost, so are they.
        """
        kills = [self.killmail(system_id, age_s=600) for _ in range(count)]
        for kill in kills:
            self.expect_kill(kill)
        self.kills.send_raw(preload_frame(system_id, kills), systems_joins_only=True)
        return kills

    def add_system(self, system_id: int) -> str:
        """Publish ``add_system`` for a system not tracked before (one message expected)."""
        self.expected[("system", str(system_id))] += 1
        return self.map.publish(
            "add_system",
            {"solar_system_id": system_id, "name": f"J{system_id % 1_000_000:06d}"},
        )

    def character_added(self, character_id: int) -> str:
        self.expected[("character_added", str(character_id))] += 1
        pilot = self.generator.pilot(character_id)
        return self.map.publish(
            "character_added",
            {
                "character_eve_id": str(character_id),
                "name": pilot.name,
                "corporation_id": pilot.corporation.corporation_id,
                "solar_system_id": TRACKED_SYSTEMS[0],
                "online": True,
            },
        )

    def rally_point(self, system_id: int = TRACKED_SYSTEMS[0]) -> str:
        """Publish ``rally_point_added`` with a unique text (one message expected)."""
        self._rally_points += 1
        text = f"Rally number {self._rally_points} of run {self.seed}"
        self.expected[("rally", text)] += 1
        return self.map.publish(
            "rally_point_added",
            {
                "rally_point_id": f"rp{self.seed}x{self._rally_points}",
                "solar_system_id": system_id,
                "system_name": f"J{system_id % 1_000_000:06d}",
                "character_name": "Caller",
                "character_eve_id": str(TRACKED_CHARACTER),
                "message": text,
                "created_at": iso_seconds(time.time()),
            },
        )

    def publish_map_events(self, count: int, first_system: int) -> None:
        """``count`` map events that notify, cycling system added, character added, rally."""
        for index in range(count):
            kind = index % 3
            if kind == 0:
                self.add_system(first_system + index)
            elif kind == 1:
                self._characters_added += 1
                self.character_added(96_000_000 + self.seed * 1000 + self._characters_added)
            else:
                self.rally_point()

    # -- results ----------------------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        """Every message the program created in the channel, oldest first."""
        return self.discord.messages(CHANNEL)

    def delivered(self) -> collections.Counter[Identity]:
        return collections.Counter(identity(message) for message in self.messages())

    def missing(self) -> set[Identity]:
        return set(self.expected) - set(self.delivered())

    def wait_delivered(self, timeout_s: float = 20.0) -> None:
        """Wait until every expected message exists and the program has nothing left to do.

        Nothing left: every journaled event is behind the pipeline's
        checkpoint and no notification is pending in the ledger, so no late
        duplicate can still come.
        """

        def done() -> bool:
            if self.program is not None:
                self.program.check_running()
            return not self.missing() and self.settled()

        try:
            wait_for(done, timeout_s=timeout_s, interval_s=0.05, what="delivery")
        except AssertionError as error:
            msg = f"{error}\nmissing: {sorted(self.missing())}\nsettled: {self.progress()}"
            raise AssertionError(msg) from error

    def wait_notified(self, kills: Iterable[Mapping[str, Any]], timeout_s: float = 10.0) -> None:
        """Wait until every notifiable kill among ``kills`` has its Discord message.

        Before a fault that may lose what is in flight on the kills socket:
        a kill that matches only the tracked character is in no preload.
        """
        wanted = {("kill", str(kill["killmail_id"])) for kill in kills} & set(self.expected)
        wait_for(
            lambda: wanted <= set(self.delivered()),
            timeout_s=timeout_s,
            interval_s=0.01,
            what="the kills notified",
        )

    def settled(self) -> bool:
        progress = self.progress()
        return progress["checkpoint"] >= progress["last_seq"] and progress["pending"] == 0

    def progress(self) -> dict[str, int]:
        """The journal's last seq, the checkpoint, and pending ledger entries (read-only)."""
        try:
            with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as db:
                last_seq = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
                checkpoint = db.execute("SELECT coalesce(min(seq), 0) FROM checkpoints").fetchone()
                pending = db.execute(
                    "SELECT count(*) FROM notifications WHERE state = 'pending'"
                ).fetchone()[0]
        except sqlite3.OperationalError:
            return {"last_seq": 1, "checkpoint": 0, "pending": 0}
        return {"last_seq": last_seq, "checkpoint": checkpoint[0], "pending": pending}

    def journal_events(self, source: str) -> list[dict[str, Any]]:
        """The journal's events of ``source``, oldest first, as ``run.py events`` lists them."""
        listed = run_cli("events", "--config", str(self.config_path), "--source", source)
        assert listed.returncode == 0, listed.stderr
        return [orjson.loads(line) for line in listed.stdout.splitlines()]

    def map_cursor(self) -> str | None:
        """The map stream's resume point committed in the journal (read-only), if any."""
        try:
            with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as db:
                row = db.execute(
                    "SELECT value FROM cursors WHERE source = ?", (f"map:{SLUG}",)
                ).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else str(row[0])

    def assert_exactly_once(self) -> None:
        """Exactly one message per expected notification; none for a silent kill; nothing else."""
        delivered = self.delivered()
        duplicated = {key: n for key, n in delivered.items() if n > max(1, self.expected[key])}
        unexpected = {key: n for key, n in delivered.items() if key not in self.expected}
        missing = set(self.expected) - set(delivered)
        silent = {key for key in delivered if key[0] == "kill" and key[1] in self.silent}
        assert not missing, f"lost: {sorted(missing)}"
        assert not duplicated, f"posted more than once: {duplicated}"
        assert not silent, f"notified although not notifiable: {sorted(silent)}"
        assert not unexpected, f"unexpected messages: {unexpected}"
        assert delivered == self.expected

    def close(self) -> None:
        if self.program is not None and self.program.alive():
            self.program.sigkill()


def preload_frame(system_id: int, killmails: Sequence[Mapping[str, Any]]) -> str:
    """A ``killmail_update`` frame as the server's preload sends it."""
    payload = {
        "system_id": system_id,
        "killmails": list(killmails),
        "timestamp": iso_seconds(time.time()),
        "preload": True,
    }
    message = {"topic": "killmails:lobby", "event": "killmail_update", "payload": payload}
    return orjson.dumps({**message, "ref": None}).decode()


def _notifiable(killmail: Mapping[str, Any]) -> bool:
    pilots = [killmail.get("victim") or {}, *(killmail.get("attackers") or [])]
    involved = any(pilot.get("character_id") == TRACKED_CHARACTER for pilot in pilots)
    tracked = killmail["system_id"] in TRACKED_SYSTEMS or involved
    age_s = time.time() - parse_time(killmail["kill_time"])
    return tracked and age_s < MAX_KILL_AGE_S - 60


@contextmanager
def fault_world(
    directory: Path,
    *,
    seed: int = 1,
    discord_options: Mapping[str, Any] | None = None,
    map_options: Mapping[str, Any] | None = None,
    heartbeat_s: float = 0.4,
    config_extra: str = "",
    start: bool = True,
) -> Iterator[FaultWorld]:
    """Servers up, config written, the program running and connected (unless ``start=False``).

    ``discord_options`` and ``map_options`` go to :class:`DiscordFake` and
    :class:`MapServer` (by default Discord's rate limits are generous, so that
    only the faults a test injects slow the program down). ``heartbeat_s`` is
    the kills feed's heartbeat interval (a socket is dead after three).
    ``config_extra`` is TOML appended to the program's configuration.
    """
    discord_settings: dict[str, Any] = {
        "bucket_limit": 10_000,
        "bucket_window_s": 1.0,
        "global_per_s": 10_000,
    }
    discord_settings.update(discord_options or {})
    map_settings: dict[str, Any] = {"keepalive_s": 0.3, "seed": seed}
    map_settings.update(map_options or {})
    kills = KillsServer(
        idle_timeout_s=5.0, preload_per_system=PRELOAD_PER_SYSTEM, close_timeout_s=0.5
    )
    map_server = MapServer(SLUG, MAP_API_KEY, **map_settings)
    for system_id in TRACKED_SYSTEMS:
        map_server.add_system(system_id, f"J{system_id % 1_000_000:06d}")
    map_server.add_character(TRACKED_CHARACTER, "Tracked Pilot")
    discord = DiscordFake(**discord_settings)
    world: FaultWorld | None = None
    kills.start()
    try:
        map_server.start()
        try:
            discord.start()
            try:
                world = FaultWorld(
                    directory,
                    kills,
                    map_server,
                    discord,
                    free_port(),
                    seed,
                    heartbeat_s,
                    config_extra,
                )
                world.write_config()
                if start:
                    world.start_program()
                yield world
            finally:
                if world is not None:
                    world.close()
                discord.stop()
        finally:
            map_server.stop()
    finally:
        kills.stop()
