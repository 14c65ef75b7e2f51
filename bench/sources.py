"""The source actors over loopback: decode throughput, round trips, half-open detection.

Each simulated server runs in a process of its own (so that it does not share
the source's GIL); the source actor runs in this process, in a real
supervision tree, next to a journal stand-in that counts what it is sent.

- ``kills`` throughput: the server pushes ``--kills`` killmails (each twice,
  as the real server does) to the joined ``kills`` actor, timed until the
  journal has every event. Baseline, same run: a bare websocket-client loop
  that receives the same frames and only ``orjson.loads`` them.
- ``map`` throughput: the map server publishes ``--map-events`` map_kill
  events to the ``map:bench`` actor, timed until the journal has them all.
  Baseline: a bare ``requests`` stream read into the same SSE parser, each
  event's data ``orjson.loads``-ed.
- round trips on loopback: Phoenix heartbeat and WebSocket ping, as the
  ``kills`` actor measures them, against a bare websocket-client ping/pong.
- half-open detection: the server goes silent (reads and writes nothing,
  the socket stays up); the time until the actor reports the connection
  lost, against ``heartbeat_timeout_s`` and the ``+ 1 s`` budget.

The client CPU share (this process's CPU time over the wall time) says which
side limits a throughput run: near 100 % of one core, the client does.

    python -m bench.sources [--kills N] [--map-events N] [--trials N]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import statistics
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

import orjson
import requests
import websocket

from actors.kills_source import child_spec as kills_child
from actors.map_source import child_spec as map_child
from actors.protocol import GetCursor, GetTracking, Ingest, Names, TrackingChanged
from realtime.config import Config, KillsSourceConfig, MapConfig, Secret, SourcesConfig
from realtime.sse import SseEvent, SseParser
from supervision import (
    ActorContext,
    Backoff,
    ChildSpec,
    GetStatus,
    MailboxSpec,
    SupervisedActor,
    SupervisionTree,
    SupervisorSpec,
)

SYSTEM = 31000005
SLUG = "bench"
API_KEY = "bench-key"
LOBBY = "killmails:lobby"


# -- the servers, each in a process of its own ----------------------------------------


def _kills_server(pipe: Connection, kill_count: int, seed: int) -> None:
    from simulator.kills_server import KillsServer
    from simulator.traffic import TrafficGenerator

    generator = TrafficGenerator(seed, systems=[SYSTEM])
    now = time.time()
    kills = [generator.killmail(now) for _ in range(kill_count)]
    with KillsServer(
        outbox_capacity=2 * kill_count + 64, history_limit=kill_count + 1, preload_per_system=0
    ) as server:
        pipe.send(server.url)
        while True:
            command, argument = pipe.recv()
            if command == "stop":
                return
            if command == "wait_joined":
                while not any(c.joined for c in server.statistics().connections):
                    time.sleep(0.001)
            elif command == "publish":
                for start in range(0, len(kills), 500):
                    server.publish_many(kills[start : start + 500])
            elif command == "half_open":
                server.set_half_open(bool(argument))
            pipe.send("done")


def _map_server(pipe: Connection, event_count: int, seed: int) -> None:
    from simulator.map_server import MapServer
    from simulator.traffic import TrafficGenerator

    generator = TrafficGenerator(seed, systems=[SYSTEM])
    now = time.time()
    payloads = [generator.map_kill_payload(generator.killmail(now)) for _ in range(event_count)]
    with MapServer(SLUG, API_KEY, max_queued_per_stream=event_count + 64, seed=seed) as server:
        pipe.send(server.base_url)
        while True:
            command, _argument = pipe.recv()
            if command == "stop":
                return
            if command == "wait_streaming":
                while server.statistics().open_streams == 0:
                    time.sleep(0.001)
            elif command == "publish":
                started = time.monotonic()
                for payload in payloads:
                    server.publish("map_kill", payload)
                pipe.send(time.monotonic() - started)
                continue
            pipe.send("done")


class _Server:
    """A simulated server in a child process, driven by commands."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=target, args=(child, *args), daemon=True)
        self._process.start()
        self.url: str = self._pipe.recv()

    def call(self, command: str, argument: object = None) -> Any:
        """Run ``command`` in the server process and wait for its answer."""
        self.begin(command, argument)
        return self.answer()

    def begin(self, command: str, argument: object = None) -> None:
        """Start ``command`` without waiting; :meth:`answer` collects its answer."""
        self._pipe.send((command, argument))

    def answer(self) -> Any:
        return self._pipe.recv()

    def close(self) -> None:
        self._pipe.send(("stop", None))
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()


