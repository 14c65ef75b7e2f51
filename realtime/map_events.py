"""A Wanderer map's stream and REST bootstrap, decoded into domain values.

:func:`decode_map_event` turns one :class:`~realtime.sse.SseEvent` into an
:class:`~realtime.event.Event`, a :class:`~realtime.event.Reject` or, for the
stream's ``connected`` greeting, a :class:`MapControl`. :func:`parse_systems`
and :func:`parse_tracked_characters` read the REST answers that bootstrap what
a map tracks. :func:`stream_url` and :func:`stream_headers` build the request
that opens the stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote

import orjson

from realtime.event import Event, Priority, Reject, map_source, parse_time
from realtime.ids import as_id, is_int
from realtime.json_depth import DEFAULT_JSON_DEPTH, nesting_exceeds
from realtime.keys import Strategy, event_key
from realtime.sse import SseEvent

CONNECTED: Final = "connected"
"""The SSE type of the stream's greeting, a control message rather than an event."""

KNOWN_MAP_EVENTS = frozenset(
    {
        "add_system",
        "deleted_system",
        "system_renamed",
        "system_metadata_changed",
        "connection_added",
        "connection_removed",
        "connection_updated",
        "character_added",
        "character_removed",
        "character_updated",
        "character_location_changed",
        "character_online_status_changed",
        "character_ship_changed",
        "character_ready_status_changed",
        "signature_added",
        "signature_removed",
        "signatures_updated",
        "map_kill",
        "acl_member_added",
        "acl_member_removed",
        "acl_member_updated",
        "rally_point_added",
        "rally_point_removed",
    }
)
"""The event types a Wanderer map sends besides ``connected``."""

DEFAULT_MAP_EVENTS: tuple[str, ...] = (
    "add_system",
    "deleted_system",
    "system_renamed",
    "character_added",
    "character_removed",
    "character_updated",
    "map_kill",
    "rally_point_added",
)
"""What the notifier needs when ``[[maps]] events = []``: the systems and
characters that drive the kill subscription and the notifications, the map's
own kills (the cross-source duplicate that covers a kill-feed outage), and
rally points."""

DEFAULT_MAX_RAW_BYTES = 65_536
"""How much of a rejected event's data is kept in the :class:`Reject`."""

_PRIORITY_NEEDED = Priority.HIGH
_PRIORITY_KNOWN = Priority.NORMAL
_PRIORITY_UNKNOWN = Priority.LOW


def map_event_priority(type_: str) -> Priority:
    """``HIGH`` for what the notifier needs, ``NORMAL`` for other known types, else ``LOW``.

    Unknown types are kept (a newer server may send them) but are the first
    to be shed: nothing routes them.
    """
    if type_ in DEFAULT_MAP_EVENTS:
        return _PRIORITY_NEEDED
    if type_ in KNOWN_MAP_EVENTS:
        return _PRIORITY_KNOWN
    return _PRIORITY_UNKNOWN


@dataclass(frozen=True, slots=True)
class MapControl:
    """The stream's ``connected`` greeting.

    Attributes:
        type: always ``connected``.
        map_id: the map's UUID as the server names it ("" when absent).
        server_time: the server's clock, Unix seconds, when it sent an ISO
            8601 time; ``None`` otherwise (it is informational only).
    """

    type: Literal["connected"]
    map_id: str
    server_time: float | None


