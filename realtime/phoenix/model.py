"""The values a :class:`~realtime.phoenix.PhoenixClient` speaks in: the channel's
state, the join's preload request, what one inbound frame amounted to
(:class:`Received` and its :data:`Control` values) and the client's statistics.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from realtime.event import Event, Reject
from realtime.subscriptions import Subscription, SubscriptionAck


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


@dataclass(frozen=True, slots=True)
class PhoenixStatistics:
    """A snapshot of a :class:`~realtime.phoenix.PhoenixClient`. Counters run
    over the client's lifetime (across
    :meth:`~realtime.phoenix.PhoenixClient.reset`); sizes are current.

    Attributes:
        rejects: per :class:`~realtime.kill_events.RejectReason`, frames or
            killmails rejected.
        ignored: frames deliberately dropped, per kind (``preload_status``,
            ``preload_batch``, ``new_kill``, ``unmatched_reply``,
            ``stale_channel_event``).
        dropped_ids: ids never sent, per kind (``invalid_system_ids``,
            ``invalid_character_ids``, ``excess_system_ids``,
            ``excess_character_ids``).
        updates_in_flight: subscription changes awaiting a reply (at most 4).
        update_window_used: changes sent in the minute before the last
            :meth:`~realtime.phoenix.PhoenixClient.pending_updates` (at most
            ``update_window_limit``).
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
