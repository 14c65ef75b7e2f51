"""The end-to-end benchmark: ``python run.py bench [--json] [--quick] [--events N]``.

The real program's pipeline (sources -> journal -> dedup -> flow control ->
router -> tracking/notifier, with the metrics actor) runs in this process
against the simulator's wanderer-kills and map servers over loopback sockets.
The servers run in a process of their own (:mod:`bench.e2e_world`) so that
their CPU does not compete for this interpreter's GIL; on a 2-core machine
they take the other core. Every kill is in a tracked system, so the notifier
claims, renders and writes (to a null stream) a notification for each.

Figures:

- **baseline**, same run: one bare loop on one thread, no actors
  (:mod:`bench.e2e_baseline`), over ``kills`` pushed as fast as the server
  can, best of a few runs. ``bare`` does the list of the issue (decode, key,
  dict, SQLite batches, route); ``same work`` also notifies like the
  pipeline. The pipeline's ratio is against ``same work``;
- **throughput**: the highest offered rate the pipeline sustains, found by
  probing rates (doubling, then bisecting): a probe holds a rate for a few
  seconds after a warm-up, and passes when everything offered was settled
  (the journal's checkpoint kept up, within 3 %) and the lag (offered minus
  settled, socket and journal backlog together) did not grow by more than
  2 % of what was offered;
- **latency**: p50/p95/p99 from the socket read to the router (batch
  settled) and to the notifier (line written), at fixed offered rates, from
  the samples the actors report to ``metrics`` (each reporter keeps the
  newest 2,048 per stage per second);
- **memory**: peak RSS of a pipeline in a fresh process after ``--events``
  events at 80 % of the measured throughput;
- **metrics overhead**: process CPU per event at the same offered rate with
  ``[metrics] enabled`` on and off (the processing cost), and the throughput
  of both.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench import e2e_baseline
from bench.e2e_pipeline import Pipeline, pipeline_config
from bench.e2e_world import RemoteWorld, WorldSettings, WorldUrls, wait_until

SEED = 42
LATENCY_RATES = (100, 1000, 5000)
START_RATE = 1000.0
RAMP = 1.6
MAX_RATE = 40_000.0
TARGET_RATIO = 0.8
TARGET_ROUTER_P99_S = 0.020
TARGET_NOTIFIER_P99_S = 0.050
TARGET_RSS_MB = 200.0
TARGET_METRICS_OVERHEAD = 0.05


@dataclass(frozen=True, slots=True)
class Plan:
    """How long and how often things are measured (``--quick`` shortens it all)."""

    baseline_kills: int
    baseline_runs: int
    warmup_s: float
    window_s: float
    bisections: int
    latency_s: float
    memory_events: int

    @classmethod
    def of(cls, *, quick: bool, events: int | None) -> Plan:
        if quick:
            return cls(8_000, 2, 1.0, 3.0, 2, 4.0, events or 20_000)
        return cls(20_000, 3, 1.5, 5.0, 3, 10.0, events or 100_000)


# -- probes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One offered rate held for a window."""

    rate: float
    seconds: float
    offered: int
    settled: int
    lag_growth: int
    backlog_max: int
    cpu_s: float

    @property
    def achieved(self) -> float:
        """Events settled per second over the window."""
        return self.settled / self.seconds

    @property
    def offered_rate(self) -> float:
        """Events the world really offered per second (Poisson, near :attr:`rate`)."""
        return self.offered / self.seconds

    @property
    def cpu_per_event_us(self) -> float:
        return 1e6 * self.cpu_s / max(1, self.settled)

    @property
    def sustained(self) -> bool:
        kept_up = self.settled >= 0.97 * self.offered
        bounded = self.lag_growth <= max(0.02 * self.offered, 50)
        return kept_up and bounded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "achieved": round(self.achieved, 1),
            "offered_rate": round(self.offered_rate, 1),
            "cpu_per_event_us": round(self.cpu_per_event_us, 1),
            "sustained": self.sustained,
        }