class _RejectedError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode_map_event(
    slug: str,
    sse: SseEvent,
    received_at_ns: int,
    strategies: Mapping[str, Strategy],
    default_strategy: Strategy,
    *,
    max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES,
    max_depth: int = DEFAULT_JSON_DEPTH,
) -> Event | Reject | MapControl:
    """Decode one SSE event of the map ``slug``.

    The ``data`` of every event but ``connected`` is the envelope
    ``{"id","type","map_id","timestamp","payload"}``. The event's ``id`` is the
    SSE id, its ``type`` the SSE type, its ``time`` the envelope timestamp,
    its ``data`` the payload with the envelope's ``map_id`` added (the
    envelope's value wins over a payload field of that name), its key
    :func:`~realtime.keys.event_key` under ``strategies[type]`` or
    ``default_strategy``, its priority :func:`map_event_priority`. A type
    outside :data:`KNOWN_MAP_EVENTS` still decodes.

    Never raises: input that cannot become an event becomes a reject.
    Reject reasons, checked in this order:

    - ``too_deep``: data nested deeper than ``max_depth`` (checked before it
      is parsed, as the kill feed's frames are);
    - ``invalid_json``: data is not JSON (or not UTF-8 text JSON accepts);
    - ``not_an_object``: the JSON is not an object;
    - ``invalid_map_id``: ``map_id`` is present and not a string;
    - ``missing_event_id``: no SSE id, or no string ``id`` in the envelope;
    - ``mismatched_event_id``: the envelope ``id`` differs from the SSE id
      (an event without its own ``id:`` line carries the previous one);
    - ``mismatched_type``: the envelope ``type`` is present and differs from
      the SSE type;
    - ``missing_timestamp`` / ``invalid_timestamp``: absent, or not an ISO
      8601 string;
    - ``missing_payload`` / ``invalid_payload``: absent or null, or not an object;
    - ``missing_killmail_id``: a ``map_kill`` whose payload has no integer
      ``killmail_id``;
    - ``internal_error``: a bug in this decoder (the event is kept as a reject
      rather than lost with a crash).

    The reject keeps at most ``max_raw_bytes`` of the data.
    """
    source = map_source(slug)
    try:
        if nesting_exceeds(sse.data, max_depth):
            raise _RejectedError("too_deep", f"nested deeper than max_depth {max_depth}")
        envelope = _object(sse.data)
        if sse.type == CONNECTED:
            return _control(envelope)
        return _event(
            source,
            sse,
            envelope,
            received_at_ns=received_at_ns,
            strategy=strategies.get(sse.type, default_strategy),
        )
    except _RejectedError as rejected:
        reason, detail = rejected.reason, rejected.detail
    except Exception as error:  # noqa: BLE001 -- a decoder bug must not lose the event
        reason, detail = "internal_error", f"{type(error).__name__}: {error}"
    return Reject(
        source=source,
        reason=reason,
        detail=f"{sse.type} {sse.last_event_id or '(no id)'}: {detail}",
        raw=sse.data.encode("utf-8", "replace")[:max_raw_bytes],
        received_at=received_at_ns,
    )


def _object(data: str) -> dict[str, Any]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise _RejectedError("invalid_json", f"data is not JSON: {error}") from None
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise _RejectedError("not_an_object", f"data is a JSON {kind}, not an object")
    return document


def _map_id(envelope: Mapping[str, Any]) -> str | None:
    map_id = envelope.get("map_id")
    if map_id is not None and not isinstance(map_id, str):
        raise _RejectedError("invalid_map_id", f"map_id is {map_id!r}, not a string")
    return map_id


def _control(envelope: Mapping[str, Any]) -> MapControl:
    server_time = envelope.get("server_time")
    seconds: float | None = None
    if isinstance(server_time, str):
        try:
            seconds = parse_time(server_time)
        except ValueError:
            seconds = None
    return MapControl(type=CONNECTED, map_id=_map_id(envelope) or "", server_time=seconds)


def _event(
    source: str,
    sse: SseEvent,
    envelope: Mapping[str, Any],
    *,
    received_at_ns: int,
    strategy: Strategy,
) -> Event:
    map_id = _map_id(envelope)
    event_id = sse.last_event_id
    envelope_id = envelope.get("id")
    if not event_id:
        raise _RejectedError("missing_event_id", "the SSE event has no id")
    if not isinstance(envelope_id, str) or not envelope_id:
        raise _RejectedError("missing_event_id", "the envelope has no string id")
    if envelope_id != event_id:
        raise _RejectedError(
            "mismatched_event_id", f"envelope id {envelope_id!r} is not the SSE id {event_id!r}"
        )
    envelope_type = envelope.get("type", sse.type)
    if envelope_type != sse.type:
        raise _RejectedError(
            "mismatched_type", f"envelope type {envelope_type!r} is not the SSE type"
        )
    time = _timestamp(envelope)
    payload = envelope.get("payload")
    if payload is None:
        raise _RejectedError("missing_payload", "the envelope has no payload")
    if not isinstance(payload, dict):
        raise _RejectedError("invalid_payload", f"payload is a {type(payload).__name__}")
    if sse.type == "map_kill" and not is_int(payload.get("killmail_id")):
        found = payload.get("killmail_id")
        raise _RejectedError("missing_killmail_id", f"killmail_id is {found!r}, not an integer")
    data = dict(payload)
    if map_id is not None:
        data["map_id"] = map_id
    return Event(
        id=event_id,
        source=source,
        type=sse.type,
        time=time,
        received_at=received_at_ns,
        key=event_key(source, sse.type, event_id, data, strategy),
        priority=map_event_priority(sse.type),
        data=data,
    )


