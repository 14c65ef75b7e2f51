"""A Wanderer map server on loopback: SSE event stream, REST bootstrap, fault switches.

It speaks the protocol of docs/protocols.md ("Wanderer map") over real HTTP/1.1 on a
real socket, so the map source, the demo, tests and benchmarks all exercise the
same code they run against a real map. It owns an asyncio loop on a background
thread and writes responses byte by byte itself: every SSE write is one HTTP
chunk (``Transfer-Encoding: chunked``) sent as one TCP write with
``TCP_NODELAY`` and flushed before the next, so the fault modes control exactly
where a client's reads are cut.

Behaviour mirrored from the real server (``wanderer-industries/wanderer``):

- the ``connected`` event carries an ``id`` of its own, a fresh ULID newer than
  every backfilled event that follows it: a client must not take it as its
  resume point;
- the resume point is read only from the ``last_event_id`` query parameter; the
  ``Last-Event-ID`` header is recorded (see :meth:`MapServer.statistics`), never used;
- a ``last_event_id`` that is not a ULID replays nothing;
- a backfill is the oldest ``max_backfill`` matching events newer than
  ``last_event_id``; when it is cut there, the stream goes live from the moment
  of connection and the events in between never come on it (a client sees the
  cut: its backfill, the events with ids below ``connected``'s, is full);
- ``events=`` names are trimmed; unknown names match nothing; ``*``, an empty
  value or no parameter match everything;
- the content type is ``text/event-stream; charset=utf-8``.

Retention is measured on the injected ``clock`` (tests step it); keepalives and
the recorded connect times use the real monotonic clock, because they are about
real silence and real client delays.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, get_args
from urllib.parse import parse_qs, urlsplit

import orjson

from simulator import static_info as universe
from simulator import ulid

Framing = Literal["lf", "crlf", "cr", "split", "coalesce"]
"""How events are laid out on the wire.

- ``lf`` / ``crlf`` / ``cr``: that line terminator, one event per write;
- ``split``: CRLF lines, each event cut into several writes at seeded random
  byte positions, always including a cut inside the first multi-byte UTF-8
  character and one between the first CR and its LF;
- ``coalesce``: LF lines, every event queued within a short linger written
  together in one write.
"""

_T = TypeVar("_T")

_NEWLINES: Mapping[Framing, bytes] = {
    "lf": b"\n",
    "crlf": b"\r\n",
    "cr": b"\r",
    "split": b"\r\n",
    "coalesce": b"\n",
}
STATIC_INFO_PATH = "/api/common/system-static-info"
_COALESCE_LINGER_S = 0.02
_WRITE_BATCH = 64
"""Most queued items one stream takes per wake-up (and per coalesced write)."""
_MAX_REQUEST_HEAD = 16 * 1024
_SHUTDOWN_TIMEOUT_S = 10.0
_CALL_TIMEOUT_S = 10.0

_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("Bad request", "BAD_REQUEST"),
    401: ("Missing or invalid 'Bearer' token", "UNAUTHORIZED"),
    403: ("Server-Sent Events are disabled for this map", "SSE_DISABLED_FOR_MAP"),
    404: ("Map not found", "MAP_NOT_FOUND"),
    405: ("Method not allowed", "METHOD_NOT_ALLOWED"),
    429: ("Too many connections for this API key", "API_KEY_CONNECTION_LIMIT"),
    431: ("Request header fields too large", "HEADERS_TOO_LARGE"),
    500: ("Internal server error", "INTERNAL_ERROR"),
    503: ("Server-Sent Events are disabled on this server", "SSE_DISABLED"),
}
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"connection: keep-alive\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)


@dataclass(frozen=True, slots=True)
class MapSystem:
    """A solar system on the map, as ``GET /systems`` reports it.

    ``name`` is the EVE name (``original_name`` in REST); ``custom_name``, when
    set, is the name the map shows (``name`` in REST).
    """

    solar_system_id: int
    name: str
    position_x: int = 0
    position_y: int = 0
    custom_name: str | None = None
    temporary_name: str | None = None
    status: int = 0
    locked: bool = False
    visible: bool = True
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MapCharacter:
    """A character the map tracks, as ``GET /tracked-characters`` reports it."""

    eve_id: int
    name: str
    corporation_id: int | None = None
    corporation_ticker: str | None = None
    alliance_id: int | None = None
    alliance_ticker: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectAttempt:
    """One request to the event stream and how it was answered.

    Attributes:
        at: ``time.monotonic()`` when the request head had been read.
        status: the HTTP status answered (200 for an accepted stream).
        last_event_id: the ``last_event_id`` query parameter, if sent.
        last_event_id_header: the ``Last-Event-ID`` header, if sent.
        events: the ``events`` query parameter, if sent.
    """

    at: float
    status: int
    last_event_id: str | None
    last_event_id_header: str | None
    events: str | None


@dataclass(frozen=True, slots=True)
class MapServerStatistics:
    """A snapshot of the server's counters and bounds.

    Attributes:
        connect_attempts: the latest stream requests, oldest first, at most
            ``max_recorded_attempts`` of them.
        connect_attempts_total: every stream request since construction.
        open_streams: streams currently connected (dead ones included).
        events_published: events appended by :meth:`MapServer.publish`.
        events_written: map events fully written to streams (backfill and
            live, counted once per stream; ``connected`` is not counted).
        keepalives_written: keepalive comments written.
        raw_writes: :meth:`MapServer.send_raw` payloads written.
        slow_consumer_drops: streams closed because their queue was full.
        retained_events: events in the backfill log.
        retained_capacity: the log's bound (``max_retained``).
        rest_requests: requests to the REST endpoints, whatever the answer.
        systems / characters: what the map holds now.
        static_info_requests: requests to the static-info endpoint per
            system id, whatever the answer.
    """

    connect_attempts: tuple[ConnectAttempt, ...]
    connect_attempts_total: int
    open_streams: int
    events_published: int
    events_written: int
    keepalives_written: int
    raw_writes: int
    slow_consumer_drops: int
    retained_events: int
    retained_capacity: int
    rest_requests: int
    systems: int
    characters: int
    static_info_requests: Mapping[int, int]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One event as retained and as written: its envelope already encoded."""

    seq: int
    id: str
    type: str
    data: bytes
    time_ms: int


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


