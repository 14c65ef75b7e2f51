"""The static-info cache: table ``static_info`` in the journal database file.

One row per solar system, through a connection of its own (see
:mod:`realtime.storage`; the layout is in :mod:`realtime.schema`). A fetched
system keeps the endpoint's ``data`` object as JSON, so a later version of the
parser reads old rows afresh; a system that could not be fetched keeps its failures and the time of
its next attempt, so a restart neither refetches what is known nor hammers an
endpoint that was failing. Static data never changes: rows are never pruned.

Every write commits before it returns; one that fails raises a
:class:`~realtime.storage.StorageError` and changes nothing. Not thread-safe:
one owner at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from realtime.static_info import Failure, StaticInfoError, SystemStaticInfo, parse_static_info
from realtime.table_store import TableStore

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class StoredStaticInfo:
    """What the store holds: the known systems and the failing ones.

    ``unreadable`` counts rows whose body no longer parses; they are treated
    as never fetched (and so fetched again).
    """

    known: dict[int, SystemStaticInfo]
    failures: dict[int, Failure]
    unreadable: int


class StaticInfoStore(TableStore):
    """The ``static_info`` table (see the module docstring)."""

    def load(self) -> StoredStaticInfo:
        """Every row: known systems parsed, failing ones with their next attempt."""
        known: dict[int, SystemStaticInfo] = {}
        failures: dict[int, Failure] = {}
        unreadable = 0
        with self._database.reading("load static info") as db:
            rows = db.execute(
                "SELECT system_id, body, attempts, retry_at, last_error FROM static_info"
            ).fetchall()
        for system_id, body, attempts, retry_at, last_error in rows:
            if body is not None:
                try:
                    known[system_id] = parse_static_info(orjson.loads(body), system_id)
                    continue
                except (orjson.JSONDecodeError, StaticInfoError) as error:
                    logger.warning("static info of system %d unreadable: %s", system_id, error)
                    unreadable += 1
            if attempts:
                failures[system_id] = Failure(attempts, retry_at or 0.0, last_error or "")
        return StoredStaticInfo(known, failures, unreadable)

    def save(self, system_id: int, data: Any, fetched_at: float) -> None:
        """Keep the endpoint's ``data`` object for ``system_id`` (its failures are forgotten)."""
        with self._database.transaction("save static info") as db:
            db.execute(
                "INSERT INTO static_info (system_id, body, fetched_at, attempts)"
                " VALUES (?, ?, ?, 0) ON CONFLICT (system_id) DO UPDATE SET"
                " body = excluded.body, fetched_at = excluded.fetched_at,"
                " attempts = 0, retry_at = NULL, last_error = NULL",
                (system_id, orjson.dumps(data), fetched_at),
            )

    def record_failure(self, system_id: int, failure: Failure) -> None:
        """Remember a failed attempt and when to try again (a known body is kept)."""
        with self._database.transaction("record a static info failure") as db:
            db.execute(
                "INSERT INTO static_info (system_id, attempts, retry_at, last_error)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (system_id) DO UPDATE SET"
                " attempts = excluded.attempts, retry_at = excluded.retry_at,"
                " last_error = excluded.last_error",
                (system_id, failure.attempts, failure.retry_at, failure.error[:MAX_ERROR_CHARS]),
            )
