"""Helpers shared by the notifier and tracking tests: config, events, trees, recorders."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TextIO

import pytest

from actors import notifier, tracking
from actors.protocol import Bootstrap, GetTracking, Handle, Names
from realtime.config import (
    AppConfig,
    Config,
    DiscordConfig,
    MapConfig,
    NotifyConfig,
    Secret,
)
from realtime.event import KILLS_SOURCE, Event, Priority, format_time
from realtime.storage import DATABASE_FILE
from simulator.discord_fake import DiscordFake
from supervision import (
    ActorContext,
    Backoff,
    ChildSpec,
    SupervisedActor,
    SupervisionTree,
    SupervisorSpec,
)
from tests.support import events
from tests.support.waiting import wait_for

CHANNEL = "100200300"
SLUG = "home"
HOME, KSPACE = 31000005, 30000142
VICTIM, SHOOTER, STRANGER = 2117000001, 2117000002, 2117000099

ROOMY_DISCORD = pytest.mark.discord_fake(bucket_limit=1000, bucket_window_s=1.0)
"""The ``discord_fake`` of the notifier tests: its rate-limit buckets never slow them down."""


def bot_config(fake: DiscordFake, **changes: Any) -> DiscordConfig:
    """Bot mode against ``fake``, with retries fast enough for tests."""
    config = DiscordConfig(
        mode="bot",
        api_base=fake.base_url,
        bot_token=Secret(fake.bot_token, "inline"),
        channel_id=CHANNEL,
        request_timeout_s=2.0,
        max_attempts=50,
        retry_min_s=0.01,
        retry_max_s=0.05,
        concurrency=4,
        send_queue=100,
    )
    return dataclasses.replace(config, **changes)


def webhook_config(url: str, **changes: Any) -> DiscordConfig:
    config = DiscordConfig(
        mode="webhook",
        webhook_url=Secret(url, "inline"),
        request_timeout_s=2.0,
        retry_min_s=0.01,
        retry_max_s=0.05,
    )
    return dataclasses.replace(config, **changes)


def app_config(
    data_dir: Path,
    *,
    sinks: tuple[Literal["console", "discord"], ...] = ("discord",),
    discord: DiscordConfig | None = None,
    slugs: tuple[str, ...] = (SLUG,),
) -> Config:
    return Config(
        app=AppConfig(data_dir=str(data_dir)),
        maps=tuple(MapConfig(slug=slug) for slug in slugs),
        notify=NotifyConfig(sinks=sinks, discord=discord or DiscordConfig()),
    )


def database(config: Config) -> Path:
    return config.data_path / DATABASE_FILE


def killmail(
    killmail_id: int,
    *,
    system_id: int = HOME,
    victim: int | None = STRANGER,
    attackers: Sequence[int | None] = (STRANGER + 1,),
    age_s: float = 60.0,
    name: str = "Victim Pilot",
    preload: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "killmail_id": killmail_id,
        "kill_time": format_time(time.time() - age_s),
        "system_id": system_id,
        "victim": {
            "character_id": victim,
            "corporation_id": 98000001,
            "ship_type_id": 587,
            "character_name": name,
            "corporation_name": "Victim Corp",
            "ship_name": "Rifter",
        },
        "attackers": [
            {
                "character_id": attacker,
                "ship_type_id": 11993,
                "damage_done": 100 + index,
                "final_blow": index == 0,
                "character_name": f"Attacker {index}",
                "ship_name": "Cerberus",
            }
            for index, attacker in enumerate(attackers)
        ],
        "zkb": {"totalValue": 125_000_000.0},
        "attacker_count": len(attackers),
    }
    if preload:
        data["preload"] = True
    return data


def kill_event(
    data: dict[str, Any], seq: int, *, kind: str = "killmail", source: str = KILLS_SOURCE
) -> Event:
    """A journaled kill (seq ``seq``) of high priority, received now, a minute old."""
    return events.kill_event(
        data,
        seq=seq,
        kind=kind,
        source=source,
        priority=Priority.HIGH,
        received_at=time.monotonic_ns(),
    )


def map_event(kind: str, payload: dict[str, Any], seq: int, *, slug: str = SLUG) -> Event:
    """A journaled map event (seq ``seq``, keyed by it), received now."""
    return events.map_event(
        kind,
        payload,
        f"01J{seq:023d}",
        slug=slug,
        seq=seq,
        received_at=time.monotonic_ns(),
        key=f"map:{slug}:{seq}",
    )


class Recorder(SupervisedActor):
    """A neighbour that records every message it is told (thread-safe reads)."""

    def __init__(self, ctx: ActorContext, inbox: list[Any], lock: threading.Lock) -> None:
        super().__init__(ctx)
        self._inbox = inbox
        self._lock = lock

    def on_receive(self, message: Any) -> Any:
        with self._lock:
            self._inbox.append(message)
        return None


class Recorded:
    """What the :class:`Recorder` actors of a tree received, by actor name."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inboxes: dict[str, list[Any]] = {}

    def spec(self, name: str) -> ChildSpec:
        inbox = self.inboxes.setdefault(name, [])
        return ChildSpec(name=name, start=lambda ctx: Recorder.start(ctx, inbox, self.lock))

    def of(self, name: str, kind: type[Any] | None = None) -> list[Any]:
        with self.lock:
            messages = list(self.inboxes.get(name, ()))
        return [m for m in messages if kind is None or isinstance(m, kind)]


