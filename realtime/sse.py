"""An incremental Server-Sent Events parser (WHATWG HTML, "event stream interpretation").

Bytes in, values out: :meth:`SseParser.feed` takes whatever the socket returned
and gives back the events and comments that those bytes complete. It never
raises on stream content and never holds more than its bounds.

What the spec asks, and this parser does:

- One leading UTF-8 BOM is stripped at the start of a stream, even when it is
  split across chunks; a BOM anywhere else is content.
- Lines end at CRLF, LF or CR. A CR at the end of one chunk followed by an LF
  at the start of the next is one line end, not two; endings may be mixed.
- Chunks may split anything, including a multi-byte UTF-8 sequence. Invalid
  UTF-8 becomes U+FFFD (decoding is per line, which gives the same text as
  decoding the whole stream: line ends and colons are ASCII and always end an
  invalid sequence).
- A blank line dispatches the event being built. ``data`` lines are joined
  with LF; a block without any ``data`` line dispatches nothing, but its
  ``id`` still takes effect (``data`` with an empty value *does* dispatch an
  event whose data is ``""``).
- ``id`` sets the last event id *buffer*; the last event id becomes the
  buffer's value only when a blank line ends the block (the resume point
  never moves past an event that was not dispatched). The buffer persists
  across events until another ``id`` line changes it; an ``id`` whose value
  contains NUL is ignored. ``retry`` takes effect at once.
- ``retry`` is honoured only when its value is ASCII digits (not empty).
- ``event`` sets the type, ``message`` when absent or empty. Unknown fields
  are ignored; field names are case-sensitive; one space after the colon is
  removed from the value.
- An event not terminated by a blank line when the stream ends is discarded,
  its ``id`` with it: the next stream starts from the last dispatched id.

Beyond the spec, to bound memory: a line longer than ``max_line_bytes``
(terminator excluded) is dropped as soon as it grows past the bound, together
with the event it belongs to, and counted; an event whose ``data`` lines add up
to more than ``max_event_bytes`` is dropped likewise. Parsing resumes at the
next line. The ``retry`` of a dropped event takes effect, and its ``id`` does
at its blank line, so the resume point moves past an event that would only be
dropped again.

Comments (lines starting with ``:``) come back as :class:`SseComment`: servers
send them as keepalives, and a watchdog needs to see them.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"
_CR = 0x0D
_LF = 0x0A
_COLON = 0x3A

MAX_RETRY_MS = 10**18 - 1
"""A ``retry`` value above this (about 31 million years) saturates to it."""

_MAX_RETRY_DIGITS = 18


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event.

    Attributes:
        type: the ``event`` field, ``message`` when absent or empty.
        data: the ``data`` lines joined with LF.
        last_event_id: the stream's last event id when this event was
            dispatched (from this event's ``id`` line or an earlier one).
        retry_ms: the stream's reconnection time as last set by a valid
            ``retry`` line, or ``None`` if no valid ``retry`` has been seen.
    """

    type: str
    data: str
    last_event_id: str
    retry_ms: int | None


@dataclass(frozen=True, slots=True)
class SseComment:
    """A comment line; ``text`` is what follows the colon, minus one leading space."""

    text: str


@dataclass(frozen=True, slots=True)
class SseStatistics:
    """Counters since the parser was made, and how full its buffers are.

    Attributes:
        bytes: bytes fed, BOM and line ends included.
        events: events dispatched.
        comments: comment lines.
        oversize_lines: lines dropped for exceeding ``max_line_bytes``.
        oversize_events: events dropped for exceeding ``max_event_bytes``.
        unterminated_events: events in progress discarded by :meth:`SseParser.close`.
        buffered_line_bytes: bytes of the current, unterminated line.
        max_line_bytes: the bound on ``buffered_line_bytes``.
        buffered_event_bytes: ``data`` bytes of the event being built.
        max_event_bytes: the bound on ``buffered_event_bytes``.
    """

    bytes: int
    events: int
    comments: int
    oversize_lines: int
    oversize_events: int
    unterminated_events: int
    buffered_line_bytes: int
    max_line_bytes: int
    buffered_event_bytes: int
    max_event_bytes: int


