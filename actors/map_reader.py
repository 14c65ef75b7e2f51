"""The reader thread of a ``map:{slug}`` connection: one attempt, from the cursor to the end.

It does every blocking step in order and hands off the results:

1. asks the journal for the map's committed cursor
   (:class:`~actors.protocol.GetCursor`), so that a reconnection resumes
   exactly after what is safely journaled;
2. when the actor says a resync is due, fetches the map's systems and tracked
   characters over REST (each answer capped at ``max_rest_bytes``, decoded
   with orjson; a bad answer is rejected and journaled like a bad event) and
   hands them to the actor (:class:`Bootstrapped`);
3. opens the stream with ``requests`` (``stream=True``; connect and read
   timeouts), sending the cursor both as the ``last_event_id`` query
   parameter (the only one the server reads) and as ``Last-Event-ID``, and
   asking for no compression (a stream compressed anyway is decoded);
4. reads chunks as they arrive into a :class:`~realtime.sse.SseParser`
   (events split across chunks and several per chunk are both normal),
   decodes them with :func:`~realtime.map_events.decode_map_event` and hands
   each chunk's events and rejects to the journal as one
   :class:`~actors.protocol.Ingest` carrying the new :class:`Cursor`, so
   that the resume point is committed with the events it covers (waiting,
   reading nothing, while the journal cannot take it).

How the attempt ended goes to the actor last, as for every
:class:`~actors.connection.ReaderThread`: :class:`JournalSilent`,
:class:`HttpFailed`, :class:`StreamEnded`, or a plain
:class:`~actors.connection.Ended`.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final

import orjson
import pykka
import requests
import urllib3

from actors.connection import SUPERSEDED, ConnectionMessage, Ended, ReaderThread, describe
from actors.protocol import Bootstrap, GetCursor, Ingest, Names
from actors.source_support import IngestGate, RejectLog
from realtime.event import Cursor, Event, Reject
from realtime.keys import Strategy
from realtime.map_events import (
    MapControl,
    decode_map_event,
    is_resume_point,
    parse_systems,
    parse_tracked_characters,
    stream_headers,
    stream_url,
)
from realtime.sse import SseComment, SseEvent, SseParser, SseStatistics
from supervision import Registry

READ_SIZE: Final = 65_536
"""Most bytes one read takes from the socket; a read returns what has arrived."""

_ERROR_BODY_BYTES: Final = 2048
_CURSOR_ASK_TIMEOUT_S: Final = 5.0


# -- how an attempt ends, and messages from the reader thread --------------------------


@dataclass(frozen=True, slots=True)
class JournalSilent(Ended):
    """The journal did not answer the cursor ask: retried soon, not the map's fault."""


@dataclass(frozen=True, slots=True)
class HttpFailed(Ended):
    """The server answered something else than an event stream: retried by status."""

    status: int | None = None


@dataclass(frozen=True, slots=True)
class StreamEnded(Ended):
    """An open stream ended; ``at_least_s`` is the stream's ``retry`` field, if it sent one."""


@dataclass(frozen=True, slots=True)
class Bootstrapped(ConnectionMessage):
    """The map's tracked state, fetched over REST."""

    bootstrap: Bootstrap


@dataclass(frozen=True, slots=True)
class Opened(ConnectionMessage):
    """The event stream is open, resuming after ``cursor`` (``None``: from now)."""

    cursor: str | None


@dataclass(frozen=True, slots=True)
class StreamConnected(ConnectionMessage):
    """The stream's ``connected`` greeting arrived."""

    control: MapControl


@dataclass(slots=True)
class Shared:
    """What reader threads and the actor share; guarded by ``lock``."""

    lock: threading.Lock
    last_activity_at: float = 0.0
    frames: int = 0
    events: int = 0
    rejects: dict[str, int] = dataclasses.field(default_factory=dict)
    parser: SseStatistics | None = None
    last_event_id: str = ""


@dataclass(frozen=True, slots=True)
class Settings:
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
    max_rest_bytes: int
    max_depth: int


# -- the reader thread -----------------------------------------------------------------


