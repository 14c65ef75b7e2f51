"""The soak: ``python run.py bench --soak MINUTES [--json]``.

The real pipeline (Discord sink, metrics and web on) runs in this process
against the simulated world (:mod:`app.benchmark.world`, another process) at a
steady rate, with everything that goes wrong in production on a schedule:

- duplicates: every kill pushed twice, a quarter also published by the map;
- map churn: systems and characters coming and going (the kill subscription
  follows them);
- connection drops: the kills server and the map server abort every socket;
- Discord 429 storms.

Every ``sample_s`` it reads ``/api/status`` (as an operator would) and the
process's RSS: mailbox sizes, the dedup window, the flow buffer, the
journal's backlog and tail, the notifier's send queue and pending entries,
the metrics actor's series. At the end it stops the traffic, lets the
pipeline drain, and compares what Discord received with what was published.

It passes when RSS grew less than 10 % from the reference time (minute 2;
second 20 of a one-minute soak, every period scaled alike) to the end, and
every published kill was posted exactly once. Beside RSS it samples what the
C allocator holds in use and keeps free (``mallinfo2``, see
:mod:`actors.allocator`) and the Python objects allocated, so that the report
tells growth of live memory (a leak, or a bound still filling) from memory
freed but kept by the allocator (fragmentation).

"Memory flat" must mean flat, not "flat but for what is still filling": the
only structure that fills over longer than minutes by design, the dedup
window (an hour of keys by default), is given an age bound of half the
reference time, so that it is full (at its steady size) when RSS is first
read. Every other bound (mailboxes, flow buffer, journal tail, send queue,
metrics series) is reported with its largest size; they stay near empty at
this rate. A repeat older than the scaled window then reaches the notifier,
whose ledger refuses a second post: the exactly-once check still holds it.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from actors import allocator
from app.benchmark.e2e import machine
from app.benchmark.pipeline import Pipeline, pipeline_config
from app.benchmark.world import RemoteWorld, WorldSettings, wait_until

SEED = 42
MAX_RSS_GROWTH = 0.10
STATUS_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class SoakPlan:
    """Durations of one soak; a one-minute soak scales every period by a sixth."""

    seconds: float
    rate: float
    sample_s: float
    reference_s: float
    drop_kills_every_s: float
    drop_map_every_s: float
    storm_every_s: float
    drain_timeout_s: float
    dedup_window_s: float

    @classmethod
    def of(cls, minutes: float, rate: float = 40.0) -> SoakPlan:
        scale = 1.0 if minutes >= 2 else minutes / 6
        return cls(
            seconds=60.0 * minutes,
            rate=rate,
            sample_s=10.0 * scale,
            reference_s=120.0 * scale,
            drop_kills_every_s=90.0 * scale,
            drop_map_every_s=150.0 * scale,
            storm_every_s=60.0 * scale,
            drain_timeout_s=max(30.0, 60.0 * scale),
            dedup_window_s=60.0 * scale,
        )


@dataclass(frozen=True, slots=True)
class Sample:
    at_s: float
    rss_mb: float
    events_offered: int
    heap_in_use_mb: float
    """What ``malloc`` holds allocated (0 where the C library cannot tell)."""
    heap_free_mb: float
    """What ``malloc`` keeps freed (given back to the system or not)."""
    python_blocks: int
    """Memory blocks Python has allocated (``sys.getallocatedblocks()``)."""
    structures: dict[str, tuple[float, float]]
    """Name -> ``(size, capacity)``."""


@dataclass
class SoakReport:
    machine: dict[str, Any]
    plan: dict[str, Any]
    samples: list[Sample] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    published: int = 0
    posted: int = 0
    lost: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    rss_reference_mb: float = 0.0
    rss_end_mb: float = 0.0
    reference: Sample | None = None
    """The sample at the reference time (the end is the last sample)."""
    restarts: int = 0
    discord_429: int = 0
    passed: bool = False

    @property
    def rss_growth(self) -> float:
        return self.rss_end_mb / self.rss_reference_mb - 1 if self.rss_reference_mb else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"rss_growth": round(self.rss_growth, 4)}


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def structures(status: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Every bounded structure ``/api/status`` shows: ``name -> (size, capacity)``."""
    found: dict[str, tuple[float, float]] = {}
    for name, actor in (status.get("pipeline") or {}).items():
        if actor.get("capacity"):
            found[f"mailbox:{name}"] = (actor["size"] or 0, actor["capacity"])
    dedup = status.get("dedup") or {}
    if "size" in dedup:
        found["dedup_window"] = (dedup["size"], dedup["capacity"])
    flow = status.get("flow") or {}
    if "size" in flow:
        found["flow_buffer"] = (flow["size"], flow["capacity"])
    journal = status.get("journal") or {}
    if "tail" in journal:
        found["journal_tail"] = (journal["tail"], journal["tail_capacity"])
        found["journal_pending"] = (journal["pending"], journal["max_pending"])
        found["journal_backlog"] = (journal["backlog"], float("inf"))
    queue = (status.get("notifier") or {}).get("queue") or {}
    if "capacity" in queue:
        found["discord_send_queue"] = (queue["waiting"] + queue["in_flight"], queue["capacity"])
    statistics = (status.get("metrics") or {}).get("statistics") or {}
    for name in ("throughput", "rejects", "errors"):
        table = statistics.get(name) or {}
        if "series" in table:
            found[f"metrics:{name}_series"] = (table["series"], table["series_capacity"])
    alerts = statistics.get("alerts") or {}
    for name in ("active", "resolved"):
        if name in alerts:
            found[f"metrics:alerts_{name}"] = (alerts[name], alerts[f"{name}_capacity"])
    return found


