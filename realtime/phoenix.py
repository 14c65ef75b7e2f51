"""The sans-I/O core of the wanderer-kills client: a Phoenix channel over WebSocket.

:class:`PhoenixClient` owns no socket, no thread and no clock. The connection
actor feeds it the frames its reader thread receives (:meth:`~PhoenixClient.receive`)
and sends the frames it returns (:meth:`~PhoenixClient.join_frame`,
:meth:`~PhoenixClient.heartbeat_frame`, :meth:`~PhoenixClient.pending_updates`);
``now`` is always a monotonic clock in seconds (``time.monotonic()``), the same
for every call on one client.

This module is the wire protocol: the Phoenix "V1" JSON serializer
(``vsn=1.0.0``), where every frame is one JSON object ``{"topic", "event",
"payload", "ref"}``, the channel's state, the join, heartbeats and liveness.
What the pushes become is :mod:`realtime.kill_events`; keeping the server's
subscription in step is :mod:`realtime.subscriptions` (as the map side has
:mod:`realtime.sse` and :mod:`realtime.map_events`).

Heartbeats are measured from the *reply*: a heartbeat that is sent proves
nothing (the Elixir client counted those and never noticed a half-open
socket). Liveness runs on a reading clock that stands still while the program
chose not to read (:meth:`PhoenixClient.reading_paused`).

Input is never trusted and never raises: whatever cannot become an
:class:`~realtime.event.Event` becomes a :class:`~realtime.event.Reject` with a
:class:`~realtime.kill_events.RejectReason`.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from realtime.event import Event, Reject
from realtime.json_depth import DEFAULT_JSON_DEPTH, MAX_JSON_DEPTH, nesting_exceeds
from realtime.keys import Strategy
from realtime.kill_events import (
    DETAIL_CHARS,
    KillDecoder,
    RejectReason,
    describe,
    encode_text,
    quote,
)
from realtime.subscriptions import Subscription, SubscriptionAck, Subscriptions

DEFAULT_TOPIC: Final = "killmails:lobby"
PROTOCOL_VSN: Final = "1.0.0"
SOCKET_PATH: Final = "/socket/websocket"

_PUSH_TIMEOUT_S: Final = 10.0  # phoenix.js DEFAULT_TIMEOUT for a push's reply
_MAX_UNANSWERED: Final = 64  # heartbeats remembered while replies wait (a long pause)


class ChannelState(enum.StrEnum):
    """The channel's state, as in phoenix.js (without ``leaving``: we never leave)."""

    CLOSED = "closed"
    JOINING = "joining"
    JOINED = "joined"
    ERRORED = "errored"


@dataclass(frozen=True, slots=True)
class Preload:
    """The join's request for recent kills (the real server replays 5 per system anyway)."""

    enabled: bool = True
    limit_per_system: int = 20
    since_hours: int = 24

    def payload(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "limit_per_system": self.limit_per_system,
            "since_hours": self.since_hours,
        }


DEFAULT_PRELOAD: Final = Preload()


@dataclass(frozen=True, slots=True)
class Joined:
    """The join succeeded; ``subscription`` is what the server now sends us."""

    subscription: Subscription
    subscription_id: str | None


@dataclass(frozen=True, slots=True)
class JoinFailed:
    """The server refused the join (the channel is ``errored``); ``reason`` is its words."""

    reason: str


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """The server closed the channel (``phx_close``): rejoin with backoff."""


@dataclass(frozen=True, slots=True)
class ChannelErrored:
    """The channel crashed on the server (``phx_error``): rejoin with backoff."""


@dataclass(frozen=True, slots=True)
class PreloadComplete:
    """The server finished replaying recent kills after a join.

    It is a control value, not an :class:`Event`: it is a fact about this
    connection, not about the game, and must not be journaled or deduplicated.
    ``payload`` is as received (``total_kills``, ``systems_processed``,
    ``errors`` on current servers).
    """

    payload: Mapping[str, Any]


Control = Joined | JoinFailed | ChannelClosed | ChannelErrored | SubscriptionAck | PreloadComplete