class Driver:
    """Holds rates on the world and watches a pipeline keep up."""

    def __init__(self, world: RemoteWorld, pipeline: Pipeline, plan: Plan) -> None:
        self.world = world
        self.pipeline = pipeline
        self.plan = plan

    def _lag(self) -> tuple[int, int, int]:
        """``(offered so far, settled so far, backlog)``."""
        stats = self.world.stats()
        journal = self.pipeline.journal()
        return stats.events_offered, int(journal["checkpoint"]), int(journal["backlog"])

    def drain(self, timeout_s: float = 120.0) -> None:
        self.world.set_rate(0)
        wait_until(
            lambda: self.world.stats().outbox == 0 and self.pipeline.drained(),
            timeout_s,
            "the pipeline draining its backlog",
        )

    def probe(self, rate: float, window_s: float | None = None) -> Probe:
        window_s = window_s or self.plan.window_s
        self.world.set_rate(rate)
        time.sleep(self.plan.warmup_s)
        offered0, settled0, _ = self._lag()
        started, cpu0 = time.monotonic(), time.process_time()
        backlog_max = 0
        while time.monotonic() - started < window_s:
            time.sleep(0.25)
            _, _, backlog = self._lag()
            backlog_max = max(backlog_max, backlog)
        offered1, settled1, _ = self._lag()
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu0
        self.drain()
        offered, settled = offered1 - offered0, settled1 - settled0
        return Probe(rate, seconds, offered, settled, offered - settled, backlog_max, cpu)

    def search(self, log: Callable[[str], None]) -> tuple[float, list[Probe]]:
        """The highest sustained rate: ramp (x1.6) from ``START_RATE``, then bisect.

        Returns the rate of the best sustained probe (settled, or offered if
        lower: a probe may also settle the tail of its warm-up), and every probe.
        """
        probes: list[Probe] = []

        def run(rate: float) -> bool:
            probe = self.probe(rate)
            probes.append(probe)
            log(
                f"  probe {rate:8.0f} ev/s (offered {probe.offered_rate:8.0f}): settled "
                f"{probe.achieved:8.0f} ev/s, lag growth "
                f"{probe.lag_growth:6d}, backlog max {probe.backlog_max:6d}, "
                f"{probe.cpu_per_event_us:6.1f} µs CPU/event "
                f"{'ok' if probe.sustained else 'NOT sustained'}"
            )
            return probe.sustained

        low, high = 0.0, START_RATE
        while high <= MAX_RATE and run(high):
            low, high = high, high * RAMP
        for _ in range(self.plan.bisections):
            if low == 0.0:
                high /= 2
                if run(high):
                    low = high
                continue
            middle = (low + high) / 2
            if run(middle):
                low = middle
            else:
                high = middle
        sustained = [min(p.achieved, p.offered_rate) for p in probes if p.sustained]
        return max(sustained, default=0.0), probes


# -- latency --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Percentiles:
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, samples: Sequence[float]) -> Percentiles:
        if not samples:
            return cls(0, None, None, None, None)
        ordered = sorted(samples)

        def at(fraction: float) -> float:
            index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
            return round(1000 * ordered[index], 3)

        return cls(len(ordered), at(0.50), at(0.95), at(0.99), round(1000 * ordered[-1], 3))


@dataclass(frozen=True, slots=True)
class LatencyLevel:
    rate: float
    probe: Probe
    stages: dict[str, Percentiles]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "sustained": self.probe.sustained,
            "achieved": round(self.probe.achieved, 1),
            "stages": {stage: asdict(p) for stage, p in self.stages.items()},
        }


def measure_latency(driver: Driver, rate: float, seconds: float) -> LatencyLevel:
    tap = driver.pipeline.tap
    driver.world.set_rate(rate)
    time.sleep(driver.plan.warmup_s)
    tap.open()
    probe = driver.probe(rate, seconds)
    # The last reports (once a second per actor) carry the window's end.
    time.sleep(1.2)
    samples = tap.take()
    stages = {stage: Percentiles.of(samples.get(stage, [])) for stage in ("router", "notifier")}
    stages |= {
        stage: Percentiles.of(values)
        for stage, values in sorted(samples.items())
        if stage not in stages
    }
    return LatencyLevel(rate, probe, stages)


# -- memory, in a fresh process -----------------------------------------------------------


def _rss_kb(field_name: str = "VmRSS") -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _memory_child(pipe: Connection, urls: WorldUrls, directory: str) -> None:
    logging.basicConfig(level=logging.ERROR)
    config = pipeline_config(urls, Path(directory))
    with Pipeline(config) as pipeline:
        pipe.send("ready")
        while True:
            command = pipe.recv()
            if command == "stop":
                break
            journal = pipeline.journal()
            pipe.send(
                {
                    "rss_kb": _rss_kb(),
                    "checkpoint": journal["checkpoint"],
                    "last_seq": journal["last_seq"],
                    "drained": journal["checkpoint"] == journal["last_seq"],
                }
            )
    pipe.send({"peak_rss_kb": _rss_kb("VmHWM"), "rss_kb": _rss_kb()})


