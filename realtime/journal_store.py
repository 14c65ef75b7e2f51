"""The event journal: an append-only SQLite store of every event, with its seq.

:class:`JournalStore` is a plain, thread-confined class: one thread opens it and
makes every call (the journal actor opens it in ``on_start``). The connection is
created with ``check_same_thread=True``, so a call from another thread raises
``sqlite3.ProgrammingError`` instead of racing.

Durability
----------
The database runs in WAL mode with ``synchronous=NORMAL``. A commit appends the
transaction's pages to the ``-wal`` file with ``write(2)`` and returns without
``fsync``: the bytes are then owned by the kernel, so a committed event survives
the death of this process, ``SIGKILL`` included. The next open replays the WAL.
``fsync`` happens only at WAL checkpoints: after a power loss or kernel crash
the database is still consistent (each transaction is whole or absent), but the
transactions committed since the last checkpoint may be gone.
``sync_each_commit=True`` selects ``synchronous=FULL`` instead: the WAL is
fsynced at every commit and committed events survive power loss too, for one
``fsync`` per :meth:`JournalStore.append` (a batch, not an event).

Sequence numbers
----------------
``seq`` is assigned inside the write transaction as one more than the highest
seq the journal has ever held (purged events included), so it is monotonic and
gap-free even across crashes, rolled-back appends and other processes writing
the same file: a failed append consumes no seq.

Failures
--------
- :class:`JournalCorruptError`: the file is not an SQLite database, is damaged,
  is not a journal, or was written by a newer program. Raised by :meth:`open`
  (which checks the file before it writes anything to it) and by any call that
  meets damage. The store never recreates or overwrites such a file.
- :class:`JournalUnavailableError`: the disk is full, the database or file
  system is read-only, locked past the busy timeout, or an I/O error occurred.
  The transaction is rolled back, the store stays usable, and the same call can
  be retried once the cause is gone.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self

import msgpack  # msgpack ships no type hints

from realtime.event import Cursor, Event, Outcome, Priority, Reject
from realtime.sqlite_rows import chunks, list_sql, max_variables, rows_sql

JOURNAL_SCHEMA_VERSION = 1
"""Version of the database layout (the ``meta`` table's ``schema_version``)."""

FULL_CHECK_MAX_BYTES = 64 * 1024 * 1024
"""Databases up to this size get ``PRAGMA integrity_check`` at open (it also
checks every index against its table); larger ones get the linear-time
``PRAGMA quick_check``."""

DEFAULT_CHECKPOINT = "pipeline"

_EXPECTED_TABLES = frozenset({"meta", "events", "rejects", "cursors", "checkpoints"})

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        time REAL NOT NULL,
        received_at INTEGER NOT NULL,
        ingested_at REAL NOT NULL,
        key TEXT NOT NULL,
        priority INTEGER NOT NULL,
        schema INTEGER NOT NULL,
        payload BLOB NOT NULL,
        outcome TEXT,
        outcome_detail TEXT,
        settled_at REAL
    )""",
    # Retention and the dedup-window rebuild select by ingest time; the index
    # keeps both proportional to the rows they touch, whatever the wall clock did.
    "CREATE INDEX events_by_ingested_at ON events (ingested_at)",
    """CREATE TABLE rejects (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        raw BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        at REAL NOT NULL
    )""",
    "CREATE INDEX rejects_by_at ON rejects (at)",
    """CREATE TABLE cursors (
        source TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        seq INTEGER NOT NULL
    )""",
    "CREATE TABLE checkpoints (name TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
)

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

# Primary result codes (the low byte of an extended code) and what they mean here.
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_PROTOCOL,
    }
)

# A priority written by a newer program reads as the least urgent one: the
# event is still returned (with its ``schema``) and is the first to be shed.
_PRIORITY_BY_VALUE: Mapping[int, Priority] = MappingProxyType({p.value: p for p in Priority})


class JournalError(Exception):
    """Base class of the journal's own errors."""


class JournalCorruptError(JournalError):
    """The journal file is damaged, foreign or too new; it was left untouched."""


