"""The journal's writer thread: group commits off the journal actor's thread.

The journal actor hands the writer one :class:`Commit` at a time (the ingest
it holds, the outcomes to write, the checkpoint to save) and goes on taking
messages while SQLite works: more ingest gathers meanwhile and becomes the
next commit (group commit), and stages settle and ask for events without
waiting for the disk. SQLite releases the GIL while it inserts and commits, so
decoding in the readers proceeds meanwhile too.

When a commit ends, the writer keeps its :class:`Committed` and wakes the
actor with :data:`WRITER_DONE` on its control lane (never refused by a full
mailbox); the actor takes the result (:meth:`JournalWriter.take`) and delivers
the events only then: an event is acted on only after its commit. If the
thread itself ends on something other than a commit's passing failure, the
actor gets :class:`WriterDied` and fails with it, so its supervisor restarts
it; the ingest of the lost commit is handed to the next incarnation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from actors.protocol import Ingest
from realtime.checkpoint import HeldOutcome
from realtime.event import Cursor, Event, Reject
from realtime.journal_store import JournalStore, split_storable, stored_payload
from realtime.storage import StorageUnavailableError
from supervision import Control

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Commit:
    """What one transaction writes.

    Attributes:
        ingests: the ingest to commit, in order of arrival.
        outcomes: outcomes held by the checkpoint, to write first.
        checkpoint: the checkpoint to save with them (``None``: unchanged).
    """

    ingests: tuple[Ingest, ...]
    outcomes: tuple[HeldOutcome, ...]
    checkpoint: int | None


class WriterDone(Control):
    """Writer -> journal actor: a commit ended; take its result."""

    __slots__ = ()


WRITER_DONE = WriterDone()


@dataclass(frozen=True, slots=True)
class Committed:
    """How a :class:`Commit` went.

    Attributes:
        commit: the commit.
        events: its events as committed, each with its seq (empty on error).
        payloads: the stored payload of each of ``events``.
        rejects: the rejects written (those of the ingest, and an
            ``unstorable_event`` one for each event whose data cannot be stored).
        error: the passing failure that wrote nothing (retry later), or ``None``.
    """

    commit: Commit
    events: list[Event]
    payloads: list[bytes]
    rejects: list[Reject]
    error: StorageUnavailableError | None


class WriterDied(Control):
    """Writer -> journal actor: the thread ended on an unexpected error (a bug)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def write(store: JournalStore, commit: Commit) -> Committed:
    """Commit ``commit`` to ``store`` in one transaction.

    An event whose data cannot be stored becomes a reject (``unstorable_event``)
    instead of failing every retry; the rest goes in.

    Returns:
        the events with their seqs, their payloads, the rejects written
        (``error`` is always ``None``).

    Raises:
        StorageUnavailableError: nothing was written; retry later.
    """
    events: list[Event] = []
    given: list[bytes | None] = []
    rejects: list[Reject] = []
    cursors: dict[str, Cursor] = {}
    for ingest in commit.ingests:
        events += ingest.events
        given += ingest.payloads or (None,) * len(ingest.events)
        rejects += ingest.rejects
        if ingest.cursor is not None:
            cursors[ingest.cursor.source] = ingest.cursor
    payloads = [
        stored_payload(event.data) if payload is None else payload
        for event, payload in zip(events, given, strict=True)
    ]
    if None in payloads:
        # Data that cannot be stored would fail every retry: it becomes a reject.
        storable, unstorable = split_storable(events)
        rejects += unstorable
        events = storable
    stored = [p for p in payloads if p is not None]
    committed = store.append(
        events,
        rejects,
        list(cursors.values()),
        payloads=stored,
        outcomes=commit.outcomes,
        checkpoint=commit.checkpoint,
    )
    return Committed(commit, committed, stored, rejects, None)


class JournalWriter:
    """A thread that runs one :class:`Commit` at a time for the journal actor.

    Args:
        store: the journal, opened ``shared``.
        post: delivers :data:`WRITER_DONE` and :class:`WriterDied` to the actor.
        name: the thread's name.
    """

    def __init__(
        self,
        store: JournalStore,
        post: Callable[[Control], None],
        name: str,
    ) -> None:
        self._store = store
        self._post = post
        self._cond = threading.Condition()
        self._next: Commit | None = None
        self._result: Committed | None = None
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def take(self) -> Committed | None:
        """The result of the last commit that ended, once (``None``: nothing new)."""
        with self._cond:
            result, self._result = self._result, None
            return result

    def wait(self, timeout_s: float) -> bool:
        """Wait until the running commit (if any) ended; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy, timeout_s)

    def submit(self, commit: Commit) -> None:
        """Run ``commit`` next.

        Raises:
            RuntimeError: a commit is still running, or the writer stopped.
        """
        with self._cond:
            if self._busy or self._stopping:
                msg = "the journal writer is busy or stopped"
                raise RuntimeError(msg)
            self._busy = True
            self._next = commit
            self._cond.notify_all()

    def stop(self, timeout_s: float) -> bool:
        """Finish the running commit (its result is still posted), then end the thread.

        Returns:
            ``True`` if the thread ended within ``timeout_s`` (a commit may
            wait up to the database's busy timeout).
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _main(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._next is None and not self._stopping:
                        self._cond.wait()
                    commit, self._next = self._next, None
                if commit is None:
                    return
                self._run(commit)
        except BaseException as error:  # reported to the actor, which fails
            logger.exception("journal: the writer thread failed")
            self._post(WriterDied(error))

    def _run(self, commit: Commit) -> None:
        try:
            result = write(self._store, commit)
        except StorageUnavailableError as error:
            result = Committed(commit, [], [], [], error)
        with self._cond:
            self._result = result
            self._busy = False
            self._cond.notify_all()
        self._post(WRITER_DONE)


def count_events(ingests: Sequence[Ingest]) -> int:
    """How many events ``ingests`` carry."""
    return sum(len(ingest.events) for ingest in ingests)