@dataclass(frozen=True, slots=True)
class Received:
    """What one inbound frame amounted to.

    Attributes:
        events: new events, in the order received (killmails of one batch in order).
        rejects: input that could not become events.
        rtt_s: the round trip of the heartbeat this frame answers, in seconds.
        control: a change of the channel or subscription state, if any.
    """

    events: tuple[Event, ...] = ()
    rejects: tuple[Reject, ...] = ()
    rtt_s: float | None = None
    control: Control | None = None


_NOTHING: Final = Received()


@dataclass(frozen=True, slots=True)
class PhoenixStatistics:
    """A snapshot of a :class:`PhoenixClient`. Counters run over the client's
    lifetime (across :meth:`PhoenixClient.reset`); sizes are current.

    Attributes:
        rejects: per :class:`RejectReason`, frames or killmails rejected.
        ignored: frames deliberately dropped, per kind (``preload_status``,
            ``preload_batch``, ``new_kill``, ``unmatched_reply``,
            ``stale_channel_event``).
        dropped_ids: ids never sent, per kind (``invalid_system_ids``,
            ``invalid_character_ids``, ``excess_system_ids``,
            ``excess_character_ids``).
        updates_in_flight: subscription changes awaiting a reply (at most 4).
        update_window_used: changes sent in the minute before the last
            :meth:`PhoenixClient.pending_updates` (at most ``update_window_limit``).
    """

    state: ChannelState
    frames_received: int
    events: int
    rejects: Mapping[str, int]
    ignored: Mapping[str, int]
    dropped_ids: Mapping[str, int]
    joins_sent: int
    join_failures: int
    heartbeats_sent: int
    heartbeat_replies: int
    last_rtt_s: float | None
    updates_sent: int
    updates_confirmed: int
    updates_failed: int
    updates_timed_out: int
    updates_in_flight: int
    update_window_used: int
    update_window_limit: int
    desired_systems: int
    desired_characters: int
    acknowledged_systems: int
    acknowledged_characters: int
    max_systems: int
    max_characters: int


@dataclass(frozen=True, slots=True)
class _Message:
    """The envelope of a Phoenix V1 frame."""

    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None

    @staticmethod
    def of(decoded: dict[str, Any]) -> _Message | str:
        """The envelope of a decoded frame, or what is wrong with it."""
        topic = decoded.get("topic")
        event = decoded.get("event")
        payload = decoded.get("payload")
        ref = decoded.get("ref")
        if not isinstance(topic, str):
            return f"topic is {describe(topic)}, not a string"
        if not isinstance(event, str):
            return f"event is {describe(event)}, not a string"
        if not isinstance(payload, dict):
            return f"payload of {quote(event)} is {describe(payload)}, not an object"
        if ref is not None and not isinstance(ref, str):
            return f"ref of {quote(event)} is {describe(ref)}, not a string or null"
        return _Message(topic, event, payload, ref)


_Handler = Callable[[_Message, str | bytes, int], Received]


