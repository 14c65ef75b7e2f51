"""The layout of the journal database file: every table of every owner, in one place.

Three owners keep tables in the one SQLite file (see :mod:`realtime.storage`):

- the journal store (:mod:`realtime.journal_store`): ``meta``, ``events``,
  ``rejects``, ``cursors``, ``checkpoints``;
- the notification ledger (:mod:`realtime.ledger`): ``notifications``;
- the tracking store (:mod:`realtime.tracking_store`): ``tracking``;
- the static-info cache (:mod:`realtime.static_info_store`): ``static_info``.

Whichever owner opens a new file first creates all of them, so the file is
always a whole journal database (a file holding only the ledger's table,
made by an earlier ``replay --notify`` on a fresh data dir, is completed the
same way). ``meta.schema_version`` is :data:`SCHEMA_VERSION`; a file written
by a newer release is refused, and one written by an older release is brought
up to date by :data:`MIGRATIONS` when opened for writing, in the same
transaction as the tables it lacks (a file without ``meta``, from before it
existed, counts as version 1).

Versions: 1, the first; 2, the ledger keyed by ``(route, notification)``
instead of ``{notification}@{sink}``, with ``mentioned``, and the
``notifier_state`` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SCHEMA_VERSION = 2
"""Version of the database layout (the ``meta`` table's ``schema_version``)."""


@dataclass(frozen=True, slots=True)
class Table:
    """One table: its name and the statements that create it (and its indexes)."""

    name: str
    statements: tuple[str, ...]


_NOTIFICATIONS = """CREATE TABLE notifications (
    route TEXT NOT NULL,
    notification TEXT NOT NULL,
    seq INTEGER,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    nonce TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    discord_message_id TEXT,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    payload BLOB NOT NULL DEFAULT x'',
    mentioned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (route, notification)
)"""
_NOTIFICATIONS_INDEXES = (
    "CREATE INDEX notifications_by_state ON notifications (state, route)",
    # a route's last ping, read at every start for its mention cooldown
    "CREATE INDEX notifications_mentions ON notifications (route, created_at) WHERE mentioned = 1",
)


@dataclass(frozen=True, slots=True)
class Migration:
    """What takes a file from version ``to - 1`` to ``to``.

    ``statements`` run, in order, only when every table of ``tables`` is in
    the file (a table it lacks is created in the new layout instead); each
    must then have the columns listed for it, which the statements read.
    """

    to: int
    tables: Mapping[str, tuple[str, ...]]
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        {
            "notifications": (
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
        },
        (
            "ALTER TABLE notifications RENAME TO notifications_v1",
            _NOTIFICATIONS,
            # '{notification}@{channel}' -> (route = channel, notification), in claim
            # order; the nonce is kept (the ledger's formula gives the same one).
            """INSERT INTO notifications (route, notification, seq, state, nonce, attempts,
                discord_message_id, last_error, created_at, updated_at, payload)
            SELECT channel,
                CASE WHEN substr(key, -length(channel) - 1) = '@' || channel
                    THEN substr(key, 1, length(key) - length(channel) - 1) ELSE key END,
                seq, state, nonce, attempts, discord_message_id, last_error, created_at,
                updated_at, payload
            FROM notifications_v1 ORDER BY rowid""",
            "DROP TABLE notifications_v1",
            *_NOTIFICATIONS_INDEXES,
        ),
    ),
)
"""Every migration, oldest first."""


META = Table("meta", ("CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL)",))

TABLES: tuple[Table, ...] = (
    META,
    Table(
        "events",
        (
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
        ),
    ),
    Table(
        "rejects",
        (
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
        ),
    ),
    Table(
        "cursors",
        (
            """CREATE TABLE cursors (
                source TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                seq INTEGER NOT NULL
            )""",
        ),
    ),
    Table(
        "checkpoints",
        ("CREATE TABLE checkpoints (name TEXT PRIMARY KEY, seq INTEGER NOT NULL)",),
    ),
    Table("notifications", (_NOTIFICATIONS, *_NOTIFICATIONS_INDEXES)),
    Table(
        "notifier_state",
        ("CREATE TABLE notifier_state (name TEXT PRIMARY KEY, value REAL NOT NULL)",),
    ),
    Table(
        "tracking",
        (
            """CREATE TABLE tracking (
                slug TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('system', 'character')),
                id INTEGER NOT NULL,
                name TEXT NOT NULL,
                position INTEGER NOT NULL,
                PRIMARY KEY (slug, kind, id)
            ) WITHOUT ROWID""",
        ),
    ),
    Table(
        "static_info",
        (
            # body: the endpoint's answer (NULL until fetched); attempts and
            # retry_at: the failures so far and when to ask again
            """CREATE TABLE static_info (
                system_id INTEGER PRIMARY KEY,
                body BLOB,
                fetched_at REAL,
                attempts INTEGER NOT NULL DEFAULT 0,
                retry_at REAL,
                last_error TEXT
            )""",
        ),
    ),
)
"""Every table of the file, ``meta`` first."""
