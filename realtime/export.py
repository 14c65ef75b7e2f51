"""Export of journal events (``run.py events``) and the ``replay --file`` input.

Two formats carry the same fields for each event: ``seq``, ``id``, ``source``,
``type``, ``time``, ``received_at``, ``key``, ``priority`` (its name, lower
case: ``critical``, ``high``, ``normal``, ``low``), ``schema`` and ``data``.

- JSON Lines: one object a line; ``time`` is ISO 8601 UTC with a ``Z``.
- msgpack: a stream of maps, one per event, with no framing between them;
  ``time`` is Unix seconds as a float so that it reads back exactly, and
  ``data`` is the event's payload map (``msgpack.packb(dict(event.data))``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import msgpack  # msgpack ships no type hints
import orjson

from realtime.event import SCHEMA_VERSION, Event, Priority, format_time, parse_time

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""Default bound on one msgpack record read by :func:`read_msgpack`."""

_READ_CHUNK_BYTES = 64 * 1024
_PRIORITY_BY_NAME: Mapping[str, Priority] = {p.name.lower(): p for p in Priority}
_PRIORITY_NAMES = tuple(p.name.lower() for p in Priority)
_TEXT_FIELDS = ("id", "source", "type", "key")


class ExportFormatError(ValueError):
    """A msgpack export cannot be read; the message names the record (1-based)."""


def write_jsonl(events: Iterable[Event], out: IO[str]) -> int:
    """Write ``events`` to ``out`` as JSON Lines; returns how many were written.

    Raises:
        ValueError: an event's data holds a value JSON cannot represent
            (bytes, for instance); the lines before it were written.
    """
    written = 0
    for event in events:
        record = _record(event)
        record["time"] = format_time(event.time)
        try:
            line = orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError as error:
            msg = f"event seq {event.seq} ({event.source}/{event.id}) is not JSON: {error}"
            raise ValueError(msg) from error
        out.write(line.decode())
        written += 1
    return written


def write_msgpack(events: Iterable[Event], out: IO[bytes]) -> int:
    """Write ``events`` to ``out`` as a msgpack stream; returns how many were written.

    Raises:
        TypeError, ValueError: an event's data cannot be packed.
    """
    pack = msgpack.Packer().pack
    written = 0
    for event in events:
        out.write(pack(_record(event)))
        written += 1
    return written


def _record(event: Event) -> dict[str, Any]:
    data = event.data
    return {
        "seq": event.seq,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": event.time,
        "received_at": event.received_at,
        "key": event.key,
        "priority": _PRIORITY_NAMES[event.priority],
        "schema": event.schema,
        "data": data if type(data) is dict else dict(data),
    }


def read_msgpack(inp: IO[bytes], *, max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[Event]:
    """The events of a msgpack export, read as a stream (memory stays bounded).

    A record may omit ``seq`` (or set it to nil): the event then has no seq;
    without ``schema`` it has :data:`realtime.event.SCHEMA_VERSION`. Extra
    fields are ignored.

    Raises:
        ExportFormatError: a record is not valid msgpack, is larger than
            ``max_record_bytes``, is cut short at the end of the input, or
            does not have the shape of an event. The events before it were
            yielded.
    """
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max_record_bytes)
    fed = 0
    number = 0
    chunk_size = min(_READ_CHUNK_BYTES, max_record_bytes)
    while chunk := inp.read(chunk_size):
        try:
            unpacker.feed(chunk)
        except msgpack.BufferFull as error:
            msg = f"record {number + 1}: larger than {max_record_bytes} bytes"
            raise ExportFormatError(msg) from error
        fed += len(chunk)
        while True:
            try:
                record = unpacker.unpack()
            except msgpack.OutOfData:
                break
            except (msgpack.UnpackException, ValueError) as error:
                msg = f"record {number + 1}: not valid msgpack ({error})"
                raise ExportFormatError(msg) from error
            number += 1
            yield _event_from_record(record, number)
    if unpacker.tell() != fed:
        msg = (
            f"record {number + 1}: truncated: the input ends {fed - unpacker.tell()} bytes into it"
        )
        raise ExportFormatError(msg)


def _event_from_record(record: object, number: int) -> Event:
    if not isinstance(record, dict):
        msg = f"record {number}: expected a map, got {type(record).__name__}"
        raise ExportFormatError(msg)
    missing = [
        name
        for name in ("id", "source", "type", "time", "received_at", "key", "priority", "data")
        if name not in record
    ]
    if missing:
        msg = f"record {number}: missing {', '.join(missing)}"
        raise ExportFormatError(msg)
    for name in _TEXT_FIELDS:
        if not isinstance(record[name], str):
            msg = f"record {number}: {name} must be a string, got {record[name]!r}"
            raise ExportFormatError(msg)
    time_ = record["time"]
    if not isinstance(time_, float | int) or isinstance(time_, bool):
        msg = f"record {number}: time must be Unix seconds, got {time_!r}"
        raise ExportFormatError(msg)
    seq = record.get("seq")
    schema = record.get("schema", SCHEMA_VERSION)
    received_at = record["received_at"]
    for name, value, optional in (
        ("seq", seq, True),
        ("schema", schema, False),
        ("received_at", received_at, False),
    ):
        if (value is None and optional) or (isinstance(value, int) and not isinstance(value, bool)):
            continue
        msg = f"record {number}: {name} must be an integer, got {value!r}"
        raise ExportFormatError(msg)
    priority = _PRIORITY_BY_NAME.get(record["priority"])
    if priority is None:
        msg = (
            f"record {number}: priority must be one of {', '.join(_PRIORITY_NAMES)}, "
            f"got {record['priority']!r}"
        )
        raise ExportFormatError(msg)
    data = record["data"]
    if not isinstance(data, dict):
        msg = f"record {number}: data must be a map, got {type(data).__name__}"
        raise ExportFormatError(msg)
    return Event(
        record["id"],
        record["source"],
        record["type"],
        float(time_),
        received_at,
        record["key"],
        priority,
        data,
        seq,
        schema,
    )


def parse_since(text: str) -> tuple[int | None, float | None]:
    """Read a ``--since``/``--until`` value: a seq (digits only) or an ISO 8601 time.

    Returns:
        ``(seq, None)`` or ``(None, unix_seconds)``. A bare number is always a
        seq, so a year alone (``2024``) is read as seq 2024.

    Raises:
        ValueError: ``text`` is neither.
    """
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text), None
    try:
        return None, parse_time(text)
    except ValueError as error:
        msg = f"{text!r} is neither a sequence number nor an ISO 8601 time"
        raise ValueError(msg) from error