@contextmanager
def server(target: Callable[..., None], *args: Any) -> Iterator[_Server]:
    running = _Server(target, *args)
    try:
        yield running
    finally:
        running.close()


# -- the journal and tracking stand-ins -------------------------------------------------


class Counter:
    """Events the counting journal was sent; ``reached`` fires at ``target``."""

    def __init__(self) -> None:
        self.events = 0
        self.rejects = 0
        self.target = 0
        self.reached = threading.Event()

    def expect(self, target: int) -> None:
        self.events = 0
        self.target = target
        self.reached.clear()


class CountingJournal(SupervisedActor):
    def __init__(self, ctx: ActorContext, counter: Counter) -> None:
        super().__init__(ctx)
        self.counter = counter

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ingest):
            counter = self.counter
            counter.events += len(message.events)
            counter.rejects += len(message.rejects)
            if counter.target and counter.events >= counter.target:
                counter.reached.set()
        if isinstance(message, GetCursor):
            return None
        return None


class _View:
    def is_tracked_system(self, system_id: int) -> bool:
        return system_id == SYSTEM

    def is_tracked_character(self, character_id: int) -> bool:
        return False


class Tracking(SupervisedActor):
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, GetTracking):
            return TrackingChanged(_View(), frozenset({SYSTEM}), frozenset())
        return None


def tree_with(source: ChildSpec, counter: Counter) -> SupervisionTree:
    children = [
        ChildSpec(
            Names.JOURNAL,
            lambda ctx: CountingJournal.start(ctx, counter),
            mailbox=MailboxSpec(100_000),
        ),
        ChildSpec(Names.TRACKING, Tracking.start, mailbox=MailboxSpec(100)),
        source,
    ]
    return SupervisionTree(SupervisorSpec("root", children, backoff=Backoff(0.01, 0.1)))


def kills_config(url: str, interval_s: float, timeout_s: float) -> Config:
    settings = KillsSourceConfig(
        url=url, heartbeat_interval_s=interval_s, heartbeat_timeout_s=timeout_s
    )
    return Config(sources=SourcesConfig(kills=settings))


def status(tree: SupervisionTree, name: str) -> dict[str, Any]:
    answer = tree.registry.ask(name, GetStatus())
    assert isinstance(answer, dict)
    return answer


def wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.001)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- kills -----------------------------------------------------------------------------------


def kills_actor_run(kill_count: int, seed: int) -> tuple[float, float]:
    """Events per second through the ``kills`` actor, and the client CPU share."""
    counter = Counter()
    with server(_kills_server, kill_count, seed) as kills:
        tree = tree_with(kills_child(kills_config(kills.url, 5.0, 10.0)), counter).start()
        try:
            kills.call("wait_joined")
            counter.expect(2 * kill_count)
            cpu, started = cpu_seconds(), time.monotonic()
            kills.call("publish")
            if not counter.reached.wait(300):
                raise TimeoutError("the kills actor did not journal every event")
            seconds = time.monotonic() - started
            busy = (cpu_seconds() - cpu) / seconds
        finally:
            tree.stop()
    return 2 * kill_count / seconds, busy


