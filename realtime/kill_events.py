"""What the kill feed's pushes become: killmails and kill counts decoded into events.

:class:`KillDecoder` turns the payload of a ``killmail_update`` into one
:class:`~realtime.event.Event` per valid killmail and that of a
``kill_count_update`` into one event, and makes every
:class:`~realtime.event.Reject` of the feed (with its :class:`RejectReason`),
counting them. :class:`~realtime.phoenix.PhoenixClient` calls it with the
frames it has taken apart. Input is never trusted and never raises: one bad
killmail does not reject its batch.

- A killmail event has ``type="killmail"``, ``id=str(killmail_id)``, ``time``
  from ``kill_time``, ``priority=NORMAL``, ``data`` the killmail plus the
  push's ``"preload"`` flag (``False`` when absent). The key is computed before
  the flag is added, so that a preload replay has the same key under every
  strategy. Each kill often arrives twice, and again with every preload: the
  events carry the same dedup key and deduplication downstream removes them.
- A kill count event has ``type="kill_count_update"``, ``id=""`` and ``time``
  from its ``timestamp``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import orjson

from realtime.event import KILLS_SOURCE, Event, Priority, Reject, parse_time
from realtime.ids import is_int
from realtime.keys import NoDomainKeyError, Strategy, event_key

DETAIL_CHARS: Final = 120
"""How much of a value a reject's detail quotes."""


class RejectReason(enum.StrEnum):
    """Why input did not become an event (the ``reason`` of a :class:`Reject`)."""

    FRAME_TOO_LARGE = "frame_too_large"
    TOO_DEEP = "too_deep"
    """Nested deeper than ``max_depth``; orjson 3.8 overflows the C stack on deep input."""
    BINARY_FRAME = "binary_frame"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_FRAME = "invalid_frame"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_EVENT = "unknown_event"
    INVALID_PAYLOAD = "invalid_payload"
    INVALID_KILLMAIL = "invalid_killmail"
    MISSING_KILLMAIL_ID = "missing_killmail_id"
    INVALID_KILL_TIME = "invalid_kill_time"
    INVALID_TIMESTAMP = "invalid_timestamp"
    NO_DEDUP_KEY = "no_dedup_key"
    INTERNAL_ERROR = "internal_error"
    """A bug in this decoder; the frame is kept rather than lost with a crash."""


Decoded = tuple[tuple[Event, ...], tuple[Reject, ...]]
"""Events and rejects, in the order received."""


def quote(text: str) -> str:
    """``text`` quoted and cut short, for a reject's detail."""
    quoted = repr(text)
    return quoted if len(quoted) <= DETAIL_CHARS else quoted[:DETAIL_CHARS] + "…"


def describe(value: object) -> str:
    """A short description of a JSON value, for a reject's detail."""
    if value is None:
        return "null or missing"
    if isinstance(value, str):
        return f"the string {quote(value)}"
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return f"{type(value).__name__} {value!r}"


def encode_text(frame: str) -> bytes:
    """A text frame's bytes; ``surrogatepass`` keeps lone surrogates as they came."""
    return frame.encode("utf-8", "surrogatepass")


