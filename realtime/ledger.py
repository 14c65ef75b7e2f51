"""The notification ledger: what was (or is being) sent, durable across crashes.

The ledger lives in the journal's SQLite database file, in its own table
``notifications``, through its own connection opened by
:mod:`realtime.storage` (the journal keeps its own; WAL lets both work side by
side). Each row is one notification on one channel,
keyed by the notification key with the channel appended (the notifier's
business), and goes through::

    claim ──► pending ──► sent       (mark_sent)
                 │  ▲
                 │  └── mark_attempt (a failed attempt that will be retried)
                 └────► failed       (mark_failed: given up)

Exactly-once posting rests on two rules:

- :meth:`Ledger.claim` inserts the row *before* anything is posted and
  returns ``None`` when the key already exists, in any state. A replay of the
  journal, a server's preload replay or a redelivery after a restart therefore
  never posts again; it cannot even start a second attempt.
- the row carries a **nonce** derived from key and channel (deterministic, at
  most 25 characters), which the sender passes to Discord with
  ``enforce_nonce``. After a crash or a timeout, :meth:`Ledger.pending` gives
  the unfinished rows back with the *same* nonce, so a retry of a message that
  Discord did create returns that message instead of a duplicate.

**Failed is terminal.** A row is marked failed only when the sender gives up
(a permanent error such as 400/403/404, or attempts exhausted). Claiming a
failed key returns ``None`` like any other: neither replay nor restart retries
it, because a failure after timeouts may hide a message Discord did create,
and beyond the nonce's few minutes a retry could duplicate it. Failed rows are
counted in :meth:`Ledger.statistics` for the operator to see.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from realtime.sqlite_rows import chunks, list_sql, rows_sql
from realtime.storage import Database, StorageSettings

NONCE_LENGTH = 24
"""Characters of a nonce: Discord accepts at most 25."""

MAX_ERROR_CHARS = 1000
"""Bound on the stored ``last_error`` text."""

_INSERT_CLAIMS = (
    "INSERT INTO notifications (key, seq, channel, state, nonce, created_at, updated_at, payload)"
    " VALUES "
)
_CLAIM_WIDTH = 8
_INSERT_CLAIMS_TAIL = " ON CONFLICT (key) DO NOTHING"
_MARK_SENT = (
    "UPDATE notifications SET state = 'sent', discord_message_id = ?,"
    " attempts = attempts + 1, last_error = NULL, updated_at = ?"
    " WHERE state = 'pending' AND key IN ("
)
_SELECT_KEYS = "SELECT key FROM notifications WHERE key IN ("

_COLUMNS = (
    "key",
    "seq",
    "channel",
    "state",
    "nonce",
    "attempts",
    "discord_message_id",
    "last_error",
    "created_at",
    "updated_at",
    "payload",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM notifications"  # noqa: S608 -- fixed column names


class LedgerState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One notification on one channel.

    Attributes:
        key: the notification key with the channel appended.
        seq: the journal seq of the event it came from.
        channel: where it goes (``console``, ``discord``, ...).
        nonce: the idempotency nonce for Discord, stable for the key.
        attempts: posting attempts made so far.
        discord_message_id: the created message's id, once sent.
        last_error: the last attempt's error, if it failed (bounded).
        created_at / updated_at: wall-clock Unix seconds.
        payload: the rendered body stored at claim time, so that a pending
            notification can be resumed after a restart without deciding again
            (the tracked state may not be rebuilt yet).
    """

    key: str
    seq: int | None
    channel: str
    state: LedgerState
    nonce: str
    attempts: int
    discord_message_id: str | None
    last_error: str | None
    created_at: float
    updated_at: float
    payload: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """One key to claim with :meth:`Ledger.claim_many` (see :meth:`Ledger.claim`)."""

    key: str
    seq: int | None
    channel: str
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class LedgerStatistics:
    pending: int
    sent: int
    failed: int

    @property
    def total(self) -> int:
        return self.pending + self.sent + self.failed


def nonce_for(key: str, channel: str) -> str:
    """The Discord nonce of ``key`` on ``channel``: 24 lowercase base32 characters.

    A 120-bit BLAKE2b hash of both, so it is the same in every process and
    after every restart, and differs between channels.
    """
    digest = hashlib.blake2b(
        key.encode() + b"\x00" + channel.encode(), digest_size=NONCE_LENGTH * 5 // 8
    ).digest()
    return base64.b32encode(digest).decode("ascii").lower()


