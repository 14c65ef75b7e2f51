"""The notifier actor itself: decide, claim in the ledger, answer, then deliver."""

from __future__ import annotations

import collections
import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import pykka

from actors.base import ReportingActor
from actors.notifier.announcer import Announcer, ProcessStart
from actors.notifier.console import ConsoleSink
from actors.notifier.discord_delivery import DISCORD, DiscordDelivery
from actors.notifier.discord_sink import Outcomes, SharedLedger
from actors.notifier.planner import CONSOLE, Candidate, Planner
from actors.notifier.report import discord_status, queue_status, route_status
from actors.notifier.settings import NotifierSettings
from actors.notifier.view import TrackingUnavailableError, lookup
from actors.protocol import (
    Announce,
    FeedRecovered,
    GetTracking,
    Handle,
    Names,
    Refused,
    TrackingChanged,
)
from actors.static_info import StaticInfoChanged, StaticInfoClient
from realtime.config import Config, DiscordConfig
from realtime.event import Event
from realtime.keys import KILLMAIL_TYPES
from realtime.ledger import Ledger, LedgerEntry
from realtime.notifications import (
    Decision,
    KillDetails,
    Notification,
    kill_notification,
    map_notification,
)
from realtime.routes import NO_MEMBERSHIP, MapMembership, Pings
from realtime.static_info import StaticInfoLookup
from realtime.storage import StorageUnavailableError
from realtime.tracking import TrackedLookup
from supervision import (
    ActorContext,
    ActorUnavailableError,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
)

logger = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
"""How often sent and failed ledger entries past their keep time are deleted."""

MAX_OWN_WAITING = 256
"""Alerts and status messages waiting for the ledger (busy or full); beyond, the oldest go."""

_RESUME_CHUNK = 1000


class _Tick:
    """Timer message: drain outcomes, refill the queue from the ledger, status, prune."""

    __slots__ = ()


_TICK = _Tick()


