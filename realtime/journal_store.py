"""The event journal: an append-only SQLite store of every event, with its seq.

:class:`JournalStore` is a plain, thread-confined class: one thread opens it and
makes every call; a call from another thread raises ``sqlite3.ProgrammingError``
instead of racing. Opened ``shared``, it may be called from several threads,
one call at a time (the journal actor reads on its thread while its writer
thread commits). It keeps
the journal's tables in the journal database file, opened through
:mod:`realtime.storage` (which describes durability, the size cap and the
errors: :class:`~realtime.storage.StorageUnavailableError` and its kinds busy
and full mean nothing was written and the same call can be retried;
:class:`~realtime.storage.StorageCorruptError` means the file is left alone).

Sequence numbers
----------------
``seq`` is assigned inside the write transaction as one more than the highest
seq the journal has ever held (purged events included), so it is monotonic and
gap-free even across crashes, rolled-back appends and other processes writing
the same file: a failed append consumes no seq.

Payloads
--------
An event's data is stored as it came off the wire: JSON (both feeds speak
JSON), encoded once with orjson, ideally by the reader that decoded it
(:func:`encode_payload`; :meth:`JournalStore.append` encodes what it is not
given). Data JSON cannot hold (non-string keys, bytes: a ``replay --file`` of a
msgpack export may carry them) is stored as msgpack, as every payload was
before; a payload's first byte tells the two apart (``{`` against a msgpack
map), so journals written by earlier releases read as they did.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self

import msgpack  # msgpack ships no type hints
import orjson

from realtime.checkpoint import HeldOutcome
from realtime.event import Cursor, Event, Outcome, Priority, Reject
from realtime.sqlite_rows import chunks, list_sql, rows_sql
from realtime.storage import Database, StorageCorruptError, StorageSettings

DEFAULT_CHECKPOINT = "pipeline"

_INSERT_EVENTS = (
    "INSERT INTO events (seq, id, source, type, time, received_at, ingested_at, key,"
    " priority, schema, payload) VALUES "
)
_EVENT_WIDTH = 11
_SETTLE = "UPDATE events SET outcome = ?, outcome_detail = ?, settled_at = ? WHERE seq IN ("
_SETTLE_TAIL = ") AND outcome IS NULL"
_INSERT_REJECT = (
    "INSERT INTO rejects (source, reason, detail, raw, received_at, at) VALUES (?, ?, ?, ?, ?, ?)"
)
_UPSERT_CURSOR = (
    "INSERT INTO cursors (source, value, seq) VALUES (?, ?, ?)"
    " ON CONFLICT (source) DO UPDATE SET value = excluded.value, seq = excluded.seq"
)
_LAST_SEQ = (
    "SELECT max(coalesce((SELECT max(seq) FROM events), 0),"
    " coalesce((SELECT value FROM meta WHERE key = 'last_purged_seq'), 0))"
)
_EVENT_COLUMNS = "seq, id, source, type, time, received_at, key, priority, schema, payload"

# A priority written by a newer program reads as the least urgent one: the
# event is still returned (with its ``schema``) and is the first to be shed.
_PRIORITY_BY_VALUE: Mapping[int, Priority] = MappingProxyType({p.value: p for p in Priority})
_dumps = orjson.dumps


def encode_payload(data: Mapping[str, Any], *, from_json: bool = False) -> bytes:
    """The bytes the journal stores for an event's ``data`` (see the module doc).

    orjson writes a float that is not finite as ``null``: data that may hold
    one is checked (when its JSON has a ``null``) and stored as msgpack if so.
    ``from_json`` skips the check for data decoded from JSON text by orjson,
    which refuses such numbers.

    Raises:
        TypeError, ValueError: neither JSON nor msgpack can hold ``data``.
    """
    try:
        encoded = _dumps(data)
    except TypeError:
        # orjson.JSONEncodeError is a TypeError: a non-string key, bytes, an
        # integer beyond 64 bits, or a mapping that is not a dict.
        pass
    else:
        if from_json or b"null" not in encoded or orjson.loads(encoded) == data:
            return encoded
    try:
        packed: bytes = msgpack.packb(data if type(data) is dict else dict(data))
    except OverflowError as error:  # an integer beyond 64 bits
        raise ValueError(str(error)) from error
    return packed


def stored_payload(data: Mapping[str, Any], *, from_json: bool = False) -> bytes | None:
    """:func:`encode_payload`, or ``None`` when ``data`` cannot be stored (the journal then
    makes the event an ``unstorable_event`` reject, see :func:`split_storable`)."""
    try:
        return encode_payload(data, from_json=from_json)
    except (TypeError, ValueError):
        return None


def decode_payload(payload: bytes) -> Any:
    """The data stored as ``payload`` by :func:`encode_payload` (or by an earlier release).

    Raises:
        ValueError: the bytes are neither (orjson's and msgpack's errors).
    """
    if payload[:1] == b"{":
        return orjson.loads(payload)
    return msgpack.unpackb(payload, strict_map_key=False)


@dataclass(frozen=True, slots=True)
class JournalStatistics:
    """A snapshot of the journal's size and progress.

    Attributes:
        rows: events currently stored.
        first_seq: the oldest stored event's seq (0 when there is none).
        last_seq: the highest seq ever assigned (0 before the first event).
        checkpoints: every named checkpoint and its seq.
        db_bytes: the database's size (pages in use and free).
        wal_bytes: the size of the ``-wal`` file (0 when there is none).
        rejects: rejected inputs currently stored.
        rejects_by_reason: the stored rejects, counted by reason.
    """

    rows: int
    first_seq: int
    last_seq: int
    checkpoints: Mapping[str, int]
    db_bytes: int
    wal_bytes: int
    rejects: int
    rejects_by_reason: Mapping[str, int]


class JournalStore:
    """The SQLite event store. Create it with :meth:`open`; see the module doc.

    Counts (:meth:`count`, :meth:`outcomes_count`, the rejects in
    :meth:`statistics`) are read from the database at open and then kept up to
    date by this store's own writes, so they cost nothing to read; writes made
    by another process to the same file show up in them at the next open.
    """

    def __init__(self, database: Database, clock: Callable[[], float]) -> None:
        """Use :meth:`open`."""
        self._database = database
        self._max_variables = database.max_variables
        self._clock = clock
        # Serialises the calls of a store shared by threads (see open's shared).
        self._lock = threading.Lock()
        self._rows = 0
        self._outcomes: Counter[str] = Counter()
        self._rejects_by_reason: Counter[str] = Counter()

    @classmethod
    def open(
        cls,
        path: Path,
        settings: StorageSettings | None = None,
        *,
        read_only: bool = False,
        shared: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> JournalStore:
        """Open (or create) the journal at ``path`` and check it.

        A missing file is created with its parent directory, and an existing
        one is checked (``integrity_check``, or ``quick_check`` when large:
        see :meth:`realtime.storage.Database.open`) before anything is
        written to it.

        Args:
            path: the database file.
            settings: busy timeout, fsync and size cap (see
                :class:`realtime.storage.StorageSettings`).
            read_only: open without write access (for reading a journal that a
                running instance owns); every write raises
                :class:`~realtime.storage.StorageUnavailableError`.
            shared: the store may be called from several threads; its calls
                are then serialised (one waits while another runs).
            clock: wall-clock Unix seconds, for ingest and settle times.

        Raises:
            FileNotFoundError: ``read_only`` and ``path`` does not exist.
            StorageCorruptError: the file is not a journal this program can use.
            StorageUnavailableError: the file cannot be opened or initialised.
        """
        database = Database.open(path, settings, read_only=read_only, verify=True, shared=shared)
        store = cls(database, clock)
        try:
            store._load_counts()
        except BaseException:
            database.close()
            raise
        return store

    def _load_counts(self) -> None:
        with self._lock, self._database.reading("open") as db:
            execute = db.execute
            self._rows = execute("SELECT count(*) FROM events").fetchone()[0]
            self._outcomes = Counter(
                dict(
                    execute(
                        "SELECT outcome, count(*) FROM events WHERE outcome IS NOT NULL"
                        " GROUP BY outcome"
                    ).fetchall()
                )
            )
            self._rejects_by_reason = Counter(
                dict(execute("SELECT reason, count(*) FROM rejects GROUP BY reason").fetchall())
            )

    @property
    def path(self) -> Path:
        """The database file."""
        return self._database.path

    def close(self) -> None:
        """Close the connection; a second call does nothing.

        The last connection to close checkpoints the WAL into the database.
        """
        self._database.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def append(
        self,
        events: Sequence[Event],
        rejects: Sequence[Reject] = (),
        cursors: Sequence[Cursor] = (),
        *,
        payloads: Sequence[bytes | None] | None = None,
        outcomes: Sequence[HeldOutcome] = (),
        checkpoint: int | None = None,
    ) -> list[Event]:
        """Commit events, rejects, cursors, outcomes and the checkpoint in one transaction.

        The events get consecutive seqs after :meth:`last_seq`, in the order
        given (a seq already set on an input event is ignored). Each cursor is
        stored with the last seq of this call, so a source's resume point never
        runs ahead of the events it covers. The payload stored is
        ``payloads[i]`` when given (the bytes :func:`encode_payload` made of
        ``events[i].data``, e.g. by the reader that decoded it), else
        :func:`encode_payload` of the data. ``outcomes`` are written as by
        :meth:`settle` (for events of earlier calls), then ``checkpoint`` as by
        :meth:`set_checkpoint` (it may cover the events of this call): one
        commit for all that a group commit has to write.

        Returns:
            the events, each a copy carrying its seq.

        Raises:
            TypeError, ValueError: an event's data cannot be encoded (nothing
                was written; see :func:`split_storable`).
            StorageUnavailableError: see the module doc; nothing was written
                and the same call can be retried.
            StorageCorruptError: the database is damaged.
        """
        if not (events or rejects or cursors or outcomes or checkpoint is not None):
            return []
        if payloads is None:
            payloads = [encode_payload(e.data) for e in events]
        elif len(payloads) != len(events):
            msg = f"{len(payloads)} payloads for {len(events)} events"
            raise ValueError(msg)
        else:
            payloads = [
                encode_payload(e.data) if p is None else p
                for e, p in zip(events, payloads, strict=True)
            ]
        now = self._clock()
        settled: list[tuple[str, int]] = []
        with self._lock, self._database.transaction("append") as db:
            execute = db.execute
            first = execute(_LAST_SEQ).fetchone()[0] + 1
            # One statement for many rows, not one per event: see realtime.sqlite_rows.
            values: list[Any] = []
            for seq, e, payload in zip(
                range(first, first + len(events)), events, payloads, strict=True
            ):
                values += (
                    seq,
                    e.id,
                    e.source,
                    e.type,
                    e.time,
                    e.received_at,
                    now,
                    e.key,
                    e.priority,
                    e.schema,
                    payload,
                )
            for start, size in chunks(len(events), _EVENT_WIDTH, self._max_variables):
                execute(
                    rows_sql(_INSERT_EVENTS, _EVENT_WIDTH, size),
                    values[start * _EVENT_WIDTH : (start + size) * _EVENT_WIDTH],
                )
            if rejects:
                db.executemany(
                    _INSERT_REJECT,
                    [(r.source, r.reason, r.detail, r.raw, r.received_at, now) for r in rejects],
                )
            if cursors:
                last = first + len(events) - 1
                db.executemany(_UPSERT_CURSOR, [(c.source, c.value, last) for c in cursors])
            settled.extend((held.outcome.value, self._settle(db, held, now)) for held in outcomes)
            if checkpoint is not None:
                self._set_checkpoint(db, checkpoint, DEFAULT_CHECKPOINT)
        self._rows += len(events)
        self._rejects_by_reason.update(r.reason for r in rejects)
        for outcome, count in settled:
            self._outcomes[outcome] += count
        return [
            Event(
                e.id,
                e.source,
                e.type,
                e.time,
                e.received_at,
                e.key,
                e.priority,
                e.data,
                seq,
                e.schema,
            )
            for seq, e in zip(range(first, first + len(events)), events, strict=True)
        ]

    def read(
        self,
        after_seq: int,
        limit: int,
        *,
        until_seq: int | None = None,
        types: Collection[str] | None = None,
        sources: Collection[str] | None = None,
        since_time: float | None = None,
        until_time: float | None = None,
        include_settled: bool = True,
    ) -> list[Event]:
        """Up to ``limit`` events with ``seq > after_seq``, oldest first.

        Page through the journal by passing the last returned seq as the next
        ``after_seq``. Filters combine with "and"; ``None`` means no filter.
        Only the seq bounds use an index: the other filters are tested on each
        row while scanning forward from ``after_seq``, so a page of a rare
        type may scan far (bound it with ``until_seq`` if that matters).

        Args:
            after_seq: exclusive lower bound on seq.
            limit: the most events to return (at least 1).
            until_seq: inclusive upper bound on seq.
            types: only these types (an empty collection matches nothing).
            sources: only these sources (an empty collection matches nothing).
            since_time: only events that happened at or after this Unix time.
            until_time: only events that happened at or before this Unix time.
            include_settled: ``False`` leaves out events that have an outcome.

        Events written by a newer program (a ``schema`` above
        :data:`realtime.event.SCHEMA_VERSION`) are returned like any other,
        with their ``schema``; an unknown priority value reads as
        :attr:`Priority.LOW`.

        Raises:
            ValueError: ``limit`` is below 1.
            TypeError: ``types`` or ``sources`` is a string.
            StorageCorruptError: a stored payload or page is damaged.
        """
        if limit < 1:
            msg = f"limit must be at least 1, got {limit}"
            raise ValueError(msg)
        if isinstance(types, str) or isinstance(sources, str):
            msg = "types and sources are collections of names, not a single string"
            raise TypeError(msg)
        clauses = ["seq > ?"]
        parameters: list[Any] = [after_seq]
        if until_seq is not None:
            clauses.append("seq <= ?")
            parameters.append(until_seq)
        if types is not None:
            clauses.append(f"type IN ({', '.join('?' * len(types))})")
            parameters.extend(types)
        if sources is not None:
            clauses.append(f"source IN ({', '.join('?' * len(sources))})")
            parameters.extend(sources)
        if since_time is not None:
            clauses.append("time >= ?")
            parameters.append(since_time)
        if until_time is not None:
            clauses.append("time <= ?")
            parameters.append(until_time)
        if not include_settled:
            clauses.append("outcome IS NULL")
        parameters.append(limit)
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"  # noqa: S608  # only placeholders are interpolated
            " ORDER BY seq LIMIT ?"
        )
        with self._lock, self._database.reading("read") as db:
            rows = db.execute(sql, parameters).fetchall()
        return [self._event_from_row(row) for row in rows]

    def _event_from_row(self, row: tuple[Any, ...]) -> Event:
        try:
            return event_from_row(row)
        except (msgpack.UnpackException, ValueError) as error:
            msg = f"journal {self._database.path}: the payload of seq {row[0]} is damaged ({error})"
            raise StorageCorruptError(msg) from error

    def last_seq(self) -> int:
        """The highest seq ever assigned (0 before the first event)."""
        with self._lock, self._database.reading("last_seq") as db:
            value: int = db.execute(_LAST_SEQ).fetchone()[0]
        return value

    def count(self) -> int:
        """How many events are stored (see the class doc on counts)."""
        return self._rows

    def cursor(self, source: str) -> str | None:
        """The last committed resume point of ``source``, or ``None``."""
        with self._lock, self._database.reading("cursor") as db:
            row = db.execute("SELECT value FROM cursors WHERE source = ?", (source,)).fetchone()
        return None if row is None else str(row[0])

    def cursors(self) -> dict[str, str]:
        """Every source's last committed resume point."""
        with self._lock, self._database.reading("cursors") as db:
            rows = db.execute("SELECT source, value FROM cursors").fetchall()
        return {str(source): str(value) for source, value in rows}

    def checkpoint(self, name: str = DEFAULT_CHECKPOINT) -> int:
        """The seq up to which consumer ``name`` has handled everything (0 if unset)."""
        with self._lock, self._database.reading("checkpoint") as db:
            row = db.execute("SELECT seq FROM checkpoints WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def set_checkpoint(self, seq: int, name: str = DEFAULT_CHECKPOINT) -> None:
        """Record that consumer ``name`` has handled every event up to ``seq``.

        Raises:
            ValueError: ``seq`` is negative or above :meth:`last_seq`.
            StorageUnavailableError: see the module doc.
        """
        with self._lock, self._database.transaction("set_checkpoint") as db:
            self._set_checkpoint(db, seq, name)

    @staticmethod
    def _set_checkpoint(db: sqlite3.Connection, seq: int, name: str) -> None:
        last = db.execute(_LAST_SEQ).fetchone()[0]
        if not 0 <= seq <= last:
            msg = f"checkpoint {name!r}: seq {seq} is outside 0..{last}"
            raise ValueError(msg)
        db.execute(
            "INSERT INTO checkpoints (name, seq) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
            (name, seq),
        )

    def settle(self, seqs: Sequence[int], outcome: Outcome, detail: str = "") -> int:
        """Mark events as finished with, for ``outcome``.

        Settled events stay in the journal (replay still sees them). The first
        outcome of an event wins: settling it again, as a redelivery does,
        changes nothing. Unknown (or purged) seqs are ignored.

        Returns:
            how many events this call settled.

        Raises:
            StorageUnavailableError: see the module doc.
        """
        if not seqs:
            return 0
        now = self._clock()
        with self._lock, self._database.transaction("settle") as db:
            settled = self._settle(db, HeldOutcome(tuple(seqs), outcome, detail), now)
        self._outcomes[outcome.value] += settled
        return settled

    def _settle(self, db: sqlite3.Connection, held: HeldOutcome, now: float) -> int:
        settled = 0
        seqs = held.seqs
        for start, size in chunks(len(seqs), 1, self._max_variables - 3):
            cursor = db.execute(
                list_sql(_SETTLE, size, _SETTLE_TAIL),
                (held.outcome.value, held.detail, now, *seqs[start : start + size]),
            )
            settled += cursor.rowcount
        return settled

    def outcomes_count(self) -> dict[Outcome, int]:
        """How many stored events have each outcome (every outcome listed)."""
        return {outcome: self._outcomes[outcome.value] for outcome in Outcome}

    def recent(self, window_s: float, now: float, limit: int) -> list[tuple[str, int, str, float]]:
        """Events ingested in the last ``window_s`` seconds, to rebuild a dedup window.

        Returns:
            up to ``limit`` ``(key, seq, source, ingested_at)`` of the most recently
            ingested events with ``ingested_at >= now - window_s``, in seq
            order. Settled events are included: duplicates too, so a key's
            first seq is always there before its later ones.

        Raises:
            ValueError: ``limit`` is below 1.
        """
        if limit < 1:
            msg = f"limit must be at least 1, got {limit}"
            raise ValueError(msg)
        with self._lock, self._database.reading("recent") as db:
            rows = db.execute(
                "SELECT key, seq, source, ingested_at FROM events WHERE ingested_at >= ?"
                " ORDER BY ingested_at DESC, seq DESC LIMIT ?",
                (now - window_s, limit),
            ).fetchall()
        rows.sort(key=lambda row: row[1])
        return rows

    def purge(self, older_than: float, max_rows: int) -> int:
        """Delete up to ``max_rows`` rows ingested before ``older_than`` (Unix time).

        Events are deleted oldest first and only up to the lowest checkpoint
        (events no consumer has handled yet are kept, however old); rejects
        take what is left of ``max_rows``. Call it repeatedly until it returns
        0: each call is one short transaction.

        Returns:
            how many rows (events and rejects) were deleted.

        Raises:
            ValueError: ``max_rows`` is below 1.
            StorageUnavailableError: see the module doc.
        """
        if max_rows < 1:
            msg = f"max_rows must be at least 1, got {max_rows}"
            raise ValueError(msg)
        with self._lock, self._database.transaction("purge") as db:
            execute = db.execute
            events = execute(
                "SELECT seq, outcome FROM events WHERE ingested_at < ?"
                " AND seq <= (SELECT coalesce(min(seq), 0) FROM checkpoints)"
                " ORDER BY ingested_at LIMIT ?",
                (older_than, max_rows),
            ).fetchall()
            if events:
                db.executemany("DELETE FROM events WHERE seq = ?", [(seq,) for seq, _ in events])
                execute(
                    "INSERT INTO meta (key, value) VALUES ('last_purged_seq', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                    (max(seq for seq, _ in events),),
                )
            rejects = []
            if len(events) < max_rows:
                rejects = execute(
                    "SELECT id, reason FROM rejects WHERE at < ? ORDER BY at LIMIT ?",
                    (older_than, max_rows - len(events)),
                ).fetchall()
                db.executemany("DELETE FROM rejects WHERE id = ?", [(id_,) for id_, _ in rejects])
        self._rows -= len(events)
        self._outcomes.subtract(outcome for _, outcome in events if outcome is not None)
        self._rejects_by_reason.subtract(reason for _, reason in rejects)
        self._rejects_by_reason = +self._rejects_by_reason
        return len(events) + len(rejects)

    def statistics(self) -> JournalStatistics:
        """Size and progress of the journal (see :class:`JournalStatistics`)."""
        with self._lock, self._database.reading("statistics") as db:
            execute = db.execute
            first_seq, last_seq = execute(
                f"SELECT coalesce((SELECT min(seq) FROM events), 0), ({_LAST_SEQ})"  # noqa: S608  # constant SQL
            ).fetchone()
            checkpoints = dict(execute("SELECT name, seq FROM checkpoints").fetchall())
            page_count, page_size = execute(
                "SELECT * FROM pragma_page_count, pragma_page_size"
            ).fetchone()
        wal = self._database.path.with_name(self._database.path.name + "-wal")
        try:
            wal_bytes = wal.stat().st_size
        except FileNotFoundError:
            wal_bytes = 0
        return JournalStatistics(
            rows=self._rows,
            first_seq=first_seq,
            last_seq=last_seq,
            checkpoints=MappingProxyType(checkpoints),
            db_bytes=page_count * page_size,
            wal_bytes=wal_bytes,
            rejects=self._rejects_by_reason.total(),
            rejects_by_reason=MappingProxyType(dict(self._rejects_by_reason)),
        )


EventRow = tuple[int, str, str, str, float, int, str, int, int, bytes]
"""An event as the journal stores it: ``(seq, id, source, type, time, received_at, key,
priority, schema, payload)``: about the size of its payload, a fifth of the decoded event."""


def event_row(event: Event, payload: bytes) -> EventRow:
    """The compact form of a committed ``event`` whose data is stored as ``payload``."""
    return (
        event.committed_seq,
        event.id,
        event.source,
        event.type,
        event.time,
        event.received_at,
        event.key,
        int(event.priority),
        event.schema,
        payload,
    )


def event_from_row(row: tuple[Any, ...]) -> Event:
    """The event of a stored row (see :data:`EventRow`), its payload decoded.

    Raises:
        ValueError: the payload is damaged or not a map (msgpack's errors too).
    """
    seq, id_, source, type_, time_, received_at, key, priority, schema, payload = row
    data = decode_payload(payload)
    if not isinstance(data, dict):
        msg = "the payload is not a map"
        raise ValueError(msg)
    return Event(
        id_,
        source,
        type_,
        time_,
        received_at,
        key,
        _PRIORITY_BY_VALUE.get(priority, Priority.LOW),
        data,
        seq,
        schema,
    )


def split_storable(events: Sequence[Event]) -> tuple[list[Event], list[Reject]]:
    """``events`` split into those :meth:`JournalStore.append` can store, and a
    reject (``unstorable_event``) for each of the others (data neither JSON nor
    msgpack can hold, see :func:`encode_payload`)."""
    storable: list[Event] = []
    rejects: list[Reject] = []
    for event in events:
        try:
            encode_payload(event.data)
        except (TypeError, ValueError) as error:
            detail = f"{event.type} {event.id}: its data cannot be stored: {error}"
            raw = f"{event.source} {event.type} {event.id}".encode()
            rejects.append(Reject(event.source, "unstorable_event", detail, raw, event.received_at))
        else:
            storable.append(event)
    return storable, rejects
