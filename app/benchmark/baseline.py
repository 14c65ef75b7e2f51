"""The baseline of the end-to-end benchmark: one bare loop on one thread, no actors.

It joins the same kills server with the same subscription as the pipeline and
does, for every frame, what the pipeline does for it, in the plainest way:

- read the frame from the socket (websocket-client, as the ``kills`` actor);
- decode it (:class:`~realtime.phoenix.PhoenixClient`, the same pure decoder,
  which computes the dedup key);
- check the key in a dict (first seq wins);
- append the events to the journal in batches (:class:`JournalStore`, the same
  database schema and payload encoding), in one transaction per batch with
  the previous batch's duplicate outcomes and checkpoint (as the journal's
  group commit writes them);
- give each unique event its priority (flow control's
  :class:`~realtime.flow.PriorityRules`, against the tracked sets) and route
  it by type (the router's default table);

and, with ``notify`` (the same work as the pipeline, which notifies every
kill): decide the notification (:func:`kill_notification`), render the
console line, claim it in the ledger (one transaction per batch), write it
to a null stream and mark it sent (one transaction per batch).

What it does not do is what only the actors need: messages between threads,
demand, the flow buffer's queues, metrics. When the pipeline's work per event
changes, change this loop with it, or the ratio of the two stops meaning
anything.

A batch ends when ``batch`` events are read or the socket has nothing more
to read: the loop never waits with events in hand.
"""

from __future__ import annotations

import select
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import websocket

from actors.notifier import CONSOLE, ConsoleSink
from actors.router import routing_table
from app.benchmark.pipeline import null_stream
from app.benchmark.world import RemoteWorld
from realtime.checkpoint import HeldOutcome
from realtime.config import Config, KillNotifyConfig
from realtime.event import Event, Outcome
from realtime.flow import PriorityRules
from realtime.journal_store import JournalStore, stored_payload
from realtime.ledger import Claim, Ledger
from realtime.notifications import Notification, kill_notification
from realtime.phoenix import Joined, PhoenixClient, PreloadComplete
from simulator.traffic import system_name

MAX_KILL_AGE_S = 3600.0


@dataclass(frozen=True, slots=True)
class Tracked:
    """What the map tracks, with names (the notifier's lookup)."""

    systems: Mapping[int, str]
    characters: Mapping[int, str]

    def is_tracked_system(self, system_id: int) -> bool:
        return system_id in self.systems

    def is_tracked_character(self, character_id: int) -> bool:
        return character_id in self.characters

    def system_name(self, system_id: int) -> str | None:
        return self.systems.get(system_id)

    def character_name(self, character_id: int) -> str | None:
        return self.characters.get(character_id)