def kills_bare_run(kill_count: int, seed: int) -> tuple[float, float]:
    """Frames per second a bare websocket-client loop receives and ``orjson.loads``."""
    with server(_kills_server, kill_count, seed) as kills:
        ws = websocket.create_connection(
            f"{kills.url}?vsn=1.0.0", timeout=60, skip_utf8_validation=True
        )
        join = {"topic": LOBBY, "event": "phx_join", "ref": "1", "payload": {"systems": [SYSTEM]}}
        ws.send(orjson.dumps(join).decode())
        kills.call("wait_joined")
        ws.recv()  # the join's reply
        ws.recv()  # preload_complete
        frames = 2 * kill_count
        cpu, started = cpu_seconds(), time.monotonic()
        kills.begin("publish")
        for _ in range(frames):
            orjson.loads(ws.recv())
        seconds = time.monotonic() - started
        busy = (cpu_seconds() - cpu) / seconds
        kills.answer()
        ws.close()
    return frames / seconds, busy


# -- round trips and half-open -----------------------------------------------------------


def round_trips(samples: int) -> dict[str, float]:
    counter = Counter()
    with server(_kills_server, 1, 1) as kills:
        tree = tree_with(kills_child(kills_config(kills.url, 0.05, 1.0)), counter).start()
        try:
            kills.call("wait_joined")
            wait(
                lambda: status(tree, Names.KILLS)["phoenix"]["heartbeat_replies"] >= samples,
                60,
                "heartbeat replies",
            )
            report = status(tree, Names.KILLS)
        finally:
            tree.stop()
        ws = websocket.create_connection(kills.url, timeout=10)
        bare = []
        for _ in range(samples):
            sent = time.monotonic_ns()
            ws.ping(struct.pack("!Q", sent))
            while ws.recv_data_frame(control_frame=True)[0] != websocket.ABNF.OPCODE_PONG:
                pass
            bare.append((time.monotonic_ns() - sent) / 1e6)
        ws.close()
    return {
        "heartbeat_median_ms": report["connection"]["rtt_ms"],
        "heartbeat_p95_ms": report["connection"]["rtt_p95_ms"],
        "last_ping_ms": report["socket"]["ping_rtt_ms"],
        "bare_ping_median_ms": statistics.median(bare),
    }


def half_open_detection(trials: int, interval_s: float, timeout_s: float) -> list[float]:
    counter = Counter()
    detections = []
    with server(_kills_server, 1, 1) as kills:
        tree = tree_with(
            kills_child(kills_config(kills.url, interval_s, timeout_s)), counter
        ).start()
        try:
            for _ in range(trials):
                kills.call("wait_joined")
                wait(
                    lambda: status(tree, Names.KILLS)["connection"]["state"] == "connected",
                    30,
                    "connected",
                )
                kills.call("half_open", True)
                silent_since = time.monotonic()
                wait(
                    lambda: (
                        status(tree, Names.KILLS)["connection"]["state"]
                        not in ("connected", "degraded")
                    ),
                    timeout_s + 5,
                    "half-open detected",
                )
                detections.append(time.monotonic() - silent_since)
                kills.call("half_open", False)
        finally:
            tree.stop()
    return detections


# -- map ---------------------------------------------------------------------------------


def map_settings(base_url: str) -> MapConfig:
    return MapConfig(slug=SLUG, base_url=base_url, api_key=Secret(API_KEY, "inline"))


def map_actor_run(event_count: int, seed: int) -> tuple[float, float, float]:
    """Events per second through ``map:bench``, the client CPU share, the server's publish time."""
    counter = Counter()
    with server(_map_server, event_count, seed) as maps:
        spec = map_child(Config(), map_settings(maps.url))
        tree = tree_with(spec, counter).start()
        try:
            maps.call("wait_streaming")
            wait(
                lambda: status(tree, Names.map_source(SLUG))["sse"]["phase"] == "live",
                30,
                "live",
            )
            counter.expect(event_count)
            cpu, started = cpu_seconds(), time.monotonic()
            publish_s = maps.call("publish")
            if not counter.reached.wait(300):
                raise TimeoutError("the map actor did not journal every event")
            seconds = time.monotonic() - started
            busy = (cpu_seconds() - cpu) / seconds
        finally:
            tree.stop()
    return event_count / seconds, busy, publish_s


