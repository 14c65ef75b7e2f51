"""The request that opens a map's stream: :func:`stream_url`,
:func:`stream_headers`, and :func:`is_resume_point`, whether an event id may
become the ``last_event_id`` the stream resumes after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from urllib.parse import quote


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
