"""The ``notifier`` actor: decide, claim in the ledger, answer, then deliver.

On :class:`~actors.protocol.Handle` (asked by the router with committed
events) it decides each event against the latest tracked view (the immutable
snapshot of the last :class:`~actors.protocol.TrackingChanged`) and the
configuration (``[filters] max_kill_age_s``, ``[notify.kills]``,
``[notify.map]``). For every notification and every configured sink it claims
``{notification key}@{sink}`` in the :class:`~realtime.ledger.Ledger`, with the
rendered body, in one transaction; only then does it answer. A key already in
the ledger (a redelivery, a preload replay after a reconnect, the same kill as
a map's ``map_kill``) is never claimed twice, so it is never posted twice.

Delivery, per sink:

- **console**: one readable line per notification on stdout (ANSI colour only
  when stdout is a terminal), written right after the claims (before the
  answer: the entries are already on disk) and marked sent at once.
- **discord**: a bounded :class:`SendQueue` (``[notify.discord] send_queue``)
  served by ``concurrency`` worker threads the actor owns, so one slow answer
  holds up one worker, and the actor never waits on HTTP. Each worker makes one
  attempt at a time through :class:`~actors.discord_http.DiscordSender`
  (rate limits learned and respected before sending) and follows
  :class:`~actors.discord_http.RetryPlan` (429s after their ``retry_after``,
  5xx, timeouts and resets with capped jittered backoff). An entry is marked
  sent only once Discord confirmed it; a 401, 403 or 404 stops the sink, logs
  an error, counts ``sink_stopped`` and shows in ``status()["error"]``, and
  leaves the unsent entries pending for the next start.

Messages may reach the channel out of claim order: several workers send at
once, an entry that backs off lets the next ones pass, and among the entries
due the most urgent (the event's flow priority) goes first, so that a critical
notification does not wait behind a preload's low ones while Discord is the
bottleneck. Entries beyond the send queue wait in the ledger in claim order.

In **bot** mode every attempt of an entry carries the entry's nonce with
``enforce_nonce``: a retry after a timeout, or after a crash (pending entries
are resumed at start with the same nonce and the stored body), returns the
message Discord already created instead of a second one, provided the retry
comes within Discord's nonce window (a few minutes): an entry resumed after a
longer outage may still be posted twice. In **webhook** mode
there is no nonce: delivery is at least once, and a retry after an answer that
was lost (a timeout, a reset after the message was created, a crash while a
request was in flight) posts the message again.

The send queue holds at most ``send_queue`` entries (waiting, backing off or
in flight). When it is full, claimed entries simply stay pending in the ledger,
which is the backlog on disk, and are moved into the queue as room appears.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import heapq
import itertools
import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable

import orjson
import pykka

from actors.base import ReportingActor
from actors.discord_http import (
    Deferred,
    DiscordSender,
    Done,
    GiveUp,
    RetryPlan,
    RetryState,
    SendAgain,
    StopSink,
)
from actors.protocol import GetTracking, Handle, Names, Refused, TrackingChanged
from realtime.config import Config, DiscordConfig, NotifyConfig
from realtime.event import Event, Priority
from realtime.flow import TrackedView
from realtime.keys import KILLMAIL_TYPES
from realtime.ledger import Claim, Ledger, LedgerEntry
from realtime.notifications import Decision, Notification, kill_notification, map_notification
from realtime.render import console_lines, message_payload
from realtime.storage import DATABASE_FILE, StorageUnavailableError
from realtime.tracking import TrackedLookup
from supervision import (
    ActorContext,
    ActorUnavailableError,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
)

logger = logging.getLogger(__name__)

CONSOLE = "console"
DISCORD = "discord"

MAX_LATENCY_SAMPLES = 2048
"""Delivery latencies kept between two drains by the actor (the newest win)."""

PRUNE_EVERY_S = 3600.0
"""How often sent and failed ledger entries past their keep time are deleted."""

_RESUME_CHUNK = 1000


def ledger_key(notification_key: str, sink: str) -> str:
    """The ledger key of a notification on a sink: ``kill:123@discord``."""
    return f"{notification_key}@{sink}"


# -- The tracked view ----------------------------------------------------------


@runtime_checkable
class _Named(Protocol):
    def system_name(self, system_id: int) -> str | None: ...

    def character_name(self, character_id: int) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _Nameless:
    """A view that knows what is tracked but no names (names then come from events)."""

    view: TrackedView

    def is_tracked_system(self, system_id: int) -> bool:
        return self.view.is_tracked_system(system_id)

    def is_tracked_character(self, character_id: int) -> bool:
        return self.view.is_tracked_character(character_id)

    def system_name(self, system_id: int) -> str | None:
        return None

    def character_name(self, character_id: int) -> str | None:
        return None


def _lookup(view: TrackedView) -> TrackedLookup:
    """``view`` with names (a :class:`TrackedSnapshot` has them; any other view gets none)."""
    if isinstance(view, _Named):
        return view
    return _Nameless(view)


class TrackingUnavailableError(RuntimeError):
    """The notifier has no tracked view and the tracking actor does not answer: retry later."""


# -- The send queue --------------------------------------------------------------


@dataclass(slots=True)
class Delivery:
    """One ledger entry on its way to Discord.

    Attributes:
        key: the ledger key.
        nonce: the entry's nonce (the same for every attempt, in every process).
        body: the message body stored at claim time.
        received_at: the event's ``received_at`` (``None`` for a resumed entry,
            whose socket read happened in an earlier run).
        priority: the event's priority from flow control; among deliveries
            due, the most urgent is sent first (a resumed entry's is unknown:
            normal).
        retry: attempts and failures so far (this run).
    """

    key: str
    nonce: str
    body: Mapping[str, Any]
    received_at: int | None
    priority: Priority = Priority.NORMAL
    retry: RetryState = field(default_factory=RetryState)


@dataclass(frozen=True, slots=True)
class SendQueueStats:
    """How full a :class:`SendQueue` is.

    Attributes:
        waiting: deliveries waiting for their due time (new ones and retries).
        in_flight: deliveries taken by a worker and not given back yet.
        capacity: the bound on ``waiting + in_flight``.
        high_water: the largest ``waiting + in_flight`` seen.
        refused: offers refused because the queue was full.
        closed: the queue no longer hands out deliveries.
    """

    waiting: int
    in_flight: int
    capacity: int
    high_water: int
    refused: int
    closed: bool


class SendQueue:
    """Deliveries waiting to be sent, each at its due time; bounded and thread-safe.

    A delivery is *held* from :meth:`offer` until :meth:`done`, whether it is
    waiting or taken by a worker; at most ``capacity`` are held, and a key is
    held at most once. New deliveries are due at once, retries after their
    delay. :meth:`take` hands out the most urgent due delivery (by
    :attr:`Delivery.priority`; equal priorities in the order they fell due,
    so in offer order for new ones) and blocks until one is due: when Discord
    is the bottleneck, a critical notification passes the low ones queued
    before it. :meth:`again` puts a taken delivery back with a delay; it
    always fits, as the delivery is still held.
    """

    def __init__(self, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            msg = f"send queue capacity must be at least 1, got {capacity}"
            raise ValueError(msg)
        self._capacity = capacity
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._due: list[tuple[Priority, int, Delivery]] = []
        self._later: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._held: set[str] = set()
        self._in_flight = 0
        self._high_water = 0
        self._refused = 0
        self._closed = False

    def offer(self, delivery: Delivery) -> bool:
        """Hold ``delivery``, due now; ``False`` if full, closed, or its key is already held."""
        with self._cond:
            if self._closed or delivery.key in self._held:
                return False
            if len(self._held) >= self._capacity:
                self._refused += 1
                return False
            self._held.add(delivery.key)
            self._high_water = max(self._high_water, len(self._held))
            self._push(delivery, 0.0)
            return True

    def room(self) -> int:
        """How many more deliveries :meth:`offer` would accept now."""
        with self._cond:
            return 0 if self._closed else self._capacity - len(self._held)

    def held(self) -> int:
        with self._cond:
            return len(self._held)

    def _push(self, delivery: Delivery, delay_s: float) -> None:
        if delay_s <= 0:
            heapq.heappush(self._due, (delivery.priority, next(self._order), delivery))
        else:
            heapq.heappush(self._later, (self._clock() + delay_s, next(self._order), delivery))
        self._cond.notify()

    def _promote(self) -> float | None:
        """Move the retries whose time came to the due heap; seconds until the next one."""
        later, now = self._later, self._clock()
        while later and later[0][0] <= now:
            _, _, delivery = heapq.heappop(later)
            heapq.heappush(self._due, (delivery.priority, next(self._order), delivery))
        return later[0][0] - now if later else None

    def take(self) -> Delivery | None:
        """The most urgent due delivery, blocking until there is one; ``None`` once closed."""
        with self._cond:
            while not self._closed:
                wait_s = self._promote()
                if self._due:
                    _, _, delivery = heapq.heappop(self._due)
                    self._in_flight += 1
                    return delivery
                self._cond.wait(wait_s)
            return None

    def again(self, delivery: Delivery, delay_s: float) -> None:
        """Put back a taken ``delivery``, due in ``delay_s``; forget it if the queue closed."""
        with self._cond:
            self._in_flight -= 1
            if self._closed:
                self._held.discard(delivery.key)
                return
            self._push(delivery, max(0.0, delay_s))

    def done(self, delivery: Delivery) -> None:
        """Release a taken ``delivery`` for good."""
        with self._cond:
            self._in_flight -= 1
            self._held.discard(delivery.key)

    def close(self) -> None:
        """Stop handing out deliveries: waiting ones are forgotten, workers wake up."""
        with self._cond:
            self._closed = True
            for _, _, delivery in (*self._due, *self._later):
                self._held.discard(delivery.key)
            self._due.clear()
            self._later.clear()
            self._cond.notify_all()

    def statistics(self) -> SendQueueStats:
        with self._cond:
            return SendQueueStats(
                waiting=len(self._due) + len(self._later),
                in_flight=self._in_flight,
                capacity=self._capacity,
                high_water=self._high_water,
                refused=self._refused,
                closed=self._closed,
            )


# -- Shared state between the actor and its workers ------------------------------


class SharedLedger:
    """The actor's :class:`Ledger`, used by the actor and its worker threads in turn.

    Once :meth:`close` ran, :meth:`use` yields ``None``: a worker whose answer
    comes back after the actor stopped records nothing, and the entry stays
    pending for the next start (which resumes it with the same nonce).
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger: Ledger | None = ledger
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def use(self) -> Iterator[Ledger | None]:
        """The ledger, held for the duration of the ``with`` block; ``None`` once closed."""
        with self._lock:
            yield self._ledger

    def close(self) -> None:
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None


