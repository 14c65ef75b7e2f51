"""The Phoenix "V1" wire format: URLs, frames out, envelopes in.

The V1 JSON serializer (``vsn=1.0.0``) sends every message as one JSON object
``{"topic", "event", "payload", "ref"}``. :func:`connect_url` builds the
socket's URL, :func:`encode_frame` writes a frame and :func:`parse_frame`
reads one into its :class:`Envelope`, or says in a :class:`Malformed` why it
cannot (never raises on input).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from realtime.json_depth import nesting_exceeds
from realtime.kill_events import DETAIL_CHARS, RejectReason, describe, encode_text, quote

DEFAULT_TOPIC: Final = "killmails:lobby"
PROTOCOL_VSN: Final = "1.0.0"
SOCKET_PATH: Final = "/socket/websocket"


@dataclass(frozen=True, slots=True)
class Envelope:
    """The envelope of a Phoenix V1 frame."""

    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None


@dataclass(frozen=True, slots=True)
class Malformed:
    """Why a frame is not a V1 message: the reject's reason and its detail."""

    reason: RejectReason
    detail: str


def connect_url(base: str) -> str:
    """The WebSocket URL for a configured base URL.

    ``http(s)://host[:port][/prefix]`` becomes
    ``ws(s)://host[:port][/prefix]/socket/websocket?vsn=1.0.0`` (a path
    already ending in ``/socket/websocket`` is kept); a ``ws(s)://`` URL is
    kept as it is, with ``vsn=1.0.0`` added when it has no ``vsn``. Other
    query parameters are kept; a fragment is dropped.

    Raises:
        ValueError: another scheme, no host, or a ``vsn`` other than 1.0.0
            (this client speaks only the V1 JSON serializer).
    """
    parts = urlsplit(base.strip())
    scheme = parts.scheme.lower()
    path = parts.path
    if scheme in ("http", "https"):
        scheme = "ws" if scheme == "http" else "wss"
        path = path.rstrip("/")
        if not path.endswith(SOCKET_PATH):
            path += SOCKET_PATH
    elif scheme not in ("ws", "wss"):
        msg = f"{base!r} is not an http(s):// or ws(s):// URL"
        raise ValueError(msg)
    if not parts.hostname:
        msg = f"{base!r} has no host"
        raise ValueError(msg)
    query = parse_qsl(parts.query, keep_blank_values=True)
    versions = {value for name, value in query if name == "vsn"}
    if not versions:
        query.append(("vsn", PROTOCOL_VSN))
    elif versions != {PROTOCOL_VSN}:
        msg = f"{base!r} asks for vsn {sorted(versions)}; this client speaks {PROTOCOL_VSN}"
        raise ValueError(msg)
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def encode_frame(topic: str, event: str, payload: Mapping[str, Any], ref: str) -> str:
    """One V1 frame as text."""
    message = {"topic": topic, "event": event, "payload": payload, "ref": ref}
    return orjson.dumps(message).decode()


def parse_frame(frame: str | bytes, max_frame_bytes: int, max_depth: int) -> Envelope | Malformed:
    """The envelope of one inbound frame (text as ``str``, binary as ``bytes``).

    A frame over ``max_frame_bytes`` (its UTF-8 size) or nested deeper than
    ``max_depth`` is refused unparsed; then it must be a JSON object whose
    ``topic`` and ``event`` are strings, ``payload`` an object and ``ref`` a
    string or null. Binary frames are JSON too: one that does not parse is a
    ``binary_frame``, not ``invalid_json``.
    """
    binary = isinstance(frame, bytes)
    size = len(frame)
    if isinstance(frame, str) and size * 4 > max_frame_bytes:
        size = len(encode_text(frame))
    if size > max_frame_bytes:
        detail = f"{size} bytes exceed max_frame_bytes {max_frame_bytes}"
        return Malformed(RejectReason.FRAME_TOO_LARGE, detail)
    if nesting_exceeds(frame, max_depth):
        return Malformed(RejectReason.TOO_DEEP, f"nested deeper than max_depth {max_depth}")
    try:
        decoded = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        reason = RejectReason.BINARY_FRAME if binary else RejectReason.INVALID_JSON
        return Malformed(reason, str(exc))
    if not isinstance(decoded, dict):
        detail = f"the frame is {describe(decoded)}, not a Phoenix V1 object"
        return Malformed(RejectReason.NOT_AN_OBJECT, detail)
    return _envelope(decoded)


def reply_reason(response: Mapping[str, Any]) -> str:
    """The words of a refused reply: its ``reason``, else the whole response, bounded."""
    reason = response.get("reason")
    text = reason if isinstance(reason, str) else orjson.dumps(response).decode()
    return text[: DETAIL_CHARS * 4]


def _envelope(decoded: dict[str, Any]) -> Envelope | Malformed:
    topic = decoded.get("topic")
    event = decoded.get("event")
    payload = decoded.get("payload")
    ref = decoded.get("ref")
    if not isinstance(topic, str):
        problem = f"topic is {describe(topic)}, not a string"
    elif not isinstance(event, str):
        problem = f"event is {describe(event)}, not a string"
    elif not isinstance(payload, dict):
        problem = f"payload of {quote(event)} is {describe(payload)}, not an object"
    elif ref is not None and not isinstance(ref, str):
        problem = f"ref of {quote(event)} is {describe(ref)}, not a string or null"
    else:
        return Envelope(topic, event, payload, ref)
    return Malformed(RejectReason.INVALID_FRAME, problem)