@dataclass(frozen=True, slots=True)
class BaselineResult:
    events: int
    seconds: float
    cpu_seconds: float
    notified: int
    server_done_s: float
    """How long the server took to send everything (it must be well below ``seconds``)."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_per_event_s(self) -> float:
        return self.cpu_seconds / self.events


class BareLoop:
    """The loop's state: socket, decoder, dedup dict, journal, ledger."""

    def __init__(self, world: RemoteWorld, directory: Path, *, notify: bool, batch: int) -> None:
        urls = world.urls
        self.notify = notify
        self.batch = batch
        self.socket = websocket.WebSocket(skip_utf8_validation=True)
        self.socket.connect(urls.kills, suppress_origin=True)  # type: ignore[no-untyped-call]
        self.client = PhoenixClient(heartbeat_interval_s=30.0, heartbeat_timeout_s=60.0)
        self.tracked = Tracked(
            {system: system_name(system) for system in urls.systems},
            {character: str(character) for character in urls.characters},
        )
        database = directory / "journal.sqlite3"
        self.store = JournalStore.open(database)
        self.ledger = Ledger.open(database)
        self._null = null_stream()
        self.console = ConsoleSink(self._null)
        self.routes = routing_table(Config())
        self.priorities = PriorityRules()
        self.kill_settings = KillNotifyConfig()
        self.seen: dict[str, int] = {}
        # Written with the next batch, as the journal's group commit does.
        self._outcomes: list[HeldOutcome] = []
        self._checkpoint: int | None = None
        self.processed = 0
        self.notified = 0

    def close(self) -> None:
        if self._outcomes or self._checkpoint is not None:
            self.store.append([], outcomes=self._outcomes, checkpoint=self._checkpoint)
        self.socket.close()
        self._null.close()
        self.ledger.close()
        self.store.close()

    def join(self, timeout_s: float = 10.0) -> None:
        """Join with the map's subscription and consume the preload."""
        frame = self.client.join_frame(
            self.tracked.systems, self.tracked.characters, time.monotonic()
        )
        self.socket.send(frame)
        deadline = time.monotonic() + timeout_s
        joined = preloaded = False
        while not (joined and preloaded):
            if time.monotonic() > deadline:
                msg = "the baseline could not join the kills server"
                raise TimeoutError(msg)
            received = self.client.receive(self._recv(), time.monotonic_ns(), time.monotonic())
            joined = joined or isinstance(received.control, Joined)
            preloaded = preloaded or isinstance(received.control, PreloadComplete)
            if received.events:
                self._flush(list(received.events))

    def _recv(self) -> str:
        _opcode, frame = self.socket.recv_data_frame(control_frame=False)
        return str(frame.data.decode("utf-8", "surrogateescape"))

    def run(self, events: int) -> None:
        """Process until ``events`` more events went through."""
        target = self.processed + events
        pending: list[Event] = []
        while self.processed + len(pending) < target:
            received = self.client.receive(self._recv(), time.monotonic_ns(), time.monotonic())
            pending.extend(received.events)
            if len(pending) >= self.batch or not self._readable():
                self._flush(pending)
                pending = []
        self._flush(pending)

    def _readable(self) -> bool:
        sock = self.socket.sock
        if sock is None:
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    def _flush(self, events: list[Event]) -> None:
        if not events:
            return
        committed = self.store.append(
            events,
            # Encoded as the kills reader does: data decoded from the feed's JSON.
            payloads=[stored_payload(e.data, from_json=True) for e in events],
            outcomes=self._outcomes,
            checkpoint=self._checkpoint,
        )
        duplicates: list[int] = []
        notifications: list[tuple[Notification, Event]] = []
        now = time.time()
        assign = self.priorities.assign
        for event in committed:
            seq = event.committed_seq
            if self.seen.setdefault(event.key, seq) != seq:
                duplicates.append(seq)
                continue
            assign(event, self.tracked)
            handlers = self.routes.get(event.type, ())
            if self.notify and "notifier" in handlers:
                decided = kill_notification(
                    event, self.tracked, self.kill_settings, MAX_KILL_AGE_S, now
                )
                if isinstance(decided, Notification):
                    notifications.append((decided, event))
        self._outcomes = [HeldOutcome(tuple(duplicates), Outcome.DUPLICATE)] if duplicates else []
        if notifications:
            self._notify(notifications)
        self._checkpoint = committed[-1].committed_seq
        self.processed += len(committed)

    def _notify(self, notifications: list[tuple[Notification, Event]]) -> None:
        claims = [Claim(CONSOLE, n.key, e.seq, ConsoleSink.payload(n)) for n, e in notifications]
        entries = self.ledger.claim_many(claims)
        sent = [
            entry.key
            for entry in entries
            if entry is not None and self.console.write(entry.payload)
        ]
        self.console.flush()
        self.ledger.mark_sent_many(sent)
        self.notified += len(sent)


def measure(
    world: RemoteWorld, directory: Path, kills: int, *, notify: bool, batch: int = 500
) -> BaselineResult:
    """The bare loop's rate over ``kills`` kills pushed as fast as the server can (2 events each).

    Run it while no pipeline is connected to ``world``: the server pushes to
    every joined client.
    """
    loop = BareLoop(world, directory, notify=notify, batch=batch)
    try:
        loop.join()
        frames_before = world.statistics().frames_sent
        started, cpu_started = time.monotonic(), time.process_time()
        world.begin_burst(kills)
        loop.run(2 * kills)
        seconds = time.monotonic() - started
        cpu = time.process_time() - cpu_started
        world.end_burst()
        server_done = world.wait_sent(frames_before + 2 * kills) - started
    finally:
        loop.close()
    return BaselineResult(2 * kills, seconds, cpu, loop.notified, server_done)