class JournalUnavailableError(JournalError):
    """The journal cannot be written now (disk full, read-only, I/O error, locked).

    Nothing of the failed call was written; retry it once the cause is gone.
    """


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

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: Path,
        clock: Callable[[], float],
    ) -> None:
        """Use :meth:`open`; this constructor expects a checked connection."""
        self._connection = connection
        self._path = path
        self._max_variables = max_variables(connection)
        self._clock = clock
        self._pack = msgpack.Packer().pack
        self._rows = 0
        self._outcomes: Counter[str] = Counter()
        self._rejects_by_reason: Counter[str] = Counter()

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        busy_timeout_s: float = 5.0,
        read_only: bool = False,
        sync_each_commit: bool = False,
        max_db_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> JournalStore:
        """Open (or create) the journal at ``path`` and check it.

        A missing file is created with its parent directory, and an existing
        one is checked (``integrity_check`` up to :data:`FULL_CHECK_MAX_BYTES`,
        ``quick_check`` above) before anything is written to it.

        Args:
            path: the database file.
            busy_timeout_s: how long a call waits for a lock held by another
                connection before it fails with :class:`JournalUnavailableError`.
            read_only: open without write access (for reading a journal that a
                running instance owns); every write raises
                :class:`JournalUnavailableError`.
            sync_each_commit: ``fsync`` at every commit so that committed events
                survive power loss too (see the module doc); the default
                survives the process being killed.
            max_db_bytes: a cap on the database size (never below its current
                size); an append that would grow it past the cap fails like a
                full disk, and purged pages are reused. ``None``: no cap.
            clock: wall-clock Unix seconds, for ingest and settle times.

        Raises:
            FileNotFoundError: ``read_only`` and ``path`` does not exist.
            JournalCorruptError: the file is not a journal this program can use.
            JournalUnavailableError: the file cannot be opened or initialised.
        """
        if read_only:
            if not path.exists():
                msg = f"journal {path} does not exist"
                raise FileNotFoundError(msg)
            target, uri = f"{path.resolve().as_uri()}?mode=ro", True
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = str(path), False
        try:
            connection = sqlite3.connect(
                target, uri=uri, timeout=busy_timeout_s, isolation_level=None
            )
        except sqlite3.Error as error:
            raise _translate(error, path, "open") or error from error
        store = cls(connection, path, clock)
        try:
            store._prepare(
                read_only=read_only,
                sync_each_commit=sync_each_commit,
                max_db_bytes=max_db_bytes,
            )
        except BaseException:
            connection.close()
            raise
        return store

    def _prepare(
        self, *, read_only: bool, sync_each_commit: bool, max_db_bytes: int | None
    ) -> None:
        with self._errors("open"):
            # Everything up to the schema check only reads: a foreign, damaged or
            # newer file is refused before a single byte of it changes.
            self._check_integrity()
            new = self._check_schema()
            if read_only and new:
                msg = f"{self._path} is empty, not a journal database"
                raise JournalCorruptError(msg)
            if not read_only:
                mode = self._connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    msg = f"journal {self._path}: cannot use WAL mode (got {mode!r})"
                    raise JournalUnavailableError(msg)
            if new:
                with self._transaction("open"):
                    # Another process may have created it since the check.
                    if self._check_schema():
                        self._create_schema()
            synchronous = "FULL" if sync_each_commit else "NORMAL"
            self._connection.execute(f"PRAGMA synchronous = {synchronous}")
            self._connection.execute("PRAGMA temp_store = MEMORY")
            # After a checkpoint the WAL file is truncated back to this size.
            self._connection.execute("PRAGMA journal_size_limit = 67108864")
            if max_db_bytes is not None:
                page_size = self._connection.execute("PRAGMA page_size").fetchone()[0]
                max_pages = max(1, max_db_bytes // page_size)
                self._connection.execute(f"PRAGMA max_page_count = {max_pages}")
            self._load_counts()

    def _check_integrity(self) -> None:
        check = "open"
        try:
            page_count, page_size = self._connection.execute(
                "SELECT * FROM pragma_page_count, pragma_page_size"
            ).fetchone()
            check = (
                "integrity_check"
                if page_count * page_size <= FULL_CHECK_MAX_BYTES
                else "quick_check"
            )
            problems = [row[0] for row in self._connection.execute(f"PRAGMA {check}(10)")]
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorcode", 0) & 0xFF not in _CORRUPT_CODES:
                raise
            problems = [str(error)]
        if problems != ["ok"]:
            msg = (
                f"journal {self._path} is damaged ({check}: {'; '.join(problems)}). "
                "It was left untouched: stop the program, move the file (with any -wal and "
                "-shm beside it) aside to inspect or restore it, then start again to create "
                "a new journal."
            )
            raise JournalCorruptError(msg)

    def _check_schema(self) -> bool:
        """Whether the database is new (no tables); raises unless it is a usable journal."""
        tables = {
            row[0]
            for row in self._connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        if not tables:
            return True
        if "meta" not in tables:
            listed = ", ".join(sorted(tables)) or "none"
            msg = (
                f"{self._path} is not a journal database (tables: {listed}). It was left "
                "untouched: point app.data_dir at another directory, or move the file away."
            )
            raise JournalCorruptError(msg)
        row = self._connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        version = None if row is None else row[0]
        if not isinstance(version, int) or version < 1:
            msg = f"journal {self._path} has no valid schema version ({version!r}); left untouched."
            raise JournalCorruptError(msg)
        if version > JOURNAL_SCHEMA_VERSION:
            msg = (
                f"journal {self._path} has schema version {version}, newer than this "
                f"program's {JOURNAL_SCHEMA_VERSION}: it was written by a newer release. "
                "Upgrade the program, or point app.data_dir elsewhere; the file was left "
                "untouched."
            )
            raise JournalCorruptError(msg)
        missing = _EXPECTED_TABLES - tables
        if missing:
            msg = f"journal {self._path} lacks the tables {sorted(missing)}; left untouched."
            raise JournalCorruptError(msg)
        return False

    def _create_schema(self) -> None:
        for statement in _SCHEMA:
            self._connection.execute(statement)
        self._connection.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
            (JOURNAL_SCHEMA_VERSION,),
        )

    def _load_counts(self) -> None:
        execute = self._connection.execute
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
        return self._path

    def close(self) -> None:
        """Close the connection; a second call does nothing.

        The last connection to close checkpoints the WAL into the database.
        """
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def append(
        self,
        events: Sequence[Event],
        rejects: Sequence[Reject] = (),
        cursors: Sequence[Cursor] = (),
    ) -> list[Event]:
        """Commit events, rejects and cursors in one transaction.

        The events get consecutive seqs after :meth:`last_seq`, in the order
        given (a seq already set on an input event is ignored). Each cursor is
        stored with the last seq of this call, so a source's resume point never
        runs ahead of the events it covers. The payload stored is
        ``msgpack.packb(dict(event.data))``.

        Returns:
            the events, each a copy carrying its seq.

        Raises:
            TypeError, ValueError: an event's data cannot be packed (nothing
                was written).
            JournalUnavailableError: see the module doc; nothing was written
                and the same call can be retried.
            JournalCorruptError: the database is damaged.
        """
        if not (events or rejects or cursors):
            return []
        pack = self._pack
        payloads = [
            pack(data if type(data) is dict else dict(data)) for data in (e.data for e in events)
        ]
        now = self._clock()
        with self._transaction("append"):
            execute = self._connection.execute
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
                self._connection.executemany(
                    _INSERT_REJECT,
                    [(r.source, r.reason, r.detail, r.raw, r.received_at, now) for r in rejects],
                )
            if cursors:
                last = first + len(events) - 1
                self._connection.executemany(
                    _UPSERT_CURSOR, [(c.source, c.value, last) for c in cursors]
                )
        self._rows += len(events)
        self._rejects_by_reason.update(r.reason for r in rejects)
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
            JournalCorruptError: a stored payload or page is damaged.
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
        with self._errors("read"):
            rows = self._connection.execute(sql, parameters).fetchall()
        return [self._event_from_row(row) for row in rows]

    def _event_from_row(self, row: tuple[Any, ...]) -> Event:
        seq, id_, source, type_, time_, received_at, key, priority, schema, payload = row
        try:
            data = msgpack.unpackb(payload, strict_map_key=False)
        except (msgpack.UnpackException, ValueError) as error:
            msg = f"journal {self._path}: the payload of seq {seq} is damaged ({error})"
            raise JournalCorruptError(msg) from error
        if not isinstance(data, dict):
            msg = f"journal {self._path}: the payload of seq {seq} is not a map"
            raise JournalCorruptError(msg)
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

    def last_seq(self) -> int:
        """The highest seq ever assigned (0 before the first event)."""
        with self._errors("last_seq"):
            value: int = self._connection.execute(_LAST_SEQ).fetchone()[0]
        return value

    def count(self) -> int:
        """How many events are stored (see the class doc on counts)."""
        return self._rows

    def cursor(self, source: str) -> str | None:
        """The last committed resume point of ``source``, or ``None``."""
        with self._errors("cursor"):
            row = self._connection.execute(
                "SELECT value FROM cursors WHERE source = ?", (source,)
            ).fetchone()
        return None if row is None else str(row[0])

    def checkpoint(self, name: str = DEFAULT_CHECKPOINT) -> int:
        """The seq up to which consumer ``name`` has handled everything (0 if unset)."""
        with self._errors("checkpoint"):
            row = self._connection.execute(
                "SELECT seq FROM checkpoints WHERE name = ?", (name,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def set_checkpoint(self, seq: int, name: str = DEFAULT_CHECKPOINT) -> None:
        """Record that consumer ``name`` has handled every event up to ``seq``.

        Raises:
            ValueError: ``seq`` is negative or above :meth:`last_seq`.
            JournalUnavailableError: see the module doc.
        """
        with self._transaction("set_checkpoint"):
            last = self._connection.execute(_LAST_SEQ).fetchone()[0]
            if not 0 <= seq <= last:
                msg = f"checkpoint {name!r}: seq {seq} is outside 0..{last}"
                raise ValueError(msg)
            self._connection.execute(
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
            JournalUnavailableError: see the module doc.
        """
        if not seqs:
            return 0
        now = self._clock()
        settled = 0
        with self._transaction("settle"):
            for start, size in chunks(len(seqs), 1, self._max_variables - 3):
                cursor = self._connection.execute(
                    list_sql(_SETTLE, size, _SETTLE_TAIL),
                    (outcome.value, detail, now, *seqs[start : start + size]),
                )
                settled += cursor.rowcount
        self._outcomes[outcome.value] += settled
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
        with self._errors("recent"):
            rows = self._connection.execute(
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
            JournalUnavailableError: see the module doc.
        """
        if max_rows < 1:
            msg = f"max_rows must be at least 1, got {max_rows}"
            raise ValueError(msg)
        with self._transaction("purge"):
            execute = self._connection.execute
            events = execute(
                "SELECT seq, outcome FROM events WHERE ingested_at < ?"
                " AND seq <= (SELECT coalesce(min(seq), 0) FROM checkpoints)"
                " ORDER BY ingested_at LIMIT ?",
                (older_than, max_rows),
            ).fetchall()
            if events:
                self._connection.executemany(
                    "DELETE FROM events WHERE seq = ?", [(seq,) for seq, _ in events]
                )
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
                self._connection.executemany(
                    "DELETE FROM rejects WHERE id = ?", [(id_,) for id_, _ in rejects]
                )
        self._rows -= len(events)
        self._outcomes.subtract(outcome for _, outcome in events if outcome is not None)
        self._rejects_by_reason.subtract(reason for _, reason in rejects)
        self._rejects_by_reason = +self._rejects_by_reason
        return len(events) + len(rejects)

    def statistics(self) -> JournalStatistics:
        """Size and progress of the journal (see :class:`JournalStatistics`)."""
        with self._errors("statistics"):
            execute = self._connection.execute
            first_seq, last_seq = execute(
                f"SELECT coalesce((SELECT min(seq) FROM events), 0), ({_LAST_SEQ})"  # noqa: S608  # constant SQL
            ).fetchone()
            checkpoints = dict(execute("SELECT name, seq FROM checkpoints").fetchall())
            page_count, page_size = execute(
                "SELECT * FROM pragma_page_count, pragma_page_size"
            ).fetchone()
        wal = self._path.with_name(self._path.name + "-wal")
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

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            translated = _translate(error, self._path, action)
            if translated is None:
                raise
            raise translated from error

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[None]:
        """One transaction: committed if the block succeeds, rolled back otherwise.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so the seq read at
        the start of an append cannot be taken by another writer meanwhile.
        """
        with self._errors(action):
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._connection.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        # SQLite already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR);
        # a failing ROLLBACK must not hide the error that caused it.
        if self._connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("ROLLBACK")


def _translate(error: sqlite3.Error, path: Path, action: str) -> JournalError | None:
    """The journal error for an SQLite error; ``None`` for one that is a bug."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    name = getattr(error, "sqlite_errorname", str(code))
    if primary in _CORRUPT_CODES:
        return JournalCorruptError(
            f"journal {path}: {action} failed: {error} ({name}). The file was left "
            "untouched: stop the program and move it (with any -wal and -shm beside it) "
            "aside to inspect or restore it."
        )
    if primary in _UNAVAILABLE_CODES:
        return JournalUnavailableError(
            f"journal {path}: {action} failed: {error} ({name}); nothing was written, "
            "retry once the cause is fixed"
        )
    return None
