"""The notification ledger: what was (or is being) sent, durable across crashes.

The ledger lives in the journal's SQLite database file, in its own table
``notifications`` (layout in :mod:`realtime.schema`), through its own
connection opened by :mod:`realtime.storage` (the journal keeps its own; WAL
lets both work side by side). Each row is one notification on one **route**
(a Discord route of ``[[routes]]``, or the console sink under the reserved
name ``console``), keyed by the pair :class:`LedgerKey` ``(route,
notification)``, and goes through::

    claim ──► pending ──► sent       (mark_sent)
                 │  ▲
                 │  └── mark_attempt (a failed attempt that will be retried)
                 └────► failed       (mark_failed: given up)

Exactly-once posting per route rests on two rules:

- :meth:`Ledger.claim` inserts the row *before* anything is posted and
  returns ``None`` when the pair already exists, in any state. A replay of
  the journal, a server's preload replay or a redelivery after a restart
  therefore never posts again to that route; it cannot even start a second
  attempt. Another route claims its own pair.
- the row carries a **nonce** derived from the pair (deterministic, at most 25
  characters), which the sender passes to Discord with ``enforce_nonce``.
  After a crash or a timeout, :meth:`Ledger.pending` gives the unfinished rows
  back with the *same* nonce, so a retry of a message that Discord did create
  returns that message instead of a duplicate.

**Failed is terminal.** A row is marked failed only when the sender gives up
(a permanent error such as 400/403/404, or attempts exhausted). Claiming a
failed pair returns ``None`` like any other: neither replay nor restart retries
it, because a failure after timeouts may hide a message Discord did create,
and beyond the nonce's few minutes a retry could duplicate it. Failed rows are
counted in :meth:`Ledger.statistics` for the operator to see.

A row also records whether its message carries a ping (``mentioned``): the
notifier reads each route's last ping from it at start (:meth:`Ledger.last_mentions`),
so that a route's mention cooldown holds across restarts. The small table
``notifier_state`` keeps the notifier's last sign of life
(:meth:`Ledger.record_alive`), from which a start measures the time away.

**Upgrading.** A ledger written before routes (schema version 1: one ``key``
column holding ``{notification}@{sink}``, and a ``channel`` column) is
migrated when the file is opened (see :data:`realtime.schema.MIGRATIONS`), in
one transaction: each row becomes ``(route=channel, notification)`` with its
state, attempts, payload and nonce kept (the old nonce formula is the new one
for the implicit route ``discord``, so a pending entry resumed after the
upgrade still finds the message Discord created before it).

Every method commits before it returns (``synchronous=FULL``: a claim is on
disk before the post it allows), so what it reports is on disk. A write that
fails raises a :class:`~realtime.storage.StorageError` (busy, full,
unavailable: nothing was written, retry; corrupt: stop) and changes nothing.
A :class:`Ledger` is not thread-safe: one owner (the notifier actor) uses it
at a time.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import NamedTuple, Self

from realtime.sqlite_rows import chunks, list_sql, rows_sql
from realtime.storage import Database, StorageSettings

NONCE_LENGTH = 24
"""Characters of a nonce: Discord accepts at most 25."""

MAX_ERROR_CHARS = 1000
"""Bound on the stored ``last_error`` text."""

_INSERT_CLAIMS = (
    "INSERT INTO notifications (route, notification, seq, state, nonce, created_at, updated_at,"
    " payload, mentioned) VALUES "
)
_CLAIM_WIDTH = 9
_INSERT_CLAIMS_TAIL = " ON CONFLICT (route, notification) DO NOTHING"
_SET_SENT = (
    "UPDATE notifications SET state = 'sent', discord_message_id = ?,"
    " attempts = attempts + 1, last_error = NULL, updated_at = ?"
)
# Rows are found by key through a join with the keys' VALUES, which searches the
# primary key once per key: SQLite answers "(route, notification) IN (VALUES ...)"
# by scanning the whole table (a batch's cost grew with every notification ever sent).
_JOIN_KEYS = ") AS k JOIN notifications AS n ON n.route = k.column1 AND n.notification = k.column2"
_MARK_SENT = _SET_SENT + " WHERE rowid IN (SELECT n.rowid FROM (VALUES "  # noqa: S608 -- fixed text
_MARK_SENT_TAIL = (
    ") AS k JOIN notifications AS n ON n.route = k.column1 AND n.notification = k.column2"
    " WHERE n.state = 'pending')"
)
_SELECT_KEYS = "SELECT n.route, n.notification FROM (VALUES "
_SELECT_STATES = "SELECT n.route, n.notification, n.state FROM (VALUES "

_COLUMNS = (
    "route",
    "notification",
    "seq",
    "state",
    "nonce",
    "attempts",
    "discord_message_id",
    "last_error",
    "created_at",
    "updated_at",
    "payload",
    "mentioned",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM notifications"  # noqa: S608 -- fixed column names
_WHERE_KEY = " WHERE route = ? AND notification = ?"


class LedgerState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class LedgerKey(NamedTuple):
    """What the ledger holds at most once: one notification on one route."""

    route: str
    notification: str

    def __str__(self) -> str:
        return f"{self.notification}@{self.route}"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One notification on one route.

    Attributes:
        route: where it goes (a ``[[routes]]`` name, or ``console``).
        notification: the notification's key (``kill:123``).
        seq: the journal seq of the event it came from.
        nonce: the idempotency nonce for Discord, stable for the pair.
        attempts: posting attempts made so far.
        discord_message_id: the created message's id, once sent.
        last_error: the last attempt's error, if it failed (bounded).
        created_at / updated_at: wall-clock Unix seconds.
        payload: the rendered body stored at claim time, so that a pending
            notification can be resumed after a restart without deciding again
            (the tracked state may not be rebuilt yet).
        mentioned: the stored body pings (the route's mention is in it).
    """

    route: str
    notification: str
    seq: int | None
    state: LedgerState
    nonce: str
    attempts: int
    discord_message_id: str | None
    last_error: str | None
    created_at: float
    updated_at: float
    payload: bytes
    mentioned: bool = False

    @property
    def key(self) -> LedgerKey:
        return LedgerKey(self.route, self.notification)