class Faults:
    """Injects the scheduled faults; counts what it did."""

    def __init__(self, world: RemoteWorld, plan: SoakPlan, started: float) -> None:
        self._world = world
        self._schedule: dict[str, tuple[float, Callable[[], object]]] = {
            "kills_drop_all": (plan.drop_kills_every_s, world.drop_kills),
            "map_drop_all": (plan.drop_map_every_s, world.drop_map),
            "discord_429_storm": (plan.storm_every_s, lambda: world.storm_429(5, 0.5)),
        }
        self._next = {name: started + every for name, (every, _) in self._schedule.items()}
        self.done: collections.Counter[str] = collections.Counter()

    def due(self, now: float) -> None:
        for name, (every, action) in self._schedule.items():
            if now >= self._next[name]:
                action()
                self.done[name] += 1
                self._next[name] = now + every


def run_soak(minutes: float, *, log: Callable[[str], None], rate: float = 40.0) -> SoakReport:
    plan = SoakPlan.of(minutes, rate)
    settings = WorldSettings(
        seed=SEED,
        map_kill_share=0.25,
        activity_share=0.3,
        preload_per_system=10,
        record_ids=True,
        discord=True,
        discord_bucket_limit=50,
        discord_bucket_window_s=1.0,
        discord_global_per_s=100,
    )
    report = SoakReport(machine=machine(), plan=asdict(plan))
    with (
        RemoteWorld(settings) as world,
        tempfile.TemporaryDirectory(prefix="soak-") as directory,
    ):
        config = pipeline_config(
            world.urls,
            Path(directory),
            discord=True,
            overrides={"dedup": {"window_s": plan.dedup_window_s}},
        )
        with Pipeline(config) as pipeline:
            url = pipeline.app.listening.url()
            session = requests.Session()
            started = time.monotonic()
            world.set_rate(rate)
            faults = Faults(world, plan, started)
            next_sample = started
            while (now := time.monotonic()) - started < plan.seconds:
                faults.due(now)
                if now >= next_sample:
                    sample = _sample(session, url, world, now - started)
                    report.samples.append(sample)
                    log(_describe(sample))
                    next_sample += plan.sample_s
                time.sleep(0.05)
            world.set_rate(0)
            report.faults = dict(faults.done)
            log("traffic stopped; waiting for every kill to be posted")
            published = world.published_ids()
            _drain(world, pipeline, len(published), plan.drain_timeout_s)
            report.samples.append(_sample(session, url, world, time.monotonic() - started))
            report.restarts = pipeline.restarts()
        posted = world.discord_kill_ids()
        report.discord_429 = world.statistics().discord_429
    _judge(report, plan, published, posted)
    return report


def read_status(session: requests.Session, url: str) -> Mapping[str, Any]:
    """``/api/status``, asked again (on a new connection) when the connection fails.

    The web face closes idle keep-alive connections; a request that meets one
    being closed fails with a reset, which says nothing about the pipeline.
    """
    for _ in range(STATUS_ATTEMPTS - 1):
        try:
            answer: Mapping[str, Any] = session.get(f"{url}/api/status", timeout=10).json()
        except requests.ConnectionError:
            session.close()
        else:
            return answer
    last: Mapping[str, Any] = session.get(f"{url}/api/status", timeout=10).json()
    return last


def _sample(session: requests.Session, url: str, world: RemoteWorld, at_s: float) -> Sample:
    status = read_status(session, url)
    heap = allocator.statistics()
    return Sample(
        at_s=round(at_s, 1),
        rss_mb=round(rss_mb(), 1),
        events_offered=world.statistics().events_offered,
        heap_in_use_mb=round(heap.in_use_bytes / 2**20, 1) if heap else 0.0,
        heap_free_mb=round(heap.free_bytes / 2**20, 1) if heap else 0.0,
        python_blocks=sys.getallocatedblocks(),
        structures=structures(status),
    )


