"""The ``map:{slug}`` actors: one Wanderer map's events over Server-Sent Events.

One reader thread per connection attempt, owned by the actor, does every
blocking step in order and hands off the results:

1. asks the journal for the map's committed cursor
   (:class:`~actors.protocol.GetCursor`), so that a reconnection resumes
   exactly after what is safely journaled;
2. when a resync is due (at start, and after a disconnection longer than
   ``backfill_window_s``, the server's backfill), fetches the map's systems
   and tracked characters over REST and hands them to the actor, which sends
   :class:`~actors.protocol.Bootstrap` to ``tracking``;
3. opens the stream with ``requests`` (``stream=True``; connect and read
   timeouts), sending the cursor both as the ``last_event_id`` query
   parameter (the only one the server reads) and as ``Last-Event-ID``;
4. reads raw chunks as they arrive into a :class:`~realtime.sse.SseParser`
   (events split across chunks and several per chunk are both normal),
   decodes them with :func:`~realtime.map_events.decode_map_event` and sends
   each chunk's events and rejects to the journal as one
   :class:`~actors.protocol.Ingest` carrying the new :class:`Cursor`, so
   that the resume point is committed with the events it covers.

A :class:`~actors.connection.SourceConnection` with SSE plugged in. The
actor owns time and decisions:

- a keepalive watchdog: nothing parsed (events or ``:`` comments) for
  ``keepalive_timeout_s`` closes the connection (the read timeout is the
  same, as a second line of defence);
- the backoff is reset only once a 200 with ``text/event-stream`` *and* the
  ``connected`` event arrived (the Elixir client reset it before looking at
  the status and retried a failing server every second);
- 401, 403 and 404 are configuration problems: logged with what to fix,
  health ``failed``, retried every ``config_error_retry_s``; 429 and 5xx back
  off longer (at least the server's ``Retry-After``), network errors use the
  reconnect policy (full jitter behind a circuit breaker);
- the health of the connection (:class:`~realtime.health.ConnectionHealth`,
  kind ``sse``), reported by :meth:`MapSource.status`.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final

import pykka
import requests
import urllib3

from actors.connection import (
    SUPERSEDED,
    ConnectionMessage,
    Ended,
    Phase,
    ReaderThread,
    SourceConnection,
    describe,
)
from actors.protocol import Bootstrap, GetCursor, Ingest, Names
from actors.source_support import IngestGate, RejectLog
from realtime.circuit import CircuitBreaker, ReconnectPolicy
from realtime.config import Config, MapConfig
from realtime.event import Cursor, Event, Reject, map_source
from realtime.health import ConnectionHealth
from realtime.keys import Strategy
from realtime.map_events import (
    DEFAULT_MAP_EVENTS,
    DEFAULT_MAX_RAW_BYTES,
    MapControl,
    decode_map_event,
    is_resume_point,
    parse_systems,
    parse_tracked_characters,
    stream_headers,
    stream_url,
)
from realtime.sse import SseComment, SseEvent, SseParser, SseStatistics
from supervision import (
    ActorContext,
    ActorUnavailableError,
    Backoff,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
    Registry,
)

logger = logging.getLogger(__name__)

READ_SIZE: Final = 65_536
"""Most bytes one read takes from the socket; a read returns what has arrived."""

CONFIG_ERRORS: Final = frozenset({401, 403, 404})
_RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
_ERROR_BODY_BYTES: Final = 2048
_CURSOR_ASK_TIMEOUT_S: Final = 5.0
_READ_TIMEOUT_MARGIN_S: Final = 1.0


# -- how an attempt ends, and messages from the reader thread --------------------------


@dataclass(frozen=True, slots=True)
class _JournalSilent(Ended):
    """The journal did not answer the cursor ask: retried soon, not the map's fault."""


@dataclass(frozen=True, slots=True)
class _HttpFailed(Ended):
    """The server answered something else than an event stream: retried by status."""

    status: int | None = None


@dataclass(frozen=True, slots=True)
class _StreamEnded(Ended):
    """An open stream ended; ``at_least_s`` is the stream's ``retry`` field, if it sent one."""


@dataclass(frozen=True, slots=True)
class _Bootstrapped(ConnectionMessage):
    bootstrap: Bootstrap