@dataclass(frozen=True, slots=True)
class Claim:
    """One pair to claim with :meth:`Ledger.claim_many` (see :meth:`Ledger.claim`)."""

    route: str
    notification: str
    seq: int | None
    payload: bytes = b""
    mentioned: bool = False

    @property
    def key(self) -> LedgerKey:
        return LedgerKey(self.route, self.notification)


@dataclass(frozen=True, slots=True)
class RouteCounts:
    """Entries of one route per state."""

    pending: int = 0
    sent: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class LedgerStatistics:
    """Entries per state, in all and per route (routes with no entry are absent)."""

    pending: int
    sent: int
    failed: int
    routes: Mapping[str, RouteCounts] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def total(self) -> int:
        return self.pending + self.sent + self.failed


def nonce_for(route: str, notification: str) -> str:
    """The Discord nonce of ``notification`` on ``route``: 24 lowercase base32 characters.

    A 120-bit BLAKE2b hash of both, so it is the same in every process and
    after every restart, and differs between routes. (It hashes
    ``{notification}@{route}`` and ``route`` as the pre-routes ledger hashed
    its key and channel, so the implicit route ``discord`` keeps its nonces.)
    """
    digest = hashlib.blake2b(
        f"{notification}@{route}".encode() + b"\x00" + route.encode(),
        digest_size=NONCE_LENGTH * 5 // 8,
    ).digest()
    return base64.b32encode(digest).decode("ascii").lower()


def _entry(row: tuple[object, ...]) -> LedgerEntry:
    route, notification, seq, state, nonce, attempts, message_id, error = row[:8]
    created, updated, payload, mentioned = row[8:]
    return LedgerEntry(
        route=str(route),
        notification=str(notification),
        seq=seq if isinstance(seq, int) else None,
        state=LedgerState(str(state)),
        nonce=str(nonce),
        attempts=int(attempts) if isinstance(attempts, int) else 0,
        discord_message_id=None if message_id is None else str(message_id),
        last_error=None if error is None else str(error),
        created_at=float(created) if isinstance(created, int | float) else 0.0,
        updated_at=float(updated) if isinstance(updated, int | float) else 0.0,
        payload=bytes(payload) if isinstance(payload, bytes) else b"",
        mentioned=bool(mentioned),
    )


