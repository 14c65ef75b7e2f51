"""The ``static_info`` actor: each system's static data, fetched once and kept.

It fetches ``GET {base}/api/common/system-static-info?id=`` for every system the
maps track (told by tracking's :class:`~actors.protocol.TrackingChanged`), one
at a time, ``[static_info] min_interval_s`` apart, and keeps each answer in the
journal database (:class:`~realtime.static_info_store.StaticInfoStore`): a
system is fetched once, ever, across restarts. A failure is remembered too,
with its next attempt; while the endpoint fails, every fetch waits (see
:class:`~realtime.static_info.FetchPlan`), so an outage costs a handful of
requests.

**Where the fetch runs, and why.** A fetch is blocking HTTP. It runs here, on
this actor's own thread, never on the notifier's: the Discord workers (the
send path) never wait for it, and the notifier waits only for a *new* system
whose info is not cached yet (rare: a wormhole chain grows by a few systems an
hour), at most ``[static_info] wait_s``, through :class:`StaticInfoClient`. A
card is rendered once, when it is claimed in the ledger (that is what makes a
retry post the same message), so the info must be there before the claim or
not at all: past the wait, the card goes out with the name only, and the
fetch goes on here for the kill cards and the next time. Systems already on
the map when the program starts are prefetched, so their kills get a region
and a class.

The notifier gets every new answer as a :class:`StaticInfoChanged` (an
immutable view) and reads it without asking.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pykka
import requests

from actors.base import ReportingActor
from actors.protocol import GetTracking, Names, TrackingChanged
from realtime.config import Config, MapConfig, StaticInfoConfig
from realtime.event import Event
from realtime.ids import as_id
from realtime.static_info import (
    NO_STATIC_INFO,
    FetchPlan,
    StaticInfoError,
    StaticInfoView,
    SystemStaticInfo,
    parse_static_info,
)
from realtime.static_info_store import StaticInfoStore
from realtime.storage import DATABASE_FILE, StorageError, StorageSettings
from realtime.tracking import map_payload, map_slug
from supervision import (
    ActorContext,
    ActorUnavailableError,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
    Registry,
    TimerHandle,
)

logger = logging.getLogger(__name__)

ENDPOINT = "/api/common/system-static-info"
_FIRST_VIEW_TIMEOUT_S = 1.0


# -- Messages -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaticInfoChanged:
    """What is known now (sent to the notifier after every new answer)."""

    view: StaticInfoView


@dataclass(frozen=True, slots=True)
class GetStaticInfo:
    """Ask for the current :class:`StaticInfoChanged`."""


@dataclass(frozen=True, slots=True)
class FetchStaticInfo:
    """Ask for these systems' info now (fetching the ones that may be fetched).

    The answer is a :class:`StaticInfoView` of those of ``system_ids`` that are
    known afterwards; ``slug`` is the map whose server to ask.
    """

    system_ids: tuple[int, ...]
    slug: str


class _Tick:
    """Timer message: time to fetch the next wanted system."""

    __slots__ = ()


_TICK = _Tick()


# -- Fetching -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetched:
    info: SystemStaticInfo
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FetchFailed:
    """``endpoint_down``: the failure is the endpoint's (pause every fetch), not this system's."""

    error: str
    endpoint_down: bool


Fetcher = Callable[[MapConfig, int, float], Fetched | FetchFailed]


def http_fetcher(session: requests.Session) -> Fetcher:
    """Fetch one system's static info from a map's server with ``session``."""

    def fetch(map_config: MapConfig, system_id: int, timeout_s: float) -> Fetched | FetchFailed:
        url = map_config.base_url.rstrip("/") + ENDPOINT
        headers = {"Accept": "application/json"}
        if map_config.api_key:
            headers["Authorization"] = f"Bearer {map_config.api_key.value}"
        try:
            response = session.get(
                url, params={"id": system_id}, headers=headers, timeout=timeout_s
            )
        except requests.RequestException as error:
            return FetchFailed(f"{type(error).__name__}: {error}", endpoint_down=True)
        if response.status_code != 200:
            # a 404 is about this system; anything else puts the endpoint in doubt
            return FetchFailed(
                f"HTTP {response.status_code}", endpoint_down=response.status_code != 404
            )
        try:
            body = response.json()
            info = parse_static_info(body, system_id)
        except (ValueError, StaticInfoError) as error:
            return FetchFailed(f"unreadable answer: {error}", endpoint_down=False)
        return Fetched(info, body.get("data", body))

    return fetch


# -- The actor --------------------------------------------------------------------------


class StaticInfoActor(ReportingActor):
    """See the module docstring.

    Args:
        maps: the configured maps by slug; the first one's server is asked for
            systems no particular map asked about.
        fetcher: how one system is fetched (default: HTTP with ``requests``).
        clock: Unix seconds, for retry times.
    """

    def __init__(
        self,
        ctx: ActorContext,
        settings: StaticInfoConfig,
        database: Path,
        maps: Sequence[MapConfig],
        *,
        storage: StorageSettings | None = None,
        fetcher: Fetcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ctx)
        if not maps:
            msg = "static_info needs at least one map to ask"
            raise ValueError(msg)
        self._settings = settings
        self._database = database
        self._storage = storage
        self._maps = {map_config.slug: map_config for map_config in maps}
        self._default_map = maps[0]
        self._fetcher = fetcher
        self._clock = clock
        self._session: requests.Session | None = None
        self._store: StaticInfoStore | None = None
        self._plan = FetchPlan(retry_min_s=settings.retry_min_s, retry_max_s=settings.retry_max_s)
        self._known: dict[int, SystemStaticInfo] = {}
        self._view = NO_STATIC_INFO
        self._timer: TimerHandle | None = None

    def on_start(self) -> None:
        super().on_start()
        self._open_store()
        self._view = StaticInfoView(MappingProxyType(dict(self._known)))
        if self._fetcher is None:
            self._session = requests.Session()
            self._fetcher = http_fetcher(self._session)
        self._ask_tracking()
        self._schedule(0.0)

    def _open_store(self) -> None:
        """Load the cache; without the database (busy, full, unreadable) it runs on
        what it fetches this time (counted): static info only enriches cards."""
        try:
            self._store = StaticInfoStore.open(self._database, self._storage)
            stored = self._store.load()
        except StorageError as error:
            self.counters["store_unavailable"] += 1
            logger.warning("static_info: no cache this run (%s); fetching what is needed", error)
            if self._store is not None:
                self._store.close()
                self._store = None
            return
        self._known = dict(stored.known)
        self._plan = FetchPlan(
            retry_min_s=self._settings.retry_min_s,
            retry_max_s=self._settings.retry_max_s,
            known=stored.known,
            failures=stored.failures,
        )
        self.counters["unreadable_rows"] += stored.unreadable

    def on_exit(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._session is not None:
            self._session.close()
        super().on_exit()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Tick):
            self._timer = None
            self._tick()
            return None
        if isinstance(message, TrackingChanged):
            self._want(message.systems)
            return None
        if isinstance(message, FetchStaticInfo):
            return self._fetch_now(message)
        if isinstance(message, GetStaticInfo):
            return StaticInfoChanged(self._view)
        return super().on_receive(message)

    def _ask_tracking(self) -> None:
        try:
            answer = self.registry.ask(
                Names.TRACKING, GetTracking(), timeout_s=_FIRST_VIEW_TIMEOUT_S
            )
        except (ActorUnavailableError, MailboxFullError, pykka.Timeout) as error:
            logger.debug("static_info: no tracked systems from tracking yet: %s", error)
            return
        if isinstance(answer, TrackingChanged):
            self._want(answer.systems)

    def _want(self, system_ids: Iterable[int]) -> None:
        if self._plan.want(system_ids):
            self._schedule(0.0)

    def _schedule(self, delay_s: float) -> None:
        if self._timer is None:
            self._timer = self.timers.send_after(max(0.0, delay_s), _TICK)

    def _tick(self) -> None:
        now = self._clock()
        system_id, later = self._plan.next_due(now)
        if system_id is None:
            if later is not None:
                self._schedule(later - now)
            return
        self._fetch(system_id, self._default_map)
        self._schedule(self._settings.min_interval_s)

    def _fetch_now(self, message: FetchStaticInfo) -> StaticInfoView:
        self.counters["lookups"] += 1
        map_config = self._maps.get(message.slug, self._default_map)
        found: dict[int, SystemStaticInfo] = {}
        for system_id in message.system_ids:
            if system_id not in self._known:
                self._plan.want((system_id,))
                if self._plan.may_fetch(system_id, self._clock()):
                    self._fetch(system_id, map_config)
            info = self._known.get(system_id)
            if info is not None:
                found[system_id] = info
        self._schedule(self._settings.min_interval_s)
        return StaticInfoView(found)

    def _fetch(self, system_id: int, map_config: MapConfig) -> None:
        assert self._fetcher is not None, "fetching starts once the actor has started"
        self.counters["requests"] += 1
        result = self._fetcher(map_config, system_id, self._settings.request_timeout_s)
        now = self._clock()
        if isinstance(result, FetchFailed):
            failure = self._plan.failed(system_id, result.error, now, pause=result.endpoint_down)
            self.counters["failures"] += 1
            logger.warning(
                "static_info: system %d from %s failed (%s); next attempt in %.0f s",
                system_id,
                map_config.slug,
                result.error,
                failure.retry_at - now,
            )
            self._persist(lambda store: store.record_failure(system_id, failure))
            return
        self._plan.succeeded(system_id)
        self._known[system_id] = result.info
        self.counters["fetched"] += 1
        self._persist(lambda store: store.save(system_id, result.data, now))
        self._view = StaticInfoView(MappingProxyType(dict(self._known)))
        try:
            self.registry.tell(Names.NOTIFIER, StaticInfoChanged(self._view))
        except (ActorUnavailableError, MailboxFullError):
            self.counters["publish_skipped"] += 1  # the notifier asks when it needs it

    def _persist(self, write: Callable[[StaticInfoStore], None]) -> None:
        """Write to the cache; a failed write is counted (the answer stays in memory)."""
        if self._store is None:
            return
        try:
            write(self._store)
        except StorageError as error:
            self.counters["store_errors"] += 1
            logger.warning("static_info: cache not written: %s", error)

    def report_gauges(self) -> Mapping[str, float]:
        statistics = self._plan.statistics()
        return {"known": statistics.known, "wanted": statistics.wanted}

    def status(self) -> Mapping[str, Any]:
        statistics = self._plan.statistics()
        return {
            "known": statistics.known,
            "wanted": statistics.wanted,
            "failing": statistics.failing,
            "paused_until": statistics.paused_until or None,
            "consecutive_failures": statistics.consecutive_failures,
            "refused": self._plan.refused,
        }


# -- The notifier's side ----------------------------------------------------------------


class StaticInfoClient:
    """What the notifier holds: the latest view, and a bounded wait for new systems.

    Every failure to reach the actor (not started, restarting, disabled)
    degrades to what is known, never to an error: static info only enriches
    cards.
    """

    def __init__(self, registry: Registry, wait_s: float) -> None:
        self._registry = registry
        self._wait_s = wait_s
        self._view: StaticInfoView | None = None
        self.waits = 0
        self.timeouts = 0

    def update(self, message: StaticInfoChanged) -> None:
        self._view = message.view

    @property
    def known(self) -> int:
        """Systems in the view held now (never asks)."""
        return 0 if self._view is None else len(self._view.systems)

    def view(self) -> StaticInfoView:
        """The latest view (asked for once, briefly, when none was published yet)."""
        if self._view is None:
            answer = self._ask(GetStaticInfo(), _FIRST_VIEW_TIMEOUT_S)
            self._view = answer.view if isinstance(answer, StaticInfoChanged) else NO_STATIC_INFO
        return self._view

    def prepare(self, events: Sequence[Event]) -> StaticInfoView:
        """The view to decide ``events`` with: it includes the info of every system
        added in them, if it can be had within ``wait_s`` in all."""
        view = self.view()
        missing: dict[str, list[int]] = {}
        for event in events:
            slug = map_slug(event.source)
            if event.type != "add_system" or slug is None:
                continue
            system_id = as_id(map_payload(event.data).get("solar_system_id"))
            if system_id is not None and view.static_info(system_id) is None:
                missing.setdefault(slug, []).append(system_id)
        if not missing:
            return view
        deadline = time.monotonic() + self._wait_s
        found = dict(view.systems)
        for slug, system_ids in missing.items():
            self.waits += 1
            answer = self._ask(
                FetchStaticInfo(tuple(system_ids), slug), max(0.0, deadline - time.monotonic())
            )
            if isinstance(answer, StaticInfoView):
                found.update(answer.systems)
            else:
                self.timeouts += 1
        self._view = StaticInfoView(MappingProxyType(found))
        return self._view

    def _ask(self, message: Any, timeout_s: float) -> Any:
        try:
            return self._registry.ask(Names.STATIC_INFO, message, timeout_s=timeout_s)
        except (ActorUnavailableError, MailboxFullError, pykka.Timeout):
            return None


def child_spec(config: Config, *, fetcher: Fetcher | None = None) -> ChildSpec:
    """The ``static_info`` child of the ``pipeline`` supervisor (needs at least one map)."""
    database = config.data_path / DATABASE_FILE
    return ChildSpec(
        name=Names.STATIC_INFO,
        start=lambda ctx: StaticInfoActor.start(
            ctx,
            config.static_info,
            database,
            config.maps,
            storage=StorageSettings.of(config),
            fetcher=fetcher,
        ),
        mailbox=MailboxSpec(config.mailbox.static_info),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
