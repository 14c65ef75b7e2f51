"""How many killmail frames per second the loopback wanderer-kills server pushes.

One raw websocket-client connection, in its own process (so it does not share
the server's GIL), joins one system and counts frames. Two runs over the same
pre-generated kills, each kill pushed twice as the real server does:

- ``publish`` (the baseline): one :meth:`KillsServer.publish` call per kill,
  each a hand-over to the server thread;
- ``publish_many``: batches of kills per hand-over, the ceiling of the
  simulated world for later benchmarks.

The client's CPU share tells which side limits: near 100 % the raw client is
the bottleneck, not the server. The headroom figure compares with the whole
of EVE Online (about 0.3 kills/s on average).

    python -m bench.sim_kills [--kills N] [--batch B] [--seed S]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import orjson
import websocket

from simulator.kills_server import LOBBY, KillsServer
from simulator.traffic import TrafficGenerator

SYSTEM = 31000005
EVE_KILLS_PER_S = 0.3


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: frames and bytes the client received, wall and client CPU time."""

    frames: int
    payload_bytes: int
    seconds: float
    client_cpu_seconds: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds

    @property
    def megabytes_per_s(self) -> float:
        return self.payload_bytes / self.seconds / 1e6

    @property
    def client_busy(self) -> float:
        return self.client_cpu_seconds / self.seconds


def receive(url: str, frames: int, ready: Event, results: Queue[tuple[int, float, float]]) -> None:
    """Client process: join, read past the preload, signal ready, count ``frames`` frames."""
    ws = websocket.create_connection(url, timeout=60, skip_utf8_validation=True)
    join = {"topic": LOBBY, "event": "phx_join", "ref": "1", "payload": {"systems": [SYSTEM]}}
    ws.send(orjson.dumps(join).decode())
    while orjson.loads(ws.recv())["event"] != "preload_complete":
        pass
    cpu_before = _cpu_seconds()
    ready.set()
    received = 0
    for _ in range(frames):
        received += len(ws.recv())
    results.put((received, time.monotonic(), _cpu_seconds() - cpu_before))
    ws.close()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(kill_count: int, send: Callable[[KillsServer], None]) -> Run:
    """A fresh server and client process; ``send`` publishes; timed to the client's last frame."""
    frames = 2 * kill_count
    with KillsServer(outbox_capacity=frames + 16, history_limit=kill_count) as server:
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        results: Queue[tuple[int, float, float]] = context.Queue()
        client = context.Process(target=receive, args=(server.url, frames, ready, results))
        client.start()
        try:
            if not ready.wait(30):
                raise RuntimeError("the client process did not join")
            started = time.monotonic()
            send(server)
            payload_bytes, finished, client_cpu = results.get(timeout=300)
        finally:
            client.join(10)
            if client.is_alive():
                client.kill()
    return Run(frames, payload_bytes, finished - started, client_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    generator = TrafficGenerator(args.seed, systems=[SYSTEM])
    now = time.time()
    kills = [generator.killmail(now) for _ in range(args.kills)]
    sizes = [len(orjson.dumps(kill)) for kill in kills]

    def one_by_one(server: KillsServer) -> None:
        for kill in kills:
            server.publish(kill)

    def in_batches(server: KillsServer) -> None:
        for start in range(0, len(kills), args.batch):
            server.publish_many(kills[start : start + args.batch])

    baseline = measure(len(kills), one_by_one)
    batched = measure(len(kills), in_batches)

    print(f"kills: {len(kills)}, frames: {2 * len(kills)} (every live kill is pushed twice)")
    print(f"killmail JSON: median {statistics.median(sizes):.0f} B, max {max(sizes)} B")
    for name, run in (("publish", baseline), (f"publish_many({args.batch})", batched)):
        print(
            f"{name:>18}: {run.frames_per_s:9,.0f} frames/s, {run.frames_per_s / 2:8,.0f} kills/s, "
            f"{run.megabytes_per_s:6.1f} MB/s, client CPU busy {run.client_busy:4.0%}"
        )
    print(f"publish_many / publish: {batched.frames_per_s / baseline.frames_per_s:.2f}x")
    headroom = batched.frames_per_s / 2 / EVE_KILLS_PER_S
    print(f"headroom over all of EVE (~{EVE_KILLS_PER_S} kills/s): {headroom:,.0f}x")


if __name__ == "__main__":
    main()