class Ledger:
    """The ``notifications`` table of the journal database (see the module docstring)."""

    def __init__(self, database: Database, clock: Callable[[], float]) -> None:
        """Use :meth:`open`."""
        self._database = database
        self._clock = clock
        self._max_variables = database.max_variables
        self._counts: dict[tuple[str, LedgerState], int] = {}
        self._recount()

    @classmethod
    def open(
        cls,
        path: Path,
        settings: StorageSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> Ledger:
        """Open (creating or migrating if needed) the ledger in the journal database at ``path``.

        Args:
            path: the journal's database file.
            settings: the storage settings (``sync_each_commit`` is forced on:
                see the module doc); ``busy_timeout_s`` is how long a write
                waits for another connection's write transaction.
            clock: wall-clock Unix seconds, for ``created_at``/``updated_at``.

        Raises:
            StorageCorruptError: the file is not a journal database (or its
                ``notifications`` table lacks ledger columns).
            StorageUnavailableError: the file cannot be opened now.
        """
        base = settings or StorageSettings()
        durable = StorageSettings(base.busy_timeout_s, True, base.max_db_bytes)
        database = Database.open(path, durable, shared=True)
        try:
            return cls(database, clock)
        except BaseException:
            database.close()
            raise

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _recount(self) -> None:
        self._counts = {}
        with self._database.reading("count") as db:
            rows = db.execute(
                "SELECT route, state, COUNT(*) FROM notifications GROUP BY route, state"
            ).fetchall()
        for route, state, count in rows:
            self._counts[str(route), LedgerState(state)] = int(count)

    def _move(self, route: str, old: LedgerState | None, new: LedgerState, n: int = 1) -> None:
        if old is not None:
            self._counts[route, old] = self._counts.get((route, old), 0) - n
        self._counts[route, new] = self._counts.get((route, new), 0) + n

    def claim(
        self,
        route: str,
        notification: str,
        seq: int | None,
        payload: bytes = b"",
        *,
        mentioned: bool = False,
    ) -> LedgerEntry | None:
        """Record ``notification`` as pending on ``route`` before it is posted.

        Returns the new entry (state pending, no attempts, its nonce), or
        ``None`` when the pair is already in the ledger, whatever its state:
        the caller must then not post it. ``payload`` is stored for resuming.
        """
        return self.claim_many([Claim(route, notification, seq, payload, mentioned)])[0]

    def claim_many(self, claims: Sequence[Claim]) -> list[LedgerEntry | None]:
        """:meth:`claim` each of ``claims`` in one transaction (one disk sync for all).

        Returns, in order, the new entry or ``None`` for each claim, exactly as
        :meth:`claim` would have (a pair repeated within ``claims`` is new only
        the first time). Either every claim is committed or, if the
        transaction fails, none is and the error propagates.
        """
        if not claims:
            return []
        now = self._clock()
        entries: list[LedgerEntry | None] = []
        with self._database.transaction("claim") as db:
            # One statement for all pairs, not one per claim: see realtime.sqlite_rows.
            taken = self._existing(db, [claim.key for claim in claims])
            values: list[object] = []
            for claim in claims:
                if claim.key in taken:
                    entries.append(None)
                    continue
                taken.add(claim.key)
                nonce = nonce_for(claim.route, claim.notification)
                values += (claim.route, claim.notification, claim.seq, "pending", nonce, now, now)
                values += (claim.payload, int(claim.mentioned))
                entries.append(
                    LedgerEntry(
                        claim.route,
                        claim.notification,
                        claim.seq,
                        LedgerState.PENDING,
                        nonce,
                        0,
                        None,
                        None,
                        now,
                        now,
                        claim.payload,
                        claim.mentioned,
                    )
                )
            width = _CLAIM_WIDTH
            for start, size in chunks(len(values) // width, width, self._max_variables):
                db.execute(
                    rows_sql(_INSERT_CLAIMS, width, size, _INSERT_CLAIMS_TAIL),
                    values[start * width : (start + size) * width],
                )
        for entry in entries:
            if entry is not None:
                self._move(entry.route, None, LedgerState.PENDING)
        return entries

    def existing(self, keys: Sequence[LedgerKey]) -> set[LedgerKey]:
        """Which of ``keys`` the ledger holds, whatever their state."""
        with self._database.reading("existing") as db:
            return self._existing(db, keys)

    def _existing(self, db: sqlite3.Connection, keys: Sequence[LedgerKey]) -> set[LedgerKey]:
        return {
            LedgerKey(str(route), str(notification))
            for route, notification in self._select_keyed(db, _SELECT_KEYS, keys)
        }

    def _select_keyed(
        self, db: sqlite3.Connection, select: str, keys: Sequence[LedgerKey]
    ) -> Iterator[tuple[object, ...]]:
        """The rows ``select`` (up to its ``FROM (VALUES``) finds for ``keys``, joined on the
        primary key, in as few statements as SQLite allows."""
        for start, size in chunks(len(keys), 2, self._max_variables):
            sql = rows_sql(select, 2, size, _JOIN_KEYS)
            flat = [part for key in keys[start : start + size] for part in key]
            yield from db.execute(sql, flat).fetchall()

    def _transition(
        self, key: LedgerKey, sql: str, parameters: tuple[object, ...], to: LedgerState
    ) -> bool:
        with self._database.transaction(to.value) as db:
            changed = db.execute(
                sql + _WHERE_KEY + " AND state = 'pending'", (*parameters, self._clock(), *key)
            ).rowcount
        if changed == 1:
            if to is not LedgerState.PENDING:
                self._move(key.route, LedgerState.PENDING, to)
            return True
        if self.get(key) is None:
            raise KeyError(key)
        return False

    def mark_sent(self, key: LedgerKey, message_id: str) -> bool:
        """A successful attempt: pending -> sent, with the created message's id.

        Returns ``False`` (changing nothing) if the entry is no longer pending.

        Raises:
            KeyError: ``key`` was never claimed.
        """
        return self._transition(
            key,
            _SET_SENT,
            (message_id,),
            LedgerState.SENT,
        )

    def mark_sent_many(self, keys: Sequence[LedgerKey], message_id: str = "") -> int:
        """:meth:`mark_sent` each of ``keys`` in one transaction (one disk sync for all).

        Entries no longer pending are left as they are. Returns how many were
        marked.

        Raises:
            KeyError: a key was never claimed; then none of ``keys`` is marked.
        """
        if not keys:
            return 0
        unique = list(dict.fromkeys(keys))
        now = self._clock()
        with self._database.transaction("mark_sent") as db:
            states = self._states(db, unique)
            if len(states) < len(unique):
                raise KeyError(min(set(unique) - set(states)))
            marked = [key for key in unique if states[key] is LedgerState.PENDING]
            for start, size in chunks(len(marked), 2, self._max_variables - 2):
                flat = [part for key in marked[start : start + size] for part in key]
                db.execute(rows_sql(_MARK_SENT, 2, size, _MARK_SENT_TAIL), (message_id, now, *flat))
        for key in marked:
            self._move(key.route, LedgerState.PENDING, LedgerState.SENT)
        return len(marked)

    def _states(
        self, db: sqlite3.Connection, keys: Sequence[LedgerKey]
    ) -> dict[LedgerKey, LedgerState]:
        """The state of each of ``keys`` the ledger holds."""
        return {
            LedgerKey(str(route), str(notification)): LedgerState(str(state))
            for route, notification, state in self._select_keyed(db, _SELECT_STATES, keys)
        }

    def mark_attempt(self, key: LedgerKey, error: str) -> bool:
        """A failed attempt that will be retried: counts it, keeps the entry pending.

        Returns ``False`` (changing nothing) if the entry is no longer pending.

        Raises:
            KeyError: ``key`` was never claimed.
        """
        return self._transition(
            key,
            "UPDATE notifications SET attempts = attempts + 1, last_error = ?, updated_at = ?",
            (error[:MAX_ERROR_CHARS],),
            LedgerState.PENDING,
        )

    def mark_failed(self, key: LedgerKey, error: str) -> bool:
        """A failed attempt after which the sender gives up: pending -> failed, for good.

        Returns ``False`` (changing nothing) if the entry is no longer pending.

        Raises:
            KeyError: ``key`` was never claimed.
        """
        return self._transition(
            key,
            "UPDATE notifications SET state = 'failed', attempts = attempts + 1,"
            " last_error = ?, updated_at = ?",
            (error[:MAX_ERROR_CHARS],),
            LedgerState.FAILED,
        )

    def abandon(self, route: str, reason: str) -> int:
        """Mark every pending entry of ``route`` failed with ``reason`` (no attempt counted).

        For a route that is no longer configured: its entries can go nowhere.
        Returns how many were marked.
        """
        with self._database.transaction("abandon") as db:
            marked: int = db.execute(
                "UPDATE notifications SET state = 'failed', last_error = ?, updated_at = ?"
                " WHERE route = ? AND state = 'pending'",
                (reason[:MAX_ERROR_CHARS], self._clock(), route),
            ).rowcount
        self._move(route, LedgerState.PENDING, LedgerState.FAILED, marked)
        return marked

    def pending(
        self, limit: int = 1000, routes: Collection[str] | None = None
    ) -> list[LedgerEntry]:
        """Up to ``limit`` pending entries, oldest claim first, to resume with their nonce.

        With ``routes``, only those routes' entries (none if it is empty).
        """
        if routes is not None and not routes:
            return []
        with self._database.reading("pending") as db:
            if routes is None:
                rows = db.execute(
                    f"{_SELECT} WHERE state = 'pending' ORDER BY rowid LIMIT ?", (limit,)
                ).fetchall()
            else:
                names = sorted(routes)
                sql = list_sql(f"{_SELECT} WHERE state = 'pending' AND route IN (", len(names), ")")
                rows = db.execute(sql + " ORDER BY rowid LIMIT ?", (*names, limit)).fetchall()
        return [_entry(row) for row in rows]

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        with self._database.reading("get") as db:
            row = db.execute(_SELECT + _WHERE_KEY, tuple(key)).fetchone()
        return None if row is None else _entry(row)

    def routes_pending(self) -> set[str]:
        """The routes with pending entries (from the in-memory counts)."""
        return {
            route
            for (route, state), count in self._counts.items()
            if state is LedgerState.PENDING and count > 0
        }

    def last_mentions(self) -> dict[str, float]:
        """Per route, when its latest entry whose message pings was claimed (Unix seconds).

        Entries marked failed count too: a failure after timeouts may hide a
        message Discord did post.
        """
        with self._database.reading("last_mentions") as db:
            rows = db.execute(
                "SELECT route, MAX(created_at) FROM notifications WHERE mentioned = 1"
                " GROUP BY route"
            ).fetchall()
        return {str(route): float(at) for route, at in rows}

    def record_alive(self, at: float | None = None) -> None:
        """Record that the notifier is alive at ``at`` (now by default)."""
        with self._database.transaction("record_alive") as db:
            db.execute(
                "INSERT INTO notifier_state (name, value) VALUES ('alive_at', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (self._clock() if at is None else at,),
            )

    def last_alive(self) -> float | None:
        """The last :meth:`record_alive` time, ``None`` if there never was one."""
        with self._database.reading("last_alive") as db:
            row = db.execute("SELECT value FROM notifier_state WHERE name = 'alive_at'").fetchone()
        return None if row is None else float(row[0])

    def prune(self, before: float) -> int:
        """Delete sent and failed entries last updated before ``before`` (Unix seconds).

        Pending entries are never pruned. Keep entries at least as long as the
        journal keeps events (and longer than the max kill age): a pruned pair
        can be claimed again. Returns how many were deleted.
        """
        with self._database.transaction("prune") as db:
            deleted: int = db.execute(
                "DELETE FROM notifications WHERE state != 'pending' AND updated_at < ?", (before,)
            ).rowcount
        self._recount()
        return deleted

    def statistics(self) -> LedgerStatistics:
        """Entries per state, in all and per route (in memory: this is the table's only writer)."""
        per_route: dict[str, dict[LedgerState, int]] = {}
        for (route, state), count in self._counts.items():
            per_route.setdefault(route, {})[state] = count
        routes = {
            route: RouteCounts(
                pending=counts.get(LedgerState.PENDING, 0),
                sent=counts.get(LedgerState.SENT, 0),
                failed=counts.get(LedgerState.FAILED, 0),
            )
            for route, counts in sorted(per_route.items())
            if any(counts.values())
        }
        return LedgerStatistics(
            pending=sum(counts.pending for counts in routes.values()),
            sent=sum(counts.sent for counts in routes.values()),
            failed=sum(counts.failed for counts in routes.values()),
            routes=MappingProxyType(routes),
        )
