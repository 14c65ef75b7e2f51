"""The map's event stream decoded: :func:`decode_map_event` turns one
:class:`~realtime.sse.SseEvent` into an :class:`~realtime.event.Event`, a
:class:`~realtime.event.Reject` or, for the stream's ``connected`` greeting, a
:class:`MapControl`; the event types the notifier asks for and their flow
priorities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from realtime.event import Event, Priority, Reject, map_source, parse_time
from realtime.ids import is_int
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
