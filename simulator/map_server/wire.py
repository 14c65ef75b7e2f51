"""The map server's wire: HTTP/1.1 request heads and answers, SSE events and framing.

Pure functions over asyncio streams and bytes; no server state. An SSE
response is written chunk by chunk (``Transfer-Encoding: chunked``): each
:func:`chunk` is one HTTP chunk, which the server sends as one TCP write, so
the :data:`Framing` modes decide exactly where a client's reads are cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import orjson

Framing = Literal["lf", "crlf", "cr", "split", "coalesce"]
"""How events are laid out on the wire.

- ``lf`` / ``crlf`` / ``cr``: that line terminator, one event per write;
- ``split``: CRLF lines, each event cut into several writes at seeded random
  byte positions, always including a cut inside the first multi-byte UTF-8
  character and one between the first CR and its LF;
- ``coalesce``: LF lines, every event queued within a short linger written
  together in one write.
"""

NEWLINES: Mapping[Framing, bytes] = {
    "lf": b"\n",
    "crlf": b"\r\n",
    "cr": b"\r",
    "split": b"\r\n",
    "coalesce": b"\n",
}
"""The line terminator of each framing."""

MAX_REQUEST_HEAD = 16 * 1024
"""A longer request head is answered 431."""

ERRORS: Mapping[int, tuple[str, str]] = {
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
"""The real server's ``error`` message and ``code`` for each status it answers."""

STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"connection: keep-alive\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)
"""The head of an accepted event stream."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One event as retained and as written: its envelope already encoded.

    ``seq`` 0 marks the ``connected`` event, which is not a map event.
    """

    seq: int
    id: str
    type: str
    data: bytes
    time_ms: int


@dataclass(frozen=True, slots=True)
class Request:
    """A request head: the method, the path, the query (first values) and the headers
    (lower-case names)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


class RequestError(Exception):
    """A request head that cannot be served: answer ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request head; ``None`` if the client closed before sending one.

    Raises:
        RequestError: a malformed (400) or oversized (431) head.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as error:
        raise RequestError(431) from error
    lines = head.decode("latin-1").split("\r\n")
    request_line = lines[0].split(" ")
    if len(request_line) != 3 or not request_line[2].startswith("HTTP/1."):
        raise RequestError(400)
    method, target, _ = request_line
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise RequestError(400)
        headers[name.strip().lower()] = value.strip()
    url = urlsplit(target)
    query = {
        name: values[0] for name, values in parse_qs(url.query, keep_blank_values=True).items()
    }
    return Request(method, url.path, query, headers)


async def wait_for_hangup(reader: asyncio.StreamReader) -> None:
    """Return when the client closes its side (anything it sends is ignored)."""
    with contextlib.suppress(OSError):
        while await reader.read(4096):
            pass


async def write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write ``data`` and wait until it is handed to the kernel."""
    writer.write(data)
    await writer.drain()


async def send_response(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    """A whole JSON answer, after which the connection closes."""
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "content-type: application/json; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    await write(writer, head.encode("latin-1") + body)


async def send_error(
    writer: asyncio.StreamWriter, status: int, message: str | None = None, code: str | None = None
) -> None:
    """The JSON error ``{"error", "code", "status"}`` (by default the real server's)."""
    default_message, default_code = ERRORS.get(
        status, (HTTPStatus(status).phrase, f"HTTP_{status}")
    )
    body = {"error": message or default_message, "code": code or default_code, "status": status}
    await send_response(writer, status, orjson.dumps(body))


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP chunk."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def render(item: Entry | bytes, newline: bytes) -> bytes:
    """An event as SSE lines (``event``, ``id``, ``data``) and a blank line; bytes as is."""
    if isinstance(item, bytes):
        return item
    lines = (
        b"event: " + item.type.encode(),
        b"id: " + item.id.encode(),
        b"data: " + item.data,
    )
    return newline.join(lines) + newline + newline


def split(frame: bytes, rng: random.Random) -> list[bytes]:
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


def parse_filter(events: str | None) -> frozenset[str] | None:
    """The event types a stream wants (the ``events`` query parameter); ``None`` for all."""
    if events is None:
        return None
    names = frozenset(name.strip() for name in events.split(","))
    if "*" in names or names <= {""}:
        return None
    return names - {""}


def iso(unix_seconds: float) -> str:
    """The server's timestamp format: ISO 8601 UTC with microseconds and ``Z``."""
    return datetime.fromtimestamp(unix_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