class KillDecoder:
    """Decodes the feed's pushes and makes its rejects; see the module docstring.

    Args:
        strategy: the dedup key strategy for the events (``realtime.keys``).
        max_reject_bytes: a reject keeps at most this many bytes of its input.
    """

    def __init__(self, strategy: Strategy, max_reject_bytes: int) -> None:
        self._strategy: Strategy = strategy
        self._max_reject_bytes = max_reject_bytes
        self.events = 0
        """Events decoded so far."""
        self.rejects: dict[str, int] = {}
        """Rejects so far, per :class:`RejectReason`."""

    def killmail_update(
        self, payload: Mapping[str, Any], frame: str | bytes, received_at_ns: int
    ) -> Decoded:
        killmails = payload.get("killmails")
        if not isinstance(killmails, list):
            detail = f"killmail_update payload.killmails is {describe(killmails)}, not a list"
            return (), (
                self.reject_frame(RejectReason.INVALID_PAYLOAD, detail, frame, received_at_ns),
            )
        preload = payload.get("preload", False)
        if not isinstance(preload, bool):
            detail = f"killmail_update payload.preload is {describe(preload)}, not a boolean"
            return (), (
                self.reject_frame(RejectReason.INVALID_PAYLOAD, detail, frame, received_at_ns),
            )
        events: list[Event] = []
        rejects: list[Reject] = []
        for index, killmail in enumerate(killmails):
            result = self._killmail_event(killmail, index, preload, received_at_ns)
            if isinstance(result, Event):
                events.append(result)
            else:
                rejects.append(result)
        self.events += len(events)
        return tuple(events), tuple(rejects)

    def kill_count_update(
        self, payload: dict[str, Any], frame: str | bytes, received_at_ns: int
    ) -> Decoded:
        for name in ("system_id", "count"):
            value = payload.get(name)
            if not is_int(value):
                detail = f"kill_count_update payload.{name} is {describe(value)}, not an integer"
                reject = self.reject_frame(
                    RejectReason.INVALID_PAYLOAD, detail, frame, received_at_ns
                )
                return (), (reject,)
        timestamp = payload.get("timestamp")
        try:
            time = _parse_time(timestamp)
        except ValueError as exc:
            detail = f"kill_count_update timestamp is {describe(timestamp)}: {exc}"
            reject = self.reject_frame(
                RejectReason.INVALID_TIMESTAMP, detail, frame, received_at_ns
            )
            return (), (reject,)
        try:
            key = event_key(KILLS_SOURCE, "kill_count_update", "", payload, self._strategy)
        except NoDomainKeyError as exc:
            reject = self.reject_frame(RejectReason.NO_DEDUP_KEY, str(exc), frame, received_at_ns)
            return (), (reject,)
        event = Event(
            id="",
            source=KILLS_SOURCE,
            type="kill_count_update",
            time=time,
            received_at=received_at_ns,
            key=key,
            priority=Priority.NORMAL,
            data=payload,
        )
        self.events += 1
        return (event,), ()

    def reject_frame(
        self, reason: RejectReason, detail: str, frame: str | bytes, received_at_ns: int
    ) -> Reject:
        """A reject of a whole frame; ``raw`` is its first ``max_reject_bytes``."""
        _count(self.rejects, reason.value)
        if isinstance(frame, str):
            frame = encode_text(frame[: self._max_reject_bytes])
        raw = frame[: self._max_reject_bytes]
        return Reject(KILLS_SOURCE, reason.value, detail, raw, received_at_ns)

    def _invalid_payload(self, detail: str, frame: str | bytes, received_at_ns: int) -> Reject:
        return self.reject_frame(RejectReason.INVALID_PAYLOAD, detail, frame, received_at_ns)

    def _reject_value(
        self, reason: RejectReason, detail: str, value: object, received_at_ns: int
    ) -> Reject:
        """A reject for one killmail of a batch; ``raw`` is that killmail alone."""
        _count(self.rejects, reason.value)
        raw = orjson.dumps(value)[: self._max_reject_bytes]
        return Reject(KILLS_SOURCE, reason.value, detail, raw, received_at_ns)

    def _killmail_event(
        self, killmail: object, index: int, preload: bool, received_at_ns: int
    ) -> Event | Reject:
        where = f"killmails[{index}]"
        if not isinstance(killmail, dict):
            detail = f"{where} is {describe(killmail)}, not an object"
            return self._reject_value(
                RejectReason.INVALID_KILLMAIL, detail, killmail, received_at_ns
            )
        killmail_id = killmail.get("killmail_id")
        if not is_int(killmail_id) or killmail_id <= 0:
            detail = f"{where}.killmail_id is {describe(killmail_id)}, not a positive integer"
            return self._reject_value(
                RejectReason.MISSING_KILLMAIL_ID, detail, killmail, received_at_ns
            )
        where = f"killmail {killmail_id}"
        kill_time = killmail.get("kill_time")
        try:
            time = _parse_time(kill_time)
        except ValueError as exc:
            detail = f"{where}: kill_time is {describe(kill_time)}: {exc}"
            return self._reject_value(
                RejectReason.INVALID_KILL_TIME, detail, killmail, received_at_ns
            )
        id_ = str(killmail_id)
        try:
            key = event_key(KILLS_SOURCE, "killmail", id_, killmail, self._strategy)
        except NoDomainKeyError as exc:
            return self._reject_value(RejectReason.NO_DEDUP_KEY, str(exc), killmail, received_at_ns)
        killmail["preload"] = preload
        return Event(
            id=id_,
            source=KILLS_SOURCE,
            type="killmail",
            time=time,
            received_at=received_at_ns,
            key=key,
            priority=Priority.NORMAL,
            data=killmail,
        )


def _parse_time(value: object) -> float:
    if not isinstance(value, str):
        msg = "not an ISO 8601 string"
        raise ValueError(msg)
    try:
        return parse_time(value)
    except OverflowError as exc:
        raise ValueError(str(exc)) from exc


def _count(counters: dict[str, int], name: str) -> None:
    counters[name] = counters.get(name, 0) + 1