def _entry(row: tuple[object, ...]) -> LedgerEntry:
    key, seq, channel, state, nonce, attempts, message_id, error, created, updated, payload = row
    return LedgerEntry(
        key=str(key),
        seq=seq if isinstance(seq, int) else None,
        channel=str(channel),
        state=LedgerState(str(state)),
        nonce=str(nonce),
        attempts=int(attempts) if isinstance(attempts, int) else 0,
        discord_message_id=None if message_id is None else str(message_id),
        last_error=None if error is None else str(error),
        created_at=float(created) if isinstance(created, int | float) else 0.0,
        updated_at=float(updated) if isinstance(updated, int | float) else 0.0,
        payload=bytes(payload) if isinstance(payload, bytes) else b"",
    )


class Ledger:
    """The ``notifications`` table of the journal database (see the module docstring)."""

    def __init__(self, database: Database, clock: Callable[[], float]) -> None:
        """Use :meth:`open`."""
        self._database = database
        self._clock = clock
        self._max_variables = database.max_variables
        self._counts = dict.fromkeys(LedgerState, 0)
        self._recount()

    @classmethod
    def open(
        cls,
        path: Path,
        settings: StorageSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> Ledger:
        """Open (creating if needed) the ledger in the journal database at ``path``.

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
        self._counts = dict.fromkeys(LedgerState, 0)
        with self._database.reading("count") as db:
            rows = db.execute("SELECT state, COUNT(*) FROM notifications GROUP BY state")
            for state, count in rows.fetchall():
                self._counts[LedgerState(state)] = count

    def claim(
        self, key: str, seq: int | None, channel: str, payload: bytes = b""
    ) -> LedgerEntry | None:
        """Record ``key`` as pending on ``channel`` before it is posted.

        Returns the new entry (state pending, no attempts, its nonce), or
        ``None`` when ``key`` is already in the ledger, whatever its state:
        the caller must then not post it. ``payload`` is stored for resuming.
        """
        return self.claim_many([Claim(key, seq, channel, payload)])[0]

    def claim_many(self, claims: Sequence[Claim]) -> list[LedgerEntry | None]:
        """:meth:`claim` each of ``claims`` in one transaction (one disk sync for all).

        Returns, in order, the new entry or ``None`` for each claim, exactly as
        :meth:`claim` would have (a key repeated within ``claims`` is new only
        the first time). Either every claim is committed or, if the
        transaction fails, none is and the error propagates.
        """
        if not claims:
            return []
        now = self._clock()
        entries: list[LedgerEntry | None] = []
        with self._database.transaction("claim") as db:
            # One statement for all keys, not one per claim: see realtime.sqlite_rows.
            taken = self._existing(db, [claim.key for claim in claims])
            values: list[object] = []
            for claim in claims:
                if claim.key in taken:
                    entries.append(None)
                    continue
                taken.add(claim.key)
                nonce = nonce_for(claim.key, claim.channel)
                values += (claim.key, claim.seq, claim.channel, "pending", nonce, now, now)
                values.append(claim.payload)
                entries.append(
                    LedgerEntry(
                        claim.key,
                        claim.seq,
                        claim.channel,
                        LedgerState.PENDING,
                        nonce,
                        0,
                        None,
                        None,
                        now,
                        now,
                        claim.payload,
                    )
                )
            width = _CLAIM_WIDTH
            for start, size in chunks(len(values) // width, width, self._max_variables):
                db.execute(
                    rows_sql(_INSERT_CLAIMS, width, size, _INSERT_CLAIMS_TAIL),
                    values[start * width : (start + size) * width],
                )
        self._counts[LedgerState.PENDING] += sum(entry is not None for entry in entries)
        return entries

    def _existing(self, db: sqlite3.Connection, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` the ledger holds, whatever their state."""
        found: set[str] = set()
        for start, size in chunks(len(keys), 1, self._max_variables):
            rows = db.execute(list_sql(_SELECT_KEYS, size, ")"), keys[start : start + size])
            found.update(str(row[0]) for row in rows)
        return found

    def _transition(
        self, key: str, sql: str, parameters: tuple[object, ...], to: LedgerState
    ) -> bool:
        with self._database.transaction(to.value) as db:
            changed = db.execute(sql, (*parameters, self._clock(), key)).rowcount
        if changed == 1:
            if to is not LedgerState.PENDING:
                self._counts[LedgerState.PENDING] -= 1
                self._counts[to] += 1
            return True
        if self.get(key) is None:
            raise KeyError(key)
        return False

    def mark_sent(self, key: str, message_id: str) -> bool:
        """A successful attempt: pending -> sent, with the created message's id.

        Returns ``False`` (changing nothing) if the entry is no longer pending.

        Raises:
            KeyError: ``key`` was never claimed.
        """
        return self._transition(
            key,
            "UPDATE notifications SET state = 'sent', discord_message_id = ?,"
            " attempts = attempts + 1, last_error = NULL, updated_at = ?"
            " WHERE key = ? AND state = 'pending'",
            (message_id,),
            LedgerState.SENT,
        )

    def mark_sent_many(self, keys: Sequence[str], message_id: str = "") -> int:
        """:meth:`mark_sent` each of ``keys`` in one transaction (one disk sync for all).

        Entries no longer pending are left as they are. Returns how many were
        marked.

        Raises:
            KeyError: a key was never claimed; then none of ``keys`` is marked.
        """
        if not keys:
            return 0
        now = self._clock()
        marked = 0
        with self._database.transaction("mark_sent") as db:
            for start, size in chunks(len(keys), 1, self._max_variables - 2):
                cursor = db.execute(
                    list_sql(_MARK_SENT, size, ")"),
                    (message_id, now, *keys[start : start + size]),
                )
                marked += cursor.rowcount
            if marked < len(set(keys)):
                unknown = set(keys) - self._existing(db, keys)
                if unknown:
                    raise KeyError(min(unknown))
        self._counts[LedgerState.PENDING] -= marked
        self._counts[LedgerState.SENT] += marked
        return marked

    def mark_attempt(self, key: str, error: str) -> bool:
        """A failed attempt that will be retried: counts it, keeps the entry pending.

        Returns ``False`` (changing nothing) if the entry is no longer pending.

        Raises:
            KeyError: ``key`` was never claimed.
        """
        return self._transition(
            key,
            "UPDATE notifications SET attempts = attempts + 1, last_error = ?, updated_at = ?"
            " WHERE key = ? AND state = 'pending'",
            (error[:MAX_ERROR_CHARS],),
            LedgerState.PENDING,
        )

    def mark_failed(self, key: str, error: str) -> bool:
        """A failed attempt after which the sender gives up: pending -> failed, for good.

        Returns ``False`` (changing nothing) if the entry is no longer pending.

        Raises:
            KeyError: ``key`` was never claimed.
        """
        return self._transition(
            key,
            "UPDATE notifications SET state = 'failed', attempts = attempts + 1,"
            " last_error = ?, updated_at = ? WHERE key = ? AND state = 'pending'",
            (error[:MAX_ERROR_CHARS],),
            LedgerState.FAILED,
        )

    def pending(self, limit: int = 1000, channel: str | None = None) -> list[LedgerEntry]:
        """Up to ``limit`` pending entries, oldest claim first, to resume with their nonce.

        With ``channel``, only that channel's entries.
        """
        with self._database.reading("pending") as db:
            if channel is None:
                rows = db.execute(
                    f"{_SELECT} WHERE state = 'pending' ORDER BY rowid LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = db.execute(
                    f"{_SELECT} WHERE state = 'pending' AND channel = ? ORDER BY rowid LIMIT ?",
                    (channel, limit),
                ).fetchall()
        return [_entry(row) for row in rows]

    def get(self, key: str) -> LedgerEntry | None:
        with self._database.reading("get") as db:
            row = db.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
        return None if row is None else _entry(row)

    def prune(self, before: float) -> int:
        """Delete sent and failed entries last updated before ``before`` (Unix seconds).

        Pending entries are never pruned. Keep entries at least as long as the
        journal keeps events (and longer than the max kill age): a pruned key
        can be claimed again. Returns how many were deleted.
        """
        with self._database.transaction("prune") as db:
            deleted: int = db.execute(
                "DELETE FROM notifications WHERE state != 'pending' AND updated_at < ?", (before,)
            ).rowcount
        self._recount()
        return deleted

    def statistics(self) -> LedgerStatistics:
        """Entries per state (kept in memory: this ledger is the table's only writer)."""
        return LedgerStatistics(
            pending=self._counts[LedgerState.PENDING],
            sent=self._counts[LedgerState.SENT],
            failed=self._counts[LedgerState.FAILED],
        )