class NotifierActor(ReportingActor):
    """Decides, claims and delivers notifications; see the package docstring.

    Args:
        ctx: from the supervisor.
        settings: see :class:`NotifierSettings`.
        stdout: the console sink's stream (``sys.stdout`` when ``None``).
        clock: wall-clock Unix seconds, for kill ages, the ledger and status.
        seed: seeds the workers' retry jitter (``None``: unpredictable).
        start: this process's start, to announce (``None``: no status messages
            about starts, as in a replay).
    """

    def __init__(
        self,
        ctx: ActorContext,
        settings: NotifierSettings,
        *,
        stdout: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
        start: ProcessStart | None = None,
    ) -> None:
        super().__init__(ctx)
        self._settings = settings
        self._stdout = stdout
        self._clock = clock
        self._sinks: tuple[str, ...] = tuple(dict.fromkeys(settings.notify.sinks))
        self._view: TrackedLookup | None = None
        self._ledger = SharedLedger()
        self._console: ConsoleSink | None = None
        self._outcomes = Outcomes()
        self._discord = DiscordDelivery(
            settings.notify.discord,
            settings.routes,
            ledger=self._ledger,
            outcomes=self._outcomes,
            counters=self.counters,
            mark_failed=self._mark_failed,
            seed=seed,
        )
        self._last_prune = -float("inf")
        self._latency_sink = DISCORD if DISCORD in self._sinks else CONSOLE
        self._planner = Planner(
            settings.routes,
            console=CONSOLE in self._sinks,
            discord=DISCORD in self._sinks,
            pings=Pings(),
        )
        self._announcer = Announcer(start, settings.status)
        self._own: collections.deque[Notification] = collections.deque()
        self._unrouted: collections.Counter[str] = collections.Counter()
        self._static = StaticInfoClient(self.registry, settings.static_info_wait_s)

    # -- lifecycle ------------------------------------------------------------

    def on_start(self) -> None:
        super().on_start()
        self._ledger.open(Ledger.open(self._settings.database, clock=self._clock))
        if CONSOLE in self._sinks:
            self._console = ConsoleSink(self._stdout or sys.stdout)
        if DISCORD in self._sinks:
            self._discord.start()
        with self._ledger.held() as ledger:
            self._planner.pings = Pings(ledger.last_mentions())
            self._abandon_unknown_routes(ledger)
            self._announcer.begin(ledger, self._clock())
        self._fetch_view()
        self._prune()
        self._resume_console()
        self._discord.backlog = True
        self._discord.refill()
        self.timers.send_interval(self._settings.tick_s, _TICK)

    def _abandon_unknown_routes(self, ledger: Ledger) -> None:
        """Fail the pending entries of routes no longer configured: they can go nowhere."""
        if DISCORD not in self._sinks:
            return  # Discord is off: its entries wait for a run that has it on
        known = {route.name for route in self._settings.routes} | {CONSOLE}
        for route in sorted(ledger.routes_pending() - known):
            abandoned = ledger.abandon(route, f"route {route} is no longer configured")
            self.counters["abandoned"] += abandoned
            logger.warning(
                "notifier: %d pending notifications of route %s, which is no longer "
                "configured, are marked failed",
                abandoned,
                route,
            )

    def on_exit(self) -> None:
        self._discord.stop(self._settings.stop_timeout_s)
        with self._ledger.use() as ledger:
            if ledger is not None:
                try:
                    self._announcer.heartbeat(ledger, self._clock())
                except StorageUnavailableError as error:
                    logger.warning("notifier: could not record the stop: %s", error)
        self._ledger.close()

    # -- messages ----------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Handle):
            return self._handle(message.events)
        if isinstance(message, TrackingChanged | StaticInfoChanged):
            self._learn(message)
            return None
        if isinstance(message, _Tick):
            self._tick()
            return None
        if isinstance(message, Announce):
            self._keep_own(message.notifications)
            return None
        if isinstance(message, FeedRecovered):
            now = self._clock()
            early = self._announcer.recovered(message.source, message.began, message.ended, now)
            self._keep_own(early)
            return None
        return super().on_receive(message)

    def _learn(self, message: TrackingChanged | StaticInfoChanged) -> None:
        """What tracking or static_info publishes, kept to decide with."""
        if isinstance(message, TrackingChanged):
            self._view = lookup(message.view)
        else:
            self._static.update(message)

    def _fetch_view(self) -> None:
        try:
            answer = self.registry.ask(
                Names.TRACKING, GetTracking(), timeout_s=self._settings.tracking_timeout_s
            )
        except (ActorUnavailableError, MailboxFullError, pykka.Timeout) as error:
            logger.info("notifier: no tracked view from tracking yet: %s", error)
            return
        if isinstance(answer, TrackingChanged):
            self._view = lookup(answer.view)

    def _require_view(self) -> TrackedLookup:
        if self._view is None:
            self._fetch_view()
        if self._view is None:
            msg = "no tracked view: the tracking actor has not answered yet"
            raise TrackingUnavailableError(msg)
        return self._view

    def _handle(self, events: Sequence[Event]) -> int | Refused:
        """Decide and claim; how many entries were newly claimed, or why not now.

        The database being busy or full refuses the batch (nothing of it was
        claimed): the router asks again later.
        """
        try:
            view = self._require_view()
        except TrackingUnavailableError as error:
            return Refused(f"notifier: {error}")
        static = self._static.prepare(events)
        now = self._clock()
        candidates: list[Candidate] = []
        for event in events:
            self.counters["events"] += 1
            notification = self._decide(event, view, static, now)
            if notification is not None:
                candidates.append(Candidate(notification, event.received_at, event.priority))
        membership = view if isinstance(view, MapMembership) else NO_MEMBERSHIP
        try:
            return self._claim(candidates, membership, now)
        except StorageUnavailableError as error:
            self.counters["ledger_errors"] += 1
            logger.warning("notifier: refused %d events for now: %s", len(events), error)
            return Refused(f"notifier: the ledger cannot be written: {error}")

    def _claim(self, candidates: Sequence[Candidate], membership: MapMembership, now: float) -> int:
        """Claim ``candidates`` on every sink and route, then deliver; how many were new.

        Raises:
            StorageUnavailableError: nothing was claimed (the pings taken are given back).
        """
        self.counters["notifications"] += len(candidates)
        with self._ledger.held() as ledger:
            plan = self._planner.plan(candidates, ledger, membership, now)
            try:
                entries = ledger.claim_many(plan.claims)
            except StorageUnavailableError:
                self._planner.pings.restore(plan.pings_before)
                raise
        for kind, count in plan.unrouted.items():
            self._unrouted[kind] += count
            self.counters[f"unrouted_{kind}"] += count
        claimed = 0
        kills: dict[str, float] = {}
        console: list[tuple[LedgerEntry, int | None]] = []
        for candidate, entry in zip(plan.candidates, entries, strict=True):
            if entry is None:
                self.counters["already_claimed"] += 1
                continue
            claimed += 1
            details = candidate.notification.details
            if isinstance(details, KillDetails):
                kills[candidate.notification.key] = details.kill_time
            if entry.route == CONSOLE:
                console.append((entry, candidate.received_at))
            else:
                self._discord.offer(entry, candidate.received_at, candidate.priority)
        for kill_time in kills.values():
            self._announcer.kill(kill_time)
        self._write_console(console)
        self._discord.refill()
        return claimed

    def _keep_own(self, notifications: Sequence[Notification]) -> None:
        """Alerts and status messages: claimed now, or kept until the ledger takes them."""
        for notification in notifications:
            if len(self._own) >= MAX_OWN_WAITING:
                dropped = self._own.popleft()
                self.counters["own_dropped"] += 1
                logger.error("notifier: no room to keep %s; dropped", dropped.key)
            self._own.append(notification)
        self._claim_own()

    def _claim_own(self) -> None:
        if not self._own:
            return
        own = list(self._own)
        try:
            self._claim([Candidate(n, None, n.priority) for n in own], NO_MEMBERSHIP, self._clock())
        except StorageUnavailableError as error:
            logger.warning(
                "notifier: %d own notifications wait for the ledger: %s", len(own), error
            )
            return
        self._own.clear()

    def _decide(
        self, event: Event, view: TrackedLookup, static: StaticInfoLookup, now: float
    ) -> Notification | None:
        notify = self._settings.notify
        if event.type in KILLMAIL_TYPES:
            result = kill_notification(
                event, view, notify.kills, self._settings.max_kill_age_s, now, static=static
            )
            if isinstance(result, Decision):
                self.counters[f"skipped_{result.reason}"] += 1
                return None
            return result
        notification = map_notification(event, view, notify.map, static=static)
        if notification is None:
            self.counters["skipped_map_event"] += 1
        return notification

    def _write_console(self, entries: Sequence[tuple[LedgerEntry, int | None]]) -> None:
        """Print each entry's line, flush once, then mark the printed ones sent in one
        transaction.

        A crash between the two prints those lines again at the next start
        (console delivery is at least once). One flush and one transaction
        per batch rather than per line keep system calls (each a disk sync or
        a release of the GIL) off the per-event path.
        """
        console = self._console
        if console is None or not entries:
            return
        printed: list[tuple[LedgerEntry, int | None]] = []
        for entry, received_at in entries:
            try:
                written = console.write(entry.payload)
            except OSError as error:
                self._mark_failed(entry, CONSOLE, f"console: {error}")
                continue
            if not written:
                self._mark_failed(entry, CONSOLE, "the stored console line is unreadable")
                continue
            printed.append((entry, received_at))
        if not printed:
            return
        try:
            console.flush()
        except OSError as error:
            for entry, _ in printed:
                self._mark_failed(entry, CONSOLE, f"console: {error}")
            return
        if self._latency_sink == CONSOLE:
            now_ns = time.monotonic_ns()
            for _, received_at in printed:
                if received_at is not None:
                    self.observe(Names.NOTIFIER, received_at, now_ns)
        with self._ledger.use() as ledger:
            if ledger is not None:
                ledger.mark_sent_many([entry.key for entry, _ in printed])
        self.counters["sent_console"] += len(printed)

    def _mark_failed(self, entry: LedgerEntry, sink: str, reason: str) -> None:
        with self._ledger.use() as ledger:
            if ledger is not None:
                ledger.mark_failed(entry.key, reason)
        self.counters[f"failed_{sink}"] += 1
        logger.warning("notifier: %s failed: %s", entry.key, reason)

    # -- periodic work --------------------------------------------------------------

    def _tick(self) -> None:
        sink = self._discord.sink
        if sink is not None and sink.failure is not None:
            msg = "a Discord worker failed"
            raise RuntimeError(msg) from sink.failure
        counters, latencies = self._outcomes.drain()
        self.counters.update(counters)
        if self._latency_sink == DISCORD:
            for received_at, delivered_at in latencies:
                self.observe(Names.NOTIFIER, received_at, delivered_at)
        self._discord.refill()
        now = self._clock()
        with self._ledger.use() as ledger:
            if ledger is not None:
                try:
                    self._own.extend(self._announcer.tick(ledger, now))
                except StorageUnavailableError as error:
                    logger.warning("notifier: could not record a sign of life: %s", error)
        self._claim_own()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._prune()

    def _resume_console(self) -> None:
        """Print the console entries a previous run claimed but did not print."""
        if self._console is None:
            return
        while True:
            with self._ledger.held() as ledger:
                entries = ledger.pending(_RESUME_CHUNK, routes={CONSOLE})
            self._write_console([(entry, None) for entry in entries])
            if len(entries) < _RESUME_CHUNK:
                return

    def _prune(self) -> None:
        now = self._clock()
        self._last_prune = now
        with self._ledger.use() as ledger:
            if ledger is not None:
                pruned = ledger.prune(now - self._settings.keep_s)
                if pruned:
                    self.counters["pruned"] += pruned

    # -- reporting ------------------------------------------------------------------

    def report_gauges(self) -> Mapping[str, float]:
        sink = self._discord.sink
        stopped = sink is None and self._discord.start_error is not None
        gauges: dict[str, float] = {
            "sink_stopped": 1.0 if stopped or (sink is not None and sink.error) else 0.0,
            "routes_stopped": float(len(sink.halted)) if sink is not None else 0.0,
        }
        with self._ledger.use() as ledger:
            if ledger is not None:
                gauges["pending"] = ledger.statistics().pending
        if sink is not None:
            queue = sink.queue.statistics()
            gauges["send_queue"] = queue.waiting + queue.in_flight
            gauges["send_queue_capacity"] = queue.capacity
            gauges["in_flight"] = queue.in_flight
        return gauges

    def status(self) -> Mapping[str, Any]:
        statistics = None
        with self._ledger.use() as ledger:
            if ledger is not None:
                statistics = ledger.statistics()
        sinks: dict[str, Any] = {}
        if self._console is not None:
            sinks[CONSOLE] = {"state": "running", "colour": self._console.colour}
        mode = self._settings.notify.discord.mode
        sink = self._discord.sink
        if DISCORD in self._sinks:
            sinks[DISCORD] = discord_status(sink, mode, self._discord.start_error)
        watch = self._announcer.statistics()
        return {
            "sent": 0 if statistics is None else statistics.sent,
            "failed": 0 if statistics is None else statistics.failed,
            "pending": 0 if statistics is None else statistics.pending,
            "queue": queue_status(sink, backlog=self._discord.backlog),
            "sinks": sinks,
            "routes": route_status(
                self._settings.routes,
                self._settings.notify.discord,
                statistics,
                sink,
                enabled=DISCORD in self._sinks,
                sink_error=self._discord.start_error,
                last_pings=self._planner.pings.last(),
            ),
            "unrouted": dict(self._unrouted),
            "status_messages": {
                "catching_up": watch.open_windows,
                "sent": watch.reported,
                "waiting": len(self._own),
            },
            "error": self._discord.error(),
            "tracked": self._view is not None,
            "static_info": {
                "known": self._static.known,
                "waits": self._static.waits,
                "timeouts": self._static.timeouts,
            },
        }


