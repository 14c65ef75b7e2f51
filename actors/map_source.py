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

The actor owns time and decisions:

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
import enum
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

from actors.base import ReportingActor
from actors.protocol import Bootstrap, GetCursor, Ingest, IngestRefused, Names
from actors.source_support import Held, IngestGate, JournalLink, RejectLog, Resend, join_threads
from realtime.circuit import CircuitBreaker, CircuitState, ReconnectPolicy
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


class FailureKind(enum.StrEnum):
    """Why an attempt failed; each kind is retried its own way."""

    JOURNAL = "journal"
    """The journal did not answer the cursor ask: retried soon, not the map's fault."""
    NETWORK = "network"
    """Connect, read or stream errors: the reconnect policy."""
    HTTP = "http"
    """The server answered something else than an event stream: by status."""


# -- messages from the reader thread and the timers ----------------------------------


@dataclass(frozen=True, slots=True)
class _Failed:
    generation: int
    kind: FailureKind
    reason: str
    status: int | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class _Bootstrapped:
    generation: int
    bootstrap: Bootstrap


@dataclass(frozen=True, slots=True)
class _Opened:
    generation: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class _StreamConnected:
    generation: int
    control: MapControl


@dataclass(frozen=True, slots=True)
class _ReaderEnded:
    generation: int
    reason: str
    retry_ms: int | None
    kind: str = "connection_lost"


@dataclass(frozen=True, slots=True)
class _Attempt:
    token: int


class _Tick:
    __slots__ = ()


_TICK: Final = _Tick()


class _Phase(enum.StrEnum):
    WAITING = "waiting"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    """A 200 event stream is open; the ``connected`` event has not come yet."""
    LIVE = "live"
    HOLDING = "holding"
    STOPPED = "stopped"


@dataclass(slots=True)
class _Shared:
    """What reader threads and the actor share; guarded by ``lock``."""

    lock: threading.Lock
    generation: int = 0
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


