"""A small running tree for the metrics, web and dashboard tests.

``metrics`` and ``web`` are the real actors. The other actors are test
stand-ins with the status shapes the real ones report (the sources, journal
and pipeline are written in parallel): ``kills`` keeps a real
:class:`~realtime.health.ConnectionHealth` and reports counted events and
stage latencies like a real actor would; the others answer a status the test
sets, and can be made busy.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from actors.base import ReportingActor
from actors.metrics import MetricsActor, MetricsSettings
from actors.protocol import Names
from actors.web import WebActor, WebApp
from app.system import Listening
from realtime.config import Config, HttpConfig, Secret
from realtime.health import ConnectionHealth
from realtime.metrics import series_key
from supervision import (
    ActorContext,
    ChildSpec,
    MailboxSpec,
    Registry,
    SupervisedActor,
    SupervisionTree,
    SupervisorSpec,
)

TOKEN = "tok-3f9a-secret"


def config_on_free_port(**http: Any) -> Config:
    """The default configuration (kills enabled, no maps) on a free port with a token."""
    settings: dict[str, Any] = {"bind": "127.0.0.1", "port": 0, "token": Secret(TOKEN, "inline")}
    settings.update(http)
    return dataclasses.replace(Config(), http=HttpConfig(**settings))


# --- messages to the stand-ins -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Emit:
    """Count ``count`` committed killmails, each ``latency_s`` from socket to journal."""

    count: int
    latency_s: float = 0.004


@dataclass(frozen=True, slots=True)
class Drop:
    """The connection drops (``disconnected``)."""

    reason: str = "closed by the test"


@dataclass(frozen=True, slots=True)
class RejectFrame:
    reason: str


@dataclass(frozen=True, slots=True)
class SetStatus:
    status: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Fail:
    """Raise in the handler with this message, as a bug would."""

    message: str


@dataclass(frozen=True, slots=True)
class Block:
    """Keep the actor's thread busy until ``release`` is set (or 10 s pass)."""

    release: threading.Event


class KillsStandIn(ReportingActor):
    """Stands in for the ``kills`` source: real health, counted events, stage latencies."""

    report_interval_s = 0.1

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        self.health = ConnectionHealth(
            "kills", "websocket", now=time.monotonic(), silence_timeout_s=60.0, stale_after_s=45.0
        )
        self.rejects: collections.Counter[str] = collections.Counter()

    def on_start(self) -> None:
        super().on_start()
        now = time.monotonic()
        self.health.connecting(now)
        self.health.connected(now)
        self.health.rtt(0.012, now)
        self.health.message(now)

    def on_receive(self, message: Any) -> Any:
        now = time.monotonic()
        if isinstance(message, Emit):
            key = series_key("events_total", source="wanderer-kills", type="killmail")
            self.counters[key] += message.count
            now_ns = time.monotonic_ns()
            for _ in range(message.count):
                self.observe("journal", now_ns - int(message.latency_s * 1e9), now_ns)
            self.health.message(now)
            self.health.rtt(0.010 + 0.001 * (message.count % 5), now)
            return None
        if isinstance(message, Drop):
            self.health.disconnected(message.reason, now)
            return None
        if isinstance(message, RejectFrame):
            self.rejects[message.reason] += 1
            return None
        return super().on_receive(message)

    def status(self) -> Mapping[str, Any]:
        return {
            "connection": self.health.snapshot(time.monotonic()).to_dict(),
            "rejects": dict(self.rejects),
        }


class StatusStandIn(SupervisedActor):
    """Answers the status the test gives it; can be kept busy."""

    def __init__(self, ctx: ActorContext, status: Mapping[str, Any]) -> None:
        super().__init__(ctx)
        self._status = dict(status)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, SetStatus):
            self._status = dict(message.status)
            return None
        if isinstance(message, Block):
            message.release.wait(10)
            return None
        if isinstance(message, Fail):
            raise RuntimeError(message.message)
        return super().on_receive(message)

    def status(self) -> Mapping[str, Any]:
        return dict(self._status)


