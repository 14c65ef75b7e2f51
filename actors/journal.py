"""The ``journal`` actor: every event is committed here before anything acts on it.

Ingest (group commit)
    Sources send :class:`~actors.protocol.Ingest`. The actor commits what is
    queued in one transaction: it keeps appending while more ingest waits in
    its mailbox, up to ``[journal] batch_max`` events, so a quiet feed is
    committed at once and a busy one in large batches. Cursors commit with
    the events they cover.

Delivery (demand-driven)
    Committed events go to ``dedup`` only as far as ``flow_control`` has
    granted demand; the rest waits on disk (read back when needed), so
    overload becomes backlog, not memory. Committed events not yet delivered
    are kept in a bounded tail so the usual case never reads the database;
    a delivered event leaves it (a redelivery reads the database).

Checkpoint and redelivery
    Stages report finished events with :class:`~actors.protocol.Settled`. The
    checkpoint advances over the contiguous settled prefix and is persisted a
    few times a second. A (re)started pipeline actor sends
    :class:`~actors.protocol.Resync`: delivery restarts after the checkpoint,
    and ``flow_control`` is told to grant demand afresh. Every stage is
    idempotent under this redelivery.

Faults
    A database that cannot be written or opened (disk full, the ``max_db_mb``
    cap, locked past the busy timeout, read-only) is reported in the log and
    in ``status()["error"]`` (the ``journal:error`` alert, and ``/readyz``),
    and retried with backoff (``[journal] retry_min_s`` to ``retry_max_s``)
    until it works again, with no restart. Meanwhile ingest is held in memory
    up to ``[journal] max_pending`` events and refused back to the sources
    beyond that (:class:`~actors.protocol.IngestRefused`: they pause), never
    dropped; outcomes that cannot be written are held too (delivery pauses
    when ``max_pending`` of them wait), and the saved checkpoint stays behind
    them. A corrupt database fails the actor's start with a message saying
    what to do; it is never recreated over the user's data.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pykka

from actors.allocator import release_free_memory
from actors.base import ReportingActor
from actors.journal_writer import (
    Commit,
    Committed,
    JournalWriter,
    WriterDied,
    WriterDone,
    count_events,
    write,
)
from actors.protocol import (
    Deliver,
    Demand,
    GetCursor,
    Ingest,
    IngestRefused,
    Names,
    RecentKeys,
    Refused,
    Resync,
    Settled,
    StreamReset,
)
from actors.stall import Stall, storage_backoff
from realtime.checkpoint import Checkpoint, HeldOutcome
from realtime.config import Config
from realtime.event import KILLS_SOURCE, Event, Outcome, Reject
from realtime.journal_store import EventRow, JournalStore, event_from_row, event_row
from realtime.metrics import series_key
from realtime.storage import DATABASE_FILE, StorageSettings, StorageUnavailableError
from supervision import (
    ActorContext,
    ActorUnavailableError,
    ChildSpec,
    Control,
    MailboxSpec,
    OverflowPolicy,
)

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 0.2
RELEASE_MEMORY_EVERY_S = 1.0
"""How often the C allocator's free pages go back to the system (see actors.allocator):
the journal's ingest is where a burst's events are held, and a release costs about 1 ms."""
WRITER_STOP_MARGIN_S = 5.0
"""How much longer than the busy timeout a stop waits for a running commit."""


def journal_path(config: Config) -> Path:
    return config.data_path / DATABASE_FILE


def source_actor(source: str) -> str:
    """The actor name of the source that produced events with ``source``."""
    return Names.KILLS if source == KILLS_SOURCE else source


def refusal_recipient(ingest: Ingest) -> str:
    """Who gets ``ingest`` back when it is refused: its sender, else its source's actor."""
    return ingest.sender or source_actor(ingest.source)


class _Tick:
    """Timer: persist the checkpoint; retry what failed when its backoff is over."""

    __slots__ = ()