def map_bare_run(event_count: int, seed: int) -> tuple[float, float]:
    """Events per second a bare ``requests`` stream, SSE parser and ``orjson.loads`` take."""
    with server(_map_server, event_count, seed) as maps:
        url = f"{maps.url}/api/maps/{SLUG}/events/stream"
        headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
        with requests.get(url, headers=headers, stream=True, timeout=(5, 60)) as response:
            parser = SseParser()
            maps.call("wait_streaming")
            seen = 0
            while seen < 1:  # the connected event
                seen += sum(isinstance(i, SseEvent) for i in parser.feed(response.raw.read1(65536)))
            cpu, started = cpu_seconds(), time.monotonic()
            maps.begin("publish")
            events = 0
            while events < event_count:
                for item in parser.feed(response.raw.read1(65536)):
                    if isinstance(item, SseEvent):
                        orjson.loads(item.data)
                        events += 1
            seconds = time.monotonic() - started
            busy = (cpu_seconds() - cpu) / seconds
            maps.answer()
    return event_count / seconds, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10_000)
    parser.add_argument("--map-events", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    # The actors log each fault the bench injects; the figures are the output here.
    logging.basicConfig(level=logging.ERROR)

    bare, bare_busy = kills_bare_run(args.kills, args.seed)
    actor, actor_busy = kills_actor_run(args.kills, args.seed)
    print(f"kills, {2 * args.kills} killmail events over loopback:")
    print(
        f"  bare websocket-client + orjson   {bare:10,.0f} frames/s  (client CPU {bare_busy:.0%})"
    )
    print(
        f"  kills actor -> journal           {actor:10,.0f} events/s  (client CPU {actor_busy:.0%})"
    )
    print(f"  ratio actor / bare               {actor / bare:10.2f}")

    bare, bare_busy = map_bare_run(args.map_events, args.seed)
    actor, actor_busy, publish_s = map_actor_run(args.map_events, args.seed)
    print(f"map, {args.map_events} map_kill events over loopback SSE:")
    print(
        f"  bare requests + SseParser + orjson {bare:8,.0f} events/s  (client CPU {bare_busy:.0%})"
    )
    print(
        f"  map actor -> journal             {actor:10,.0f} events/s  (client CPU {actor_busy:.0%})"
    )
    print(f"  server publish rate              {args.map_events / publish_s:10,.0f} events/s")
    print(f"  ratio actor / bare               {actor / bare:10.2f}")

    rtt = round_trips(50)
    print("round trips on loopback (kills actor):")
    median_ms, p95_ms = rtt["heartbeat_median_ms"], rtt["heartbeat_p95_ms"]
    print(f"  Phoenix heartbeat median / p95   {median_ms:.3f} / {p95_ms:.3f} ms")
    print(f"  WebSocket ping (last)            {rtt['last_ping_ms']:.3f} ms")
    print(f"  bare websocket-client ping median {rtt['bare_ping_median_ms']:.3f} ms")

    interval_s, timeout_s = 0.5, 1.5
    detections = half_open_detection(args.trials, interval_s, timeout_s)
    print(
        f"half-open detection, heartbeat {interval_s:g} s / timeout {timeout_s:g} s, "
        f"{args.trials} trials:"
    )
    print(
        f"  median {statistics.median(detections):.3f} s, max {max(detections):.3f} s; "
        f"budget timeout + 1 s = {timeout_s + 1:.1f} s; "
        f"max / timeout = {max(detections) / timeout_s:.2f}"
    )


if __name__ == "__main__":
    main()