class PhoenixClient:
    """The wanderer-kills channel client, without I/O. See the module docstring.

    Args:
        topic: the channel topic.
        heartbeat_interval_s: seconds between heartbeats; a heartbeat still
            unanswered when the next is due means a dead connection (phoenix.js).
        heartbeat_timeout_s: a connection with no inbound frame at all for this
            long is dead (the server drops silent sockets after 60 s).
        updates_per_minute: subscription changes allowed in any 60 s.
        max_frame_bytes: larger frames are rejected unparsed.
        key_strategy: the dedup key strategy for the events (``realtime.keys``).
        max_systems: system ids sent at most (the server refuses more).
        max_characters: character ids sent at most.
        max_reject_bytes: a reject keeps at most this many bytes of its input.
        max_depth: frames nested deeper are rejected unparsed (at most 254,
            the depth orjson can encode again).
        push_timeout_s: a join or subscription change unanswered for this long
            has failed (phoenix.js's push timeout).
    """

    def __init__(
        self,
        topic: str = DEFAULT_TOPIC,
        *,
        heartbeat_interval_s: float,
        heartbeat_timeout_s: float,
        updates_per_minute: int = 10,
        max_frame_bytes: int = 1_048_576,
        key_strategy: Strategy = "hybrid",
        max_systems: int = 10_000,
        max_characters: int = 50_000,
        max_reject_bytes: int = 65_536,
        max_depth: int = DEFAULT_JSON_DEPTH,
        push_timeout_s: float = _PUSH_TIMEOUT_S,
    ) -> None:
        """Raises:
        ValueError: a setting is out of range.
        """
        checks = {
            "heartbeat_interval_s": heartbeat_interval_s > 0,
            "heartbeat_timeout_s": heartbeat_timeout_s > 0,
            "updates_per_minute": updates_per_minute >= 1,
            "max_frame_bytes": max_frame_bytes >= 1,
            "max_systems": max_systems >= 0,
            "max_characters": max_characters >= 0,
            "max_reject_bytes": max_reject_bytes >= 0,
            "max_depth": 1 <= max_depth <= MAX_JSON_DEPTH,
            "push_timeout_s": push_timeout_s > 0,
        }
        invalid = [name for name, ok in checks.items() if not ok]
        if invalid:
            msg = f"PhoenixClient settings out of range: {', '.join(invalid)}"
            raise ValueError(msg)
        self._topic = topic
        self._heartbeat_interval_s = heartbeat_interval_s
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._max_systems = max_systems
        self._max_characters = max_characters
        self._max_depth = max_depth
        self._push_timeout_s = push_timeout_s
        self._kills = KillDecoder(key_strategy, max_reject_bytes)
        self._subscriptions = Subscriptions(
            updates_per_minute=updates_per_minute,
            max_systems=max_systems,
            max_characters=max_characters,
            push_timeout_s=push_timeout_s,
        )
        self._next_ref = 0
        self._frames = 0
        self._ignored: dict[str, int] = {}
        self._joins_sent = 0
        self._join_failures = 0
        self._heartbeats_sent = 0
        self._heartbeat_replies = 0
        self._handlers: dict[str, _Handler] = {
            "killmail_update": self._killmail_update,
            "kill_count_update": self._kill_count_update,
            "phx_reply": self._channel_reply,
            "phx_close": self._channel_ended,
            "phx_error": self._channel_ended,
            "preload_complete": self._preload_complete,
            "preload_status": self._ignore,
            "preload_batch": self._ignore,
            "new_kill": self._ignore,
        }
        self._start_connection()

    def _start_connection(self) -> None:
        self._state = ChannelState.CLOSED
        self._subscriptions.new_connection()
        self._join_ref: str | None = None
        self._previous_join_ref: str | None = None
        # Liveness runs on the reading clock (see _reading): the real time
        # minus the time the program chose not to read this connection.
        self._paused_total_s = 0.0
        self._paused_at: float | None = None
        self._epoch: float | None = None
        self._epoch_r = 0.0
        self._join_sent_r = 0.0
        self._last_inbound_r: float | None = None
        self._heartbeat_sent_at: float | None = None
        self._unanswered: deque[tuple[str, float]] = deque(maxlen=_MAX_UNANSWERED)
        self._unanswered_since_r: float | None = None
        self._last_rtt_s: float | None = None

    # -- connection ------------------------------------------------------------------

    @staticmethod
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

    def reset(self) -> None:
        """Forget the connection, for a new one: the channel is ``closed``,
        nothing is acknowledged, no reply is awaited, the heartbeat clock and
        the update rate window restart. Desired subscriptions and counters stay.
        """
        self._start_connection()

    @property
    def state(self) -> ChannelState:
        return self._state

    @property
    def desired(self) -> Subscription:
        """What the subscription should be (valid ids only)."""
        return self._subscriptions.desired

    @property
    def acknowledged(self) -> Subscription:
        """What the server has confirmed on this connection."""
        return self._subscriptions.acknowledged

    @property
    def last_rtt_s(self) -> float | None:
        """The last heartbeat round trip on this connection, in seconds."""
        return self._last_rtt_s

    # -- join and subscriptions ------------------------------------------------------

    def join_frame(
        self,
        systems: Iterable[object],
        characters: Iterable[object],
        now: float,
        *,
        preload: Preload = DEFAULT_PRELOAD,
    ) -> str:
        """The ``phx_join`` frame; the ids become the desired subscription.

        Ids that the server would refuse (not an ``int``, out of range) are
        dropped and counted; beyond ``max_systems``/``max_characters`` the
        highest ids are dropped and counted. The channel is ``joining`` until
        the reply; a previous join's late events are then ignored. Joining
        again on the same connection is allowed (the server replays the preload).
        """
        self._observe(now)
        self._subscriptions.set_desired(systems, characters)
        subscription = self._subscriptions.joining()
        if self._join_ref is not None:
            self._previous_join_ref = self._join_ref
        self._join_ref = self._new_ref()
        self._join_sent_r = self._reading(now)
        self._state = ChannelState.JOINING
        self._joins_sent += 1
        payload = {
            "systems": sorted(subscription.systems),
            "character_ids": sorted(subscription.characters),
            "preload": preload.payload(),
        }
        return self._frame(self._topic, "phx_join", payload, self._join_ref)

    def set_desired(self, systems: Iterable[object], characters: Iterable[object]) -> None:
        """Change the desired subscription; ids are filtered as in :meth:`join_frame`
        (and the dropped ones counted on every call).

        Nothing is sent: :meth:`pending_updates` turns the difference into frames.
        """
        self._subscriptions.set_desired(systems, characters)

    def pending_updates(self, now: float) -> list[str]:
        """Frames that move the server's subscription towards the desired one.

        Only while ``joined``. At most one change of each
        :class:`~realtime.subscriptions.UpdateKind` is awaiting a reply at a
        time, each frame carries all the ids of its kind, and at most
        ``updates_per_minute`` frames go out in any 60 s: what does not fit is
        sent by a later call. A change unanswered for ``push_timeout_s``
        counts as failed and is sent again.
        """
        self._observe(now)
        updates = self._subscriptions.pending(
            now, self._state is ChannelState.JOINED, self._new_ref
        )
        return [
            self._frame(self._topic, update.kind.value, {update.kind.field: update.ids}, update.ref)
            for update in updates
        ]

    # -- heartbeats and liveness -----------------------------------------------------

    def heartbeat_due(self, now: float) -> bool:
        """Whether a heartbeat should be sent: ``heartbeat_interval_s`` after the
        last one, or after this connection was first seen (any call with ``now``).
        """
        since = self._heartbeat_sent_at
        if since is None:
            since = self._observe(now)
        return now >= since + self._heartbeat_interval_s

    def heartbeat_frame(self, now: float) -> str:
        """A heartbeat with a fresh ref; its reply gives the round trip.

        Sending is not traffic: only replies are. A reply answers its
        heartbeat and every one sent before it (the server answers in order).
        """
        self._observe(now)
        ref = self._new_ref()
        sent_r = self._reading(now)
        self._unanswered.append((ref, sent_r))
        if self._unanswered_since_r is None:
            self._unanswered_since_r = sent_r
        self._heartbeat_sent_at = now
        self._heartbeats_sent += 1
        return self._frame("phoenix", "heartbeat", {}, ref)

    def reading_paused(self, now: float) -> None:
        """The program stopped reading this connection (its journal is behind).

        Until :meth:`reading_resumed` the reading clock stands still: what
        arrives meanwhile waits unread in the socket, so the peer owes
        nothing for that time. Heartbeats are still due on the real clock.
        """
        if self._paused_at is None:
            self._paused_at = now

    def reading_resumed(self, now: float) -> None:
        """Reading goes on; the reading clock runs again from where it stood."""
        paused_at, self._paused_at = self._paused_at, None
        if paused_at is not None:
            self._paused_total_s += max(0.0, now - paused_at)

    def is_dead(self, now: float) -> str | None:
        """Why the connection should be considered dead, or ``None``.

        The reason starts with a code: ``heartbeat_timeout`` (a heartbeat
        unanswered for ``heartbeat_interval_s``, so still unanswered when the
        next is due: the phoenix.js rule), ``silent`` (no inbound frame at all
        for ``heartbeat_timeout_s``: the half-open case) or ``join_timeout``
        (no answer to the join within ``push_timeout_s``).

        Every duration is measured on the reading clock: the time reading was
        paused (:meth:`reading_paused`) does not count, and while it is paused
        the connection is never dead.
        """
        if self._paused_at is not None:
            return None
        self._observe(now)
        reading = self._reading(now)
        since = self._unanswered_since_r
        if since is not None and reading - since >= self._heartbeat_interval_s:
            oldest = self._unanswered[0][0] if self._unanswered else "?"
            return (
                f"heartbeat_timeout: heartbeat {oldest} unanswered after "
                f"{reading - since:.1f} s (interval {self._heartbeat_interval_s:g} s)"
            )
        last = self._last_inbound_r if self._last_inbound_r is not None else self._epoch_r
        if reading - last >= self._heartbeat_timeout_s:
            return (
                f"silent: no frame received for {reading - last:.1f} s "
                f"(limit {self._heartbeat_timeout_s:g} s)"
            )
        if (
            self._state is ChannelState.JOINING
            and reading >= self._join_sent_r + self._push_timeout_s
        ):
            return (
                f"join_timeout: no reply to join {self._join_ref} within {self._push_timeout_s:g} s"
            )
        return None

    # -- inbound ---------------------------------------------------------------------

    def receive(self, frame: str | bytes, received_at_ns: int, now: float) -> Received:
        """Decode one inbound frame (text as ``str``, binary as ``bytes``).

        Any frame, even a rejected one, is traffic for :meth:`is_dead`. Never
        raises: bad input becomes :attr:`Received.rejects`.

        A ``killmail_update`` gives one :class:`Event` per valid killmail:
        ``type="killmail"``, ``id=str(killmail_id)``, ``time`` from
        ``kill_time``, ``priority=NORMAL``, ``data`` the killmail plus the
        push's ``"preload"`` flag (``False`` when absent). The key is computed
        before the flag is added, so that a preload replay has the same key
        under every strategy. A ``kill_count_update`` gives an event of that
        type with ``id=""`` and ``time`` from its ``timestamp``. A
        ``preload_complete`` gives :class:`PreloadComplete`; ``preload_status``,
        ``preload_batch`` and ``new_kill`` are counted and ignored.
        """
        self._observe(now)
        self._last_inbound_r = self._reading(now)
        self._frames += 1
        try:
            return self._decode(frame, received_at_ns, now)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not lose the frame
            detail = f"{type(exc).__name__}: {exc}"
            return self._reject_frame(RejectReason.INTERNAL_ERROR, detail, frame, received_at_ns)

    def receive_oversized(
        self, prefix: bytes, size: int, received_at_ns: int, now: float
    ) -> Received:
        """A message over ``max_frame_bytes``, not read: a ``frame_too_large`` reject.

        ``prefix`` is what was kept of it (the reject keeps at most
        ``max_reject_bytes``), ``size`` its announced size. Traffic for
        :meth:`is_dead` like any other frame.
        """
        self._observe(now)
        self._last_inbound_r = self._reading(now)
        self._frames += 1
        detail = f"{size} bytes exceed max_frame_bytes {self._max_frame_bytes}"
        return self._reject_frame(RejectReason.FRAME_TOO_LARGE, detail, prefix, received_at_ns)

    def statistics(self) -> PhoenixStatistics:
        subscriptions = self._subscriptions
        return PhoenixStatistics(
            state=self._state,
            frames_received=self._frames,
            events=self._kills.events,
            rejects=dict(self._kills.rejects),
            ignored=dict(self._ignored),
            dropped_ids=dict(subscriptions.dropped_ids),
            joins_sent=self._joins_sent,
            join_failures=self._join_failures,
            heartbeats_sent=self._heartbeats_sent,
            heartbeat_replies=self._heartbeat_replies,
            last_rtt_s=self._last_rtt_s,
            updates_sent=subscriptions.sent,
            updates_confirmed=subscriptions.confirmed,
            updates_failed=subscriptions.failed,
            updates_timed_out=subscriptions.timed_out,
            updates_in_flight=subscriptions.in_flight,
            update_window_used=subscriptions.window_used,
            update_window_limit=subscriptions.window_limit,
            desired_systems=len(subscriptions.desired.systems),
            desired_characters=len(subscriptions.desired.characters),
            acknowledged_systems=len(subscriptions.acknowledged.systems),
            acknowledged_characters=len(subscriptions.acknowledged.characters),
            max_systems=self._max_systems,
            max_characters=self._max_characters,
        )

    def _decode(self, frame: str | bytes, received_at_ns: int, now: float) -> Received:
        message = self._parse(frame, received_at_ns)
        if isinstance(message, Received):
            return message
        if message.topic == self._topic:
            handler = self._handlers.get(message.event)
            if handler is not None:
                return handler(message, frame, received_at_ns)
            detail = f"unknown event {quote(message.event)} on {self._topic!r}"
            return self._reject_frame(RejectReason.UNKNOWN_EVENT, detail, frame, received_at_ns)
        if message.topic == "phoenix":
            if message.event == "phx_reply":
                return self._heartbeat_reply(message.ref, now)
            detail = f"unknown event {quote(message.event)} on topic 'phoenix'"
            return self._reject_frame(RejectReason.UNKNOWN_EVENT, detail, frame, received_at_ns)
        detail = f"topic {quote(message.topic)} is not {self._topic!r}"
        return self._reject_frame(RejectReason.UNKNOWN_TOPIC, detail, frame, received_at_ns)

    def _parse(self, frame: str | bytes, received_at_ns: int) -> _Message | Received:
        """The frame's envelope, or a reject."""
        binary = isinstance(frame, bytes)
        size = len(frame)
        if isinstance(frame, str) and size * 4 > self._max_frame_bytes:
            size = len(encode_text(frame))
        if size > self._max_frame_bytes:
            detail = f"{size} bytes exceed max_frame_bytes {self._max_frame_bytes}"
            return self._reject_frame(RejectReason.FRAME_TOO_LARGE, detail, frame, received_at_ns)
        if nesting_exceeds(frame, self._max_depth):
            detail = f"nested deeper than max_depth {self._max_depth}"
            return self._reject_frame(RejectReason.TOO_DEEP, detail, frame, received_at_ns)
        try:
            decoded = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            reason = RejectReason.BINARY_FRAME if binary else RejectReason.INVALID_JSON
            return self._reject_frame(reason, str(exc), frame, received_at_ns)
        if not isinstance(decoded, dict):
            detail = f"the frame is {describe(decoded)}, not a Phoenix V1 object"
            return self._reject_frame(RejectReason.NOT_AN_OBJECT, detail, frame, received_at_ns)
        message = _Message.of(decoded)
        if isinstance(message, str):
            return self._reject_frame(RejectReason.INVALID_FRAME, message, frame, received_at_ns)
        return message

    # -- inbound: by kind ------------------------------------------------------------

    def _heartbeat_reply(self, ref: str | None, now: float) -> Received:
        unanswered = self._unanswered
        if ref is None or all(sent != ref for sent, _ in unanswered):
            self._count(self._ignored, "unmatched_reply")
            return _NOTHING
        while True:
            sent, sent_r = unanswered.popleft()
            if sent == ref:
                break
        self._unanswered_since_r = unanswered[0][1] if unanswered else None
        rtt_s = max(0.0, self._reading(now) - sent_r)
        self._heartbeat_replies += 1
        self._last_rtt_s = rtt_s
        return Received(rtt_s=rtt_s)

    def _ignore(self, message: _Message, _frame: str | bytes, _received_at_ns: int) -> Received:
        self._count(self._ignored, message.event)
        return _NOTHING

    @staticmethod
    def _preload_complete(message: _Message, _frame: str | bytes, _received_at_ns: int) -> Received:
        return Received(control=PreloadComplete(message.payload))

    def _killmail_update(
        self, message: _Message, frame: str | bytes, received_at_ns: int
    ) -> Received:
        events, rejects = self._kills.killmail_update(message.payload, frame, received_at_ns)
        return Received(events=events, rejects=rejects)

    def _kill_count_update(
        self, message: _Message, frame: str | bytes, received_at_ns: int
    ) -> Received:
        events, rejects = self._kills.kill_count_update(message.payload, frame, received_at_ns)
        return Received(events=events, rejects=rejects)

    def _channel_reply(
        self, message: _Message, frame: str | bytes, received_at_ns: int
    ) -> Received:
        payload, ref = message.payload, message.ref
        status = payload.get("status")
        response = payload.get("response", {})
        if not isinstance(status, str) or not isinstance(response, dict):
            detail = (
                f"phx_reply payload has status {describe(status)} and "
                f"response {describe(response)}; expected a string and an object"
            )
            return self._reject_frame(RejectReason.INVALID_PAYLOAD, detail, frame, received_at_ns)
        ok = status == "ok"
        if ref is not None and ref == self._join_ref and self._state is ChannelState.JOINING:
            return self._join_reply(ok, response)
        ack = self._subscriptions.reply(ref, ok, "" if ok else self._reason(response))
        if ack is None:
            self._count(self._ignored, "unmatched_reply")
            return _NOTHING
        return Received(control=ack)

    def _join_reply(self, ok: bool, response: dict[str, Any]) -> Received:
        if not ok:
            self._state = ChannelState.ERRORED
            self._join_failures += 1
            return Received(control=JoinFailed(self._reason(response)))
        self._state = ChannelState.JOINED
        acknowledged = self._subscriptions.joined()
        subscription_id = response.get("subscription_id")
        if not isinstance(subscription_id, str):
            subscription_id = None
        return Received(control=Joined(acknowledged, subscription_id))

    def _channel_ended(
        self, message: _Message, _frame: str | bytes, _received_at_ns: int
    ) -> Received:
        if message.ref is not None and message.ref == self._previous_join_ref:
            # The server closing the channel instance that a re-join replaced.
            self._count(self._ignored, "stale_channel_event")
            return _NOTHING
        self._previous_join_ref = self._join_ref
        self._join_ref = None
        self._subscriptions.channel_ended()
        if message.event == "phx_close":
            self._state = ChannelState.CLOSED
            return Received(control=ChannelClosed())
        self._state = ChannelState.ERRORED
        return Received(control=ChannelErrored())

    # -- helpers ---------------------------------------------------------------------

    def _observe(self, now: float) -> float:
        """The time this connection was first seen, which is ``now`` on the first call."""
        if self._epoch is None:
            self._epoch = now
            self._epoch_r = self._reading(now)
        return self._epoch

    def _reading(self, now: float) -> float:
        """The reading clock at ``now``: real time minus the time reading was paused."""
        paused_s = self._paused_total_s
        if self._paused_at is not None:
            paused_s += max(0.0, now - self._paused_at)
        return now - paused_s

    def _new_ref(self) -> str:
        # Refs keep counting across connections, so a ref never means two things.
        self._next_ref += 1
        return str(self._next_ref)

    @staticmethod
    def _frame(topic: str, event: str, payload: Mapping[str, Any], ref: str) -> str:
        message = {"topic": topic, "event": event, "payload": payload, "ref": ref}
        return orjson.dumps(message).decode()

    @staticmethod
    def _reason(response: Mapping[str, Any]) -> str:
        reason = response.get("reason")
        text = reason if isinstance(reason, str) else orjson.dumps(response).decode()
        return text[: DETAIL_CHARS * 4]

    def _reject_frame(
        self, reason: RejectReason, detail: str, frame: str | bytes, received_at_ns: int
    ) -> Received:
        return Received(rejects=(self._kills.reject_frame(reason, detail, frame, received_at_ns),))

    @staticmethod
    def _count(counters: dict[str, int], name: str, amount: int = 1) -> None:
        counters[name] = counters.get(name, 0) + amount