@dataclass(frozen=True, slots=True)
class MemoryRun:
    events: int
    rate: float
    seconds: float
    peak_rss_mb: float
    final_rss_mb: float
    samples: list[tuple[int, float]] = field(default_factory=list)
    """``(events settled, RSS MB)`` about every 2 s."""


def measure_memory(world: RemoteWorld, events: int, rate: float, directory: Path) -> MemoryRun:
    context = multiprocessing.get_context("spawn")
    pipe, child_end = context.Pipe()
    child = context.Process(
        target=_memory_child, args=(child_end, world.urls, str(directory)), daemon=True
    )
    child.start()
    try:
        if not pipe.poll(60) or pipe.recv() != "ready":
            msg = "the memory run's pipeline did not start"
            raise RuntimeError(msg)
        offered0 = world.stats().events_offered
        started = time.monotonic()
        world.set_rate(rate)
        samples: list[tuple[int, float]] = []
        while world.stats().events_offered - offered0 < events:
            time.sleep(2.0)
            pipe.send("sample")
            sample = pipe.recv()
            samples.append((int(sample["checkpoint"]), round(sample["rss_kb"] / 1024, 1)))
        world.set_rate(0)
        while True:
            pipe.send("sample")
            sample = pipe.recv()
            if sample["drained"] and world.stats().outbox == 0:
                break
            time.sleep(0.5)
        seconds = time.monotonic() - started
        pipe.send("stop")
        final = pipe.recv()
    finally:
        child.join(60)
        if child.is_alive():
            child.kill()
    return MemoryRun(
        events=world.stats().events_offered - offered0,
        rate=rate,
        seconds=seconds,
        peak_rss_mb=round(final["peak_rss_kb"] / 1024, 1),
        final_rss_mb=round(final["rss_kb"] / 1024, 1),
        samples=samples,
    )


# -- the whole run ----------------------------------------------------------------------------


@dataclass
class Report:
    machine: dict[str, Any]
    traffic: dict[str, Any]
    baseline: dict[str, Any] = field(default_factory=dict)
    throughput: dict[str, Any] = field(default_factory=dict)
    latency: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    metrics_overhead: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "seed": SEED,
    }