class Outcomes:
    """What the workers did since the actor last looked: counters and latencies.

    Thread-safe; the actor drains it on its tick into its own counters, so
    that reporting stays in the actor's thread. Latency samples are bounded
    (the newest :data:`MAX_LATENCY_SAMPLES` are kept).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: collections.Counter[str] = collections.Counter()
        self._received: collections.deque[int] = collections.deque(maxlen=MAX_LATENCY_SAMPLES)
        self._delivered_ns: collections.deque[int] = collections.deque(maxlen=MAX_LATENCY_SAMPLES)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def delivered(self, received_at: int | None) -> None:
        now_ns = time.monotonic_ns()
        with self._lock:
            self._counters["sent_discord"] += 1
            if received_at is not None:
                self._received.append(received_at)
                self._delivered_ns.append(now_ns)

    def drain(self) -> tuple[collections.Counter[str], list[tuple[int, int]]]:
        """The counters and ``(received_at, delivered_at)`` pairs since the last drain."""
        with self._lock:
            counters, self._counters = self._counters, collections.Counter()
            pairs = list(zip(self._received, self._delivered_ns, strict=True))
            self._received.clear()
            self._delivered_ns.clear()
        return counters, pairs


# -- The Discord sink ---------------------------------------------------------------


class DiscordSink:
    """Worker threads that send the queue's deliveries and record the outcome.

    State: ``running`` until a 401/403/404 (or a configuration it cannot use)
    stops it: then ``stopped`` with :attr:`error`; the queue is closed and the
    unsent entries stay pending. :attr:`failure` is set if a worker hit a bug;
    the actor then crashes so that its supervisor restarts it.
    """

    def __init__(
        self,
        sender: DiscordSender,
        plan: RetryPlan,
        queue: SendQueue,
        ledger: SharedLedger,
        outcomes: Outcomes,
        *,
        workers: int,
        seed: int | None = None,
    ) -> None:
        self.sender = sender
        self.queue = queue
        self._plan = plan
        self._ledger = ledger
        self._outcomes = outcomes
        self._lock = threading.Lock()
        self.error: str | None = None
        self.failure: BaseException | None = None
        seeds = random.Random(seed)
        self._threads = [
            threading.Thread(
                target=self._work,
                args=(random.Random(seeds.random()),),
                name=f"notifier-discord-{index}",
                daemon=True,
            )
            for index in range(max(1, workers))
        ]

    @property
    def state(self) -> str:
        return "running" if self.error is None else "stopped"

    @property
    def workers(self) -> int:
        return len(self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float) -> list[str]:
        """Close the queue and wait up to ``timeout_s`` in all for the workers to finish.

        Returns the names of workers still busy (an answer outstanding); they
        finish on their own, and record nothing once the ledger is closed.
        """
        self.queue.close()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        return [thread.name for thread in self._threads if thread.is_alive()]

    def halt(self, reason: str) -> None:
        """Stop sending for good (this run): remember why and close the queue."""
        with self._lock:
            if self.error is not None:
                return
            self.error = reason
        self.queue.close()
        self._outcomes.count("sink_stopped")
        logger.error("notifier: the Discord sink stopped: %s", reason)

    def _work(self, rand: random.Random) -> None:
        try:
            while (delivery := self.queue.take()) is not None:
                self._attempt(delivery, rand)
        except Exception as error:
            self.failure = error
            logger.exception("notifier: a Discord worker failed")
            self.queue.close()

    def _attempt(self, delivery: Delivery, rand: random.Random) -> None:
        result = self.sender.send(delivery.body, delivery.nonce)
        decision, delivery.retry = self._plan.decide(delivery.retry, result, rand.random)
        if isinstance(decision, Done):
            with self._ledger.use() as ledger:
                if ledger is not None:
                    ledger.mark_sent(delivery.key, decision.message_id)
            self._outcomes.delivered(delivery.received_at)
            self.queue.done(delivery)
        elif isinstance(decision, SendAgain):
            if not isinstance(result, Deferred):
                # an HTTP attempt was made and failed: count it on the entry
                self._outcomes.count("retries")
                with self._ledger.use() as ledger:
                    if ledger is not None:
                        ledger.mark_attempt(delivery.key, str(result))
            self.queue.again(delivery, max(decision.after_s, self.sender.wait_s()))
        elif isinstance(decision, GiveUp):
            with self._ledger.use() as ledger:
                if ledger is not None:
                    ledger.mark_failed(delivery.key, decision.reason)
            self._outcomes.count("failed_discord")
            logger.warning("notifier: gave up on %s: %s", delivery.key, decision.reason)
            self.queue.done(delivery)
        else:
            assert isinstance(decision, StopSink)
            self.queue.done(delivery)
            self.halt(f"Discord answered {decision.status}: {decision.reason}")


# -- The console sink ----------------------------------------------------------------


class ConsoleSink:
    """Writes one line per notification to a text stream (stdout by default).

    Colour (ANSI) only when the stream is a terminal. Lines are stored in the
    ledger payload in both forms, so that a resumed entry prints the same line.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        isatty = getattr(stream, "isatty", None)
        self.colour = bool(isatty()) if callable(isatty) else False

    @staticmethod
    def payload(notification: Notification) -> bytes:
        plain, colour = console_lines(notification)
        return orjson.dumps({"plain": plain, "colour": colour})

    def write(self, payload: bytes) -> bool:
        """Write the line stored in ``payload``; ``False`` if it holds no line.

        The line may stay in the stream's buffer until :meth:`flush`.

        Raises:
            OSError: the stream is closed or broken.
        """
        try:
            lines = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        line = lines.get("colour" if self.colour else "plain") if isinstance(lines, dict) else None
        if not isinstance(line, str):
            return False
        self._stream.write(line + "\n")
        return True

    def flush(self) -> None:
        """Push the written lines out (one system call for a batch, not one per line).

        Raises:
            OSError: the stream is closed or broken.
        """
        self._stream.flush()