@dataclass(frozen=True, slots=True)
class _Opened(ConnectionMessage):
    cursor: str | None


@dataclass(frozen=True, slots=True)
class _StreamConnected(ConnectionMessage):
    control: MapControl


@dataclass(slots=True)
class _Shared:
    """What reader threads and the actor share; guarded by ``lock``."""

    lock: threading.Lock
    last_activity_at: float = 0.0
    frames: int = 0
    events: int = 0
    rejects: dict[str, int] = dataclasses.field(default_factory=dict)
    parser: SseStatistics | None = None
    last_event_id: str = ""


@dataclass(frozen=True, slots=True)
class _Settings:
    """What a reader needs, fixed for the actor's lifetime."""

    slug: str
    source: str
    base_url: str
    api_key: str
    events: tuple[str, ...]
    connect_timeout_s: float
    read_timeout_s: float
    strategies: Mapping[str, Strategy]
    default_strategy: Strategy
    max_reject_bytes: int
    max_line_bytes: int
    max_event_bytes: int


# -- the reader thread -----------------------------------------------------------------


class _Reader(ReaderThread):
    """One connection attempt and, if it opens, its stream; see the module docstring."""

    def __init__(
        self,
        owner: pykka.ActorRef[Any],
        generation: int,
        *,
        name: str,
        settings: _Settings,
        bootstrap: bool,
        shared: _Shared,
        registry: Registry,
        gate: IngestGate,
        rejects: RejectLog,
    ) -> None:
        super().__init__(owner, generation, f"{name}-reader-{generation}", gate)
        self._settings = settings
        self._bootstrap = bootstrap
        self._shared = shared
        self._registry = registry
        self._rejects = rejects
        self._connected_id = ""
        self._fresh_start = False

    def run(self) -> Ended:
        with requests.Session() as session:
            try:
                answer = self._registry.ask(
                    Names.JOURNAL, GetCursor(self._settings.source), _CURSOR_ASK_TIMEOUT_S
                )
            except Exception as error:  # noqa: BLE001 -- any failure to answer: ask again later
                return _JournalSilent("journal_unavailable", describe(error))
            cursor = answer if isinstance(answer, str) and answer else None
            if self._bootstrap:
                failed = self._fetch_bootstrap(session)
                if failed is not None:
                    return failed
            return self._stream(session, cursor)

    def reading_resumed(self, paused_at: float, now: float) -> None:
        # The silence the keepalive watchdog measures excludes the pause.
        with self._shared.lock:
            self._shared.last_activity_at = min(
                self._shared.last_activity_at + (now - paused_at), now
            )

    def _fetch_bootstrap(self, session: requests.Session) -> Ended | None:
        """Fetch and hand over the tracked state; how the attempt ended if it failed."""
        settings = self._settings
        base = f"{settings.base_url.rstrip('/')}/api/maps/{settings.slug}"
        headers = stream_headers(settings.api_key, None)
        headers["Accept"] = "application/json"
        documents: list[object] = []
        for endpoint in ("systems", "tracked-characters"):
            try:
                response = session.get(
                    f"{base}/{endpoint}",
                    headers=headers,
                    timeout=(settings.connect_timeout_s, settings.read_timeout_s),
                )
            except requests.RequestException as error:
                return Ended("connection_lost", f"GET {endpoint}: {describe(error)}")
            if response.status_code != 200:
                reason = f"GET {endpoint} answered {response.status_code}: {_excerpt(response)}"
                return _HttpFailed(
                    "http", reason, _retry_after(response), status=response.status_code
                )
            try:
                documents.append(response.json())
            except ValueError as error:
                return _HttpFailed("http", f"GET {endpoint}: not JSON: {error}", status=200)
        try:
            systems = {
                s.solar_system_id: s.name or s.original_name or ""
                for s in parse_systems(documents[0])
            }
            characters = {
                c.eve_id: c.name or "" for c in parse_tracked_characters(documents[1]) if c.tracked
            }
        except ValueError as error:
            return _HttpFailed("http", f"the map's REST answer is malformed: {error}", status=200)
        if not self.post(
            _Bootstrapped(self.generation, Bootstrap(settings.slug, systems, characters))
        ):
            return SUPERSEDED
        return None

    def _stream(self, session: requests.Session, cursor: str | None) -> Ended:
        settings = self._settings
        try:
            response = session.get(
                stream_url(settings.base_url, settings.slug, settings.events, cursor),
                headers=stream_headers(settings.api_key, cursor),
                stream=True,
                timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            )
        except requests.RequestException as error:
            return Ended("connection_lost", describe(error))
        with response:
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200:
                reason = f"the stream request answered {response.status_code}: {_excerpt(response)}"
                return _HttpFailed(
                    "http", reason, _retry_after(response), status=response.status_code
                )
            if content_type.split(";")[0].strip().lower() != "text/event-stream":
                reason = f"the stream request answered 200 with {content_type or 'no'} content type"
                return _HttpFailed("http", reason, status=200)
            connection = getattr(response.raw, "connection", None)
            sock = getattr(connection, "sock", None)
            if not self.hold_socket(sock if isinstance(sock, socket.socket) else None):
                return SUPERSEDED
            if not self.post(_Opened(self.generation, cursor)):
                return SUPERSEDED
            parser = SseParser(
                settings.max_line_bytes,
                max_event_bytes=settings.max_event_bytes,
                last_event_id=cursor or "",
            )
            self._fresh_start = cursor is None
            reason, kind = self._read(response, parser)
            parser.close()
            retry_ms = parser.retry_ms
            return _StreamEnded(kind, reason, None if retry_ms is None else retry_ms / 1000.0)

    def _read(self, response: requests.Response, parser: SseParser) -> tuple[str, str]:
        """Read until the stream ends: why, and the kind of error it is."""
        raw = response.raw
        while True:
            try:
                chunk = raw.read1(READ_SIZE)
            except urllib3.exceptions.ReadTimeoutError:
                silent_s = self._settings.read_timeout_s
                return f"no byte received for {silent_s:g} s", "keepalive_timeout"
            except (urllib3.exceptions.HTTPError, OSError) as error:
                return describe(error), "connection_lost"
            if not chunk:
                return "the server ended the stream", "connection_lost"
            received_ns = time.monotonic_ns()
            items = parser.feed(chunk)
            if not self._handle(items, parser, received_ns):
                return "superseded", "connection_lost"

    def _handle(
        self, items: Sequence[SseEvent | SseComment], parser: SseParser, received_ns: int
    ) -> bool:
        settings = self._settings
        events: list[Event] = []
        rejects: list[Reject] = []
        cursor = ""
        for item in items:
            if isinstance(item, SseComment):
                continue
            decoded = decode_map_event(
                settings.slug,
                item,
                received_ns,
                settings.strategies,
                settings.default_strategy,
                max_raw_bytes=settings.max_reject_bytes,
            )
            if isinstance(decoded, MapControl):
                # Its id is newer than the backfill that follows: never a resume
                # point, except on a stream opened without one (no backfill),
                # where it marks the start: committed at once, a crash before
                # the first event is journaled resumes from there, losing nothing.
                self._connected_id = item.last_event_id
                if self._fresh_start and is_resume_point(item.last_event_id):
                    cursor = item.last_event_id
                if not self.post(_StreamConnected(self.generation, decoded)):
                    return False
                continue
            if isinstance(decoded, Event):
                events.append(decoded)
            else:
                rejects.append(decoded)
                self._rejects.note(decoded)
            if item.last_event_id != self._connected_id and is_resume_point(item.last_event_id):
                cursor = item.last_event_id
        recorded = self._record(
            active=bool(items),
            events=events,
            rejects=rejects,
            parser=parser,
            received_ns=received_ns,
            cursor=cursor,
        )
        if not recorded:
            return False
        if events or rejects or cursor:
            ingest = Ingest(
                settings.source,
                tuple(events),
                tuple(rejects),
                Cursor(settings.source, cursor) if cursor else None,
            )
            return self.deliver(ingest)
        return True

    def _record(
        self,
        *,
        active: bool,
        events: Sequence[Event],
        rejects: Sequence[Reject],
        parser: SseParser,
        received_ns: int,
        cursor: str,
    ) -> bool:
        """Count a read in the shared figures; ``False`` if a newer reader superseded this one."""
        shared = self._shared
        with shared.lock:
            if self.aborted:
                return False
            shared.frames += 1
            if active:
                shared.last_activity_at = received_ns / 1e9
            shared.events += len(events)
            for reject in rejects:
                shared.rejects[reject.reason] = shared.rejects.get(reject.reason, 0) + 1
            shared.parser = parser.statistics()
            if cursor:
                shared.last_event_id = cursor
        return True