def tree_spec(children: Sequence[ChildSpec]) -> SupervisorSpec:
    return SupervisorSpec(
        name="pipeline",
        children=tuple(children),
        max_restarts=10,
        max_seconds=5.0,
        backoff=Backoff(0.001, 0.01, jitter=0.0),
    )


@contextmanager
def running_tree(children: Sequence[ChildSpec]) -> Iterator[SupervisionTree]:
    tree = SupervisionTree(tree_spec(children)).start()
    try:
        yield tree
    finally:
        tree.stop()


def notifier_spec(
    config: Config,
    *,
    stdout: TextIO | None = None,
    seed: int = 7,
    tick_s: float = 0.02,
    stop_timeout_s: float = 3.0,
) -> ChildSpec:
    """The notifier with a fast tick and a fixed jitter seed."""
    settings = dataclasses.replace(
        notifier.NotifierSettings.from_config(config), tick_s=tick_s, stop_timeout_s=stop_timeout_s
    )
    return ChildSpec(
        name=Names.NOTIFIER,
        start=lambda ctx: notifier.NotifierActor.start(ctx, settings, stdout=stdout, seed=seed),
        shutdown_s=10.0,
    )


@contextmanager
def pipeline(
    config: Config,
    *,
    systems: dict[int, str] | None = None,
    characters: dict[int, str] | None = None,
    stdout: TextIO | None = None,
    recorded: Recorded | None = None,
    stop_timeout_s: float = 3.0,
) -> Iterator[SupervisionTree]:
    """Tracking (bootstrapped with ``systems`` and ``characters``) and the notifier."""
    neighbours = [recorded.spec(name) for name in recorded.inboxes] if recorded else []
    children = [
        *neighbours,
        tracking.child_spec(config),
        notifier_spec(config, stdout=stdout, stop_timeout_s=stop_timeout_s),
    ]
    with running_tree(children) as tree:
        bootstrap = Bootstrap(
            SLUG,
            {HOME: "J100005"} if systems is None else systems,
            {VICTIM: "Tracked Victim", SHOOTER: "Our Shooter"}
            if characters is None
            else characters,
        )
        tree.registry.tell(Names.TRACKING, bootstrap)
        # answered after the bootstrap, whose TrackingChanged is then already
        # in the notifier's mailbox, ahead of any Handle the test sends
        tree.registry.ask(Names.TRACKING, GetTracking())
        yield tree


def handle(tree: SupervisionTree, events: Sequence[Event], name: str = Names.NOTIFIER) -> Any:
    """Ask ``name`` to handle ``events`` as the router would."""
    return tree.registry.ask(name, Handle(tuple(events)), timeout_s=10.0)


def ledger_states(path: Path) -> dict[str, int]:
    """``state -> count`` of the ledger, read through a connection of the test's own."""
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT state, COUNT(*) FROM notifications GROUP BY state")
        return {str(state): int(count) for state, count in rows}
    finally:
        connection.close()


def posted_kills(fake: DiscordFake, channel: str = CHANNEL) -> list[int]:
    """The killmail ids of the messages ``fake`` created in ``channel``, in order."""
    ids = []
    for message in fake.messages(channel):
        url = message["embeds"][0].get("url", "")
        ids.append(int(url.rstrip("/").rsplit("/", 1)[-1]))
    return ids


def settled(
    path: Path, total: int, *, timeout_s: float = 10.0, states: tuple[str, ...] = ("sent",)
) -> dict[str, int]:
    """Wait until ``total`` ledger entries are in ``states``; returns the counts."""

    def done() -> dict[str, int]:
        counts = ledger_states(path)
        return counts if sum(counts.get(state, 0) for state in states) >= total else {}

    return wait_for(done, timeout_s=timeout_s, what=f"{total} ledger entries {states}")


def no_duplicates(values: Sequence[int]) -> bool:
    return len(values) == len(set(values))
