"""What a simulated map holds and decides: its contents, its event log, the fault
switches, the counters, and who may connect.

One :class:`MapState` is shared by the control API (:class:`~simulator.map_server.MapServer`,
any thread) and the serving loop (:mod:`simulator.map_server.serving`); every
method expects the caller to hold :attr:`MapState.lock` unless it says otherwise.
"""

from __future__ import annotations

import collections
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from simulator import ulid
from simulator.map_server.wire import ERRORS, Entry, Framing, Request, iso


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
class MapLimits:
    """The bounds of one map's state and of what it replays (see :class:`MapServer`)."""

    retention_s: float
    max_backfill: int
    max_connections: int
    max_retained: int
    max_recorded_attempts: int
    max_systems: int
    max_characters: int


class MapState:
    """One map's contents, event log, fault switches and counters, guarded by :attr:`lock`."""

    def __init__(
        self,
        *,
        slug: str,
        map_id: str,
        api_key: str,
        limits: MapLimits,
        clock: Callable[[], float],
        seed: int,
        static_info: Callable[[int], Mapping[str, Any] | None],
    ) -> None:
        self.lock = threading.Lock()
        self.slug = slug
        self.map_id = map_id
        self.api_key = api_key
        self.limits = limits
        self.clock = clock
        self.ulids = ulid.UlidGenerator(clock, random.Random(seed))
        self.static_info = static_info

        self.systems: dict[int, MapSystem] = {}
        self.characters: dict[int, MapCharacter] = {}
        self.log: deque[Entry] = deque(maxlen=limits.max_retained)
        self.seq = 0

        # Fault switches.
        self.framing: Framing = "lf"
        self.keepalive_enabled = True
        self.silent = False
        self.fail_status = 0
        self.fail_remaining: int | None = 0
        self.static_info_failures: deque[int] = deque()

        # Counters.
        self.attempts: deque[ConnectAttempt] = deque(maxlen=limits.max_recorded_attempts)
        self.attempts_total = 0
        self.published = 0
        self.written = 0
        self.keepalives = 0
        self.raw_writes = 0
        self.slow_drops = 0
        self.rest_requests = 0
        self.static_info_requests: collections.Counter[int] = collections.Counter()

    # -- contents ---------------------------------------------------------------

    def put_system(self, system: MapSystem) -> None:
        """Put ``system`` on the map (replacing the one with its id).

        Raises:
            ValueError: the map already holds ``max_systems`` other systems.
        """
        bound = self.limits.max_systems
        if system.solar_system_id not in self.systems and len(self.systems) >= bound:
            msg = f"the map is full: {bound} systems"
            raise ValueError(msg)
        self.systems[system.solar_system_id] = system

    def put_character(self, character: MapCharacter) -> None:
        """Track ``character`` (replacing the one with its id).

        Raises:
            ValueError: the map already tracks ``max_characters`` others.
        """
        bound = self.limits.max_characters
        if character.eve_id not in self.characters and len(self.characters) >= bound:
            msg = f"the map is full: {bound} characters"
            raise ValueError(msg)
        self.characters[character.eve_id] = character

    def append(self, event_type: str, payload: Mapping[str, Any]) -> Entry:
        """Apply an event to the map and append it to the log (see :meth:`MapServer.publish`).

        Raises:
            ValueError: the payload is not JSON-serialisable, or the map is full.
        """
        now = self.clock()
        event_id = self.ulids.new()
        envelope = {
            "id": event_id,
            "type": event_type,
            "map_id": self.map_id,
            "timestamp": iso(now),
            "payload": dict(payload),
        }
        try:
            data = orjson.dumps(envelope)
        except TypeError as error:
            msg = f"the {event_type} payload is not JSON: {error}"
            raise ValueError(msg) from error
        self._apply(event_type, payload)
        self.seq += 1
        entry = Entry(self.seq, event_id, event_type, data, ulid.time_ms(event_id))
        self._prune(now)
        self.log.append(entry)
        self.published += 1
        return entry

    def connected(self) -> Entry:
        """A ``connected`` event: a fresh id newer than every event in the log."""
        data = orjson.dumps({"map_id": self.map_id, "server_time": iso(self.clock())})
        return Entry(0, self.ulids.new(), "connected", data, 0)

    def _apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        system_id = _int_field(payload, "solar_system_id")
        eve_id = _int_field(payload, "character_eve_id") or _int_field(payload, "eve_id")
        if event_type == "add_system" and system_id is not None:
            known = self.systems.get(system_id)
            name = payload.get("name")
            if not isinstance(name, str):
                name = known.name if known is not None else str(system_id)
            position_x = _int_field(payload, "position_x") or 0
            position_y = _int_field(payload, "position_y") or 0
            self.put_system(MapSystem(system_id, name, position_x, position_y))
        elif event_type == "deleted_system" and system_id is not None:
            self.systems.pop(system_id, None)
        elif event_type == "character_added" and eve_id is not None:
            name = payload.get("name")
            self.put_character(
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
            self.characters.pop(eve_id, None)

    def _prune(self, now: float) -> None:
        cutoff_ms = int((now - self.limits.retention_s) * 1000)
        while self.log and self.log[0].time_ms < cutoff_ms:
            self.log.popleft()

    def backfill(self, last_event_id: str | None, wanted: frozenset[str] | None) -> list[Entry]:
        """The oldest ``max_backfill`` retained events after ``last_event_id`` that
        ``wanted`` admits (none when it is not a ULID)."""
        if last_event_id is None or not ulid.is_ulid(last_event_id.upper()):
            return []
        after = last_event_id.upper()
        self._prune(self.clock())
        replay: list[Entry] = []
        for entry in self.log:
            if entry.id > after and (wanted is None or entry.type in wanted):
                replay.append(entry)
                if len(replay) == self.limits.max_backfill:
                    break
        return replay

    # -- REST bodies ------------------------------------------------------------

    def systems_body(self) -> dict[str, Any]:
        """The body of ``GET /api/maps/{map}/systems``."""
        systems = [self._system_json(s) for _, s in sorted(self.systems.items())]
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

    def characters_body(self) -> dict[str, Any]:
        """The body of ``GET /api/maps/{map}/tracked-characters``."""
        rows = []
        for eve_id, character in sorted(self.characters.items()):
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

    # -- who may connect ----------------------------------------------------------

    def refusal(self, request: Request, map_ref: str) -> int | None:
        """The error status for a request's credentials and map, or ``None``."""
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return 401
        if map_ref not in (self.slug, self.map_id):
            return 404
        if authorization.removeprefix("Bearer ") != self.api_key:
            return 401
        return None

    def stream_refusal(self, request: Request, map_ref: str, open_streams: int) -> int | None:
        """Decide a stream request and record it: the status to refuse with, or ``None``.

        A :meth:`MapServer.fail_next` failure comes first (before any
        authentication), then the credentials and map, then the connection limit.
        """
        status: int | None
        if self.fail_remaining is None or self.fail_remaining > 0:
            status = self.fail_status
            if self.fail_remaining is not None:
                self.fail_remaining -= 1
        else:
            status = self.refusal(request, map_ref)
        if status is None and open_streams >= self.limits.max_connections:
            status = 429
        self.attempts_total += 1
        self.attempts.append(
            ConnectAttempt(
                at=time.monotonic(),
                status=status or 200,
                last_event_id=request.query.get("last_event_id"),
                last_event_id_header=request.headers.get("last-event-id"),
                events=request.query.get("events"),
            )
        )
        return status

    def static_info_answer(self, request: Request) -> tuple[int, Mapping[str, Any]]:
        """``GET /api/common/system-static-info?id=``: the system's static data, or an error.

        Takes :attr:`lock` itself (the static-info source is called outside it).
        """
        raw_id = request.query.get("id", "")
        system_id = int(raw_id) if raw_id.isdigit() else None
        with self.lock:
            if system_id is not None:
                self.static_info_requests[system_id] += 1
            failure = self.static_info_failures.popleft() if self.static_info_failures else 0
        authorization = request.headers.get("authorization", "")
        if request.method != "GET":
            status = 405
        elif failure:
            status = failure
        elif authorization.removeprefix("Bearer ") != self.api_key:
            status = 401
        elif system_id is None:
            return 400, {"error": "Invalid system ID"}
        else:
            data = self.static_info(system_id)
            if data is None:
                return 404, {"error": "System not found"}
            return 200, {"data": data}
        message, code = ERRORS.get(status, ("Error", "ERROR"))
        return status, {"error": message, "code": code, "status": status}

    # -- counters -----------------------------------------------------------------

    def count_written(self, items: Iterable[Entry | bytes]) -> None:
        """Count map events (not ``connected``) and raw payloads written to a stream."""
        events = raws = 0
        for item in items:
            if isinstance(item, bytes):
                raws += 1
            elif item.seq > 0:
                events += 1
        self.written += events
        self.raw_writes += raws

    def statistics(self, open_streams: int) -> MapServerStatistics:
        """A snapshot of the counters (see :class:`MapServerStatistics`)."""
        return MapServerStatistics(
            connect_attempts=tuple(self.attempts),
            connect_attempts_total=self.attempts_total,
            open_streams=open_streams,
            events_published=self.published,
            events_written=self.written,
            keepalives_written=self.keepalives,
            raw_writes=self.raw_writes,
            slow_consumer_drops=self.slow_drops,
            retained_events=len(self.log),
            retained_capacity=self.log.maxlen or 0,
            rest_requests=self.rest_requests,
            systems=len(self.systems),
            characters=len(self.characters),
            static_info_requests=dict(self.static_info_requests),
        )


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