class SseParser:
    """Parses one event stream after another (one per connection), incrementally.

    The last event id and the reconnection time survive :meth:`close`, as they
    survive a reconnection in an ``EventSource``; everything else starts over,
    including BOM detection.

    Args:
        max_line_bytes: longest line kept, in bytes, line end excluded.
        max_event_bytes: most ``data`` bytes one event may gather (each line's
            value plus one for its LF).
        last_event_id: the resume point known from earlier (e.g. a journal
            cursor); events without an ``id`` line carry it until one arrives.

    Raises:
        ValueError: a bound is below 1, or ``last_event_id`` contains NUL.
    """

    __slots__ = (
        "_at_stream_start",
        "_bom_prefix",
        "_bytes",
        "_comments",
        "_data",
        "_data_bytes",
        "_discarding_line",
        "_event_dropped",
        "_event_type",
        "_events",
        "_id_buffer",
        "_last_event_id",
        "_max_event_bytes",
        "_max_line_bytes",
        "_oversize_events",
        "_oversize_lines",
        "_pending",
        "_retry_ms",
        "_skip_lf",
        "_unterminated_events",
    )

    def __init__(
        self,
        max_line_bytes: int = 1_048_576,
        *,
        max_event_bytes: int = 4_194_304,
        last_event_id: str = "",
    ) -> None:
        if max_line_bytes < 1 or max_event_bytes < 1:
            msg = f"bounds must be at least 1, got {max_line_bytes=}, {max_event_bytes=}"
            raise ValueError(msg)
        if "\0" in last_event_id:
            msg = "a last event id cannot contain NUL"
            raise ValueError(msg)
        self._max_line_bytes = max_line_bytes
        self._max_event_bytes = max_event_bytes
        self._last_event_id = last_event_id
        self._id_buffer = last_event_id
        self._retry_ms: int | None = None
        # Per-stream state.
        self._at_stream_start = True
        self._bom_prefix = b""
        self._skip_lf = False
        # One growing buffer rather than a list of parts: a line trickling in
        # byte by byte must cost its length in memory, not 30 times that.
        self._pending = bytearray()
        self._discarding_line = False
        self._data: list[str] = []
        self._data_bytes = 0
        self._event_type = ""
        self._event_dropped = False
        # Counters.
        self._bytes = 0
        self._events = 0
        self._comments = 0
        self._oversize_lines = 0
        self._oversize_events = 0
        self._unterminated_events = 0

    @property
    def last_event_id(self) -> str:
        """The resume point: send it as ``Last-Event-ID`` when reconnecting.

        The id of the last block a blank line ended, including blocks that
        dispatch nothing (an ``id`` line alone); never that of a block still
        being read.
        """
        return self._last_event_id

    @property
    def retry_ms(self) -> int | None:
        """The reconnection time the server asked for, or ``None``."""
        return self._retry_ms

    def feed(self, chunk: bytes) -> list[SseEvent | SseComment]:
        """Parse the next bytes of the stream; return what they complete, in order."""
        out: list[SseEvent | SseComment] = []
        if not chunk:
            return out
        self._bytes += len(chunk)
        if self._at_stream_start:
            chunk = self._strip_bom(chunk)
            if not chunk:
                return out
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
                if not chunk:
                    return out
        if self._discarding_line:
            chunk = self._skip_rest_of_line(chunk)
            if not chunk:
                return out
        if self._pending:
            if b"\n" not in chunk and b"\r" not in chunk:
                self._extend_line(chunk)
                return out
            chunk = b"".join((self._pending, chunk))
            self._pending.clear()
        self._parse(chunk, out)
        return out

    def close(self) -> list[SseEvent | SseComment]:
        """End the current stream; the next :meth:`feed` starts a new one.

        Per the spec, the end of a stream completes nothing: an event not yet
        terminated by a blank line, and an unterminated last line, are
        discarded (and counted as ``unterminated_events``), and so is an
        ``id`` they set: the next stream resumes from :attr:`last_event_id`.
        The returned list
        is therefore always empty; it exists so that a caller handles the end
        of a stream exactly like any other input.
        """
        if self._data or self._pending or self._event_type:
            self._unterminated_events += 1
        self._id_buffer = self._last_event_id
        self._at_stream_start = True
        self._bom_prefix = b""
        self._skip_lf = False
        self._pending.clear()
        self._discarding_line = False
        self._reset_event()
        return []

    def statistics(self) -> SseStatistics:
        """Counters and buffer fill levels."""
        return SseStatistics(
            bytes=self._bytes,
            events=self._events,
            comments=self._comments,
            oversize_lines=self._oversize_lines,
            oversize_events=self._oversize_events,
            unterminated_events=self._unterminated_events,
            buffered_line_bytes=len(self._pending) + len(self._bom_prefix),
            max_line_bytes=self._max_line_bytes,
            buffered_event_bytes=self._data_bytes,
            max_event_bytes=self._max_event_bytes,
        )

    def _strip_bom(self, chunk: bytes) -> bytes:
        held = self._bom_prefix + chunk
        if len(held) < len(_BOM) and _BOM.startswith(held):
            self._bom_prefix = held
            return b""
        self._at_stream_start = False
        self._bom_prefix = b""
        return held.removeprefix(_BOM)

    def _skip_rest_of_line(self, chunk: bytes) -> bytes:
        """Drop bytes up to and including the end of the oversize line."""
        cr = chunk.find(b"\r")
        lf = chunk.find(b"\n")
        if cr < 0 and lf < 0:
            return b""
        self._discarding_line = False
        if lf >= 0 and (cr < 0 or lf < cr):
            return chunk[lf + 1 :]
        if cr + 1 == len(chunk):
            self._skip_lf = True
            return b""
        return chunk[cr + 2 :] if chunk[cr + 1] == _LF else chunk[cr + 1 :]

    def _extend_line(self, part: bytes) -> None:
        if len(self._pending) + len(part) > self._max_line_bytes:
            self._pending.clear()
            self._start_discarding()
        else:
            self._pending += part

    def _start_discarding(self) -> None:
        self._discarding_line = True
        self._oversize_lines += 1
        self._drop_event()

    def _parse(self, data: bytes, out: list[SseEvent | SseComment]) -> None:
        lines = data.splitlines()
        last = data[-1]
        tail = lines.pop() if last not in (_CR, _LF) else None
        max_line_bytes = self._max_line_bytes
        for line in lines:
            if len(line) > max_line_bytes:
                self._oversize_lines += 1
                self._drop_event()
            else:
                self._line(line, out)
        if tail is None:
            self._skip_lf = last == _CR
        elif len(tail) > max_line_bytes:
            self._start_discarding()
        else:
            self._pending += tail

    def _line(self, line: bytes, out: list[SseEvent | SseComment]) -> None:
        if not line:
            self._dispatch(out)
            return
        if line[0] == _COLON:
            text = line[2:] if line[1:2] == b" " else line[1:]
            self._comments += 1
            out.append(SseComment(text.decode("utf-8", "replace")))
            return
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
        if name == b"data":
            if self._event_dropped:
                return
            self._data_bytes += len(value) + 1
            if self._data_bytes > self._max_event_bytes:
                self._oversize_events += 1
                self._drop_event()
                return
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            if not self._event_dropped:
                self._event_type = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._id_buffer = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            digits = value.lstrip(b"0")
            self._retry_ms = (
                int(digits or b"0") if len(digits) <= _MAX_RETRY_DIGITS else MAX_RETRY_MS
            )

    def _dispatch(self, out: list[SseEvent | SseComment]) -> None:
        self._last_event_id = self._id_buffer
        # A dropped event has no data: dropping clears it and stops gathering it.
        if self._data:
            self._events += 1
            out.append(
                SseEvent(
                    type=self._event_type or "message",
                    data="\n".join(self._data),
                    last_event_id=self._last_event_id,
                    retry_ms=self._retry_ms,
                )
            )
        self._reset_event()

    def _drop_event(self) -> None:
        self._reset_event()
        self._event_dropped = True

    def _reset_event(self) -> None:
        self._data = []
        self._data_bytes = 0
        self._event_type = ""
        self._event_dropped = False