def _excerpt(response: requests.Response) -> str:
    """The start of an error answer's body (the server's JSON names the problem)."""
    try:
        body = response.raw.read(_ERROR_BODY_BYTES, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError):
        return "(no body)"
    text = body.decode("utf-8", "replace").strip() if isinstance(body, bytes) else ""
    return text or "(no body)"


def _retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), or ``None``."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


_CONFIG_HINTS: Final = {
    401: "the API key was refused: set [[maps]] api_key for this map (an env:NAME "
    "secret must be set in the environment) to the map's API key",
    403: "server-sent events are disabled for this map: enable them in the map's settings",
    404: "the map was not found: check [[maps]] slug and base_url",
}


# -- the actor -------------------------------------------------------------------------


class MapSource(SourceConnection):
    """The ``map:{slug}`` source actor; see the module docstring.

    Args:
        ctx: from the supervisor.
        map_config: the map's ``[[maps]]`` table.
        strategies, default_strategy: dedup key strategies by event type.
        max_reject_bytes: a reject keeps at most this many bytes of its data.
        journal_wait_max_s: the longest delay between a waiting reader's tries
            to reach a journal whose mailbox is full.
        max_line_bytes, max_event_bytes: the SSE parser's bounds.
        stable_s: how long a live stream must last for its end to reset the
            backoff (it resets only after the ``connected`` event anyway).
        circuit_failures, circuit_open_s: the circuit breaker; open, it marks
            the connection ``failed`` until a probe succeeds.
        journal_retry_s: the wait before asking an unanswering journal again.
        resend_min_s, resend_max_s: the backoff between resends of refused batches.
        rand: the jitter's random source (seed it in tests).
    """

    def __init__(
        self,
        ctx: ActorContext,
        map_config: MapConfig,
        *,
        strategies: Mapping[str, Strategy] | None = None,
        default_strategy: Strategy = "hybrid",
        max_reject_bytes: int = DEFAULT_MAX_RAW_BYTES,
        journal_wait_max_s: float = 0.05,
        max_line_bytes: int = 1_048_576,
        max_event_bytes: int = 4_194_304,
        stable_s: float = 60.0,
        circuit_failures: int = 8,
        circuit_open_s: float | None = None,
        journal_retry_s: float = 1.0,
        resend_min_s: float = 0.5,
        resend_max_s: float = 30.0,
        rand: Callable[[], float] | None = None,
    ) -> None:
        source = map_source(map_config.slug)
        jitter = rand or random.Random().random
        super().__init__(
            ctx,
            log=logger,
            health=ConnectionHealth(
                source,
                "sse",
                now=time.monotonic(),
                silence_timeout_s=map_config.keepalive_timeout_s,
            ),
            policy=ReconnectPolicy(
                Backoff(map_config.reconnect_min_s, map_config.reconnect_max_s, jitter=1.0),
                CircuitBreaker(
                    circuit_failures,
                    map_config.reconnect_max_s if circuit_open_s is None else circuit_open_s,
                ),
                rand=jitter,
                stable_s=stable_s,
            ),
            target=map_config.base_url,
            tick_s=min(1.0, map_config.keepalive_timeout_s / 10),
            journal_wait_max_s=journal_wait_max_s,
            resend_min_s=resend_min_s,
            resend_max_s=resend_max_s,
            rand=jitter,
        )
        self._map = map_config
        self._settings = _Settings(
            slug=map_config.slug,
            source=source,
            base_url=map_config.base_url,
            api_key=map_config.api_key.value,
            events=map_config.events or DEFAULT_MAP_EVENTS,
            connect_timeout_s=map_config.connect_timeout_s,
            # Past the actor's watchdog: a second line of defence if it is late.
            read_timeout_s=map_config.keepalive_timeout_s + _READ_TIMEOUT_MARGIN_S,
            strategies=dict(strategies or {}),
            default_strategy=default_strategy,
            max_reject_bytes=max_reject_bytes,
            max_line_bytes=max_line_bytes,
            max_event_bytes=max_event_bytes,
        )
        self._journal_retry_s = journal_retry_s
        self._shared = _Shared(threading.Lock())
        # Equal jitter: each delay is at least the previous one's ceiling, so
        # an answering-but-failing server sees the gaps grow, never shrink.
        self._http_backoff = Backoff(
            min(2 * map_config.reconnect_min_s, map_config.reconnect_max_s),
            map_config.reconnect_max_s,
            jitter=0.5,
        )
        self._opened_at = 0.0
        # When the tracked state was last known current: the last activity of
        # a live stream, or the last bootstrap handed to tracking.
        self._fresh_at: float | None = None
        self._resync_due = True
        self._pending_bootstrap: Bootstrap | None = None
        self._bootstraps_sent = 0
        self._last_bootstrap: dict[str, Any] | None = None
        self._resume_cursor: str | None = None
        self._last_status: int | None = None
        self._config_errors = 0
        self._server_retry_s: float | None = None

    @property
    def source(self) -> str:
        return self._settings.source

    # -- hooks of the connection lifecycle ----------------------------------------------

    def _new_reader(self, generation: int) -> ReaderThread:
        now = time.monotonic()
        gap = None if self._fresh_at is None else now - self._fresh_at
        if gap is not None and gap > self._map.backfill_window_s and not self._resync_due:
            logger.warning(
                "%s: disconnected for %.1f s, longer than the %g s backfill: resyncing over REST",
                self.name,
                gap,
                self._map.backfill_window_s,
            )
            self._resync_due = True
        return _Reader(
            self.actor_ref,
            generation,
            name=self.name,
            settings=self._settings,
            bootstrap=self._resync_due,
            shared=self._shared,
            registry=self.registry,
            gate=self._journal.gate,
            rejects=self._rejects,
        )

    def _on_connection_message(self, message: ConnectionMessage) -> None:
        if isinstance(message, _Opened):
            self._opened(message.cursor)
        elif isinstance(message, _StreamConnected):
            # A second greeting on one stream changes nothing.
            if self._phase is Phase.OPEN:
                self._stream_connected()
        elif isinstance(message, _Bootstrapped):
            self._pending_bootstrap = message.bootstrap
            self._send_bootstrap()

    def _reader_ended(self, ended: Ended) -> None:
        if isinstance(ended, _JournalSilent):
            self._journal_silent(ended.reason)
        elif isinstance(ended, _HttpFailed):
            self._http_failed(ended)
        else:
            if isinstance(ended, _StreamEnded):
                self._server_retry_s = ended.at_least_s
            self._connection_lost(ended.kind, ended.reason)

    def _liveness(self, now: float) -> tuple[str, str] | None:
        last_activity = self._shared.last_activity_at
        if last_activity > self._opened_at:
            self._health.message(last_activity)
            if self._phase is Phase.LIVE:
                self._fresh_at = last_activity
        silent_s = now - max(last_activity, self._opened_at)
        if silent_s < self._map.keepalive_timeout_s:
            return None
        limit_s = self._map.keepalive_timeout_s
        return (
            "keepalive_timeout",
            f"nothing received for {silent_s:.1f} s (keepalive_timeout_s {limit_s:g})",
        )

    def _on_tick(self, now: float) -> None:
        self._send_bootstrap()

    def _connection_lost(self, kind: str, reason: str, *, at_least_s: float = 0.0) -> None:
        if self._phase is Phase.LIVE:
            self._fresh_at = max(self._fresh_at or 0.0, self._shared.last_activity_at)
        if self._server_retry_s is not None:
            at_least_s = max(at_least_s, min(self._server_retry_s, self._map.reconnect_max_s))
        super()._connection_lost(kind, reason, at_least_s=at_least_s)

    # -- the stream -----------------------------------------------------------------

    def _opened(self, cursor: str | None) -> None:
        self._phase = Phase.OPEN
        self._opened_at = time.monotonic()
        self._last_status = 200
        self._resume_cursor = cursor
        logger.info("%s: stream open%s", self.name, f", resuming after {cursor}" if cursor else "")

    def _stream_connected(self) -> None:
        now = time.monotonic()
        self._live(now)
        self._health.message(now)
        self._fresh_at = now

    def _send_bootstrap(self) -> None:
        bootstrap = self._pending_bootstrap
        if bootstrap is None:
            return
        try:
            self.registry.tell(Names.TRACKING, bootstrap)
        except (ActorUnavailableError, MailboxFullError):
            return  # sent again on the next tick
        self._pending_bootstrap = None
        self._resync_due = False
        self._fresh_at = time.monotonic()
        self._bootstraps_sent += 1
        self._last_bootstrap = {
            "systems": len(bootstrap.systems),
            "characters": len(bootstrap.characters),
            "at": time.time(),
        }
        logger.info(
            "%s: tracked state resynced: %d systems, %d characters",
            self.name,
            len(bootstrap.systems),
            len(bootstrap.characters),
        )

    # -- failures -------------------------------------------------------------------

    def _journal_silent(self, reason: str) -> None:
        now = time.monotonic()
        self._retire_reader()
        logger.info("%s: the journal did not give the cursor: %s", self.name, reason)
        self._health.error("journal_unavailable", now)
        self._health.disconnected(reason, now)
        self._health.reconnecting(now, self._journal_retry_s)
        self._schedule_attempt(self._journal_retry_s)

    def _http_failed(self, failure: _HttpFailed) -> None:
        now = time.monotonic()
        self._retire_reader()
        status = failure.status
        self._last_status = status
        self._health.error(f"http_{status}", now)
        if status is not None and (status in _RETRYABLE_STATUSES or status >= 500):
            self._health.disconnected(failure.reason, now)
            at_least_s = max(
                self._http_backoff.delay(self._policy.attempt, self._rand),
                min(failure.at_least_s or 0.0, self._map.config_error_retry_s),
            )
            delay = self._failure_delay(now, at_least_s)
            logger.warning("%s: %s; retrying in %.2f s", self.name, failure.reason, delay)
            self._schedule_attempt(delay)
            return
        self._config_errors += 1
        hint = _CONFIG_HINTS.get(status or 0, "the server does not serve this map's event stream")
        logger.error(
            "%s: %s. To fix: %s (map %r at %s). Retrying in %g s.",
            self.name,
            failure.reason,
            hint,
            self._map.slug,
            self._map.base_url,
            self._map.config_error_retry_s,
        )
        self._health.failed(f"{failure.reason}: {hint}", now)
        self._schedule_attempt(self._map.config_error_retry_s)

    # -- reporting ------------------------------------------------------------------

    def _phase_name(self) -> str:
        return "streaming" if self._phase is Phase.OPEN else self._phase.value

    def _totals(self) -> Mapping[str, int]:
        with self._shared.lock:
            return {
                "chunks_total": self._shared.frames,
                "decoded_total": self._shared.events,
                "rejects_total": sum(self._shared.rejects.values()),
            }

    def _protocol_status(self) -> dict[str, Any]:
        with self._shared.lock:
            rejects = dict(self._shared.rejects)
            parser = self._shared.parser
            last_event_id = self._shared.last_event_id
            chunks, events = self._shared.frames, self._shared.events
        return {
            "rejects": rejects,
            "subscription": {
                "events": list(self._settings.events),
                "resumed_from": self._resume_cursor,
                "last_event_id": last_event_id or None,
                "resync_due": self._resync_due,
                "bootstraps_sent": self._bootstraps_sent,
                "last_bootstrap": self._last_bootstrap,
            },
            "sse": {
                "phase": self._phase_name(),
                "chunks": chunks,
                "events": events,
                "last_status": self._last_status,
                "config_errors": self._config_errors,
                "server_retry_s": self._server_retry_s,
                "parser": None if parser is None else dataclasses.asdict(parser),
            },
        }


def child_spec(config: Config, map_config: MapConfig, **options: Any) -> ChildSpec:
    """The ``map:{slug}`` child of the ``sources`` supervisor.

    ``options`` go to :class:`MapSource`.
    """
    options.setdefault("strategies", dict(config.dedup.strategies))
    options.setdefault("default_strategy", config.dedup.default_strategy)
    options.setdefault("max_reject_bytes", config.journal.max_reject_bytes)
    return ChildSpec(
        name=Names.map_source(map_config.slug),
        start=lambda ctx: MapSource.start(ctx, map_config, **options),
        mailbox=MailboxSpec(config.mailbox.sources),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
