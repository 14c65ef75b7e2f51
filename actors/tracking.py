"""The ``tracking`` actor: what the maps track, kept current, persisted and published.

It owns a :class:`~realtime.tracking.TrackedState` and keeps it current from

- :class:`~actors.protocol.Bootstrap` (told by a map source after its REST
  fetch: replaces that map's systems and characters), and
- :class:`~actors.protocol.Handle` (asked by the router with committed map
  events: ``add_system``, ``deleted_system``, ``system_renamed``,
  ``character_added``, ``character_removed``, ``character_updated``).

Whatever changed is written to its own table in the journal's database file
(its own connection, WAL) *before* the ask is answered, so a restart (of the
actor or of the process) starts from what was tracked instead of from nothing;
the state is loaded in ``on_start``. Maps that are no longer configured are
forgotten at load.

After a change, and still before the answer, it tells a
:class:`~actors.protocol.TrackingChanged` (an immutable
:class:`~realtime.tracking.TrackedSnapshot` and the kill feed's subscription)
to ``flow_control``, ``notifier`` and ``kills``. Telling before answering
orders it ahead of the router's next ask to the notifier, so the notifier
decides a batch's kills with the tracking that batch produced. A subscriber
that is not running is skipped: it asks :class:`~actors.protocol.GetTracking`
when it starts, which is answered with the current ``TrackingChanged``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from actors.base import ReportingActor
from actors.protocol import Bootstrap, GetTracking, Handle, Names, TrackingChanged
from realtime.config import Config
from realtime.ledger import DATABASE_FILE
from realtime.tracking import TrackedState, map_slug
from supervision import (
    ActorContext,
    ActorUnavailableError,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
)

logger = logging.getLogger(__name__)

SUBSCRIBERS = (Names.FLOW_CONTROL, Names.STATIC_INFO, Names.NOTIFIER, Names.KILLS)
"""The actors told about every change."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracking (
    slug TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('system', 'character')),
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (slug, kind, id)
) WITHOUT ROWID;
"""

MapContents = tuple[Mapping[int, str], Mapping[int, str]]
"""What one map tracks: ``(systems, characters)``, each ``id -> name``."""


class TrackingStore:
    """The ``tracking`` table: per map, the tracked systems and characters with names.

    Each map is saved whole (its rows replaced in one transaction), in the
    order :class:`TrackedState` holds it, so that loading it back through
    :meth:`TrackedState.bootstrap` admits the same ids under the same bounds.
    Not thread-safe: one owner.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        """Use :meth:`open`."""
        self._db = connection

    @classmethod
    def open(cls, path: str | Path, *, busy_timeout_s: float = 5.0) -> TrackingStore:
        """Open (creating if needed) the table in the SQLite database at ``path``.

        Raises:
            sqlite3.Error: the file cannot be opened or is not a database.
        """
        connection = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL survives the death of the process; after a power
            # loss a map's REST bootstrap restores what the last commits held.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
        except BaseException:
            connection.close()
            raise
        return cls(connection)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def load(self) -> dict[str, MapContents]:
        """Every saved map: ``slug -> (systems, characters)``, in saved order."""
        maps: dict[str, tuple[dict[int, str], dict[int, str]]] = {}
        rows = self._db.execute(
            "SELECT slug, kind, id, name FROM tracking ORDER BY slug, kind, position"
        )
        for slug, kind, item_id, name in rows:
            systems, characters = maps.setdefault(str(slug), ({}, {}))
            (systems if kind == "system" else characters)[int(item_id)] = str(name)
        return dict(maps)

    def save(self, maps: Mapping[str, MapContents]) -> None:
        """Replace the saved contents of each map in ``maps``, all in one transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for slug, (systems, characters) in maps.items():
                self._db.execute("DELETE FROM tracking WHERE slug = ?", (slug,))
                self._db.executemany(
                    "INSERT INTO tracking (slug, kind, id, name, position) VALUES (?, ?, ?, ?, ?)",
                    [
                        *_rows(slug, "system", systems.items()),
                        *_rows(slug, "character", characters.items()),
                    ],
                )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def forget(self, slugs: Iterable[str]) -> None:
        """Delete the saved contents of ``slugs``."""
        self._db.executemany("DELETE FROM tracking WHERE slug = ?", [(slug,) for slug in slugs])


def _rows(
    slug: str, kind: str, items: Iterable[tuple[int, str]]
) -> list[tuple[str, str, int, str, int]]:
    return [(slug, kind, item_id, name, index) for index, (item_id, name) in enumerate(items)]


class TrackingActor(ReportingActor):
    """Owns the tracked state; see the module docstring.

    Args:
        ctx: from the supervisor.
        database: the journal's SQLite file, which holds the ``tracking`` table.
        slugs: the configured maps; saved maps not among them are forgotten at
            start (``None``: keep every saved map).
        subscribers: the actors told about changes.
        max_systems / max_characters / max_maps: the bounds of the state.
    """

    def __init__(
        self,
        ctx: ActorContext,
        database: Path,
        *,
        slugs: frozenset[str] | None = None,
        subscribers: tuple[str, ...] = SUBSCRIBERS,
        max_systems: int = 10_000,
        max_characters: int = 50_000,
        max_maps: int = 64,
    ) -> None:
        super().__init__(ctx)
        self._database = database
        self._slugs = slugs
        self._subscribers = subscribers
        self._state = TrackedState(
            max_systems=max_systems, max_characters=max_characters, max_maps=max_maps
        )
        self._store: TrackingStore | None = None
        self._current = self._changed()

    def on_start(self) -> None:
        super().on_start()
        self._database.parent.mkdir(parents=True, exist_ok=True)
        self._store = TrackingStore.open(self._database)
        self._load(self._store)

    def _load(self, store: TrackingStore) -> None:
        saved = store.load()
        stale = [slug for slug in saved if self._slugs is not None and slug not in self._slugs]
        if stale:
            logger.info("tracking: forgetting maps no longer configured: %s", ", ".join(stale))
            store.forget(stale)
        for slug, (systems, characters) in saved.items():
            if slug not in stale:
                self._state.bootstrap(slug, systems, characters)
        self._current = self._changed()
        statistics = self._state.statistics()
        logger.info(
            "tracking: loaded %d maps, %d systems, %d characters",
            statistics.maps,
            statistics.systems,
            statistics.characters,
        )

    def on_exit(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Handle):
            self._handle(message)
            return None
        if isinstance(message, Bootstrap):
            self._bootstrap(message)
            return None
        if isinstance(message, GetTracking):
            return self._current
        return super().on_receive(message)

    def _handle(self, message: Handle) -> None:
        changed: set[str] = set()
        for event in message.events:
            before = self._state.revision
            self._state.apply(event)
            slug = map_slug(event.source)
            if self._state.revision != before and slug is not None:
                changed.add(slug)
                self.counters["events_applied"] += 1
            else:
                self.counters["events_ignored"] += 1
            self.observe(Names.TRACKING, event.received_at)
        self._commit(changed)

    def _bootstrap(self, message: Bootstrap) -> None:
        before = self._state.revision
        self._state.bootstrap(message.slug, message.systems, message.characters)
        if self._state.revision == before:
            self.counters["bootstraps_refused"] += 1
            logger.warning("tracking: map %s refused (too many maps)", message.slug)
            return
        self.counters["bootstraps"] += 1
        self._commit({message.slug})

    def _commit(self, slugs: set[str]) -> None:
        """Persist the maps in ``slugs``, then publish the new tracking."""
        if not slugs:
            return
        assert self._store is not None, "tracking handles messages only once started"
        self._store.save({slug: self._state.map_contents(slug) for slug in sorted(slugs)})
        self._current = self._changed()
        for name in self._subscribers:
            try:
                self.registry.tell(name, self._current)
            except (ActorUnavailableError, MailboxFullError) as error:
                self.counters["publish_skipped"] += 1
                logger.debug("tracking: %s not told: %s", name, error)
        self.counters["published"] += 1

    def _changed(self) -> TrackingChanged:
        snapshot = self._state.snapshot()
        systems, characters = snapshot.subscription()
        return TrackingChanged(view=snapshot, systems=systems, characters=characters)

    def report_gauges(self) -> Mapping[str, float]:
        statistics = self._state.statistics()
        return {
            "maps": statistics.maps,
            "systems": statistics.systems,
            "characters": statistics.characters,
        }

    def status(self) -> Mapping[str, Any]:
        statistics = self._state.statistics()
        return {
            "maps": list(self._state.maps()),
            "systems": statistics.systems,
            "max_systems": statistics.max_systems,
            "characters": statistics.characters,
            "max_characters": statistics.max_characters,
            "max_maps": statistics.max_maps,
            "events_applied": statistics.events_applied,
            "events_ignored": statistics.events_ignored,
            "refused": {
                "full": statistics.refused_full,
                "invalid": statistics.refused_invalid,
                "maps": statistics.refused_maps,
            },
        }


def child_spec(config: Config, *, subscribers: tuple[str, ...] = SUBSCRIBERS) -> ChildSpec:
    """The ``tracking`` child of the ``pipeline`` supervisor."""
    database = config.data_path / DATABASE_FILE
    slugs = frozenset(map_config.slug for map_config in config.maps)
    return ChildSpec(
        name=Names.TRACKING,
        start=lambda ctx: TrackingActor.start(ctx, database, slugs=slugs, subscribers=subscribers),
        mailbox=MailboxSpec(config.mailbox.tracking),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
