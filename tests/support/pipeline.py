"""A real pipeline (journal, dedup, flow_control, router) with recording handlers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka

from actors import dedup, flow_control, journal, router
from actors.base import ReportingActor
from actors.protocol import Handle, Ingest, Names, Refused
from app.system import supervisor
from realtime.config import Config, parse
from realtime.event import KILLS_SOURCE, Event
from realtime.keys import event_key
from supervision import ActorContext, ChildSpec, MailboxFullError, MailboxSpec, SupervisionTree
from tests.support import events
from tests.support.waiting import wait_for


@dataclass
class Handled:
    """What the recording handlers received, thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: dict[str, list[Event]] = field(default_factory=dict)
    failures_left: dict[str, int] = field(default_factory=dict)
    refusals_left: dict[str, int] = field(default_factory=dict)
    poison: set[int] = field(default_factory=set)
    gate: threading.Event = field(default_factory=threading.Event)
    gated: set[str] = field(default_factory=set)

    def record(self, name: str, events: tuple[Event, ...]) -> None:
        with self.lock:
            self.events.setdefault(name, []).extend(events)

    def seen(self, name: str) -> list[Event]:
        with self.lock:
            return list(self.events.get(name, []))

    def should_fail(self, name: str) -> bool:
        return self._take(self.failures_left, name)

    def should_refuse(self, name: str) -> bool:
        return self._take(self.refusals_left, name)

    def _take(self, budget: dict[str, int], name: str) -> bool:
        with self.lock:
            left = budget.get(name, 0)
            if left:
                budget[name] = left - 1
            return left > 0

    def poisoned(self, events: tuple[Event, ...]) -> bool:
        """Whether a batch holds a killmail the handler raises on, every time."""
        return any(event.data.get("killmail_id") in self.poison for event in events)


class RecordingHandler(ReportingActor):
    """Stands in for ``tracking``/``notifier``: records what the router hands it."""

    def __init__(self, ctx: ActorContext, handled: Handled) -> None:
        super().__init__(ctx)
        self.handled = handled

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Handle):
            if self.name in self.handled.gated:
                self.handled.gate.wait(30)
            if self.handled.should_refuse(self.name):
                return Refused(f"{self.name} refused on purpose")
            if self.handled.should_fail(self.name) or self.handled.poisoned(message.events):
                msg = f"{self.name} failed on purpose"
                raise RuntimeError(msg)
            self.handled.record(self.name, message.events)
            return True
        return super().on_receive(message)


def config_for(tmp_path: Path, extra: Mapping[str, Any] | None = None) -> Config:
    table: dict[str, Any] = {
        "app": {"data_dir": str(tmp_path / "data")},
        "http": {"port": 0},
        "simulator": {"enabled": False},
        "supervision": {"backoff_min_s": 0.001, "backoff_max_s": 0.01, "max_restarts": 100},
        "routing": {"retry_min_s": 0.01, "retry_max_s": 0.05},
    }
    for section, values in (extra or {}).items():
        table.setdefault(section, {}).update(values)
    return parse(table, {})


def handler_spec(name: str, handled: Handled) -> ChildSpec:
    return ChildSpec(
        name=name,
        start=lambda ctx: RecordingHandler.start(ctx, handled),
        mailbox=MailboxSpec(1000),
    )


@contextmanager
def pipeline(config: Config, handled: Handled) -> Iterator[SupervisionTree]:
    stages = [
        dedup.child_spec(config),
        flow_control.child_spec(config),
        router.child_spec(config),
        handler_spec(Names.TRACKING, handled),
        handler_spec(Names.NOTIFIER, handled),
    ]
    root = supervisor(
        config,
        Names.ROOT,
        [journal.child_spec(config), supervisor(config, Names.PIPELINE, stages).as_child()],
    )
    tree = SupervisionTree(root).start()
    try:
        yield tree
    finally:
        handled.gate.set()
        tree.stop()
        pykka.ActorRegistry.stop_all(timeout=5)


def kill_event(
    killmail_id: int,
    *,
    source: str = KILLS_SOURCE,
    age_s: float = 0.0,
    system_id: int = 31000005,
    preload: bool = False,
) -> Event:
    data: dict[str, Any] = {
        "killmail_id": killmail_id,
        "system_id": system_id,
        "kill_time": "",
        "victim": {"character_id": 2112000001},
        "attackers": [],
        "preload": preload,
    }
    type_ = "killmail" if source == KILLS_SOURCE else "map_kill"
    ident = str(killmail_id) if source == KILLS_SOURCE else f"01J{killmail_id:023d}"
    return events.kill_event(
        data,
        at=time.time() - age_s,
        kind=type_,
        source=source,
        received_at=time.monotonic_ns(),
        key=event_key(source, type_, ident, data, "hybrid"),
        ident=ident,
    )


def map_event(type_: str, ident: str, payload: Mapping[str, Any], slug: str = "demo") -> Event:
    """A map event keyed as the sources key it (``hybrid``), received now."""
    return events.map_event(
        type_,
        dict(payload),
        ident,
        slug=slug,
        received_at=time.monotonic_ns(),
        key=event_key(f"map:{slug}", type_, ident, payload, "hybrid"),
    )


def ingest(tree: SupervisionTree, *events: Event) -> None:
    """Hand events to the journal as a source does: a full journal means retry."""
    message = Ingest(events[0].source, tuple(events))
    wait_for(lambda: _offered(tree, message), timeout_s=30, interval_s=0.001)


def _offered(tree: SupervisionTree, message: Ingest) -> bool:
    try:
        tree.registry.tell(Names.JOURNAL, message)
    except MailboxFullError:
        return False
    return True


def journal_status(tree: SupervisionTree) -> Mapping[str, Any]:
    from supervision import GetStatus

    status: Mapping[str, Any] = tree.registry.ask(Names.JOURNAL, GetStatus(), 5)
    return status


def checkpoint_reaches(tree: SupervisionTree, seq: int) -> Callable[[], bool]:
    return lambda: journal_status(tree).get("checkpoint", 0) >= seq
