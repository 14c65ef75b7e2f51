"""The unified event: one shape for everything that enters the pipeline.

Names follow CloudEvents 1.0 (``id``, ``source``, ``type``, ``time``) with the
extensions this system needs (``key``, ``priority``, ``seq``, ``received_at``).
An :class:`Event` is immutable; the journal assigns ``seq`` by making a copy
with :meth:`Event.with_seq`.

Input that cannot become an event is a :class:`Reject`: it keeps the raw bytes
and a machine-readable reason, and goes to the journal's rejects table.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1
"""Version of the event envelope. The journal stores it with each event so that
a newer program can still read (and report) events written by an older one."""

KILLS_SOURCE = "wanderer-kills"
REPLAY_SOURCE = "replay"


def map_source(slug: str) -> str:
    """The ``source`` of events that come from the Wanderer map ``slug``."""
    return f"map:{slug}"


class Priority(enum.IntEnum):
    """Delivery priority; a lower value is more urgent and is never shed first."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, from any source.

    Attributes:
        id: the source-native id (killmail id, SSE ULID).
        source: ``wanderer-kills``, ``map:{slug}`` or ``replay``.
        type: the source's event type (``killmail``, ``add_system``, ...).
        time: when it happened, Unix seconds (UTC).
        received_at: ``time.monotonic_ns()`` when its bytes left the socket;
            only meaningful inside the process that received it (latency).
        key: the dedup key, from the configured strategy; the same real-world
            fact has the same key whichever source delivered it.
        priority: see :class:`Priority`.
        data: the decoded payload, as received.
        seq: the journal's sequence number; ``None`` until committed.
        schema: envelope version, :data:`SCHEMA_VERSION` for new events.
    """

    id: str
    source: str
    type: str
    time: float
    received_at: int
    key: str
    priority: Priority
    data: Mapping[str, Any]
    seq: int | None = None
    schema: int = SCHEMA_VERSION

    def with_seq(self, seq: int) -> Event:
        """A copy of this event carrying the journal sequence number ``seq``."""
        return dataclasses.replace(self, seq=seq)

    def with_priority(self, priority: Priority) -> Event:
        """A copy of this event with another priority."""
        return dataclasses.replace(self, priority=priority)

    @property
    def committed_seq(self) -> int:
        """The sequence number of an event that the journal committed.

        Raises:
            ValueError: the event has not been committed yet.
        """
        if self.seq is None:
            msg = f"event {self.source}/{self.id} has no seq: it was not committed"
            raise ValueError(msg)
        return self.seq


@dataclass(frozen=True, slots=True)
class Reject:
    """Input that could not become an :class:`Event`.

    Attributes:
        source: where it came from (same names as :attr:`Event.source`).
        reason: a short machine-readable reason (``invalid_json``,
            ``missing_killmail_id``, ...); counted per reason in ``/api/status``.
        detail: a human-readable explanation.
        raw: the bytes as received (possibly truncated to a bound by the caller).
        received_at: ``time.monotonic_ns()`` at the socket.
    """

    source: str
    reason: str
    detail: str
    raw: bytes
    received_at: int


def parse_time(text: str) -> float:
    """Parse an ISO 8601 timestamp (``Z`` or offset; naive means UTC) to Unix seconds.

    Raises:
        ValueError: ``text`` is not an ISO 8601 timestamp.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def format_time(unix_seconds: float) -> str:
    """Format Unix seconds as ISO 8601 UTC with a ``Z`` suffix."""
    text = datetime.fromtimestamp(unix_seconds, tz=UTC).isoformat()
    return text.replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A source's resume point (e.g. the SSE last event id), committed with its events."""

    source: str
    value: str


class Outcome(enum.StrEnum):
    """Why an event is finished with."""

    HANDLED = "handled"
    DUPLICATE = "duplicate"
    SHED = "shed"
    STALE = "stale"
    IGNORED = "ignored"
    DEAD_LETTER = "dead_letter"