def _drain(world: RemoteWorld, pipeline: Pipeline, published: int, timeout_s: float) -> None:
    try:
        wait_until(
            lambda: world.statistics().discord_messages >= published and pipeline.drained(),
            timeout_s,
            "every published kill posted",
        )
    except TimeoutError:
        logging.getLogger(__name__).warning("the soak's pipeline did not drain in time")


def _judge(report: SoakReport, plan: SoakPlan, published: list[int], posted: list[int]) -> None:
    counts = collections.Counter(posted)
    report.published = len(published)
    report.posted = len(posted)
    report.lost = sorted(set(published) - set(counts))
    report.duplicated = sorted(kill for kill, count in counts.items() if count > 1)
    reference = next((s for s in report.samples if s.at_s >= plan.reference_s), report.samples[0])
    report.reference = reference
    report.rss_reference_mb = reference.rss_mb
    report.rss_end_mb = report.samples[-1].rss_mb
    report.passed = report.rss_growth < MAX_RSS_GROWTH and not report.lost and not report.duplicated


def _describe(sample: Sample) -> str:
    full = [
        f"{name} {size:.0f}/{capacity:.0f}"
        for name, (size, capacity) in sorted(sample.structures.items())
        if capacity != float("inf") and size >= 0.5 * capacity
    ]
    s = sample.structures
    return (
        f"  t={sample.at_s:6.1f}s RSS {sample.rss_mb:6.1f} MB (heap in use "
        f"{sample.heap_in_use_mb:5.1f}, free {sample.heap_free_mb:5.1f})"
        f"  offered {sample.events_offered:7d}"
        f"  backlog {s.get('journal_backlog', (0, 0))[0]:.0f}"
        f"  dedup {s.get('dedup_window', (0, 0))[0]:.0f}"
        f"  flow {s.get('flow_buffer', (0, 0))[0]:.0f}"
        f"  send queue {s.get('discord_send_queue', (0, 0))[0]:.0f}"
        + (f"  above half: {', '.join(full)}" if full else "")
    )


def render(report: SoakReport) -> str:
    m = report.machine
    plan = report.plan
    biggest: dict[str, tuple[float, float]] = {}
    for sample in report.samples:
        for name, (size, capacity) in sample.structures.items():
            if size >= biggest.get(name, (-1.0, capacity))[0]:
                biggest[name] = (size, capacity)
    faults = ", ".join(f"{name} x{count}" for name, count in sorted(report.faults.items()))
    lines = [
        (
            f"soak: {plan['seconds'] / 60:g} min at {plan['rate']:g} events/s offered; "
            f"{m['cores']} cores, {m['implementation']} {m['python']}, seed {m['seed']}"
        ),
        (
            f"faults: {faults}; Discord answered 429 {report.discord_429} times; "
            f"actor restarts {report.restarts}"
        ),
        (
            f"RSS {report.rss_reference_mb} MB at {plan['reference_s']:g} s -> "
            f"{report.rss_end_mb} MB at the end ({report.rss_growth:+.1%}, limit "
            f"{MAX_RSS_GROWTH:.0%}; dedup window {plan['dedup_window_s']:g} s, full by then)"
        ),
        *_memory_lines(report),
        (
            f"kills published {report.published}, posted {report.posted}: "
            f"lost {len(report.lost)}, posted twice {len(report.duplicated)}"
        ),
        "largest size seen of each bounded structure (size / capacity):",
        *(
            f"  {name:28} {size:8.0f} / {capacity:g}"
            for name, (size, capacity) in sorted(biggest.items())
        ),
        f"{'PASS' if report.passed else 'FAIL'}",
    ]
    return "\n".join(lines)


def _memory_lines(report: SoakReport) -> list[str]:
    """Where RSS went between the reference sample and the last one."""
    start, end = report.reference, report.samples[-1] if report.samples else None
    if start is None or end is None:
        return []
    return [
        "  from the reference to the end:",
        f"    RSS                     {start.rss_mb:7.1f} -> {end.rss_mb:7.1f} MB",
        f"    malloc, in use          {start.heap_in_use_mb:7.1f} -> {end.heap_in_use_mb:7.1f} MB",
        f"    malloc, freed and kept  {start.heap_free_mb:7.1f} -> {end.heap_free_mb:7.1f} MB",
        f"    Python blocks allocated {start.python_blocks:7d} -> {end.python_blocks:7d}",
    ]


def run_cli(minutes: float, *, as_json: bool) -> int:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = run_soak(minutes, log=log)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render(report))
    return 0 if report.passed else 1
