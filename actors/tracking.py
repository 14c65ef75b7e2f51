"""The ``tracking`` actor: what the maps track, kept current, persisted and published.

It owns a :class:`~realtime.tracking.TrackedState` and keeps it current from

- :class:`~actors.protocol.Bootstrap` (told by a map source after its REST
  fetch: replaces that map's systems and characters), and
- :class:`~actors.protocol.Handle` (asked by the router with committed map
  events: ``add_system``, ``deleted_system``, ``system_renamed``,
  ``character_added``, ``character_removed``, ``character_updated``).

Whatever changed is written to its own table in the journal's database file
(:class:`~realtime.tracking_store.TrackingStore`) *before* the ask is
answered, so a restart (of the actor or of the process) starts from what was
tracked instead of from nothing; the state is loaded in ``on_start``. Maps
that are no longer configured are forgotten at load.

When the database cannot be written (busy, full), the change stays in memory
and is saved by a retry with backoff, reported as the ``stalled:tracking``
alert meanwhile; the router's ask is answered
:class:`~actors.protocol.Refused`, so the events stay in the journal and come
again (applying them again changes nothing). Until the saved state is loaded
(the database could not be opened at start), every ask is refused.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actors.base import ReportingActor
from actors.protocol import Bootstrap, GetTracking, Handle, Names, Refused, TrackingChanged
from actors.stall import Stall, storage_backoff
from realtime.config import Config
from realtime.storage import DATABASE_FILE, StorageSettings, StorageUnavailableError
from realtime.tracking import TrackedState, map_slug
from realtime.tracking_store import TrackingStore
from supervision import (
    ActorContext,
    ActorUnavailableError,
    Backoff,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
)

logger = logging.getLogger(__name__)

SUBSCRIBERS = (
    Names.FLOW_CONTROL,
    Names.STATIC_INFO,
    Names.NOTIFIER,
    Names.KILLS,
    Names.KILLS_CHARACTERS,
)
"""The actors told about every change."""


class _RetryStorage:
    """Timer: open the store, load it, or save what is unsaved, again."""

    __slots__ = ()


class TrackingActor(ReportingActor):
    """Owns the tracked state; see the module docstring.

    Args:
        ctx: from the supervisor.
        database: the journal's SQLite file, which holds the ``tracking`` table.
        storage: how to open it.
        slugs: the configured maps; saved maps not among them are forgotten at
            start (``None``: keep every saved map).
        subscribers: the actors told about changes.
        max_systems / max_characters / max_maps: the bounds of the state.
        retry: the delays between attempts while the database fails.
    """

    def __init__(
        self,
        ctx: ActorContext,
        database: Path,
        *,
        storage: StorageSettings | None = None,
        slugs: frozenset[str] | None = None,
        subscribers: tuple[str, ...] = SUBSCRIBERS,
        max_systems: int = 10_000,
        max_characters: int = 50_000,
        max_maps: int = 64,
        retry: Backoff | None = None,
    ) -> None:
        super().__init__(ctx)
        self._database = database
        self._storage = storage
        self._slugs = slugs
        self._subscribers = subscribers
        self._state = TrackedState(
            max_systems=max_systems, max_characters=max_characters, max_maps=max_maps
        )
        self._store: TrackingStore | None = None
        self._loaded = False
        # Maps changed in memory whose rows are not saved yet (the database failed).
        self._unsaved: set[str] = set()
        self._stall = Stall(
            retry or Backoff(0.1, 5.0, jitter=0.5), "saving the tracked systems and characters"
        )
        self._retry_due = False
        self._current = self._changed()

    def on_start(self) -> None:
        super().on_start()
        self._recover()

    def _recover(self) -> None:
        """Open and load the store, then save what waits; on a storage failure, retry later."""
        self._retry_due = False
        try:
            if self._store is None:
                self._store = TrackingStore.open(self._database, self._storage)
            if not self._loaded:
                # Neighbours that asked GetTracking while it was not loaded got nothing.
                self._load(self._store, publish=self._stall.stalled)
            if self._unsaved:
                self._store.save({slug: self._state.map_contents(slug) for slug in self._unsaved})
                self._unsaved.clear()
        except StorageUnavailableError as error:
            self._stalled(error)
            return
        if self._stall.resumed():
            logger.warning("tracking: the database is writable again")

    def _stalled(self, error: StorageUnavailableError) -> None:
        if not self._stall.stalled:
            logger.error("tracking: %s; retrying", error)
        self.counters["storage_errors"] += 1
        delay = self._stall.failed(error)
        if not self._retry_due:
            self._retry_due = True
            self.timers.send_after(delay, _RetryStorage())

    def _load(self, store: TrackingStore, *, publish: bool) -> None:
        saved = store.load()
        stale = [slug for slug in saved if self._slugs is not None and slug not in self._slugs]
        if stale:
            logger.info("tracking: forgetting maps no longer configured: %s", ", ".join(stale))
            store.forget(stale)
        for slug, (systems, characters) in saved.items():
            # A map bootstrapped while the database could not be read is newer.
            if slug not in stale and slug not in self._unsaved:
                self._state.bootstrap(slug, systems, characters)
        self._loaded = True
        if publish:
            self._publish()
        else:
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
            return self._handle(message)
        if isinstance(message, Bootstrap):
            self._bootstrap(message)
            return None
        if isinstance(message, GetTracking):
            return self._current
        if isinstance(message, _RetryStorage):
            self._recover()
            return None
        return super().on_receive(message)

    def _handle(self, message: Handle) -> Refused | None:
        if not self._loaded:
            # Deciding against an empty state would be wrong: the router retries.
            return Refused(f"tracking: the saved state is not loaded yet ({self._stall.error})")
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
        if not self._commit(changed):
            # Applied in memory but not saved: refused, so the journal keeps the
            # events until a retry (a no-op on the state) finds them saved.
            return Refused(f"tracking: {self._stall.error}")
        return None

    def _bootstrap(self, message: Bootstrap) -> None:
        before = self._state.revision
        self._state.bootstrap(message.slug, message.systems, message.characters)
        if self._state.revision == before:
            self.counters["bootstraps_refused"] += 1
            logger.warning("tracking: map %s refused (too many maps)", message.slug)
            return
        self.counters["bootstraps"] += 1
        self._commit({message.slug})

    def _commit(self, slugs: set[str]) -> bool:
        """Persist the maps in ``slugs`` (and any unsaved), then publish; whether all is saved.

        A change that cannot be saved stays in memory (published all the
        same) and is saved by a retry with backoff.
        """
        if not slugs and not self._unsaved:
            return True
        self._unsaved |= slugs
        if self._store is not None and self._loaded and not self._retry_due:
            try:
                self._store.save(
                    {slug: self._state.map_contents(slug) for slug in sorted(self._unsaved)}
                )
            except StorageUnavailableError as error:
                self._stalled(error)
            else:
                self._unsaved.clear()
                if self._stall.resumed():
                    logger.warning("tracking: the database is writable again")
        if slugs:
            self._publish()
        return not self._unsaved

    def _publish(self) -> None:
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
            "unsaved_maps": sorted(self._unsaved),
            "storage_errors": self._stall.total,
            "stalled": self._stall.report(),
        }


def child_spec(config: Config, *, subscribers: tuple[str, ...] = SUBSCRIBERS) -> ChildSpec:
    """The ``tracking`` child of the ``pipeline`` supervisor."""
    database = config.data_path / DATABASE_FILE
    storage = StorageSettings.of(config)
    retry = storage_backoff(config)
    slugs = frozenset(map_config.slug for map_config in config.maps)
    kills = config.sources.kills
    return ChildSpec(
        name=Names.TRACKING,
        start=lambda ctx: TrackingActor.start(
            ctx,
            database,
            storage=storage,
            slugs=slugs,
            subscribers=subscribers,
            max_systems=kills.max_systems,
            max_characters=kills.max_characters,
            retry=retry,
        ),
        mailbox=MailboxSpec(config.mailbox.tracking),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
