"""Messages between the actors of the running system.

Actors address each other by stable name (see ``supervision.Registry``) and
exchange these frozen values. Events travel in batches: one message carries
many events, so mailbox capacities count batches, not events.

The flow of an event::

    source --Ingest--> journal --Deliver--> dedup --Deduplicated--> flow_control
    flow_control --Deliver--> router --(ask) handlers--> Settled --> journal
    flow_control --Demand--> journal        router --Demand--> flow_control

Demand, StreamReset, Settled and Resync are flow-control signals (like TCP
acknowledgements): small, bounded by the credit in flight, and sent on the
control lane, so that a mailbox full of events never holds them up or
refuses them. Only events count against a mailbox's bound.

Every stage that finishes with an event for good (a duplicate, shed, stale,
handled or dead-lettered) reports it to the journal with :class:`Settled`, and
the journal's checkpoint advances over the contiguous settled prefix. A
restarted pipeline actor sends :class:`Resync`, and the journal redelivers
everything after the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from realtime.event import Cursor, Event, Outcome, Reject
from realtime.flow import TrackedView
from realtime.notifications import Notification
from supervision import Control


class Names:
    """The stable names of the actors and supervisors (users and tools rely on them)."""

    ROOT = "root"
    METRICS = "metrics"
    JOURNAL = "journal"
    PIPELINE = "pipeline"
    DEDUP = "dedup"
    FLOW_CONTROL = "flow_control"
    ROUTER = "router"
    TRACKING = "tracking"
    STATIC_INFO = "static_info"
    NOTIFIER = "notifier"
    SOURCES = "sources"
    KILLS = "kills"
    KILLS_CHARACTERS = "kills:characters"
    WEB = "web"

    @staticmethod
    def map_source(slug: str) -> str:
        return f"map:{slug}"


@dataclass(frozen=True, slots=True)
class Ingest:
    """Source -> journal: new input, to be committed in one transaction.

    ``payloads``, when not empty, holds for each event the bytes the journal
    stores for its data (:func:`realtime.journal_store.stored_payload`, made by
    the reader while the decoded data is fresh); the journal encodes what it is
    not given (``None``). ``sender`` is the actor to answer a refusal to
    (``""``: the actor named after ``source``); two connections may feed one
    source, as ``kills`` and ``kills:characters`` both feed ``wanderer-kills``.
    """

    source: str
    events: tuple[Event, ...] = ()
    rejects: tuple[Reject, ...] = ()
    cursor: Cursor | None = None
    payloads: tuple[bytes | None, ...] = ()
    sender: str = ""


@dataclass(frozen=True, slots=True)
class IngestRefused:
    """Journal -> source: the journal cannot take ``ingest`` now (e.g. disk full).

    Nothing of it was committed. The source keeps it (bounded), pauses reading,
    and sends it again later; an SSE source may instead reconnect from its
    committed cursor.
    """

    ingest: Ingest
    reason: str


@dataclass(frozen=True, slots=True)
class GetCursor:
    """Ask the journal for a source's last committed resume point (``str | None``)."""

    source: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """Committed events (each with ``seq``) handed to the next stage.

    ``epoch`` is the journal's delivery epoch (see :class:`StreamReset`).
    """

    events: tuple[Event, ...]
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Deduplicated:
    """Dedup -> flow_control: the unique events of a delivery.

    ``consumed`` is how many events the delivery had, duplicates included, so
    that flow control can account the demand it granted.
    """

    events: tuple[Event, ...]
    consumed: int
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Demand(Control):
    """Downstream -> upstream: permission to send ``n`` more events.

    With ``reset`` the grant replaces whatever the consumer granted before (it
    restarted, or the stream was reset, so earlier credit is void).
    """

    consumer: str
    n: int
    reset: bool = False


@dataclass(frozen=True, slots=True)
class StreamReset(Control):
    """Journal -> flow_control: delivery restarts from the checkpoint; grant demand afresh.

    Every reset starts a new ``epoch``; deliveries of an older epoch still in
    flight are discarded by flow control (their events come again).
    """

    epoch: int


@dataclass(frozen=True, slots=True)
class RecentKeys:
    """Ask the journal for ``(key, seq, source, first_seen)`` of the last ``window_s`` seconds."""

    window_s: float
    limit: int


@dataclass(frozen=True, slots=True)
class Settled(Control):
    """Any stage -> journal: these events are finished with, for ``outcome``."""

    seqs: tuple[int, ...]
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Resync(Control):
    """A (re)started pipeline actor -> journal: redeliver from the checkpoint."""

    requester: str


@dataclass(frozen=True, slots=True)
class Handle:
    """Router -> handler (asked): handle these events; the reply means accepted.

    A handler replies only once the events are safe with it (e.g. the notifier
    has written its ledger entries); a :class:`Refused` or an exception in
    reply is retried.
    """

    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """A handler's answer to :class:`Handle` when it cannot take the events now.

    Nothing of them is done for good (the database was busy or full, state
    not loaded yet): the router keeps them and asks again after a backoff.
    Returning it, rather than raising, keeps the handler running.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class Announce(Control):
    """Notifications that come from no journal event (alerts), told to the notifier.

    It claims and delivers them like any other: once per route they match. On
    the control lane, so that the teller (the metrics actor) never waits for a
    busy notifier; their rate is bounded by the alert rules' cooldown.
    """

    notifications: tuple[Notification, ...]


@dataclass(frozen=True, slots=True)
class FeedRecovered(Control):
    """A source connection is live again after an outage (its connection alert resolved).

    On the control lane, like :class:`Announce`.

    Attributes:
        source: the connection's name (``kills``, ``map:{slug}``...).
        began: when it stopped being live (Unix seconds).
        ended: when it was live again (Unix seconds).
    """

    source: str
    began: float
    ended: float


@dataclass(frozen=True, slots=True)
class StatsReport:
    """Every actor -> metrics, about once a second.

    Attributes:
        actor: the reporter's name.
        counters: increments since the previous report (``events_total``, ...).
        gauges: current values (``window_size``, ``backlog``, ...).
        latencies: per stage, seconds from socket to that stage, for events
            finished since the last report (bounded by the reporter).
    """

    actor: str
    counters: Mapping[str, float] = field(default_factory=dict)
    gauges: Mapping[str, float] = field(default_factory=dict)
    latencies: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Map source -> tracking: what the map's REST API tracks (replaces that map's sets)."""

    slug: str
    systems: Mapping[int, str]
    characters: Mapping[int, str]


@dataclass(frozen=True, slots=True)
class TrackingChanged:
    """Tracking -> flow_control, notifier, kills: the tracked systems and characters now.

    ``view`` is immutable; ``systems`` and ``characters`` are the kill feed's
    subscription.
    """

    view: TrackedView
    systems: frozenset[int]
    characters: frozenset[int]


@dataclass(frozen=True, slots=True)
class GetTracking:
    """Ask tracking for its current :class:`TrackingChanged` (used by actors at start)."""
