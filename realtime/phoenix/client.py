"""The wanderer-kills channel client without I/O: :class:`PhoenixClient`.

It owns no socket, no thread and no clock. The connection actor feeds it the
frames its reader thread receives (:meth:`~PhoenixClient.receive`) and sends
the frames it returns (:meth:`~PhoenixClient.join_frame`,
:meth:`~PhoenixClient.heartbeat_frame`, :meth:`~PhoenixClient.pending_updates`);
``now`` is always a monotonic clock in seconds (``time.monotonic()``), the same
for every call on one client.

The client holds the channel's state and the join, and dispatches each inbound
frame by its event; the frame format is :mod:`realtime.phoenix.wire`, the
liveness rules :mod:`realtime.phoenix.liveness`, what the pushes become
:mod:`realtime.kill_events` and the server's subscription
:mod:`realtime.subscriptions`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from realtime.json_depth import DEFAULT_JSON_DEPTH, MAX_JSON_DEPTH
from realtime.keys import Strategy
from realtime.kill_events import KillDecoder, RejectReason, describe, quote
from realtime.phoenix.liveness import Liveness
from realtime.phoenix.model import (
    DEFAULT_PRELOAD,
    ChannelClosed,
    ChannelErrored,
    ChannelState,
    Joined,
    JoinFailed,
    PhoenixStatistics,
    Preload,
    PreloadComplete,
    Received,
)
from realtime.phoenix.wire import (
    DEFAULT_TOPIC,
    Envelope,
    Malformed,
    connect_url,
    encode_frame,
    parse_frame,
    reply_reason,
)
from realtime.subscriptions import Subscription, Subscriptions

_PUSH_TIMEOUT_S: Final = 10.0  # phoenix.js DEFAULT_TIMEOUT for a push's reply
_NOTHING: Final = Received()


_Handler = Callable[[Envelope, str | bytes, int], Received]


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
        self._liveness = Liveness(
            self._heartbeat_interval_s, self._heartbeat_timeout_s, self._push_timeout_s
        )

    # -- connection ------------------------------------------------------------------

    @staticmethod
    def connect_url(base: str) -> str:
        """The WebSocket URL for a configured base URL: see
        :func:`realtime.phoenix.wire.connect_url` (raises ``ValueError`` likewise).
        """
        return connect_url(base)

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
        return self._liveness.last_rtt_s

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
        self._liveness.observe(now)
        self._subscriptions.set_desired(systems, characters)
        subscription = self._subscriptions.joining()
        if self._join_ref is not None:
            self._previous_join_ref = self._join_ref
        self._join_ref = self._new_ref()
        self._liveness.join_sent(now)
        self._state = ChannelState.JOINING
        self._joins_sent += 1
        payload = {
            "systems": sorted(subscription.systems),
            "character_ids": sorted(subscription.characters),
            "preload": preload.payload(),
        }
        return encode_frame(self._topic, "phx_join", payload, self._join_ref)

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
        self._liveness.observe(now)
        updates = self._subscriptions.pending(
            now, self._state is ChannelState.JOINED, self._new_ref
        )
        return [
            encode_frame(
                self._topic, update.kind.value, {update.kind.field: update.ids}, update.ref
            )
            for update in updates
        ]

    # -- heartbeats and liveness -----------------------------------------------------

    def heartbeat_due(self, now: float) -> bool:
        """Whether a heartbeat should be sent: ``heartbeat_interval_s`` after the
        last one, or after this connection was first seen (any call with ``now``).
        """
        return self._liveness.heartbeat_due(now)

    def heartbeat_frame(self, now: float) -> str:
        """A heartbeat with a fresh ref; its reply gives the round trip.

        Sending is not traffic: only replies are. A reply answers its
        heartbeat and every one sent before it (the server answers in order).
        """
        self._liveness.observe(now)
        ref = self._new_ref()
        self._liveness.heartbeat_sent(ref, now)
        self._heartbeats_sent += 1
        return encode_frame("phoenix", "heartbeat", {}, ref)

    def reading_paused(self, now: float) -> None:
        """The program stopped reading this connection (its journal is behind).

        Until :meth:`reading_resumed` the reading clock stands still: what
        arrives meanwhile waits unread in the socket, so the peer owes
        nothing for that time. Heartbeats are still due on the real clock.
        """
        self._liveness.reading_paused(now)

    def reading_resumed(self, now: float) -> None:
        """Reading goes on; the reading clock runs again from where it stood."""
        self._liveness.reading_resumed(now)

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
        joining = self._join_ref if self._state is ChannelState.JOINING else None
        return self._liveness.is_dead(now, joining)

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
        self._liveness.inbound(now)
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
        self._liveness.inbound(now)
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
            last_rtt_s=self._liveness.last_rtt_s,
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

    def _parse(self, frame: str | bytes, received_at_ns: int) -> Envelope | Received:
        """The frame's envelope, or a reject."""
        parsed = parse_frame(frame, self._max_frame_bytes, self._max_depth)
        if isinstance(parsed, Malformed):
            return self._reject_frame(parsed.reason, parsed.detail, frame, received_at_ns)
        return parsed

    # -- inbound: by kind ------------------------------------------------------------

    def _heartbeat_reply(self, ref: str | None, now: float) -> Received:
        rtt_s = self._liveness.heartbeat_reply(ref, now)
        if rtt_s is None:
            self._count(self._ignored, "unmatched_reply")
            return _NOTHING
        self._heartbeat_replies += 1
        return Received(rtt_s=rtt_s)

    def _ignore(self, message: Envelope, _frame: str | bytes, _received_at_ns: int) -> Received:
        self._count(self._ignored, message.event)
        return _NOTHING

    @staticmethod
    def _preload_complete(message: Envelope, _frame: str | bytes, _received_at_ns: int) -> Received:
        return Received(control=PreloadComplete(message.payload))

    def _killmail_update(
        self, message: Envelope, frame: str | bytes, received_at_ns: int
    ) -> Received:
        events, rejects = self._kills.killmail_update(message.payload, frame, received_at_ns)
        return Received(events=events, rejects=rejects)

    def _kill_count_update(
        self, message: Envelope, frame: str | bytes, received_at_ns: int
    ) -> Received:
        events, rejects = self._kills.kill_count_update(message.payload, frame, received_at_ns)
        return Received(events=events, rejects=rejects)

    def _channel_reply(
        self, message: Envelope, frame: str | bytes, received_at_ns: int
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
        ack = self._subscriptions.reply(ref, ok, "" if ok else reply_reason(response))
        if ack is None:
            self._count(self._ignored, "unmatched_reply")
            return _NOTHING
        return Received(control=ack)

    def _join_reply(self, ok: bool, response: dict[str, Any]) -> Received:
        if not ok:
            self._state = ChannelState.ERRORED
            self._join_failures += 1
            return Received(control=JoinFailed(reply_reason(response)))
        self._state = ChannelState.JOINED
        acknowledged = self._subscriptions.joined()
        subscription_id = response.get("subscription_id")
        if not isinstance(subscription_id, str):
            subscription_id = None
        return Received(control=Joined(acknowledged, subscription_id))

    def _channel_ended(
        self, message: Envelope, _frame: str | bytes, _received_at_ns: int
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

    def _new_ref(self) -> str:
        # Refs keep counting across connections, so a ref never means two things.
        self._next_ref += 1
        return str(self._next_ref)

    def _reject_frame(
        self, reason: RejectReason, detail: str, frame: str | bytes, received_at_ns: int
    ) -> Received:
        return Received(rejects=(self._kills.reject_frame(reason, detail, frame, received_at_ns),))

    @staticmethod
    def _count(counters: dict[str, int], name: str, amount: int = 1) -> None:
        counters[name] = counters.get(name, 0) + amount
