"""The real program's pipeline under test, in this process, against a :class:`RemoteWorld`.

:class:`Pipeline` builds the application's supervision tree (``app.system``)
from a configuration pointed at the world's servers, with two differences
from ``python run.py``: the console sink writes to a null stream (so that the
terminal is not the bottleneck), and the metrics actor also hands the latency
samples it receives to a :class:`LatencyTap`, so that percentiles can be
computed exactly per load level (the metrics actor itself keeps bucketed
histograms over a rolling window).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from actors.metrics import MetricsActor
from actors.protocol import Names, StatsReport
from app.benchmark.world import API_KEY, CHANNEL_ID, SLUG, WorldUrls, wait_until
from app.system import App, build
from realtime.config import Config, parse
from supervision import ActorContext, ChildSpec, GetStatus, SupervisionTree

STAGES = ("journal", "dedup", "flow", "router", "notifier")


def null_stream() -> TextIO:
    """A text stream into ``/dev/null``: lines are really written, nothing is kept."""
    return open(os.devnull, "w", encoding="utf-8")


class LatencyTap:
    """Latency samples per stage, as reported to ``metrics``, while open; thread-safe.

    Collects only between :meth:`open` and :meth:`take`, at most ``capacity``
    samples per stage (then the oldest go first).
    """

    def __init__(self, capacity: int = 500_000) -> None:
        self._lock = threading.Lock()
        self._capacity = capacity
        self._open = False
        self._samples: dict[str, list[float]] = {}

    def open(self) -> None:
        """Start collecting (what was collected before is dropped)."""
        with self._lock:
            self._open = True
            self._samples = {}

    def add(self, stage: str, samples: Sequence[float]) -> None:
        with self._lock:
            if not self._open:
                return
            held = self._samples.setdefault(stage, [])
            held.extend(samples)
            if len(held) > self._capacity:
                del held[: len(held) - self._capacity]

    def take(self) -> dict[str, list[float]]:
        """What was collected since :meth:`open`; collecting stops."""
        with self._lock:
            taken, self._samples = self._samples, {}
            self._open = False
        return taken


class TappedMetrics(MetricsActor):
    """The metrics actor, which also copies every latency sample it receives to a tap."""

    def __init__(self, ctx: ActorContext, config: Config, tap: LatencyTap) -> None:
        super().__init__(ctx, config)
        self.tap = tap

    def ingest(self, report: StatsReport) -> None:
        for stage, samples in report.latencies.items():
            self.tap.add(stage, samples)
        super().ingest(report)


def pipeline_config(
    urls: WorldUrls,
    directory: Path,
    *,
    metrics: bool = True,
    discord: bool = False,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """The configuration of a pipeline pointed at ``urls``, its data in ``directory``."""
    notify: dict[str, Any] = {"sinks": ["console"]}
    if discord:
        assert urls.discord_base is not None
        assert urls.discord_token is not None
        notify = {
            "sinks": ["discord"],
            "discord": {
                "mode": "bot",
                "api_base": urls.discord_base,
                "bot_token": urls.discord_token,
                "channel_id": CHANNEL_ID,
                "retry_min_s": 0.05,
                "retry_max_s": 2.0,
                "max_attempts": 1000,
            },
        }
    table: dict[str, Any] = {
        "app": {"data_dir": str(directory), "log_level": "WARNING"},
        "http": {"port": 0},
        "simulator": {"enabled": False},
        "sources": {"kills": {"url": urls.kills}},
        "maps": [{"slug": SLUG, "base_url": urls.map_base, "api_key": API_KEY}],
        "notify": notify,
        "metrics": {"enabled": metrics},
    }
    for section, values in (overrides or {}).items():
        table.setdefault(section, {}).update(values)
    return parse(table, {})


class Pipeline:
    """One running instance of the application; a context manager."""

    def __init__(self, config: Config, tap: LatencyTap | None = None) -> None:
        self.config = config
        self.tap = tap or LatencyTap()
        app = build(config)
        root = app.tree.spec
        children = tuple(
            self._tapped(child) if child.name == Names.METRICS else child for child in root.children
        )
        tree = SupervisionTree(dataclasses.replace(root, children=children), app.registry)
        app.web.tree = tree
        self.app = App(config, tree, app.web, app.listening)
        self._console = null_stream()

    def _tapped(self, child: ChildSpec) -> ChildSpec:
        config, tap = self.config, self.tap
        return dataclasses.replace(child, start=lambda ctx: TappedMetrics.start(ctx, config, tap))

    def start(self, timeout_s: float = 30.0) -> Pipeline:
        # The console sink takes sys.stdout when it starts: a null stream then.
        with contextlib.redirect_stdout(self._console):
            self.app.start()
        wait_until(self.ready, timeout_s, "the pipeline joining the feeds")
        return self

    def stop(self) -> None:
        self.app.stop()
        self._console.close()

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def status(self, name: str, timeout_s: float = 10.0) -> Mapping[str, Any]:
        answer: Mapping[str, Any] = self.app.registry.ask(name, GetStatus(), timeout_s)
        return answer

    def ready(self) -> bool:
        kills = self.status(Names.KILLS)
        feed = self.status(Names.map_source(SLUG))
        subscription = kills["subscription"]
        return bool(
            kills["socket"]["phase"] == "joined"
            and subscription["acknowledged_systems"] > 0
            and subscription["updates_in_flight"] == 0
            and feed["sse"]["phase"] == "live"
        )

    def journal(self) -> Mapping[str, Any]:
        return self.status(Names.JOURNAL)

    def settled(self) -> int:
        """The journal's checkpoint: every event up to it is finished with."""
        return int(self.journal()["checkpoint"])

    def drained(self) -> bool:
        journal = self.journal()
        return bool(journal["checkpoint"] == journal["last_seq"] and journal["pending"] == 0)

    def restarts(self) -> int:
        return sum(node.restarts for node in self.app.tree.snapshot().walk())


def now() -> float:
    return time.monotonic()