def _timestamp(envelope: Mapping[str, Any]) -> float:
    timestamp = envelope.get("timestamp")
    if timestamp is None:
        raise _RejectedError("missing_timestamp", "the envelope has no timestamp")
    if not isinstance(timestamp, str):
        raise _RejectedError("invalid_timestamp", f"timestamp is {timestamp!r}, not a string")
    try:
        return parse_time(timestamp)
    except ValueError:
        raise _RejectedError(
            "invalid_timestamp", f"timestamp {timestamp!r} is not ISO 8601"
        ) from None


# --- REST bootstrap ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapSystem:
    """A system on the map, from ``GET /api/maps/{slug}/systems``.

    Optional fields the server omits, or sends with the wrong type, are
    ``None`` (``locked`` defaults to ``False``, ``visible`` to ``True``).
    ``labels`` decodes the JSON-encoded string the server sends: a list of
    strings, or an object whose ``labels`` is one; anything else is no labels.
    """

    solar_system_id: int
    name: str | None = None
    original_name: str | None = None
    custom_name: str | None = None
    temporary_name: str | None = None
    status: int | None = None
    position_x: float | None = None
    position_y: float | None = None
    locked: bool = False
    visible: bool = True
    labels: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        """The name a map user sees: temporary, custom, name, original, else the id."""
        for candidate in (self.temporary_name, self.custom_name, self.name, self.original_name):
            if candidate:
                return candidate
        return str(self.solar_system_id)


@dataclass(frozen=True, slots=True)
class TrackedCharacter:
    """A character the map tracks, from ``GET /api/maps/{slug}/tracked-characters``.

    Attributes:
        eve_id: the EVE character id (``character.eve_id``, sent as a string).
        character_id: the map's internal UUID for the character.
        tracked: the entry's ``tracked`` flag (``True`` when absent).
    """

    eve_id: int
    name: str | None = None
    corporation_id: int | None = None
    corporation_ticker: str | None = None
    alliance_id: int | None = None
    alliance_ticker: str | None = None
    character_id: str | None = None
    tracked: bool = True


def parse_systems(document: object) -> list[MapSystem]:
    """The systems of a decoded ``{"data": {"systems": [...], ...}}`` answer.

    Raises:
        ValueError: the document does not have that shape, or a system has
            no integer ``solar_system_id`` (a decimal string is accepted).
    """
    data = document.get("data") if isinstance(document, dict) else None
    systems = data.get("systems") if isinstance(data, dict) else None
    if not isinstance(systems, list):
        msg = f'expected {{"data": {{"systems": [...]}}}}, got {_shape(document)}'
        raise ValueError(msg)
    return [_system(index, entry) for index, entry in enumerate(systems)]


def _system(index: int, entry: object) -> MapSystem:
    if not isinstance(entry, dict):
        msg = f"systems[{index}] is a {_shape(entry)}, not an object"
        raise ValueError(msg)
    system_id = as_id(entry.get("solar_system_id"))
    if system_id is None:
        msg = f"systems[{index}] has no integer solar_system_id: {entry.get('solar_system_id')!r}"
        raise ValueError(msg)
    locked = entry.get("locked")
    visible = entry.get("visible")
    status = entry.get("status")
    return MapSystem(
        solar_system_id=system_id,
        name=_as_str(entry.get("name")),
        original_name=_as_str(entry.get("original_name")),
        custom_name=_as_str(entry.get("custom_name")),
        temporary_name=_as_str(entry.get("temporary_name")),
        status=status if is_int(status) else None,
        position_x=_as_float(entry.get("position_x")),
        position_y=_as_float(entry.get("position_y")),
        locked=locked if isinstance(locked, bool) else False,
        visible=visible if isinstance(visible, bool) else True,
        labels=_labels(entry.get("labels")),
    )