# -- The actor ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    """What the notifier needs from the configuration.

    Attributes:
        database: the journal's SQLite file, which holds the ledger.
        notify: ``[notify]`` (sinks, Discord, kill and map switches).
        max_kill_age_s: ``[filters] max_kill_age_s``.
        keep_s: how long sent and failed ledger entries are kept (then pruned).
        tick_s: how often the actor looks at its workers' outcomes and backlog.
        stop_timeout_s: how long a stop waits for workers with an answer outstanding.
        tracking_timeout_s: how long to wait for tracking's answer to ``GetTracking``.
    """

    database: Path
    notify: NotifyConfig
    max_kill_age_s: float
    keep_s: float
    tick_s: float = 0.2
    stop_timeout_s: float = 2.0
    tracking_timeout_s: float = 2.0

    @classmethod
    def from_config(
        cls, config: Config, *, discord: DiscordConfig | None = None
    ) -> NotifierSettings:
        """Settings from ``config``; ``discord`` replaces ``[notify.discord]`` (simulator)."""
        notify = (
            config.notify
            if discord is None
            else dataclasses.replace(config.notify, discord=discord)
        )
        max_age = config.filters.max_kill_age_s
        return cls(
            database=config.data_path / DATABASE_FILE,
            notify=notify,
            max_kill_age_s=max_age,
            keep_s=max(config.journal.retention_days * 86400.0, 2 * max_age),
        )


class _Tick:
    """Timer message: drain outcomes, refill the queue from the ledger, prune."""

    __slots__ = ()


_TICK = _Tick()


class NotifierActor(ReportingActor):
    """Decides, claims and delivers notifications; see the module docstring.

    Args:
        ctx: from the supervisor.
        settings: see :class:`NotifierSettings`.
        stdout: the console sink's stream (``sys.stdout`` when ``None``).
        clock: wall-clock Unix seconds, for kill ages and the ledger.
        seed: seeds the workers' retry jitter (``None``: unpredictable).
    """

    def __init__(
        self,
        ctx: ActorContext,
        settings: NotifierSettings,
        *,
        stdout: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        super().__init__(ctx)
        self._settings = settings
        self._stdout = stdout
        self._clock = clock
        self._seed = seed
        self._sinks: tuple[str, ...] = tuple(dict.fromkeys(settings.notify.sinks))
        self._view: TrackedLookup | None = None
        self._ledger: SharedLedger | None = None
        self._console: ConsoleSink | None = None
        self._discord: DiscordSink | None = None
        self._discord_error: str | None = None
        self._outcomes = Outcomes()
        self._backlog = False
        self._last_prune = -float("inf")
        self._latency_sink = DISCORD if DISCORD in self._sinks else CONSOLE

    # -- lifecycle ------------------------------------------------------------

    def on_start(self) -> None:
        super().on_start()
        self._settings.database.parent.mkdir(parents=True, exist_ok=True)
        self._ledger = SharedLedger(Ledger.open(self._settings.database, clock=self._clock))
        if CONSOLE in self._sinks:
            self._console = ConsoleSink(self._stdout or sys.stdout)
        if DISCORD in self._sinks:
            self._start_discord()
        self._fetch_view()
        self._prune()
        self._resume_console()
        self._backlog = True
        self._refill()
        self.timers.send_interval(self._settings.tick_s, _TICK)

    def _start_discord(self) -> None:
        config = self._settings.notify.discord
        assert self._ledger is not None
        try:
            sender = DiscordSender(config)
        except ValueError as error:
            # a configuration the sink cannot use: alert, keep claiming (the
            # entries wait in the ledger for a start with a usable one)
            self._discord_error = str(error)
            self.counters["sink_stopped"] += 1
            logger.error("notifier: the Discord sink cannot start: %s", error)
            return
        self._discord = DiscordSink(
            sender,
            RetryPlan.from_config(config),
            SendQueue(config.send_queue),
            self._ledger,
            self._outcomes,
            workers=config.concurrency,
            seed=self._seed,
        )
        self._discord.start()

    def on_exit(self) -> None:
        if self._discord is not None:
            busy = self._discord.stop(self._settings.stop_timeout_s)
            if busy:
                logger.warning("notifier: stopped with answers outstanding: %s", ", ".join(busy))
            self._discord.sender.close()
        if self._ledger is not None:
            self._ledger.close()

    # -- messages ----------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Handle):
            return self._handle(message.events)
        if isinstance(message, TrackingChanged):
            self._view = _lookup(message.view)
            return None
        if isinstance(message, _Tick):
            self._tick()
            return None
        return super().on_receive(message)

    def _fetch_view(self) -> None:
        try:
            answer = self.registry.ask(
                Names.TRACKING, GetTracking(), timeout_s=self._settings.tracking_timeout_s
            )
        except (ActorUnavailableError, MailboxFullError, pykka.Timeout) as error:
            logger.info("notifier: no tracked view from tracking yet: %s", error)
            return
        if isinstance(answer, TrackingChanged):
            self._view = _lookup(answer.view)

    def _require_view(self) -> TrackedLookup:
        if self._view is None:
            self._fetch_view()
        if self._view is None:
            msg = "no tracked view: the tracking actor has not answered yet"
            raise TrackingUnavailableError(msg)
        return self._view

    def _handle(self, events: Sequence[Event]) -> int | Refused:
        """Decide and claim; how many entries were newly claimed, or Refused for "not now"."""
        try:
            view = self._require_view()
        except TrackingUnavailableError as error:
            return Refused(f"notifier: {error}")
        now = self._clock()
        planned: list[tuple[Claim, Event]] = []
        for event in events:
            self.counters["events"] += 1
            notification = self._decide(event, view, now)
            if notification is None:
                continue
            self.counters["notifications"] += 1
            for sink in self._sinks:
                payload = (
                    ConsoleSink.payload(notification)
                    if sink == CONSOLE
                    else orjson.dumps(message_payload(notification))
                )
                key = ledger_key(notification.key, sink)
                planned.append((Claim(key, event.seq, sink, payload), event))
        assert self._ledger is not None
        with self._ledger.use() as ledger:
            assert ledger is not None, "the ledger is open while the actor runs"
            try:
                entries = ledger.claim_many([claim for claim, _ in planned])
            except StorageUnavailableError as error:
                self.counters["ledger_errors"] += 1
                return Refused(f"notifier: the ledger cannot be written: {error}")
        claimed = 0
        console: list[tuple[LedgerEntry, int | None]] = []
        for (_, event), entry in zip(planned, entries, strict=True):
            if entry is None:
                self.counters["already_claimed"] += 1
                continue
            claimed += 1
            if entry.channel == CONSOLE:
                console.append((entry, event.received_at))
            elif entry.channel == DISCORD:
                self._offer(entry, event.received_at, event.priority)
        self._write_console(console)
        self._refill()
        return claimed

    def _decide(self, event: Event, view: TrackedLookup, now: float) -> Notification | None:
        notify = self._settings.notify
        if event.type in KILLMAIL_TYPES:
            result = kill_notification(
                event, view, notify.kills, self._settings.max_kill_age_s, now
            )
            if isinstance(result, Decision):
                self.counters[f"skipped_{result.reason}"] += 1
                return None
            return result
        notification = map_notification(event, view, notify.map)
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
        assert self._ledger is not None
        with self._ledger.use() as ledger:
            if ledger is not None:
                ledger.mark_sent_many([entry.key for entry, _ in printed])
        self.counters["sent_console"] += len(printed)

    def _mark_failed(self, entry: LedgerEntry, sink: str, reason: str) -> None:
        assert self._ledger is not None
        with self._ledger.use() as ledger:
            if ledger is not None:
                ledger.mark_failed(entry.key, reason)
        self.counters[f"failed_{sink}"] += 1
        logger.warning("notifier: %s failed: %s", entry.key, reason)

    def _offer(self, entry: LedgerEntry, received_at: int | None, priority: Priority) -> None:
        """Queue a new Discord entry, unless older ones wait in the ledger or it does not fit.

        An entry not queued stays pending in the ledger; :meth:`_refill` queues
        it, in claim order, once there is room.
        """
        sink = self._discord
        if self._backlog or sink is None or sink.error is not None:
            return
        body = _body(entry)
        if body is None:
            self._mark_failed(entry, DISCORD, "the stored message body is unreadable")
        elif not sink.queue.offer(Delivery(entry.key, entry.nonce, body, received_at, priority)):
            self._backlog = True

    # -- periodic work --------------------------------------------------------------

    def _tick(self) -> None:
        if self._discord is not None and self._discord.failure is not None:
            msg = "a Discord worker failed"
            raise RuntimeError(msg) from self._discord.failure
        counters, latencies = self._outcomes.drain()
        self.counters.update(counters)
        if self._latency_sink == DISCORD:
            for received_at, delivered_at in latencies:
                self.observe(Names.NOTIFIER, received_at, delivered_at)
        self._refill()
        if self._clock() - self._last_prune >= PRUNE_EVERY_S:
            self._prune()

    def _refill(self) -> None:
        """Move pending Discord entries from the ledger into the send queue while it has room.

        Reads and offers under the ledger's lock, so that an entry a worker is
        finishing (marked sent, not yet released from the queue) is either no
        longer pending or still held: it is never queued twice.
        """
        sink = self._discord
        if not self._backlog or sink is None or sink.error is not None:
            return
        assert self._ledger is not None
        with self._ledger.use() as ledger:
            if ledger is None:
                return
            room = sink.queue.room()
            if room == 0:
                return
            limit = sink.queue.held() + room
            entries = ledger.pending(limit, channel=DISCORD)
            refused = False
            for entry in entries:
                if sink.queue.room() == 0:
                    refused = True
                    break
                body = _body(entry)
                if body is None:
                    ledger.mark_failed(entry.key, "the stored message body is unreadable")
                    self.counters["failed_discord"] += 1
                    continue
                sink.queue.offer(Delivery(entry.key, entry.nonce, body, None))
        self._backlog = refused or len(entries) == limit

    def _resume_console(self) -> None:
        """Print the console entries a previous run claimed but did not print."""
        if self._console is None:
            return
        assert self._ledger is not None
        while True:
            with self._ledger.use() as ledger:
                assert ledger is not None
                entries = ledger.pending(_RESUME_CHUNK, channel=CONSOLE)
            self._write_console([(entry, None) for entry in entries])
            if len(entries) < _RESUME_CHUNK:
                return

    def _prune(self) -> None:
        now = self._clock()
        self._last_prune = now
        assert self._ledger is not None
        with self._ledger.use() as ledger:
            if ledger is not None:
                pruned = ledger.prune(now - self._settings.keep_s)
                if pruned:
                    self.counters["pruned"] += pruned

    # -- reporting ------------------------------------------------------------------

    def _error(self) -> str | None:
        if self._discord is not None and self._discord.error is not None:
            return self._discord.error
        return self._discord_error

    def report_gauges(self) -> Mapping[str, float]:
        gauges: dict[str, float] = {"sink_stopped": 1.0 if self._error() else 0.0}
        if self._ledger is not None:
            with self._ledger.use() as ledger:
                if ledger is not None:
                    gauges["pending"] = ledger.statistics().pending
        if self._discord is not None:
            queue = self._discord.queue.statistics()
            gauges["send_queue"] = queue.waiting + queue.in_flight
            gauges["send_queue_capacity"] = queue.capacity
            gauges["in_flight"] = queue.in_flight
        return gauges

    def status(self) -> Mapping[str, Any]:
        sent = failed = pending = 0
        if self._ledger is not None:
            with self._ledger.use() as ledger:
                if ledger is not None:
                    statistics = ledger.statistics()
                    sent, failed, pending = statistics.sent, statistics.failed, statistics.pending
        queue: dict[str, Any] = {"backlog": self._backlog}
        sinks: dict[str, Any] = {}
        if self._console is not None:
            sinks[CONSOLE] = {"state": "running", "colour": self._console.colour}
        if DISCORD in self._sinks:
            sinks[DISCORD] = self._discord_status(queue)
        return {
            "sent": sent,
            "failed": failed,
            "pending": pending,
            "queue": queue,
            "sinks": sinks,
            "error": self._error(),
            "tracked": self._view is not None,
        }

    def _discord_status(self, queue: dict[str, Any]) -> dict[str, Any]:
        mode = self._settings.notify.discord.mode
        sink = self._discord
        if sink is None:
            return {"state": "stopped", "mode": mode, "error": self._discord_error}
        statistics = sink.queue.statistics()
        queue.update(dataclasses.asdict(statistics))
        sender = sink.sender.statistics()
        limits = sender.limits
        return {
            "state": sink.state,
            "mode": mode,
            "error": sink.error,
            "workers": sink.workers,
            "requests": sender.requests,
            "outcomes": dict(sender.outcomes),
            "rate_limits": {
                "buckets": limits.buckets,
                "exhausted_buckets": limits.exhausted_buckets,
                "global_blocked_s": limits.global_blocked_s,
                "rate_limited": limits.rate_limited,
                "rate_limited_global": limits.rate_limited_global,
                "invalid_in_window": limits.invalid_in_window,
            },
        }


def _body(entry: LedgerEntry) -> dict[str, Any] | None:
    try:
        body = orjson.loads(entry.payload)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def child_spec(
    config: Config,
    *,
    discord: DiscordConfig | None = None,
    stdout: TextIO | None = None,
    ledger_database: Path | None = None,
) -> ChildSpec:
    """The ``notifier`` child of the ``pipeline`` supervisor.

    Args:
        config: the whole configuration.
        discord: replaces ``[notify.discord]``, e.g. to point ``api_base`` (and
            the bot token, or ``webhook_url``) at the simulator's Discord fake.
        stdout: the console sink's stream (``sys.stdout`` by default).
        ledger_database: the database holding the ledger, when it is not the
            journal's (``replay --notify`` uses the live ledger).
    """
    settings = NotifierSettings.from_config(config, discord=discord)
    if ledger_database is not None:
        settings = dataclasses.replace(settings, database=ledger_database)
    return ChildSpec(
        name=Names.NOTIFIER,
        start=lambda ctx: NotifierActor.start(ctx, settings, stdout=stdout),
        mailbox=MailboxSpec(config.mailbox.notifier),
        shutdown_s=config.supervision.shutdown_timeout_s + settings.stop_timeout_s,
    )
