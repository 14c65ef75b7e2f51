"""The tables of the process itself: ``[app]`` (data directory, log level),
``[http]`` (the web face), ``[simulator]`` (the loopback world of the demo),
``[mailbox]``, ``[supervision]``, ``[metrics]``, ``[alerts]`` and ``[debug]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from realtime.config.secret import NO_SECRET, Secret


@dataclass(frozen=True, slots=True)
class AppConfig:
    data_dir: str = "data"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """``[http]``: where the API and dashboard listen, who may use them, and the server's bounds.

    Attributes:
        token: when set, the API, the dashboard, ``/debug/*`` and ``/metrics``
            need it (``Authorization: Bearer``, or the dashboard's login cookie).
        allowed_hosts: host names the server answers to besides loopback
            names and IP addresses (``Host`` header, port ignored; against
            DNS rebinding).
        metrics_public: ``/metrics`` answers without the token.
        threads: worker threads that run requests (the whole pool).
        max_connections: open connections at most; a new one beyond it closes
            the one that has waited longest without a request in progress.
        request_timeout_s: how long a connection may take to send a complete
            request (headers and body), counted from its opening or from its
            previous response; slower or idle connections are closed.
        max_header_bytes, max_body_bytes: larger requests are refused (431, 413).
    """

    bind: str = "127.0.0.1"
    port: int = 8765
    token: Secret = NO_SECRET
    allowed_hosts: tuple[str, ...] = ()
    metrics_public: bool = False
    threads: int = 4
    max_connections: int = 100
    request_timeout_s: float = 10.0
    max_header_bytes: int = 16384
    max_body_bytes: int = 16384


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    enabled: bool = True
    seed: int = 42
    kills_port: int = 4004
    map_port: int = 4010
    discord_port: int = 4020
    kills_per_s: float = 0.5
    map_events_per_s: float = 0.2


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    """Mailbox capacity per actor (messages, not events: a batch is one message;
    the journal's counts the events and rejects of its ingest batches)."""

    dedup: int = 1000
    flow_control: int = 2000
    router: int = 1000
    notifier: int = 1000
    metrics: int = 1000
    journal: int = 2000
    tracking: int = 1000
    static_info: int = 1000
    sources: int = 1000
    web: int = 100


@dataclass(frozen=True, slots=True)
class SupervisionConfig:
    max_restarts: int = 5
    max_seconds: float = 30.0
    backoff_min_s: float = 0.01
    backoff_max_s: float = 5.0
    shutdown_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``enabled = false`` runs without the metrics actor: no latency samples,
    no stats reports, no status polls, no alerts (for measuring what they cost)."""

    enabled: bool = True
    history_s: int = 3600
    alert_history: int = 200
    regression_ratio: float = 2.0


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Alerts (see the metrics actor); they reach Discord through routes of kind ``alert``.

    ``cooldown_s``: an alert raised again within this long of its resolution
    is revived silently (no second announcement). ``down_grace_s``: how long
    a source may be not live before its ``connection:{name}`` alert (a
    reconnect within it wakes nobody). ``silent_ticks``: status polls an
    actor leaves unanswered in a row before its ``actor:{name}`` alert.
    ``shed_hold_s``: how long ``flow:shedding`` stays after the last shed event.
    """

    cooldown_s: float = 300.0
    down_grace_s: float = 30.0
    silent_ticks: int = 5
    shed_hold_s: float = 60.0


@dataclass(frozen=True, slots=True)
class DebugConfig:
    allow_fault_injection: bool = False