class MapReader(ReaderThread):
    """One connection attempt and, if it opens, its stream; see the module docstring."""

    def __init__(
        self,
        owner: pykka.ActorRef[Any],
        generation: int,
        gate: IngestGate,
        *,
        name: str,
        settings: Settings,
        bootstrap: bool,
        shared: Shared,
        registry: Registry,
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
                return JournalSilent("journal_unavailable", describe(error))
            if answer is not None and not isinstance(answer, str):
                # The journal cannot give it now (it says why: Refused).
                return JournalSilent("journal_unavailable", f"the journal answered {answer!r}")
            cursor = answer or None
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
        documents: list[tuple[object, bytes]] = []
        for endpoint in ("systems", "tracked-characters"):
            document = self._fetch_document(session, endpoint)
            if isinstance(document, Ended):
                return document
            documents.append(document)
        (systems_document, systems_raw), (characters_document, characters_raw) = documents
        try:
            systems = {
                s.solar_system_id: s.name or s.original_name or ""
                for s in parse_systems(systems_document)
            }
        except ValueError as error:
            return self._bad_input("invalid_rest_answer", f"GET systems: {error}", systems_raw)
        try:
            characters = {
                c.eve_id: c.name or ""
                for c in parse_tracked_characters(characters_document)
                if c.tracked
            }
        except ValueError as error:
            detail = f"GET tracked-characters: {error}"
            return self._bad_input("invalid_rest_answer", detail, characters_raw)
        bootstrap = Bootstrap(self._settings.slug, systems, characters)
        return None if self.post(Bootstrapped(self.generation, bootstrap)) else SUPERSEDED

    def _fetch_document(
        self, session: requests.Session, endpoint: str
    ) -> tuple[object, bytes] | Ended:
        """One REST answer, decoded, with its bytes; or how the attempt ended.

        At most ``max_rest_bytes`` are read (decompressed); a longer answer,
        or one that is not JSON, is bad input: rejected, journaled, counted.
        """
        settings = self._settings
        url = f"{settings.base_url.rstrip('/')}/api/maps/{settings.slug}/{endpoint}"
        headers = stream_headers(settings.api_key, None)
        headers["Accept"] = "application/json"
        try:
            response = session.get(
                url,
                headers=headers,
                stream=True,
                timeout=(settings.connect_timeout_s, settings.read_timeout_s),
            )
        except requests.RequestException as error:
            return Ended("connection_lost", f"GET {endpoint}: {describe(error)}")
        with response:
            if response.status_code != 200:
                reason = f"GET {endpoint} answered {response.status_code}: {_excerpt(response)}"
                return HttpFailed(
                    "http", reason, _retry_after(response), status=response.status_code
                )
            try:
                body = response.raw.read(settings.max_rest_bytes + 1, decode_content=True)
            except (urllib3.exceptions.HTTPError, OSError) as error:
                return Ended("connection_lost", f"GET {endpoint}: {describe(error)}")
        if len(body) > settings.max_rest_bytes:
            detail = f"GET {endpoint}: the answer exceeds max_rest_bytes {settings.max_rest_bytes}"
            return self._bad_input("rest_answer_too_large", detail, body)
        try:
            return orjson.loads(body), body
        except orjson.JSONDecodeError as error:
            return self._bad_input(
                "invalid_rest_answer", f"GET {endpoint}: not JSON: {error}", body
            )

    def _bad_input(self, reason: str, detail: str, raw: bytes) -> Ended:
        """Reject a REST answer (journaled and counted like a bad event); the attempt ends."""
        settings = self._settings
        reject = Reject(
            settings.source, reason, detail, raw[: settings.max_reject_bytes], time.monotonic_ns()
        )
        self._rejects.note(reject)
        with self._shared.lock:
            self._shared.rejects[reason] = self._shared.rejects.get(reason, 0) + 1
        if not self.deliver(Ingest(settings.source, rejects=(reject,))):
            return SUPERSEDED
        return Ended("bad_input", detail)

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
                return HttpFailed(
                    "http", reason, _retry_after(response), status=response.status_code
                )
            if content_type.split(";")[0].strip().lower() != "text/event-stream":
                reason = f"the stream request answered 200 with {content_type or 'no'} content type"
                return HttpFailed("http", reason, status=200)
            connection = getattr(response.raw, "connection", None)
            sock = getattr(connection, "sock", None)
            if not self.hold_socket(sock if isinstance(sock, socket.socket) else None):
                return SUPERSEDED
            if not self.post(Opened(self.generation, cursor)):
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
            return StreamEnded(kind, reason, None if retry_ms is None else retry_ms / 1000.0)

    def _read(self, response: requests.Response, parser: SseParser) -> tuple[str, str]:
        """Read until the stream ends: why, and the kind of error it is."""
        raw = response.raw
        while True:
            try:
                # Decoded if the server compressed it anyway (it was asked not to).
                chunk = raw.read1(READ_SIZE, decode_content=True)
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
                max_depth=settings.max_depth,
            )
            if isinstance(decoded, MapControl):
                # Its id is newer than the backfill that follows: never a resume
                # point, except on a stream opened without one (no backfill),
                # where it marks the start: committed at once, a crash before
                # the first event is journaled resumes from there, losing nothing.
                self._connected_id = item.last_event_id
                if self._fresh_start and is_resume_point(item.last_event_id):
                    cursor = item.last_event_id
                if not self.post(StreamConnected(self.generation, decoded)):
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