def child_spec(
    config: Config,
    *,
    discord: DiscordConfig | None = None,
    stdout: TextIO | None = None,
    ledger_database: Path | None = None,
    announce: bool = True,
) -> ChildSpec:
    """The ``notifier`` child of the ``pipeline`` supervisor.

    Args:
        config: the whole configuration.
        discord: replaces ``[notify.discord]``, e.g. to point ``api_base`` (and
            the bot token, or ``webhook_url``) at the simulator's Discord fake.
        stdout: the console sink's stream (``sys.stdout`` by default).
        ledger_database: the database holding the ledger, when it is not the
            journal's (``replay --notify`` uses the live ledger).
        announce: say when the program started (a status message); off for a
            replay. The start is now: the spec is made once per process.
    """
    settings = NotifierSettings.from_config(config, discord=discord)
    if ledger_database is not None:
        settings = dataclasses.replace(settings, database=ledger_database)
    start = ProcessStart(time.time()) if announce else None
    return ChildSpec(
        name=Names.NOTIFIER,
        start=lambda ctx: NotifierActor.start(ctx, settings, stdout=stdout, start=start),
        mailbox=MailboxSpec(config.mailbox.notifier),
        shutdown_s=config.supervision.shutdown_timeout_s + settings.stop_timeout_s,
    )