class _RequestError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Stream:
    """One open SSE response; touched only on the server's loop thread."""

    __slots__ = (
        "backfill",
        "cut_next",
        "dead",
        "queue",
        "snapshot_seq",
        "task",
        "wanted",
        "writer",
    )

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        *,
        wanted: frozenset[str] | None,
        backfill: list[_Entry],
        snapshot_seq: int,
        dead: bool,
        queue_bound: int,
    ) -> None:
        self.writer = writer
        self.wanted = wanted
        self.backfill = backfill
        self.snapshot_seq = snapshot_seq
        self.dead = dead
        self.cut_next = False
        self.queue: asyncio.Queue[_Entry | bytes] = asyncio.Queue(queue_bound)
        self.task: asyncio.Task[None] | None = None

    def wants(self, event_type: str) -> bool:
        return self.wanted is None or event_type in self.wanted


class MapServer:
    """A loopback Wanderer map: one map, one API key, real HTTP.

    Args:
        slug: the map's slug; the map's UUID (``map_id``) works in URLs too.
        api_key: the only Bearer token accepted.
        host, port: where to listen (``port=0`` picks a free port; a restart
            after :meth:`stop` reuses the port first bound).
        retention_s: how long events stay available for backfill, on ``clock``.
        keepalive_s: silence after which a stream gets ``: keepalive``.
        max_backfill: most events replayed to one request.
        max_connections_per_key: concurrent streams allowed; more get 429.
        clock: Unix seconds; ULIDs, timestamps and retention use it.
        map_id: the map's UUID (derived from ``slug`` when omitted).
        systems, characters: the map's initial state.
        seed: seeds ULID randomness and the ``split`` cut positions.
        max_retained: bound of the backfill log (oldest events go first).
        max_queued_per_stream: bound of each stream's outgoing queue; a stream
            whose client reads too slowly to keep under it is closed.
        max_recorded_attempts: how many connect attempts :meth:`statistics` keeps.
        max_systems, max_characters: bounds of the map's state.
        static_info: the answer of ``/api/common/system-static-info`` for a
            system id (its ``data``), ``None`` for unknown (404); by default
            the simulated universe's.
    """

    def __init__(
        self,
        slug: str = "demo",
        api_key: str = "demo-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        retention_s: float = 600.0,
        keepalive_s: float = 30.0,
        max_backfill: int = 1000,
        max_connections_per_key: int = 10,
        clock: Callable[[], float] = time.time,
        map_id: str | None = None,
        systems: Iterable[MapSystem] = (),
        characters: Iterable[MapCharacter] = (),
        seed: int = 0,
        max_retained: int = 100_000,
        max_queued_per_stream: int = 10_000,
        max_recorded_attempts: int = 1000,
        max_systems: int = 10_000,
        max_characters: int = 10_000,
        static_info: Callable[[int], Mapping[str, Any] | None] = universe.static_info,
    ) -> None:
        for name, value in (
            ("max_backfill", max_backfill),
            ("max_connections_per_key", max_connections_per_key),
            ("max_retained", max_retained),
            ("max_queued_per_stream", max_queued_per_stream),
            ("max_recorded_attempts", max_recorded_attempts),
            ("max_systems", max_systems),
            ("max_characters", max_characters),
        ):
            if value < 1:
                msg = f"{name} must be at least 1, got {value}"
                raise ValueError(msg)
        if keepalive_s <= 0 or retention_s < 0:
            msg = "keepalive_s must be positive and retention_s not negative"
            raise ValueError(msg)
        self.slug = slug
        self.map_id = map_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"wanderer-map:{slug}"))
        self._api_key = api_key
        self._host = host
        self._port = port
        self._retention_s = retention_s
        self._keepalive_s = keepalive_s
        self._max_backfill = max_backfill
        self._max_connections = max_connections_per_key
        self._clock = clock
        self._max_queued = max_queued_per_stream
        self._max_systems = max_systems
        self._max_characters = max_characters
        self._ulids = ulid.UlidGenerator(clock, random.Random(seed))
        self._split_rng = random.Random(seed + 1)

        self._lock = threading.Lock()
        self._systems: dict[int, MapSystem] = {}
        self._characters: dict[int, MapCharacter] = {}
        self._log: deque[_Entry] = deque(maxlen=max_retained)
        self._seq = 0
        self._streams: set[_Stream] = set()
        self._framing: Framing = "lf"
        self._keepalive_enabled = True
        self._silent = False
        self._fail_status = 0
        self._fail_remaining: int | None = 0
        self._attempts: deque[ConnectAttempt] = deque(maxlen=max_recorded_attempts)
        self._attempts_total = 0
        self._published = 0
        self._written = 0
        self._keepalives = 0
        self._raw_writes = 0
        self._slow_drops = 0
        self._rest_requests = 0
        self._static_info = static_info
        self._static_info_requests: collections.Counter[int] = collections.Counter()
        self._static_info_failures: deque[int] = deque()

        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._startup_error: OSError | None = None
        for system in systems:
            self._put_system(system)
        for character in characters:
            self._put_character(character)

    # Lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Listen and serve on a background thread; returns once listening.

        Raises:
            RuntimeError: the server is already running.
            OSError: the address could not be bound.
        """
        if self._thread is not None:
            msg = "the map server is already running"
            raise RuntimeError(msg)
        ready = threading.Event()
        self._startup_error = None
        thread = threading.Thread(
            target=self._run, args=(ready,), name=f"map-server:{self.slug}", daemon=True
        )
        thread.start()
        ready.wait()
        if self._startup_error is not None or self._loop is None:
            thread.join()
            if self._startup_error is not None:
                raise self._startup_error
            msg = "the map server thread ended before it was listening"
            raise RuntimeError(msg)
        self._thread = thread

    def stop(self) -> None:
        """Close every connection, stop listening and join the thread (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with self._lock:
            loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            loop.call_soon_threadsafe(stop_event.set)
        thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the requested one before the first start)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``, the base URL a map source is configured with."""
        return f"http://{self._host}:{self._port}"

    # Map state and events ----------------------------------------------------

    def add_system(
        self,
        solar_system_id: int,
        name: str,
        *,
        position_x: int = 0,
        position_y: int = 0,
        labels: Iterable[str] = (),
    ) -> None:
        """Put a system on the map without publishing an event.

        Raises:
            ValueError: the map already holds ``max_systems`` other systems.
        """
        system = MapSystem(
            solar_system_id,
            name,
            position_x=position_x,
            position_y=position_y,
            labels=tuple(labels),
        )
        with self._lock:
            self._put_system(system)

    def add_character(
        self,
        eve_id: int,
        name: str,
        *,
        corporation_id: int | None = None,
        corporation_ticker: str | None = None,
        alliance_id: int | None = None,
        alliance_ticker: str | None = None,
    ) -> None:
        """Track a character without publishing an event.

        Raises:
            ValueError: the map already tracks ``max_characters`` others.
        """
        character = MapCharacter(
            eve_id, name, corporation_id, corporation_ticker, alliance_id, alliance_ticker
        )
        with self._lock:
            self._put_character(character)

    def publish(self, event_type: str, payload: Mapping[str, Any]) -> str:
        """Append an event to the log, apply it to the map, send it to every stream.

        ``add_system`` / ``deleted_system`` change the systems by
        ``solar_system_id``; ``character_added`` / ``character_removed`` change
        the tracked characters by ``character_eve_id`` (or ``eve_id``, an int or
        a digit string). A payload without a usable id changes nothing but is
        still published, so clients can be fed odd payloads. Streams receive it
        in publication order, if their ``events`` filter matches.

        Returns:
            The event's ULID.

        Raises:
            ValueError: ``event_type`` is empty or holds a line break, the
                payload is not JSON-serialisable, or the map is full.
        """
        if not event_type or any(c in event_type for c in "\r\n"):
            msg = f"an event type must be one non-empty line, got {event_type!r}"
            raise ValueError(msg)
        with self._lock:
            now = self._clock()
            event_id = self._ulids.new()
            envelope = {
                "id": event_id,
                "type": event_type,
                "map_id": self.map_id,
                "timestamp": _iso(now),
                "payload": dict(payload),
            }
            try:
                data = orjson.dumps(envelope)
            except TypeError as error:
                msg = f"the {event_type} payload is not JSON: {error}"
                raise ValueError(msg) from error
            self._apply(event_type, payload)
            self._seq += 1
            entry = _Entry(self._seq, event_id, event_type, data, ulid.time_ms(event_id))
            self._prune(now)
            self._log.append(entry)
            self._published += 1
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._fan_out, entry)
        return event_id

    def publish_map_kill(self, killmail: Mapping[str, Any]) -> str:
        """Publish a ``map_kill`` whose payload is ``killmail`` (keyed by ``killmail_id``).

        Raises:
            ValueError: ``killmail`` has no integer ``killmail_id``.
        """
        killmail_id = killmail.get("killmail_id")
        if not isinstance(killmail_id, int) or isinstance(killmail_id, bool):
            msg = f"a map_kill needs an integer killmail_id, got {killmail_id!r}"
            raise ValueError(msg)
        return self.publish("map_kill", dict(killmail))

    # Fault switches ----------------------------------------------------------

    def drop_all(self, *, mid_event: bool = False) -> int:
        """Close every open stream abruptly: no end-of-body chunk, just a closed socket.

        Without ``mid_event`` the streams are cut now (inside an event when a
        ``split`` write is in flight) and this returns once they are gone. With
        ``mid_event`` each stream open now stays up until its next event, writes
        the first half of that event in one write and is then closed; that event
        stays in the log for backfill.

        Returns:
            How many streams were affected (0 when not running).
        """
        return self._on_loop(self._drop_streams(mid_event=mid_event), 0)

    def fail_next(self, status: int, count: int | None = 1) -> None:
        """Answer the next ``count`` stream requests (all when ``None``) with ``status``.

        The answer is a JSON error ``{"error", "code", "status"}``, given
        before any authentication; REST requests are not affected.

        Raises:
            ValueError: ``status`` is not an HTTP error status, or ``count < 1``.
        """
        try:
            known = HTTPStatus(status)
        except ValueError:
            known = HTTPStatus.OK
        if not 400 <= known <= 599:
            msg = f"fail_next needs an HTTP error status, got {status}"
            raise ValueError(msg)
        if count is not None and count < 1:
            msg = f"fail_next count must be at least 1 or None, got {count}"
            raise ValueError(msg)
        with self._lock:
            self._fail_status = status
            self._fail_remaining = count

    def fail_static_info(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` static-info requests with ``status`` (after counting them).

        Raises:
            ValueError: ``status`` is not an HTTP error status, or ``count < 1``.
        """
        if not 400 <= status <= 599 or count < 1:
            msg = (
                f"fail_static_info needs an HTTP error status and count >= 1, got {status}, {count}"
            )
            raise ValueError(msg)
        with self._lock:
            self._static_info_failures.extend([status] * count)

    def clear_failures(self) -> None:
        """Stop answering stream requests with the :meth:`fail_next` status."""
        with self._lock:
            self._fail_remaining = 0

    def set_framing(self, mode: Framing) -> None:
        """Lay out subsequent writes of every stream as ``mode`` (see :data:`Framing`).

        Raises:
            ValueError: unknown mode.
        """
        if mode not in get_args(Framing):
            msg = f"unknown framing {mode!r}; expected one of {get_args(Framing)}"
            raise ValueError(msg)
        with self._lock:
            self._framing = mode

    def set_keepalive(self, enabled: bool) -> None:
        """Send (or stop sending) ``: keepalive`` after ``keepalive_s`` of silence."""
        with self._lock:
            self._keepalive_enabled = enabled

    def set_silent(self, silent: bool) -> None:
        """Make streams dead: connected, yet sending nothing, not even keepalives.

        While silent, every open stream goes dead for good (it stays dead after
        ``set_silent(False)``, as a half-open connection would), and new streams
        get their response head and then nothing. Events for dead streams are
        discarded; they remain in the log for a reconnecting client's backfill.
        """
        with self._lock:
            self._silent = silent
        if silent:
            self._on_loop(self._kill_streams(), None)

    def send_raw(self, data: bytes) -> int:
        """Write ``data`` as is, in one write, to every live stream, after what is queued.

        For garbage: invalid JSON, events without ids, a BOM, invalid UTF-8,
        huge lines. It is not retained and not replayed.

        Returns:
            How many streams it was queued to (0 when not running).
        """
        return self._on_loop(self._queue_raw(data), 0)

    def statistics(self) -> MapServerStatistics:
        """A consistent snapshot of the counters (see :class:`MapServerStatistics`)."""
        with self._lock:
            return MapServerStatistics(
                connect_attempts=tuple(self._attempts),
                connect_attempts_total=self._attempts_total,
                open_streams=len(self._streams),
                events_published=self._published,
                events_written=self._written,
                keepalives_written=self._keepalives,
                raw_writes=self._raw_writes,
                slow_consumer_drops=self._slow_drops,
                retained_events=len(self._log),
                retained_capacity=self._log.maxlen or 0,
                rest_requests=self._rest_requests,
                systems=len(self._systems),
                characters=len(self._characters),
                static_info_requests=dict(self._static_info_requests),
            )

    # State (caller holds the lock) --------------------------------------------

    def _put_system(self, system: MapSystem) -> None:
        if system.solar_system_id not in self._systems and len(self._systems) >= self._max_systems:
            msg = f"the map is full: {self._max_systems} systems"
            raise ValueError(msg)
        self._systems[system.solar_system_id] = system

    def _put_character(self, character: MapCharacter) -> None:
        known = character.eve_id in self._characters
        if not known and len(self._characters) >= self._max_characters:
            msg = f"the map is full: {self._max_characters} characters"
            raise ValueError(msg)
        self._characters[character.eve_id] = character

    def _apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        system_id = _int_field(payload, "solar_system_id")
        eve_id = _int_field(payload, "character_eve_id") or _int_field(payload, "eve_id")
        if event_type == "add_system" and system_id is not None:
            known = self._systems.get(system_id)
            name = payload.get("name")
            if not isinstance(name, str):
                name = known.name if known is not None else str(system_id)
            position_x = _int_field(payload, "position_x") or 0
            position_y = _int_field(payload, "position_y") or 0
            self._put_system(MapSystem(system_id, name, position_x, position_y))
        elif event_type == "deleted_system" and system_id is not None:
            self._systems.pop(system_id, None)
        elif event_type == "character_added" and eve_id is not None:
            name = payload.get("name")
            self._put_character(
                MapCharacter(
                    eve_id,
                    name if isinstance(name, str) else str(eve_id),
                    corporation_id=_int_field(payload, "corporation_id"),
                    corporation_ticker=_str_field(payload, "corporation_ticker"),
                    alliance_id=_int_field(payload, "alliance_id"),
                    alliance_ticker=_str_field(payload, "alliance_ticker"),
                )
            )
        elif event_type == "character_removed" and eve_id is not None:
            self._characters.pop(eve_id, None)

    def _prune(self, now: float) -> None:
        cutoff_ms = int((now - self._retention_s) * 1000)
        while self._log and self._log[0].time_ms < cutoff_ms:
            self._log.popleft()

    def _systems_body(self) -> dict[str, Any]:
        systems = [self._system_json(s) for _, s in sorted(self._systems.items())]
        # The simulated map keeps no wormhole connections between its systems.
        return {"data": {"systems": systems, "connections": []}}

    def _system_json(self, system: MapSystem) -> dict[str, Any]:
        labels = orjson.dumps({"customLabel": "", "labels": list(system.labels)}).decode()
        return {
            "id": str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{self.map_id}/system/{system.solar_system_id}")
            ),
            "map_id": self.map_id,
            "solar_system_id": system.solar_system_id,
            "name": system.custom_name or system.name,
            "original_name": system.name,
            "custom_name": system.custom_name,
            "temporary_name": system.temporary_name,
            "status": system.status,
            "position_x": system.position_x,
            "position_y": system.position_y,
            "locked": system.locked,
            "visible": system.visible,
            "labels": labels,
        }

    def _characters_body(self) -> dict[str, Any]:
        rows = []
        for eve_id, character in sorted(self._characters.items()):
            rows.append(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.map_id}/tracking/{eve_id}")),
                    "map_id": self.map_id,
                    "character_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"character/{eve_id}")),
                    "tracked": True,
                    "character": {
                        "eve_id": str(eve_id),
                        "name": character.name,
                        "corporation_id": character.corporation_id,
                        "corporation_ticker": character.corporation_ticker,
                        "alliance_id": character.alliance_id,
                        "alliance_ticker": character.alliance_ticker,
                    },
                }
            )
        return {"data": rows}

    # The loop thread ---------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            ready.set()
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        stop_event = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._handle, self._host, self._port, limit=_MAX_REQUEST_HEAD
            )
        except OSError as error:
            self._startup_error = error
            ready.set()
            return
        connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._connections = connections
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._stop_event = stop_event
            self._port = server.sockets[0].getsockname()[1]
        ready.set()
        await stop_event.wait()
        server.close()
        with self._lock:
            self._loop = None
            self._stop_event = None
        # Aborting the sockets ends every handler on its own (EOF on read, error
        # on write); cancelling them instead makes asyncio's stream callback log.
        for writer in connections.values():
            writer.transport.abort()
        if connections:
            await asyncio.wait(set(connections), timeout=_SHUTDOWN_TIMEOUT_S)
        await server.wait_closed()

    def _on_loop(self, coroutine: Coroutine[Any, Any, _T], default: _T) -> _T:
        """Run ``coroutine`` on the loop thread and wait for its result."""
        with self._lock:
            loop = self._loop
        if loop is None:
            coroutine.close()
            return default
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(_CALL_TIMEOUT_S)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # No user-space buffering: each write reaches the kernel before drain() returns.
        writer.transport.set_write_buffer_limits(high=0)
        try:
            with contextlib.suppress(OSError):
                try:
                    request = await _read_request(reader)
                except _RequestError as error:
                    await self._send_error(writer, error.status)
                    return
                if request is not None:
                    await self._route(request, reader, writer)
        finally:
            writer.close()
            if task is not None:
                self._connections.pop(task, None)

    async def _route(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if request.path == STATIC_INFO_PATH:
            status, body = self._static_info_answer(request)
            await _send_response(writer, status, orjson.dumps(body))
            return
        parts = request.path.split("/")
        # ["", "api", "maps", MAP, "events", "stream"] or ["", "api", "maps", MAP, ENDPOINT]
        if len(parts) < 5 or parts[:3] != ["", "api", "maps"]:
            await self._send_error(writer, 404, "Not found", "NOT_FOUND")
            return
        endpoint = "/".join(parts[4:])
        if endpoint not in ("events/stream", "systems", "tracked-characters"):
            await self._send_error(writer, 404, "Not found", "NOT_FOUND")
            return
        if request.method != "GET":
            await self._send_error(writer, 405)
            return
        if endpoint == "events/stream":
            await self._serve_stream(request, parts[3], reader, writer)
            return
        with self._lock:
            self._rest_requests += 1
            refusal = self._refusal(request, parts[3])
            if refusal is None:
                body = self._systems_body() if endpoint == "systems" else self._characters_body()
        if refusal is not None:
            await self._send_error(writer, refusal)
            return
        await _send_response(writer, 200, orjson.dumps(body))

    def _static_info_answer(self, request: _Request) -> tuple[int, Mapping[str, Any]]:
        """``GET /api/common/system-static-info?id=``: the system's static data, or an error."""
        raw_id = request.query.get("id", "")
        system_id = int(raw_id) if raw_id.isdigit() else None
        with self._lock:
            if system_id is not None:
                self._static_info_requests[system_id] += 1
            failure = self._static_info_failures.popleft() if self._static_info_failures else 0
        authorization = request.headers.get("authorization", "")
        if request.method != "GET":
            status = 405
        elif failure:
            status = failure
        elif authorization.removeprefix("Bearer ") != self._api_key:
            status = 401
        elif system_id is None:
            return 400, {"error": "Invalid system ID"}
        else:
            data = self._static_info(system_id)
            if data is None:
                return 404, {"error": "System not found"}
            return 200, {"data": data}
        message, code = _ERRORS.get(status, ("Error", "ERROR"))
        return status, {"error": message, "code": code, "status": status}

    def _refusal(self, request: _Request, map_ref: str) -> int | None:
        """The error status for a request's credentials and map, or ``None``."""
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return 401
        if map_ref not in (self.slug, self.map_id):
            return 404
        if authorization.removeprefix("Bearer ") != self._api_key:
            return 401
        return None

    def _admit(
        self, request: _Request, map_ref: str, writer: asyncio.StreamWriter
    ) -> _Stream | int:
        """Decide a stream request: a registered stream, or the status to refuse with."""
        with self._lock:
            status: int | None
            if self._fail_remaining is None or self._fail_remaining > 0:
                status = self._fail_status
                if self._fail_remaining is not None:
                    self._fail_remaining -= 1
            else:
                status = self._refusal(request, map_ref)
            if status is None and len(self._streams) >= self._max_connections:
                status = 429
            self._attempts_total += 1
            self._attempts.append(
                ConnectAttempt(
                    at=time.monotonic(),
                    status=status or 200,
                    last_event_id=request.query.get("last_event_id"),
                    last_event_id_header=request.headers.get("last-event-id"),
                    events=request.query.get("events"),
                )
            )
            if status is not None:
                return status
            wanted = _parse_filter(request.query.get("events"))
            stream = _Stream(
                writer,
                wanted=wanted,
                backfill=self._backfill(request.query.get("last_event_id"), wanted),
                snapshot_seq=self._seq,
                dead=self._silent,
                queue_bound=self._max_queued,
            )
            self._streams.add(stream)
            return stream

    def _backfill(self, last_event_id: str | None, wanted: frozenset[str] | None) -> list[_Entry]:
        if last_event_id is None or not ulid.is_ulid(last_event_id.upper()):
            return []
        after = last_event_id.upper()
        self._prune(self._clock())
        replay: list[_Entry] = []
        for entry in self._log:
            if entry.id > after and (wanted is None or entry.type in wanted):
                replay.append(entry)
                if len(replay) == self._max_backfill:
                    break
        return replay

    async def _serve_stream(
        self,
        request: _Request,
        map_ref: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        admitted = self._admit(request, map_ref, writer)
        if isinstance(admitted, int):
            await self._send_error(writer, admitted)
            return
        stream = admitted
        pump = asyncio.ensure_future(self._pump(stream))
        stream.task = pump
        hangup = asyncio.ensure_future(_wait_for_hangup(reader))
        try:
            await asyncio.wait((pump, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            with self._lock:
                self._streams.discard(stream)
            for task in (pump, hangup):
                task.cancel()
            outcomes = await asyncio.gather(pump, hangup, return_exceptions=True)
        for outcome in outcomes:
            # A client going away is routine; anything else is a bug to surface.
            if isinstance(outcome, Exception) and not isinstance(outcome, OSError):
                raise outcome

    async def _pump(self, stream: _Stream) -> None:
        """Write the head, ``connected``, the backfill, then live events and keepalives."""
        loop = asyncio.get_running_loop()
        await _write(stream.writer, _STREAM_HEAD)
        if not stream.dead:
            with self._lock:
                server_time = _iso(self._clock())
                connected_id = self._ulids.new()
            data = orjson.dumps({"map_id": self.map_id, "server_time": server_time})
            connected = _Entry(0, connected_id, "connected", data, 0)
            await self._write_items(stream, [connected, *stream.backfill])
        stream.backfill = []
        last_write = loop.time()
        while True:
            timeout = max(0.0, self._keepalive_s - (loop.time() - last_write))
            try:
                first = await asyncio.wait_for(stream.queue.get(), timeout)
            except TimeoutError:
                with self._lock:
                    keepalive = self._keepalive_enabled and not stream.dead
                    newline = _NEWLINES[self._framing]
                if keepalive:
                    await self._send(stream, b": keepalive" + newline + newline)
                    with self._lock:
                        self._keepalives += 1
                last_write = loop.time()
                continue
            items = [first]
            _take_queued(stream.queue, items)
            if self._framing == "coalesce" and len(items) == 1:
                await asyncio.sleep(_COALESCE_LINGER_S)
                _take_queued(stream.queue, items)
            if not stream.dead:
                await self._write_items(stream, items)
                last_write = loop.time()

    async def _write_items(self, stream: _Stream, items: list[_Entry | bytes]) -> None:
        """Write events and raw payloads in order, laid out by the current framing."""
        with self._lock:
            framing = self._framing
        newline = _NEWLINES[framing]
        if framing == "coalesce" and not stream.cut_next:
            for start in range(0, len(items), _WRITE_BATCH):
                batch = items[start : start + _WRITE_BATCH]
                await self._send(stream, b"".join(_render(item, newline) for item in batch))
                self._count_written(batch)
            return
        for item in items:
            data = _render(item, newline)
            if isinstance(item, _Entry) and stream.cut_next:
                await self._send(stream, data[: max(1, len(data) // 2)])
                stream.writer.close()
                return
            if isinstance(item, _Entry) and framing == "split":
                for piece in _split(data, self._split_rng):
                    await self._send(stream, piece)
            else:
                await self._send(stream, data)
            self._count_written([item])

    def _count_written(self, items: Iterable[_Entry | bytes]) -> None:
        events = raws = 0
        for item in items:
            if isinstance(item, bytes):
                raws += 1
            elif item.seq > 0:
                events += 1
        with self._lock:
            self._written += events
            self._raw_writes += raws

    async def _send(self, stream: _Stream, data: bytes) -> None:
        await _write(stream.writer, b"%x\r\n%b\r\n" % (len(data), data))

    async def _send_error(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        message: str | None = None,
        code: str | None = None,
    ) -> None:
        default_message, default_code = _ERRORS.get(
            status, (HTTPStatus(status).phrase, f"HTTP_{status}")
        )
        body = {"error": message or default_message, "code": code or default_code, "status": status}
        await _send_response(writer, status, orjson.dumps(body))

    # Loop-side actions of the fault switches ------------------------------------

    def _fan_out(self, entry: _Entry) -> None:
        for stream in list(self._streams):
            if entry.seq > stream.snapshot_seq and not stream.dead and stream.wants(entry.type):
                self._enqueue(stream, entry)

    def _enqueue(self, stream: _Stream, item: _Entry | bytes) -> bool:
        try:
            stream.queue.put_nowait(item)
        except asyncio.QueueFull:
            stream.writer.transport.abort()
            with self._lock:
                self._streams.discard(stream)
                self._slow_drops += 1
            return False
        return True

    async def _queue_raw(self, data: bytes) -> int:
        return sum(self._enqueue(stream, data) for stream in list(self._streams) if not stream.dead)

    async def _kill_streams(self) -> None:
        for stream in list(self._streams):
            stream.dead = True

    async def _drop_streams(self, *, mid_event: bool) -> int:
        streams = list(self._streams)
        if mid_event:
            for stream in streams:
                stream.cut_next = True
            return len(streams)
        for stream in streams:
            stream.writer.transport.abort()
        tasks = [stream.task for stream in streams if stream.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=_SHUTDOWN_TIMEOUT_S)
        return len(streams)


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """Read one request head; ``None`` if the client closed before sending one.

    Raises:
        _RequestError: a malformed (400) or oversized (431) head.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as error:
        raise _RequestError(431) from error
    lines = head.decode("latin-1").split("\r\n")
    request_line = lines[0].split(" ")
    if len(request_line) != 3 or not request_line[2].startswith("HTTP/1."):
        raise _RequestError(400)
    method, target, _ = request_line
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise _RequestError(400)
        headers[name.strip().lower()] = value.strip()
    url = urlsplit(target)
    query = {
        name: values[0] for name, values in parse_qs(url.query, keep_blank_values=True).items()
    }
    return _Request(method, url.path, query, headers)


async def _wait_for_hangup(reader: asyncio.StreamReader) -> None:
    """Return when the client closes its side (anything it sends is ignored)."""
    with contextlib.suppress(OSError):
        while await reader.read(4096):
            pass


async def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def _send_response(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "content-type: application/json; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    await _write(writer, head.encode("latin-1") + body)


def _take_queued(queue: asyncio.Queue[_Entry | bytes], items: list[_Entry | bytes]) -> None:
    while len(items) < _WRITE_BATCH and not queue.empty():
        items.append(queue.get_nowait())


def _render(item: _Entry | bytes, newline: bytes) -> bytes:
    if isinstance(item, bytes):
        return item
    lines = (
        b"event: " + item.type.encode(),
        b"id: " + item.id.encode(),
        b"data: " + item.data,
    )
    return newline.join(lines) + newline + newline


def _split(frame: bytes, rng: random.Random) -> list[bytes]:
    """Cut ``frame`` at a few random positions plus the two hardest places for a parser."""
    cuts = set(rng.sample(range(1, len(frame)), min(len(frame) - 1, rng.randint(1, 4))))
    crlf = frame.find(b"\r\n")
    if crlf >= 0:
        cuts.add(crlf + 1)
    multibyte_start = next((i for i, byte in enumerate(frame) if byte >= 0xC0), -1)
    if multibyte_start >= 0:
        cuts.add(multibyte_start + 1)
    bounds = [0, *sorted(cuts), len(frame)]
    return [frame[start:end] for start, end in itertools.pairwise(bounds)]


def _parse_filter(events: str | None) -> frozenset[str] | None:
    """The event types a stream wants; ``None`` for all."""
    if events is None:
        return None
    names = frozenset(name.strip() for name in events.split(","))
    if "*" in names or names <= {""}:
        return None
    return names - {""}


def _int_field(payload: Mapping[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _str_field(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    return value if isinstance(value, str) else None


def _iso(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
