"""Small real actors that stand in for ``journal`` and ``tracking`` around a source actor.

They are real actors in a real :class:`~supervision.SupervisionTree`, talking
to the source under test by name with the messages of ``actors.protocol``:

- :class:`RecordingJournal` records every :class:`Ingest` (and, while told
  to, refuses them with :class:`IngestRefused` sent to the source's actor, as
  the journal does when its disk is full, or stalls, as a journal that falls
  behind does, its mailbox refusing puts once full like the real one's),
  keeps the last cursor per source, and answers :class:`GetCursor` from what
  it recorded (or, while told to, fails the ask, which crashes it and makes
  its supervisor restart it);
- :class:`StaticTracking` answers :class:`GetTracking` with the sets a test
  gave it and records every :class:`Bootstrap` it receives.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pykka

from actors.journal import refusal_recipient
from actors.protocol import (
    Bootstrap,
    GetCursor,
    GetTracking,
    Ingest,
    IngestRefused,
    Names,
    TrackingChanged,
)
from realtime.event import Event, Reject
from supervision import (
    ActorContext,
    Backoff,
    ChildSpec,
    MailboxSpec,
    OverflowPolicy,
    SupervisedActor,
    SupervisionTree,
    SupervisorSpec,
)

FAST_RESTARTS = Backoff(0.001, 0.01, jitter=0.0)


class JournalLog:
    """What the recording journal saw; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ingests: list[Ingest] = []
        self._refused: list[Ingest] = []
        self._cursors: dict[str, str] = {}
        self.refusing = threading.Event()
        self.cursor_unavailable = threading.Event()
        self.flowing = threading.Event()
        """Cleared, the journal stalls on the next ingest until it is set again."""
        self.flowing.set()

    def record(self, ingest: Ingest) -> None:
        with self._lock:
            self._ingests.append(ingest)
            if ingest.cursor is not None:
                self._cursors[ingest.cursor.source] = ingest.cursor.value

    def refuse(self, ingest: Ingest) -> None:
        with self._lock:
            self._refused.append(ingest)

    def cursor(self, source: str) -> str | None:
        with self._lock:
            return self._cursors.get(source)

    @property
    def ingests(self) -> list[Ingest]:
        with self._lock:
            return list(self._ingests)

    @property
    def refused(self) -> list[Ingest]:
        with self._lock:
            return list(self._refused)

    @property
    def events(self) -> list[Event]:
        return [event for ingest in self.ingests for event in ingest.events]

    @property
    def rejects(self) -> list[Reject]:
        return [reject for ingest in self.ingests for reject in ingest.rejects]

    def reject_reasons(self) -> set[str]:
        return {reject.reason for reject in self.rejects}


class RecordingJournal(SupervisedActor):
    def __init__(self, ctx: ActorContext, log: JournalLog) -> None:
        super().__init__(ctx)
        self.log = log

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ingest):
            self.log.flowing.wait()
            if self.log.refusing.is_set():
                self.log.refuse(message)
                self.registry.tell(refusal_recipient(message), IngestRefused(message, "disk full"))
            else:
                self.log.record(message)
            return None
        if isinstance(message, GetCursor):
            if self.log.cursor_unavailable.is_set():
                msg = "the journal's database is not open"
                raise LookupError(msg)
            return self.log.cursor(message.source)
        return None


class TrackingLog:
    """What the static tracking holds and saw; thread-safe."""

    def __init__(
        self, systems: Sequence[int] = (), characters: Sequence[int] = (), *, answering: bool = True
    ) -> None:
        self._lock = threading.Lock()
        self._current = _changed(systems, characters)
        self._bootstraps: list[Bootstrap] = []
        self.answering = threading.Event()
        if answering:
            self.answering.set()

    @property
    def current(self) -> TrackingChanged:
        with self._lock:
            return self._current

    def set(self, systems: Sequence[int], characters: Sequence[int]) -> TrackingChanged:
        with self._lock:
            self._current = _changed(systems, characters)
            return self._current

    def record(self, bootstrap: Bootstrap) -> None:
        with self._lock:
            self._bootstraps.append(bootstrap)

    @property
    def bootstraps(self) -> list[Bootstrap]:
        with self._lock:
            return list(self._bootstraps)


class _View:
    def __init__(self, systems: frozenset[int], characters: frozenset[int]) -> None:
        self._systems = systems
        self._characters = characters

    def is_tracked_system(self, system_id: int) -> bool:
        return system_id in self._systems

    def is_tracked_character(self, character_id: int) -> bool:
        return character_id in self._characters


def _changed(systems: Sequence[int], characters: Sequence[int]) -> TrackingChanged:
    system_set, character_set = frozenset(systems), frozenset(characters)
    return TrackingChanged(_View(system_set, character_set), system_set, character_set)


class StaticTracking(SupervisedActor):
    def __init__(self, ctx: ActorContext, log: TrackingLog) -> None:
        super().__init__(ctx)
        self.log = log

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, GetTracking):
            if not self.log.answering.is_set():
                msg = "tracking is not ready"
                raise LookupError(msg)
            return self.log.current
        if isinstance(message, Bootstrap):
            self.log.record(message)
        return None


def journal_spec(log: JournalLog, capacity: int = 10_000) -> ChildSpec:
    """The recording journal; its mailbox refuses puts beyond ``capacity``, as the real one's."""
    return ChildSpec(
        name=Names.JOURNAL,
        start=lambda ctx: RecordingJournal.start(ctx, log),
        mailbox=MailboxSpec(capacity, OverflowPolicy.REJECT),
    )


def tracking_spec(log: TrackingLog) -> ChildSpec:
    return ChildSpec(
        name=Names.TRACKING,
        start=lambda ctx: StaticTracking.start(ctx, log),
        mailbox=MailboxSpec(1000),
    )


def tree_of(children: Sequence[ChildSpec]) -> SupervisionTree:
    return SupervisionTree(
        SupervisorSpec("root", tuple(children), max_restarts=20, backoff=FAST_RESTARTS)
    )


class Trees:
    """Starts trees for a test and stops all of them (and every pykka actor) at teardown."""

    def __init__(self) -> None:
        self._started: list[SupervisionTree] = []

    def start(self, children: Sequence[ChildSpec]) -> SupervisionTree:
        tree = tree_of(children)
        self._started.append(tree)
        return tree.start()

    def stop_all(self) -> None:
        for tree in self._started:
            tree.stop(timeout_s=10)
        pykka.ActorRegistry.stop_all(timeout=5)


def trees() -> Iterator[Trees]:
    """A fixture body: ``yield from trees()``."""
    started = Trees()
    try:
        yield started
    finally:
        started.stop_all()