STATUSES: Mapping[str, Mapping[str, Any]] = {
    Names.JOURNAL: {
        "last_seq": 42,
        "checkpoint": 40,
        "backlog": 2,
        "rows": 42,
        "db_bytes": 65536,
        "rejects": {"invalid_json": 1},
        "outcomes": {"handled": 40},
        "error": None,
    },
    Names.DEDUP: {"window_s": 7200, "size": 40, "capacity": 200000, "duplicates": 3},
    Names.FLOW_CONTROL: {
        "backpressure": False,
        "size": 0,
        "capacity": 10000,
        "levels": {"critical": 0, "high": 0, "normal": 0, "low": 0},
        "shed": {"low": 0},
        "stale": {"normal": 0},
    },
    Names.ROUTER: {"handled": 40},
    Names.TRACKING: {"systems": 3, "characters": 2},
    Names.NOTIFIER: {
        "sent": 5,
        "failed": 0,
        "pending": 0,
        "sinks": {"console": {}},
        "routes": {
            "kills": {
                "kinds": ["kill"],
                "destination": "channel 1",
                "mention": "",
                "state": "running",
                "error": None,
                "sent": 5,
                "pending": 0,
                "failed": 0,
            },
            "ops": {
                "kinds": ["alert"],
                "destination": "channel 2",
                "mention": "@here",
                "state": "stopped",
                "error": "Discord answered 403",
                "sent": 0,
                "pending": 2,
                "failed": 1,
            },
        },
        "unrouted": {"rally_point": 3},
        "error": None,
    },
}


# --- the tree ----------------------------------------------------------------------------------


@dataclass
class Running:
    """A started tree: its registry, web app and base URL."""

    tree: SupervisionTree
    app: WebApp
    url: str
    released: list[threading.Event] = field(default_factory=list)

    @property
    def registry(self) -> Registry:
        return self.tree.registry

    def tell(self, name: str, message: Any) -> None:
        self.registry.tell(name, message)

    def block(self, name: str) -> threading.Event:
        """Keep ``name`` busy until the returned event is set (at teardown at the latest)."""
        release = threading.Event()
        self.released.append(release)
        self.tell(name, Block(release))
        return release


def _stand_in(name: str, status: Mapping[str, Any]) -> ChildSpec:
    return ChildSpec(name, lambda ctx: StatusStandIn.start(ctx, status), mailbox=MailboxSpec(100))


@contextmanager
def running_tree(
    config: Config | None = None,
    *,
    pipeline: bool = True,
    settings: MetricsSettings | None = None,
    statuses: Mapping[str, Mapping[str, Any]] = STATUSES,
    metrics_start: Callable[[ActorContext], Any] | None = None,
) -> Iterator[Running]:
    """metrics, [journal, pipeline(dedup, flow_control, router, tracking, notifier)],
    sources(kills), web; stopped on exit."""
    config = config or config_on_free_port()
    registry = Registry()
    app = WebApp(config, registry)
    listening = Listening()
    metrics_settings = settings or MetricsSettings.from_config(config, tick_s=0.2)
    children = [
        ChildSpec(
            Names.METRICS,
            metrics_start or (lambda ctx: MetricsActor.start(ctx, config, metrics_settings)),
            mailbox=MailboxSpec(config.mailbox.metrics),
        )
    ]
    if pipeline:
        children.append(_stand_in(Names.JOURNAL, statuses[Names.JOURNAL]))
        stages = [Names.DEDUP, Names.FLOW_CONTROL, Names.ROUTER, Names.TRACKING, Names.NOTIFIER]
        children.append(
            SupervisorSpec(Names.PIPELINE, [_stand_in(n, statuses[n]) for n in stages]).as_child()
        )
    kills = ChildSpec(Names.KILLS, KillsStandIn.start, mailbox=MailboxSpec(100))
    children.append(SupervisorSpec(Names.SOURCES, [kills]).as_child())
    children.append(
        ChildSpec(
            Names.WEB,
            lambda ctx: WebActor.start(ctx, app, listening.set),
            mailbox=MailboxSpec(config.mailbox.web),
        )
    )
    tree = SupervisionTree(SupervisorSpec(Names.ROOT, children), registry)
    app.tree = tree
    tree.start()
    running = Running(tree, app, listening.url())
    try:
        yield running
    finally:
        for release in running.released:
            release.set()
        tree.stop()