class _Reader:
    """One connection attempt and, if it opens, its stream; see the module docstring."""

    def __init__(
        self,
        *,
        generation: int,
        settings: _Settings,
        bootstrap: bool,
        shared: _Shared,
        registry: Registry,
        gate: IngestGate,
        owner: pykka.ActorRef[Any],
        rejects: RejectLog,
    ) -> None:
        self.generation = generation
        self._settings = settings
        self._bootstrap = bootstrap
        self._shared = shared
        self._registry = registry
        self._gate = gate
        self._owner = owner
        self._rejects = rejects
        self._socket: socket.socket | None = None
        self._socket_lock = threading.Lock()
        self._aborted = False
        self._connected_id = ""
        self._fresh_start = False
        self.thread = threading.Thread(
            target=self._run, name=f"map-reader:{settings.slug}-{generation}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def abort(self) -> None:
        """Wake the thread from a blocking read (from another thread); it then ends."""
        with self._socket_lock:
            self._aborted = True
            sock = self._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("%s: socket already closed when aborting", self._settings.source)

    def _post(self, message: object) -> bool:
        try:
            self._owner.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def _fail(self, kind: FailureKind, reason: str, status: int | None = None) -> None:
        self._post(_Failed(self.generation, kind, reason, status))

    def _run(self) -> None:
        with requests.Session() as session:
            cursor = self._ask_cursor()
            if isinstance(cursor, _Failed):
                self._post(cursor)
                return
            if self._bootstrap and not self._fetch_bootstrap(session):
                return
            self._stream(session, cursor)

    def _ask_cursor(self) -> str | _Failed | None:
        try:
            answer = self._registry.ask(
                Names.JOURNAL, GetCursor(self._settings.source), _CURSOR_ASK_TIMEOUT_S
            )
        except Exception as error:  # noqa: BLE001 -- any failure to answer means "ask again later"
            return _Failed(self.generation, FailureKind.JOURNAL, _describe(error))
        return answer if isinstance(answer, str) and answer else None

    def _fetch_bootstrap(self, session: requests.Session) -> bool:
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
                self._fail(FailureKind.NETWORK, f"GET {endpoint}: {_describe(error)}")
                return False
            if response.status_code != 200:
                reason = f"GET {endpoint} answered {response.status_code}: {_excerpt(response)}"
                self._post(
                    _Failed(
                        self.generation,
                        FailureKind.HTTP,
                        reason,
                        response.status_code,
                        _retry_after(response),
                    )
                )
                return False
            try:
                documents.append(response.json())
            except ValueError as error:
                self._fail(FailureKind.HTTP, f"GET {endpoint}: not JSON: {error}", 200)
                return False
        try:
            systems = {
                s.solar_system_id: s.name or s.original_name or ""
                for s in parse_systems(documents[0])
            }
            characters = {
                c.eve_id: c.name or "" for c in parse_tracked_characters(documents[1]) if c.tracked
            }
        except ValueError as error:
            self._fail(FailureKind.HTTP, f"the map's REST answer is malformed: {error}", 200)
            return False
        return self._post(
            _Bootstrapped(self.generation, Bootstrap(settings.slug, systems, characters))
        )

    def _stream(self, session: requests.Session, cursor: str | None) -> None:
        settings = self._settings
        try:
            response = session.get(
                stream_url(settings.base_url, settings.slug, settings.events, cursor),
                headers=stream_headers(settings.api_key, cursor),
                stream=True,
                timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            )
        except requests.RequestException as error:
            self._fail(FailureKind.NETWORK, _describe(error))
            return
        with response:
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200:
                reason = f"the stream request answered {response.status_code}: {_excerpt(response)}"
                self._post(
                    _Failed(
                        self.generation,
                        FailureKind.HTTP,
                        reason,
                        response.status_code,
                        _retry_after(response),
                    )
                )
                return
            if content_type.split(";")[0].strip().lower() != "text/event-stream":
                reason = f"the stream request answered 200 with {content_type or 'no'} content type"
                self._fail(FailureKind.HTTP, reason, 200)
                return
            if not self._hold_socket(response) or not self._post(_Opened(self.generation, cursor)):
                return
            parser = SseParser(
                settings.max_line_bytes,
                max_event_bytes=settings.max_event_bytes,
                last_event_id=cursor or "",
            )
            self._fresh_start = cursor is None
            reason, kind = self._read(response, parser)
            parser.close()
            self._post(_ReaderEnded(self.generation, reason, parser.retry_ms, kind))

    def _hold_socket(self, response: requests.Response) -> bool:
        """Keep the stream's socket for :meth:`abort`; ``False`` if already aborted."""
        connection = getattr(response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        with self._socket_lock:
            self._socket = sock if isinstance(sock, socket.socket) else None
            return not self._aborted

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
                return _describe(error), "connection_lost"
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
                if not self._post(_StreamConnected(self.generation, decoded)):
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
            return self._gate.deliver(ingest)
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
            if shared.generation != self.generation:
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


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


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


class MapSource(ReportingActor):
    """The ``map:{slug}`` source actor; see the module docstring.

    Args:
        ctx: from the supervisor.
        map_config: the map's ``[[maps]]`` table.
        strategies, default_strategy: dedup key strategies by event type.
        max_reject_bytes: a reject keeps at most this many bytes of its data.
        held_capacity: batches kept while the journal cannot take them; when
            full, the stream is closed and resumed from the journal's cursor.
        max_line_bytes, max_event_bytes: the SSE parser's bounds.
        stable_s: how long a live stream must last for its end to reset the
            backoff (it resets only after the ``connected`` event anyway).
        circuit_failures, circuit_open_s: the circuit breaker; open, it marks
            the connection ``failed`` until a probe succeeds.
        journal_retry_s: the wait before asking an unanswering journal again.
        resend_min_s, resend_max_s: the backoff between resends of held batches.
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
        held_capacity: int = 256,
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
        super().__init__(ctx)
        self._map = map_config
        source = map_source(map_config.slug)
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
        self._tick_s = min(1.0, map_config.keepalive_timeout_s / 10)
        self._journal_retry_s = journal_retry_s
        self._shared = _Shared(threading.Lock())
        self._health = ConnectionHealth(
            source, "sse", now=time.monotonic(), silence_timeout_s=map_config.keepalive_timeout_s
        )
        jitter = rand or random.Random().random
        self._rand = jitter
        self._policy = ReconnectPolicy(
            Backoff(map_config.reconnect_min_s, map_config.reconnect_max_s, jitter=1.0),
            CircuitBreaker(
                circuit_failures,
                map_config.reconnect_max_s if circuit_open_s is None else circuit_open_s,
            ),
            rand=jitter,
            stable_s=stable_s,
        )
        # Equal jitter: each delay is at least the previous one's ceiling, so
        # an answering-but-failing server sees the gaps grow, never shrink.
        self._http_backoff = Backoff(
            min(2 * map_config.reconnect_min_s, map_config.reconnect_max_s),
            map_config.reconnect_max_s,
            jitter=0.5,
        )
        self._journal = JournalLink(
            self.registry,
            self.actor_ref,
            self.timers,
            capacity=held_capacity,
            backoff=Backoff(resend_min_s, max(resend_min_s, resend_max_s), jitter=0.5),
            rand=jitter,
        )
        self._rejects = RejectLog(logger, source)
        self._phase = _Phase.WAITING
        self._reader: _Reader | None = None
        self._retired: list[threading.Thread] = []
        self._token = 0
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
        self._reported: dict[str, int] = {}

    @property
    def source(self) -> str:
        return self._settings.source

    # -- lifecycle ------------------------------------------------------------------

    def on_start(self) -> None:
        super().on_start()
        self.timers.send_interval(self._tick_s, _TICK)
        self._attempt()

    def on_stop(self) -> None:
        self._shutdown()

    def on_failure(self, *_exc_info: object) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        self._phase = _Phase.STOPPED
        self._retire_reader()
        stuck = join_threads(self._retired, 2.0)
        if stuck:
            logger.warning("%s: reader threads did not end in time: %s", self.source, stuck)

    # -- messages -------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:  # noqa: PLR0912 -- one dispatch table
        if isinstance(message, _Tick):
            self._tick()
        elif isinstance(message, Held | IngestRefused):
            self._hold(message)
        elif isinstance(message, _Opened):
            if self._is_current(message.generation):
                self._opened(message.cursor)
        elif isinstance(message, _StreamConnected):
            # A second greeting on one stream changes nothing.
            if self._is_current(message.generation) and self._phase is _Phase.STREAMING:
                self._stream_connected()
        elif isinstance(message, _Bootstrapped):
            if self._is_current(message.generation):
                self._pending_bootstrap = message.bootstrap
                self._send_bootstrap()
        elif isinstance(message, _Failed):
            if self._is_current(message.generation):
                self._failed(message)
        elif isinstance(message, _ReaderEnded):
            if self._is_current(message.generation):
                self._server_retry_s = (
                    None if message.retry_ms is None else message.retry_ms / 1000.0
                )
                self._lost(message.reason, message.kind)
        elif isinstance(message, _Attempt):
            if message.token == self._token and self._phase is _Phase.WAITING:
                self._attempt()
        elif isinstance(message, Resend):
            if self._journal.resend() and self._phase is _Phase.HOLDING:
                logger.info("%s: the journal takes events again; reconnecting", self.source)
                self._attempt()
        else:
            return super().on_receive(message)
        return None

    # -- connecting -----------------------------------------------------------------

    def _is_current(self, generation: int) -> bool:
        return self._reader is not None and self._reader.generation == generation

    def _attempt(self) -> None:
        now = time.monotonic()
        if self._journal.full:
            self._phase = _Phase.HOLDING
            return
        if not self._policy.attempt_allowed(now):
            self._schedule(self._policy.breaker.retry_in(now) or self._tick_s)
            return
        gap = None if self._fresh_at is None else now - self._fresh_at
        if gap is not None and gap > self._map.backfill_window_s and not self._resync_due:
            logger.warning(
                "%s: disconnected for %.1f s, longer than the %g s backfill: resyncing over REST",
                self.source,
                gap,
                self._map.backfill_window_s,
            )
            self._resync_due = True
        self._health.connecting(now)
        with self._shared.lock:
            self._shared.generation += 1
            generation = self._shared.generation
        self._reader = _Reader(
            generation=generation,
            settings=self._settings,
            bootstrap=self._resync_due,
            shared=self._shared,
            registry=self.registry,
            gate=self._journal.gate,
            owner=self.actor_ref,
            rejects=self._rejects,
        )
        self._phase = _Phase.CONNECTING
        self._reader.start()

    def _opened(self, cursor: str | None) -> None:
        self._phase = _Phase.STREAMING
        self._opened_at = time.monotonic()
        self._last_status = 200
        self._resume_cursor = cursor
        logger.info(
            "%s: stream open%s", self.source, f", resuming after {cursor}" if cursor else ""
        )

    def _stream_connected(self) -> None:
        now = time.monotonic()
        self._policy.connected_and_joined(now)
        self._health.connected(now)
        self._health.message(now)
        self._phase = _Phase.LIVE
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
            self.source,
            len(bootstrap.systems),
            len(bootstrap.characters),
        )

    def _failed(self, failure: _Failed) -> None:
        now = time.monotonic()
        self._retire_reader()
        if failure.kind is FailureKind.JOURNAL:
            logger.info("%s: the journal did not give the cursor: %s", self.source, failure.reason)
            self._health.error("journal_unavailable", now)
            self._health.disconnected(failure.reason, now)
            self._health.reconnecting(now, self._journal_retry_s)
            self._schedule(self._journal_retry_s)
            return
        if failure.kind is FailureKind.NETWORK:
            self._lost(failure.reason)
            return
        status = failure.status
        self._last_status = status
        self._health.error(f"http_{status}", now)
        if status is not None and (status in _RETRYABLE_STATUSES or status >= 500):
            self._health.disconnected(failure.reason, now)
            attempt = self._policy.attempt
            delay = max(
                self._policy.next_delay(now),
                self._http_backoff.delay(attempt, self._rand),
                min(failure.retry_after_s or 0.0, self._map.config_error_retry_s),
            )
            logger.warning("%s: %s; retrying in %.2f s", self.source, failure.reason, delay)
            self._report_retry(now, delay)
            return
        self._config_errors += 1
        hint = _CONFIG_HINTS.get(status or 0, "the server does not serve this map's event stream")
        logger.error(
            "%s: %s. To fix: %s (map %r at %s). Retrying in %g s.",
            self.source,
            failure.reason,
            hint,
            self._map.slug,
            self._map.base_url,
            self._map.config_error_retry_s,
        )
        self._health.failed(f"{failure.reason}: {hint}", now)
        self._schedule(self._map.config_error_retry_s)

    def _lost(self, reason: str, kind: str = "connection_lost") -> None:
        now = time.monotonic()
        was_live = self._phase is _Phase.LIVE
        if was_live:
            logger.warning("%s: stream lost: %s", self.source, reason)
            self._fresh_at = max(self._fresh_at or 0.0, self._shared.last_activity_at)
        else:
            logger.info("%s: %s: %s", self.source, kind, reason)
        self._retire_reader()
        self._health.error(kind, now)
        if self._health.state != "disconnected":
            self._health.disconnected(reason, now)
        if self._journal.full:
            self._phase = _Phase.HOLDING
            return
        delay = self._policy.next_delay(now)
        if self._server_retry_s is not None:
            delay = max(delay, min(self._server_retry_s, self._map.reconnect_max_s))
        self._report_retry(now, delay)

    def _report_retry(self, now: float, delay: float) -> None:
        if self._policy.breaker.state is CircuitState.OPEN:
            failures = self._policy.breaker.statistics().consecutive_failures
            self._health.failed(f"circuit open after {failures} failures", now)
            logger.error(
                "%s: %d consecutive failures; next attempt in %.1f s", self.source, failures, delay
            )
        else:
            self._health.reconnecting(now, delay)
        self._schedule(delay)

    def _schedule(self, delay: float) -> None:
        """The next attempt in ``delay`` seconds; any attempt scheduled before is void."""
        self._token += 1
        self._phase = _Phase.WAITING
        self.timers.send_after(delay, _Attempt(self._token))

    def _retire_reader(self) -> None:
        reader = self._reader
        if reader is None:
            return
        with self._shared.lock:
            self._shared.generation += 1
        reader.abort()
        self._retired = [thread for thread in self._retired if thread.is_alive()]
        self._retired.append(reader.thread)
        self._reader = None

    # -- timing ---------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        last_activity = self._shared.last_activity_at
        if self._phase in (_Phase.STREAMING, _Phase.LIVE):
            if last_activity > self._opened_at:
                self._health.message(last_activity)
                if self._phase is _Phase.LIVE:
                    self._fresh_at = last_activity
            silent_s = now - max(last_activity, self._opened_at)
            if silent_s >= self._map.keepalive_timeout_s:
                self._lost(
                    f"nothing received for {silent_s:.1f} s "
                    f"(keepalive_timeout_s {self._map.keepalive_timeout_s:g})",
                    "keepalive_timeout",
                )
        self._send_bootstrap()
        self._health.tick(now)
        self._count()

    # -- the journal ----------------------------------------------------------------

    def _hold(self, message: Held | IngestRefused) -> None:
        if isinstance(message, IngestRefused):
            logger.warning("%s: the journal refused a batch: %s", self.source, message.reason)
        if not self._journal.take(message):
            logger.warning(
                "%s: %d batches held for the journal; the stream is closed and resumes "
                "from the journal's cursor",
                self.source,
                self._journal.held,
            )
        if self._journal.full and self._phase is not _Phase.HOLDING:
            now = time.monotonic()
            if self._reader is not None:
                self._retire_reader()
                self._health.error("journal_backpressure", now)
                if self._health.state != "disconnected":
                    self._health.disconnected("paused: the journal is not taking events", now)
            self._token += 1
            self._phase = _Phase.HOLDING

    # -- reporting ------------------------------------------------------------------

    def _count(self) -> None:
        with self._shared.lock:
            totals = {
                "chunks_total": self._shared.frames,
                "decoded_total": self._shared.events,
                "rejects_total": sum(self._shared.rejects.values()),
            }
        for name, total in totals.items():
            delta = total - self._reported.get(name, 0)
            if delta:
                self.counters[name] += delta
                self._reported[name] = total

    def report_gauges(self) -> Mapping[str, float]:
        snapshot = self._health.snapshot(time.monotonic())
        return {
            "connected": 1.0 if snapshot.state in ("connected", "degraded") else 0.0,
            "quality_score": float(snapshot.score),
            "held_batches": float(self._journal.held),
        }

    def status(self) -> Mapping[str, Any]:
        now = time.monotonic()
        with self._shared.lock:
            rejects = dict(self._shared.rejects)
            parser = self._shared.parser
            last_event_id = self._shared.last_event_id
            chunks, events = self._shared.frames, self._shared.events
        reconnect = self._policy.statistics()
        return {
            "connection": self._health.snapshot(now).to_dict(),
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
                "phase": self._phase.value,
                "chunks": chunks,
                "events": events,
                "last_status": self._last_status,
                "config_errors": self._config_errors,
                "server_retry_s": self._server_retry_s,
                "parser": None if parser is None else dataclasses.asdict(parser),
            },
            "reconnect": {
                "attempt": reconnect.attempt,
                "failures": reconnect.failures,
                "resets": reconnect.resets,
                "circuit": reconnect.circuit.state.value,
                "consecutive_failures": reconnect.circuit.consecutive_failures,
            },
            "journal": dataclasses.asdict(self._journal.statistics()),
            "rejects_not_logged": self._rejects.suppressed(),
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