class _Purge:
    """Timer: apply retention (in chunks, interleaved with ingest)."""

    __slots__ = ()


class Handover:
    """Ingest that a crashed journal had not committed, for its next incarnation.

    Owned by the journal's child spec, so it outlives each actor instance: a
    crash anywhere, the journal included, loses nothing that reached it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ingests: list[Ingest] = []

    def put(self, ingest: Ingest) -> None:
        with self._lock:
            self._ingests.append(ingest)

    def take(self) -> list[Ingest]:
        with self._lock:
            ingests, self._ingests = self._ingests, []
            return ingests


class JournalActor(ReportingActor):
    """Owns the SQLite journal; see the module documentation."""

    def __init__(self, ctx: ActorContext, config: Config, handover: Handover) -> None:
        super().__init__(ctx)
        self.config = config
        self.handover = handover
        self.store: JournalStore | None = None
        self._writer: JournalWriter | None = None
        self._in_flight: Commit | None = None
        self._pending: collections.deque[Ingest] = collections.deque()
        self._pending_events = 0
        # Committed events not delivered yet, compact (as stored: a fifth of a decoded event).
        self._tail: collections.deque[EventRow] = collections.deque(
            maxlen=config.journal.tail_events
        )
        # The decoded events of the commit being delivered (see _committed).
        self._fresh: list[Event] = []
        self._credit = 0
        self._delivered_upto = 0
        self._last_seq = 0
        self._checkpoint = Checkpoint(0)
        self._cursors: dict[str, str] = {}
        # Unique across journal restarts, so no delivery of an earlier
        # incarnation can pass for one of this incarnation's epochs.
        self._epoch = time.monotonic_ns()
        self._stall = Stall(storage_backoff(config), "writing the journal")
        self._retry_at = 0.0
        self._release_at = 0.0
        self.error: str | None = None

    # -- lifecycle -----------------------------------------------------------

    def on_start(self) -> None:
        super().on_start()
        inherited = self.handover.take()
        if inherited:
            logger.info("journal: committing %d ingest messages left by a crash", len(inherited))
            for ingest in inherited:
                self._hold(ingest)
        self.timers.send_interval(CHECKPOINT_EVERY_S, _Tick())
        self.timers.send_after(min(1.0, self.config.journal.purge_every_s), _Purge())
        self._open()

    def _open(self) -> None:
        """Open the store; a corrupt one fails the start, an unavailable one is retried."""
        try:
            store = JournalStore.open(
                journal_path(self.config), StorageSettings.of(self.config), shared=True
            )
        except StorageUnavailableError as error:
            self._failed(error)
            return
        try:
            self._checkpoint = Checkpoint(store.checkpoint())
            self._last_seq = store.last_seq()
            self._cursors = store.cursors()
        except StorageUnavailableError as error:
            store.close()
            self._failed(error)
            return
        self.store = store
        self._writer = JournalWriter(store, self._post, f"{self.name}-writer")
        self._delivered_upto = self._checkpoint.value
        logger.info(
            "journal: %s open, last seq %d, checkpoint %d",
            store.path,
            self._last_seq,
            self._delivered_upto,
        )
        # A (re)started journal starts delivery afresh; a running flow_control
        # must grant demand again (its old credit died with the old journal).
        self._reset_stream()
        if not self._kick(force=True):
            self._resumed()

    def _post(self, message: Control) -> None:
        """From the writer thread: wake this actor (a stopped actor collects nothing)."""
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(message)

    def on_stop(self) -> None:
        # The stop request overtook queued ingest on the control lane: commit
        # that ingest before closing, or an ordered shutdown would lose it.
        for message in self.mailbox.drain():
            if isinstance(message, Ingest):
                self._hold(message)
        self._close()

    def on_failure(self, *_exc_info: object) -> None:
        # State may be inconsistent after a crash: hand the uncommitted ingest
        # over rather than trusting this instance to commit it.
        self._stop_writer()
        for ingest in self._pending:
            self.handover.put(ingest)
        self._pending.clear()
        self._pending_events = 0
        if self.store is not None:
            self.store.close()
            self.store = None

    def on_undelivered(self, message: Any) -> None:
        if isinstance(message, Ingest):
            self.handover.put(message)
        else:
            super().on_undelivered(message)

    def _stop_writer(self) -> None:
        """End the writer after its running commit; what it did not commit is pending again."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        stopped = writer.stop(self.config.journal.busy_timeout_s + WRITER_STOP_MARGIN_S)
        result = writer.take()
        if result is not None:
            self._committed(result, deliver=False)
        elif self._in_flight is not None:
            if not stopped:
                # Still writing: it may yet commit this ingest. Keeping it may
                # store it twice (a duplicate, settled as such downstream);
                # dropping it may lose it.
                logger.error("journal: the writer did not stop in time; keeping its ingest")
            self._pending.extendleft(reversed(self._in_flight.ingests))
            self._pending_events += count_events(self._in_flight.ingests)
            self._in_flight = None

    def _close(self) -> None:
        self._stop_writer()
        if self.store is None:
            for ingest in self._pending:
                self.handover.put(ingest)
            return
        try:
            while True:
                commit = self._take_commit()
                if not (commit.ingests or commit.outcomes or commit.checkpoint is not None):
                    break
                result = self._write_now(commit)
                self._committed(result, deliver=False)
                if result.error is not None:
                    break
        except StorageUnavailableError as error:
            self.error = str(error)
        if self.error is not None:
            logger.error(
                "journal: closing with %d events uncommitted: %s", self._pending_events, self.error
            )
            for ingest in self._pending:
                self.handover.put(ingest)
        self.store.close()
        self.store = None

    def _write_now(self, commit: Commit) -> Committed:
        """Run ``commit`` on this thread (the writer is stopped)."""
        try:
            return write(self._store, commit)
        except StorageUnavailableError as error:
            return Committed(commit, [], [], [], error)

    # -- messages ------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        answer = self._handle(message)
        # Group commit: whatever is pending goes in once nothing more is
        # queued (or the batch is full, see _ingest), while no commit runs.
        if len(self.mailbox) == 0:
            self._kick()
        return answer

    def _handle(self, message: Any) -> Any:  # noqa: PLR0911 -- one dispatch table
        if isinstance(message, Ingest):
            self._ingest(message)
            return None
        if isinstance(message, Settled):
            self._settle(message)
            return None
        if isinstance(message, Demand):
            self._credit = message.n if message.reset else self._credit + message.n
            self._deliver()
            return None
        if isinstance(message, WriterDone):
            self._collect()
            return None
        if isinstance(message, Resync):
            self._resync(message.requester)
            return None
        if isinstance(message, GetCursor):
            if self.store is None:
                return Refused(f"the journal is not open: {self.error}")
            return self._cursors.get(message.source)
        if isinstance(message, RecentKeys):
            return self._recent(message)
        if isinstance(message, _Tick):
            self._tick()
            return None
        if isinstance(message, _Purge):
            self._purge()
            return None
        if isinstance(message, WriterDied):
            msg = f"the journal's writer thread failed: {message.error!r}"
            raise RuntimeError(msg) from message.error
        return super().on_receive(message)

    @property
    def _store(self) -> JournalStore:
        if self.store is None:
            msg = "the journal is closed"
            raise RuntimeError(msg)
        return self.store

    def _recent(self, message: RecentKeys) -> list[tuple[str, int, str, float]]:
        """The dedup window's rebuild; empty if the database cannot be read (the ledger
        still refuses a second post of any notification)."""
        try:
            return self._store.recent(message.window_s, time.time(), message.limit)
        except (StorageUnavailableError, RuntimeError) as error:
            logger.warning("journal: cannot read recent keys for dedup: %s", error)
            return []

    # -- failures ------------------------------------------------------------

    def _failed(self, error: StorageUnavailableError) -> None:
        """A write (or the open) failed for a passing reason: hold everything, retry later."""
        if self.error is None:
            logger.error("journal: cannot write, holding ingest and retrying: %s", error)
        self.error = str(error)
        self.counters["commit_errors"] += 1
        self._retry_at = time.monotonic() + self._stall.failed(error)

    # -- ingest and commits --------------------------------------------------

    def _hold(self, ingest: Ingest) -> None:
        self._pending.append(ingest)
        self._pending_events += len(ingest.events)

    def _ingest(self, ingest: Ingest) -> None:
        if self._pending_events >= self.config.journal.max_pending:
            if self.error is None and self._in_flight is not None and self._writer is not None:
                # Busy, not failing: wait for the running commit here, so that
                # the backlog stays in the mailbox (whose bound slows the readers).
                self._writer.wait(self.config.journal.busy_timeout_s + WRITER_STOP_MARGIN_S)
                self._collect()
            if self._pending_events >= self.config.journal.max_pending:
                self.counters["ingest_refused"] += len(ingest.events)
                self._refuse(ingest)
                return
        self._hold(ingest)
        if self._pending_events >= self.config.journal.batch_max:
            self._kick()

    def _refuse(self, ingest: Ingest) -> None:
        try:
            self.registry.tell(refusal_recipient(ingest), IngestRefused(ingest, self.error or ""))
        except ActorUnavailableError:
            logger.error(
                "journal: refused %d events of %s, whose actor is gone; its feed will resend",
                len(ingest.events),
                ingest.source,
            )

    def _take_commit(self) -> Commit:
        """The next commit: pending ingest up to ``batch_max`` events, the held outcomes,
        the checkpoint."""
        ingests: list[Ingest] = []
        events, batch_max = 0, self.config.journal.batch_max
        pending = self._pending
        while pending and (not ingests or events + len(pending[0].events) <= batch_max):
            ingest = pending.popleft()
            ingests.append(ingest)
            events += len(ingest.events)
        self._pending_events -= events
        outcomes, checkpoint = self._checkpoint.plan()
        return Commit(tuple(ingests), outcomes, checkpoint)

    def _kick(self, *, force: bool = False) -> bool:
        """Start a commit of what waits, unless one runs or the database is failing.

        ``force`` retries while it fails. Returns whether a commit started.
        """
        writer = self._writer
        if writer is None or self._in_flight is not None or (self.error and not force):
            return False
        if not (self._pending or self._checkpoint.plan()[0] or force):
            return False
        commit = self._take_commit()
        if not (commit.ingests or commit.outcomes or commit.checkpoint is not None):
            return False
        self._in_flight = commit
        writer.submit(commit)
        return True

    def _resumed(self) -> None:
        """Writing works (again): clear the error and deliver what waits."""
        if self._stall.resumed():
            logger.warning("journal: writable again; resuming")
        self.error = None
        self._deliver()

    def _collect(self) -> None:
        """Take the writer's result, if it has one, then start the next commit."""
        writer = self._writer
        result = writer.take() if writer is not None else None
        if result is not None:
            self._committed(result, deliver=True)
            self._kick()

    def _committed(self, result: Committed, *, deliver: bool) -> None:
        commit = result.commit
        self._in_flight = None
        if result.error is not None:
            self._pending.extendleft(reversed(commit.ingests))
            self._pending_events += count_events(commit.ingests)
            self._failed(result.error)
            return
        if self.error is not None:
            self._resumed()
        self._checkpoint.committed(len(commit.outcomes), commit.checkpoint)
        committed, rejects = result.events, result.rejects
        for ingest in commit.ingests:
            if ingest.cursor is not None:
                self._cursors[ingest.cursor.source] = ingest.cursor.value
        self.counters["commits"] += 1
        self._count(committed, rejects)
        if not committed:
            return
        self._last_seq = committed[-1].committed_seq
        self.observe_many("journal", committed)
        # What demand allows goes on decoded, as it came; the rest waits compact.
        self._fresh = committed
        if deliver:
            self._deliver()
        self._fresh = []
        delivered = self._delivered_upto
        self._tail.extend(
            event_row(event, payload)
            for event, payload in zip(committed, result.payloads, strict=True)
            if event.committed_seq > delivered
        )

    def _count(self, committed: list[Event], rejects: list[Reject]) -> None:
        counters = self.counters
        counters["events_committed"] += len(committed)
        counters["rejects_committed"] += len(rejects)
        by_kind: collections.Counter[tuple[str, str]] = collections.Counter(
            (event.source, event.type) for event in committed
        )
        for (source, type_), count in by_kind.items():
            counters[series_key("events_total", source=source, type=type_)] += count
        for reject in rejects:
            counters[series_key("rejects_total", source=reject.source, reason=reject.reason)] += 1

    # -- delivery ------------------------------------------------------------

    def _deliver(self) -> None:
        if self.store is None:
            return
        batch = self.config.journal.delivery_batch
        # Every delivered event may come back with an outcome to write: while
        # they cannot be written, at most max_pending of them wait in memory.
        max_held = self.config.journal.max_pending
        while self._credit > 0 and self._checkpoint.held_events < max_held:
            try:
                events = self._next(min(self._credit, batch))
            except StorageUnavailableError as error:
                self._failed(error)
                return
            if not events:
                return
            try:
                self.registry.tell(Names.DEDUP, Deliver(tuple(events), self._epoch))
            except ActorUnavailableError:
                return  # dedup restarts and sends Resync; delivery resumes then
            self._credit -= len(events)
            self._delivered_upto = events[-1].committed_seq
            self._forget_delivered()

    def _forget_delivered(self) -> None:
        """Drop delivered events from the tail (a redelivery reads the database)."""
        tail, delivered = self._tail, self._delivered_upto
        while tail and tail[0][0] <= delivered:
            tail.popleft()

    def _next(self, limit: int) -> list[Event]:
        if self._delivered_upto >= self._last_seq:
            return []
        start = self._delivered_upto + 1
        fresh = self._fresh
        if fresh and fresh[0].committed_seq <= start <= fresh[-1].committed_seq:
            offset = start - fresh[0].committed_seq
            return fresh[offset : offset + limit]
        tail = self._tail
        if tail and tail[0][0] <= start:
            offset = start - tail[0][0]
            try:
                return [
                    event_from_row(tail[i]) for i in range(offset, min(offset + limit, len(tail)))
                ]
            except ValueError as error:  # a bug: what was stored a moment ago reads back
                msg = f"journal: a committed event does not decode: {error}"
                raise RuntimeError(msg) from error
        self.counters["backlog_reads"] += 1
        return self._store.read(self._delivered_upto, limit, until_seq=self._last_seq)

    def _resync(self, requester: str) -> None:
        logger.info(
            "journal: %s (re)started; redelivering after seq %d", requester, self._checkpoint.value
        )
        self.counters["resyncs"] += 1
        self._delivered_upto = self._checkpoint.value
        self._checkpoint.restart()
        self._credit = 0
        self._reset_stream()

    def _reset_stream(self) -> None:
        self._epoch += 1
        # A flow_control that is not running sends its own Resync when it starts.
        with contextlib.suppress(ActorUnavailableError):
            self.registry.tell(Names.FLOW_CONTROL, StreamReset(self._epoch))

    # -- checkpoint ----------------------------------------------------------

    def _settle(self, settled: Settled) -> None:
        if settled.outcome is not Outcome.HANDLED:
            # Written with the next commit; the saved checkpoint stays behind it until then.
            self._checkpoint.hold(HeldOutcome(settled.seqs, settled.outcome, settled.detail))
        self.counters[series_key("settled_total", outcome=str(settled.outcome))] += len(
            settled.seqs
        )
        checkpoint = self._checkpoint.settle(settled.seqs, self._delivered_upto)
        # Delivery never restarts at or before the checkpoint: what the tail
        # holds there is history, and a killmail weighs kilobytes in memory.
        tail = self._tail
        while tail and tail[0][0] <= checkpoint:
            tail.popleft()

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._release_at:
            self._release_at = now + RELEASE_MEMORY_EVERY_S
            release_free_memory()
        if self.error is not None and time.monotonic() >= self._retry_at:
            if self.store is None:
                self._open()
            elif not self._kick(force=True):
                self._resumed()
            return
        # The checkpoint is saved even while nothing else is written: retention
        # purges only up to the saved checkpoint, and purging is how space returns.
        if self._checkpoint.plan()[1] is not None:
            self._kick(force=self.error is None)

    def _purge(self) -> None:
        settings = self.config.journal
        try:
            purged = self._store.purge(
                time.time() - settings.retention_days * 86400, settings.purge_rows
            )
        except (StorageUnavailableError, RuntimeError) as error:
            logger.warning("journal: retention skipped: %s", error)
            purged = 0
        self.counters["purged"] += purged
        again = 0.0 if purged == settings.purge_rows else settings.purge_every_s
        self.timers.send_after(again, _Purge())

    # -- reporting -----------------------------------------------------------

    def report_gauges(self) -> Mapping[str, float]:
        last = self._last_seq
        return {
            "backlog": last - self._checkpoint.value,
            "undelivered": last - self._delivered_upto,
            "pending": self._pending_events,
            "credit": self._credit,
            "error": 1.0 if self.error else 0.0,
        }

    def status(self) -> Mapping[str, Any]:
        if self.store is None:
            return {"error": self.error or "closed", "pending": self._pending_events}
        try:
            stats = self.store.statistics()
        except StorageUnavailableError as error:
            return {"error": self.error or str(error), "pending": self._pending_events}
        return {
            "last_seq": stats.last_seq,
            "checkpoint": self._checkpoint.value,
            "backlog": stats.last_seq - self._checkpoint.value,
            "delivered_upto": self._delivered_upto,
            "credit": self._credit,
            "pending": self._pending_events
            + (count_events(self._in_flight.ingests) if self._in_flight else 0),
            "max_pending": self.config.journal.max_pending,
            "tail": len(self._tail),
            "tail_capacity": self.config.journal.tail_events,
            "unwritten_outcomes": self._checkpoint.held_events,
            "rows": stats.rows,
            "db_bytes": stats.db_bytes,
            "wal_bytes": stats.wal_bytes,
            "rejects": dict(stats.rejects_by_reason),
            "outcomes": {str(k): v for k, v in self.store.outcomes_count().items()},
            "error": self.error,
            "path": str(self.store.path),
        }


def mailbox_size(message: object) -> int:
    """What a message takes of the journal's mailbox: an ingest, its events and rejects.

    A reader's batch holds up to ``[journal] batch_max`` events (each ~17 KB
    decoded), so a bound counted in messages would let the mailbox hold that
    many times more than it says.
    """
    if isinstance(message, Ingest):
        return len(message.events) + len(message.rejects)
    return 1


def child_spec(config: Config) -> ChildSpec:
    handover = Handover()
    return ChildSpec(
        name=Names.JOURNAL,
        start=lambda ctx: JournalActor.start(ctx, config, handover),
        # A full journal refuses ingest (MailboxFullError) rather than block a
        # source's reader thread; the source holds the batch and pauses. The
        # bound counts events (mailbox_size).
        mailbox=MailboxSpec(config.mailbox.journal, OverflowPolicy.REJECT, mailbox_size),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