def run_baselines(
    world: RemoteWorld, plan: Plan, log: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name, notify in (("bare", False), ("same_work", True)):
        runs = []
        for _ in range(plan.baseline_runs):
            with tempfile.TemporaryDirectory(prefix="e2e-baseline-", dir=_scratch()) as directory:
                runs.append(
                    e2e_baseline.measure(world, Path(directory), plan.baseline_kills, notify=notify)
                )
        best = max(runs, key=lambda r: r.rate)
        results[name] = {
            "events_per_s": round(best.rate, 1),
            "runs": [round(r.rate, 1) for r in runs],
            "cpu_per_event_us": round(1e6 * best.cpu_per_event_s, 1),
            "events": best.events,
            "notified": best.notified,
        }
        log(
            f"  baseline {name:<9} {best.rate:8.0f} ev/s (runs: "
            f"{', '.join(f'{r.rate:.0f}' for r in runs)}), "
            f"{1e6 * best.cpu_per_event_s:.1f} µs CPU/event"
        )
    return results


def _scratch() -> str:
    """Where data directories go: beside the project (a real disk), not a tmpfs."""
    path = Path(tempfile.gettempdir())
    return str(path)


def run(*, quick: bool, events: int | None, log: Callable[[str], None]) -> Report:
    plan = Plan.of(quick=quick, events=events)
    settings = WorldSettings(seed=SEED)
    report = Report(
        machine=machine(),
        traffic={
            "events_per_kill": settings.events_per_kill,
            "map_kill_share": settings.map_kill_share,
            "activity_share": settings.activity_share,
            "tracked_systems": settings.tracked_systems,
            "killmail_templates": settings.templates,
            "server": "separate process (spawn)",
        },
    )
    with RemoteWorld(settings) as world:
        log("baseline (a bare loop on one thread, no actors):")
        report.baseline = run_baselines(world, plan, log)
        probes_by_mode: dict[str, list[Probe]] = {}
        for metrics in (True, False):
            mode = "metrics_on" if metrics else "metrics_off"
            log(f"pipeline throughput, {mode.replace('_', ' ')}:")
            with (
                tempfile.TemporaryDirectory(prefix="e2e-", dir=_scratch()) as directory,
                Pipeline(pipeline_config(world.urls, Path(directory), metrics=metrics)) as pipe,
            ):
                driver = Driver(world, pipe, plan)
                rate, probes = driver.search(log)
                probes_by_mode[mode] = probes
                report.throughput[mode] = {
                    "events_per_s": round(rate, 1),
                    "probes": [p.to_dict() for p in probes],
                    "restarts": pipe.restarts(),
                }
                log(f"  sustained: {rate:.0f} events/s")
                if metrics:
                    log("latency (socket -> stage):")
                    for level_rate in LATENCY_RATES:
                        level = measure_latency(driver, level_rate, plan.latency_s)
                        report.latency.append(level.to_dict())
                        log(_latency_line(level))
        report.metrics_overhead = _metrics_overhead(world, plan, report, log)
        sustained = report.throughput["metrics_on"]["events_per_s"]
        memory_rate = max(100.0, 0.8 * sustained)
        log(f"memory: {plan.memory_events} events at {memory_rate:.0f} ev/s, fresh process")
        with tempfile.TemporaryDirectory(prefix="e2e-memory-", dir=_scratch()) as directory:
            memory = measure_memory(world, plan.memory_events, memory_rate, Path(directory))
        report.memory = asdict(memory)
        log(f"  peak RSS {memory.peak_rss_mb} MB after {memory.events} events")
    report.targets = _targets(report)
    return report


def _metrics_overhead(
    world: RemoteWorld, plan: Plan, report: Report, log: Callable[[str], None]
) -> dict[str, Any]:
    """CPU per event at one rate, metrics on and off, alternated to even out drift."""
    rate = round(0.5 * report.throughput["metrics_off"]["events_per_s"], -1) or 500.0
    log(f"metrics overhead: CPU per event at {rate:.0f} ev/s, on and off alternately")
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for metrics in (True, False, True, False) if not plan.bisections < 3 else (True, False):
        with (
            tempfile.TemporaryDirectory(prefix="e2e-", dir=_scratch()) as directory,
            Pipeline(pipeline_config(world.urls, Path(directory), metrics=metrics)) as pipe,
        ):
            probe = Driver(world, pipe, plan).probe(rate, max(plan.window_s, 5.0))
            cpu[metrics].append(probe.cpu_per_event_us)
            log(f"  metrics {'on ' if metrics else 'off'}: {probe.cpu_per_event_us:.1f} µs/event")
    on, off = statistics.median(cpu[True]), statistics.median(cpu[False])
    on_rate = report.throughput["metrics_on"]["events_per_s"]
    off_rate = report.throughput["metrics_off"]["events_per_s"]
    return {
        "rate": rate,
        "cpu_per_event_us_on": round(on, 1),
        "cpu_per_event_us_off": round(off, 1),
        "cpu_overhead": round(on / off - 1, 4),
        "throughput_on": on_rate,
        "throughput_off": off_rate,
        "throughput_overhead": round(off_rate / on_rate - 1, 4) if on_rate else None,
    }


def _latency_line(level: LatencyLevel) -> str:
    parts = []
    for stage in ("router", "notifier"):
        p = level.stages[stage]
        parts.append(f"{stage} p50 {p.p50_ms} p95 {p.p95_ms} p99 {p.p99_ms} ms (n={p.count})")
    note = "" if level.probe.sustained else "  [above the sustained rate]"
    return f"  {level.rate:6.0f} ev/s: " + "; ".join(parts) + note


def _latency_p99(report: Report, rate: float, stage: str) -> float | None:
    for level in report.latency:
        if level["rate"] == rate:
            value = level["stages"][stage]["p99_ms"]
            return None if value is None else float(value)
    return None


def _targets(report: Report) -> list[dict[str, Any]]:
    pipeline = report.throughput["metrics_on"]["events_per_s"]
    baseline = report.baseline["same_work"]["events_per_s"]
    bare = report.baseline["bare"]["events_per_s"]
    router = _latency_p99(report, 1000, "router")
    notifier = _latency_p99(report, 100, "notifier")
    overhead = report.metrics_overhead["cpu_overhead"]
    peak = report.memory["peak_rss_mb"]
    return [
        {
            "name": "throughput / baseline (same work)",
            "value": round(pipeline / baseline, 3),
            "target": f">= {TARGET_RATIO}",
            "met": pipeline / baseline >= TARGET_RATIO,
            "also": {"throughput / bare loop": round(pipeline / bare, 3)},
        },
        {
            "name": "p99 socket->router at 1,000 ev/s (ms)",
            "value": router,
            "target": f"<= {TARGET_ROUTER_P99_S * 1000:g}",
            "met": router is not None and router <= TARGET_ROUTER_P99_S * 1000,
        },
        {
            "name": "p99 socket->notifier at 100 ev/s (ms)",
            "value": notifier,
            "target": f"<= {TARGET_NOTIFIER_P99_S * 1000:g}",
            "met": notifier is not None and notifier <= TARGET_NOTIFIER_P99_S * 1000,
        },
        {
            "name": f"peak RSS after {report.memory['events']} events (MB)",
            "value": peak,
            "target": f"<= {TARGET_RSS_MB:g} after 1,000,000",
            "met": peak <= TARGET_RSS_MB,
        },
        {
            "name": "metrics CPU overhead per event",
            "value": overhead,
            "target": f"<= {TARGET_METRICS_OVERHEAD:.0%}",
            "met": overhead <= TARGET_METRICS_OVERHEAD,
        },
    ]


def render(report: Report) -> str:
    """The human table."""
    m = report.machine
    traffic = report.traffic
    lines = [
        (
            f"end-to-end benchmark: {m['cores']} cores, {m['implementation']} {m['python']}, "
            f"{m['platform']}, seed {m['seed']}"
        ),
        (
            f"traffic: killmails in {traffic['tracked_systems']} tracked systems, each "
            f"pushed twice, {traffic['map_kill_share']:.0%} also as map_kill, "
            f"map activity {traffic['activity_share']:.0%} of kills; "
            f"servers in a {traffic['server']}"
        ),
        "",
        f"{'':34}{'events/s':>12}{'µs CPU/event':>14}",
    ]
    for name, label in (("bare", "baseline, bare loop"), ("same_work", "baseline, same work")):
        b = report.baseline[name]
        lines.append(f"{label:34}{b['events_per_s']:>12,.0f}{b['cpu_per_event_us']:>14.1f}")
    for mode in ("metrics_on", "metrics_off"):
        t = report.throughput[mode]
        label = f"pipeline, {mode.replace('_', ' ')}"
        lines.append(f"{label:34}{t['events_per_s']:>12,.0f}")
    lines += ["", "latency, socket -> stage (ms)   p50      p95      p99     (samples)"]
    for level in report.latency:
        note = "" if level["sustained"] else "  above the sustained rate"
        for stage in ("router", "notifier"):
            p = level["stages"][stage]
            lines.append(
                f"  {level['rate']:>6,.0f} ev/s  {stage:<9} {_ms(p['p50_ms'])} {_ms(p['p95_ms'])} "
                f"{_ms(p['p99_ms'])}   ({p['count']}){note}"
            )
    mem = report.memory
    o = report.metrics_overhead
    lines += [
        "",
        (
            f"memory: peak RSS {mem['peak_rss_mb']} MB, final {mem['final_rss_mb']} MB, after "
            f"{mem['events']:,} events at {mem['rate']:,.0f} ev/s (fresh process)"
        ),
        (
            f"metrics: {o['cpu_per_event_us_on']} µs/event on, {o['cpu_per_event_us_off']} off "
            f"at {o['rate']:,.0f} ev/s ({o['cpu_overhead']:+.1%}); throughput "
            f"{o['throughput_on']:,.0f} on, {o['throughput_off']:,.0f} off"
        ),
        "",
        "targets:",
    ]
    for target in report.targets:
        mark = "met" if target["met"] else "NOT met"
        lines.append(f"  {target['name']}: {target['value']} (target {target['target']}) {mark}")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else "       -"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer probes")
    parser.add_argument("--events", type=int, help="events in the memory run")
    args = parser.parse_args(argv)
    return run_cli(quick=args.quick, events=args.events, as_json=args.json)


def run_cli(*, quick: bool, events: int | None, as_json: bool) -> int:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = run(quick=quick, events=events, log=log)
    if as_json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
