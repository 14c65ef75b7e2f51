"""The tables of the feeds read: ``[sources]`` (what every feed shares),
``[sources.kills]`` (the wanderer-kills WebSocket) and ``[[maps]]`` (each
Wanderer map's event stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from realtime.config.secret import NO_SECRET, Secret


@dataclass(frozen=True, slots=True)
class KillsSourceConfig:
    """``[sources.kills]``: the wanderer-kills feed.

    ``max_frame_bytes`` bounds one WebSocket message, fragments together: a
    larger one is rejected (``frame_too_large``) by its frame header, unread.
    ``max_systems`` and ``max_characters`` bound the ids the maps may track
    (tracking refuses more, counted) and the ids one join or subscription
    change carries (beyond them the highest are left out, counted);
    ``push_timeout_s`` is how long a join or a subscription change
    may wait for its reply before it counts as failed.
    """

    enabled: bool = True
    url: str = "ws://127.0.0.1:4004/socket/websocket"
    heartbeat_interval_s: float = 30.0
    heartbeat_timeout_s: float = 60.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    circuit_failures: int = 8
    circuit_open_s: float = 120.0
    max_frame_bytes: int = 1_048_576
    subscription_updates_per_minute: int = 10
    max_systems: int = 10_000
    max_characters: int = 50_000
    push_timeout_s: float = 10.0
    preload_limit_per_system: int = 20
    preload_since_hours: int = 24


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    """``[sources]``: what every feed shares.

    ``max_json_depth`` rejects input nested deeper (``too_deep``), on both
    feeds, before it is parsed (at most 254: deeper data cannot be encoded
    again). A reader whose batch the journal's full mailbox cannot take waits
    (reading nothing: the server is slowed down) and tries again at most
    ``journal_wait_max_s`` later. Batches the journal refused (disk full) are
    offered again after ``resend_min_s``, the delay growing to ``resend_max_s``.
    """

    kills: KillsSourceConfig = field(default_factory=KillsSourceConfig)
    max_json_depth: int = 64
    journal_wait_max_s: float = 0.05
    resend_min_s: float = 0.5
    resend_max_s: float = 5.0


@dataclass(frozen=True, slots=True)
class MapConfig:
    """``[[maps]]``: one Wanderer map's event stream.

    ``max_line_bytes`` and ``max_event_bytes`` bound the SSE parser (a longer
    line, or an event with more ``data``, is dropped and counted);
    ``max_rest_bytes`` bounds one REST bootstrap answer, decompressed (a
    longer one is rejected: ``rest_answer_too_large``).
    """

    slug: str
    base_url: str = "http://127.0.0.1:4010"
    api_key: Secret = NO_SECRET
    events: tuple[str, ...] = ()
    keepalive_timeout_s: float = 75.0
    connect_timeout_s: float = 10.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    config_error_retry_s: float = 300.0
    backfill_window_s: float = 600.0
    max_line_bytes: int = 1_048_576
    max_event_bytes: int = 4_194_304
    max_rest_bytes: int = 16_777_216