def _labels(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return ()
    if isinstance(value, dict):
        value = value.get("labels")
    if isinstance(value, list):
        return tuple(label for label in value if isinstance(label, str) and label)
    return ()


def parse_tracked_characters(document: object) -> list[TrackedCharacter]:
    """The characters of a decoded ``{"data": [{..., "character": {...}}]}`` answer.

    Raises:
        ValueError: the document does not have that shape, or an entry has
            no ``character`` object with a decimal ``eve_id``.
    """
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        msg = f'expected {{"data": [...]}}, got {_shape(document)}'
        raise ValueError(msg)
    return [_tracked_character(index, entry) for index, entry in enumerate(entries)]


def _tracked_character(index: int, entry: object) -> TrackedCharacter:
    if not isinstance(entry, dict):
        msg = f"data[{index}] is a {_shape(entry)}, not an object"
        raise ValueError(msg)
    character = entry.get("character")
    if not isinstance(character, dict):
        msg = f"data[{index}] has no character object"
        raise ValueError(msg)
    eve_id = as_id(character.get("eve_id"))
    if eve_id is None:
        msg = f"data[{index}].character has no decimal eve_id: {character.get('eve_id')!r}"
        raise ValueError(msg)
    tracked = entry.get("tracked")
    return TrackedCharacter(
        eve_id=eve_id,
        name=_as_str(character.get("name")),
        corporation_id=as_id(character.get("corporation_id")),
        corporation_ticker=_as_str(character.get("corporation_ticker")),
        alliance_id=as_id(character.get("alliance_id")),
        alliance_ticker=_as_str(character.get("alliance_ticker")),
        character_id=_as_str(entry.get("character_id")),
        tracked=tracked if isinstance(tracked, bool) else True,
    )


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_float(value: object) -> float | None:
    """A JSON number as a float; ``None`` for anything else, or an integer too large for one."""
    if isinstance(value, float):
        return value
    if not is_int(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _shape(value: object) -> str:
    if isinstance(value, dict):
        return "object with keys " + ", ".join(sorted(map(str, value))[:8])
    return type(value).__name__


# --- the stream request -----------------------------------------------------------


def stream_url(base_url: str, slug: str, events: Sequence[str], last_event_id: str | None) -> str:
    """The URL of the map's event stream.

    ``events`` becomes ``events=a,b,c`` (omitted when empty: the server then
    sends every type; pass :data:`DEFAULT_MAP_EVENTS` for the defaults). A
    non-empty ``last_event_id`` becomes ``last_event_id=...``: the server reads
    the resume point only from there. ``base_url`` has no query string.

    Raises:
        ValueError: an event type is empty or contains a comma.
    """
    for name in events:
        if not name or "," in name:
            msg = f"event type {name!r} cannot go in an events= list"
            raise ValueError(msg)
    url = f"{base_url.rstrip('/')}/api/maps/{quote(slug, safe='')}/events/stream"
    query = []
    if events:
        query.append("events=" + ",".join(quote(name, safe="*") for name in events))
    if last_event_id:
        query.append("last_event_id=" + quote(last_event_id, safe=""))
    return f"{url}?{'&'.join(query)}" if query else url


def stream_headers(api_key: str, last_event_id: str | None) -> dict[str, str]:
    """The headers that open the stream.

    ``Authorization: Bearer`` is sent only with a non-empty ``api_key`` (a
    loopback demo map may need none); ``Last-Event-ID`` only with a non-empty
    id. ``Cache-Control: no-cache`` keeps proxies from serving a stale stream;
    ``Accept-Encoding: identity`` asks them not to compress it (a compressed
    event stream arrives in bursts, when the compressor flushes).

    Raises:
        ValueError: the key or the id contains CR, LF or NUL, which would
            split or truncate the header.
    """
    headers = {
        "Accept": "text/event-stream",
        "Accept-Encoding": "identity",
        "Cache-Control": "no-cache",
    }
    if api_key:
        headers["Authorization"] = f"Bearer {_header_value('api_key', api_key)}"
    if last_event_id:
        headers["Last-Event-ID"] = _header_value("last_event_id", last_event_id)
    return headers


def _header_value(name: str, value: str) -> str:
    if any(character in value for character in "\r\n\0"):
        msg = f"{name} contains CR, LF or NUL and cannot be sent in a header"
        raise ValueError(msg)
    return value


_ULID_LENGTH: Final = 26
_CROCKFORD: Final = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def is_resume_point(event_id: str) -> bool:
    """Whether the map server can resume after ``event_id``: a ULID (any case).

    The server reads the resume point as a ULID and replays nothing after one
    it cannot read, so any other id (garbage on the stream) must never replace
    the cursor: a reconnection would then silently skip the backfill.
    """
    return (
        len(event_id) == _ULID_LENGTH
        and event_id[0] <= "7"
        and all(char in _CROCKFORD for char in event_id.upper())
    )
