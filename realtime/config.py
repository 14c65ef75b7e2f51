"""Configuration: ``config.toml`` into typed, frozen objects.

Every table is a frozen dataclass; the loader walks the dataclass fields, so a
new setting is one field with a default. Anything the file says that no field
expects is an error naming the key, as is a value of the wrong type or a
missing required value. A string value ``"env:NAME"`` in a :class:`Secret`
field is read from the environment and never printed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from realtime.route_checks import routes_problem

ENV_PREFIX = "env:"
MASK = "***"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the problem."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value; ``str()`` and ``repr()`` never show it.

    Attributes:
        value: the secret itself ("" when unset).
        origin: where it came from, safe to print (``env:NAME`` or ``inline``).
    """

    value: str
    origin: str

    def __bool__(self) -> bool:
        return bool(self.value)

    def __str__(self) -> str:
        return MASK if self.value else ""

    def __repr__(self) -> str:
        return f"Secret({self.origin}, {'set' if self.value else 'unset'})"


NO_SECRET = Secret("", "inline")


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
class KillsSourceConfig:
    """``[sources.kills]``: the wanderer-kills feed.

    ``max_frame_bytes`` bounds one WebSocket message, fragments together: a
    larger one is rejected (``frame_too_large``) by its frame header, unread.
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


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    mode: Literal["bot", "webhook"] = "bot"
    api_base: str = "https://discord.com/api/v10"
    bot_token: Secret = NO_SECRET
    channel_id: str = ""
    webhook_url: Secret = NO_SECRET
    request_timeout_s: float = 10.0
    max_attempts: int = 8
    retry_min_s: float = 0.5
    retry_max_s: float = 60.0
    concurrency: int = 4
    send_queue: int = 1000


@dataclass(frozen=True, slots=True)
class KillNotifyConfig:
    enabled: bool = True
    min_value_isk: float = 0.0
    wormhole_only: bool = False
    exclude_systems: tuple[int, ...] = ()
    exclude_characters: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class MapNotifyConfig:
    system_added: bool = True
    character_added: bool = True
    character_removed: bool = True
    rally_point_added: bool = True


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    sinks: tuple[Literal["console", "discord"], ...] = ("console",)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    kills: KillNotifyConfig = field(default_factory=KillNotifyConfig)
    map: MapNotifyConfig = field(default_factory=MapNotifyConfig)


RouteKind = Literal[
    "kill",
    "system_added",
    "character_added",
    "character_removed",
    "rally_point",
    "alert",
    "status",
]
ROUTE_KINDS: tuple[RouteKind, ...] = typing.get_args(RouteKind)
"""Every kind of notification a route can carry."""

Involving = Literal["system", "character"]

DEFAULT_ROUTE = "discord"
"""The route every kind goes to when the configuration has no ``[[routes]]``."""


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One ``[[routes]]`` table: which notifications go where, and whom they ping.

    Attributes:
        name: unique, ``[a-z0-9_-]+``; shown in ``/api/status`` and kept in
            the ledger (renaming a route makes its notifications new to it).
        kinds: the kinds it carries (at least one, each once).
        channel_id: bot mode: its channel ("" = ``[notify.discord] channel_id``).
        webhook_url: webhook mode: its webhook ("" = ``[notify.discord] webhook_url``).
        maps: only notifications concerning these map slugs ("" = all);
            alerts and status messages concern no map and ignore it.
        involving: kills only: why a kill matters to this route: its system
            is tracked, or a tracked character is the victim or an attacker.
        min_value_isk: kills only: at or above this total value.
        wormhole_only: kills only: J-space only (31000000-31999999).
        mention: put in the message content, and the only mention allowed to
            ping: ``@here``, ``@everyone`` or ``<@&ROLE_ID>`` ("" = no ping).
        mention_min_value_isk: kills only: ping only at or above this value.
        mention_cooldown_s: at most one ping per route in this many seconds
            (the message is still sent, without the ping).
    """

    name: str
    kinds: tuple[RouteKind, ...]
    channel_id: str = ""
    webhook_url: Secret = NO_SECRET
    maps: tuple[str, ...] = ()
    involving: tuple[Involving, ...] = ("system", "character")
    min_value_isk: float = 0.0
    wormhole_only: bool = False
    mention: str = ""
    mention_min_value_isk: float = 0.0
    mention_cooldown_s: float = 300.0


def default_route() -> RouteConfig:
    """The route of a configuration without ``[[routes]]``: every kind, the default channel."""
    return RouteConfig(name=DEFAULT_ROUTE, kinds=ROUTE_KINDS)


@dataclass(frozen=True, slots=True)
class StatusConfig:
    """Status messages (kind ``status``): at a start, and after an outage.

    ``catch_up_s``: how long after a start, or after a feed came back, kills
    are counted as caught up before the status message goes out.
    ``heartbeat_s``: how often the notifier records that the program is alive
    (a start measures the time away from the last record).
    """

    catch_up_s: float = 30.0
    heartbeat_s: float = 10.0


@dataclass(frozen=True, slots=True)
class StaticInfoConfig:
    """A system's static data (class, statics, effect, region) from the map's
    static-info endpoint, fetched once per system and kept in the journal database.

    ``wait_s`` bounds how long a new system's card waits for a fetch before it
    goes out with the name only; fetches are spaced ``min_interval_s`` apart, and
    a failure is retried after ``retry_min_s``, doubling up to ``retry_max_s``.
    """

    enabled: bool = True
    wait_s: float = 3.0
    request_timeout_s: float = 5.0
    min_interval_s: float = 0.2
    retry_min_s: float = 30.0
    retry_max_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class FiltersConfig:
    max_kill_age_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    """Mailbox capacity per actor (messages, not events: a batch is one message;
    the journal's counts the events and rejects of its ingest batches)."""

    dedup: int = 1000
    flow_control: int = 10000
    router: int = 1000
    notifier: int = 1000
    metrics: int = 1000
    journal: int = 10000
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
class JournalConfig:
    """The event journal (SQLite, WAL) in ``[app] data_dir``.

    Group commit takes whatever ingest is queued, up to ``batch_max`` events,
    into one transaction. ``max_pending`` bounds what is held in memory while
    the database cannot be written (disk full); beyond it ingest is refused
    back to the sources. ``fsync`` makes every commit survive power loss too.

    ``max_db_mb`` (0: no cap), ``fsync``, ``busy_timeout_s`` and the retry
    delays apply to every part that writes the database file (journal,
    ledger, tracking). ``busy_timeout_s`` is how long a write waits for
    another connection's lock; a write that fails for a passing reason (busy,
    disk full, cap reached) is retried after ``retry_min_s``, doubling up to
    ``retry_max_s``, and alerted meanwhile. ``tail_events`` bounds the
    committed, undelivered events kept in memory for delivery without a read;
    ``purge_rows`` the rows one retention transaction deletes.
    """

    retention_days: float = 7.0
    batch_max: int = 1000
    max_pending: int = 20_000
    max_reject_bytes: int = 65536
    max_db_mb: float = 0.0
    fsync: bool = False
    delivery_batch: int = 256
    purge_every_s: float = 60.0
    busy_timeout_s: float = 5.0
    retry_min_s: float = 0.1
    retry_max_s: float = 5.0
    tail_events: int = 5000
    purge_rows: int = 5000


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """``window_s = 0`` means ``max(2 * [filters] max_kill_age_s, 3600)``."""

    window_s: float = 0.0
    max_entries: int = 200_000
    default_strategy: Literal["key", "content", "hybrid"] = "hybrid"
    strategies: Mapping[str, Literal["key", "content", "hybrid"]] = field(default_factory=dict)


Priority = Literal["critical", "high", "normal", "low"]


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Flow control; its buffer holds ``[mailbox] flow_control`` events.

    ``priorities`` overrides the default priority of an event type.
    """

    high_watermark: int = 8000
    low_watermark: int = 6000
    batch: int = 256
    demand: int = 512
    priorities: Mapping[str, Priority] = field(default_factory=dict)


Handler = Literal["tracking", "notifier", "ignore"]


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Event type -> handlers, in order; overrides the defaults (see ``actors/router.py``)."""

    routes: Mapping[str, tuple[Handler, ...]] = field(default_factory=dict)
    max_attempts: int = 5
    retry_min_s: float = 0.2
    retry_max_s: float = 10.0
    handler_timeout_s: float = 10.0


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
    is revived silently (no second announcement).
    """

    cooldown_s: float = 300.0


@dataclass(frozen=True, slots=True)
class DebugConfig:
    allow_fault_injection: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    app: AppConfig = field(default_factory=AppConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    maps: tuple[MapConfig, ...] = ()
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    static_info: StaticInfoConfig = field(default_factory=StaticInfoConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    routes: tuple[RouteConfig, ...] = ()
    status: StatusConfig = field(default_factory=StatusConfig)
    mailbox: MailboxConfig = field(default_factory=MailboxConfig)
    supervision: SupervisionConfig = field(default_factory=SupervisionConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)

    source_path: ClassVar[str] = "config.toml"

    @property
    def data_path(self) -> Path:
        return Path(self.app.data_dir)

    @property
    def effective_routes(self) -> tuple[RouteConfig, ...]:
        """``[[routes]]``, or the one default route when there is none."""
        return self.routes or (default_route(),)

    @property
    def dedup_window_s(self) -> float:
        """The effective dedup window: never shorter than a replayable kill's age."""
        if self.dedup.window_s > 0:
            return self.dedup.window_s
        return max(2 * self.filters.max_kill_age_s, 3600.0)


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file.

    Raises:
        ConfigError: the file is missing, is not TOML, or fails validation.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse(table, os.environ if environ is None else environ)


def parse(table: Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """Build a :class:`Config` from a parsed TOML table and validate it."""
    config: Config = _build(Config, _without_retired_keys(table), "", environ)
    _validate(config)
    return config


def masked(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked."""
    return typing.cast("dict[str, Any]", _plain(config))


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return f"{MASK} ({value.origin})" if value.value else f"(unset, {value.origin})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _build(cls: type[Any], table: Any, prefix: str, environ: Mapping[str, str]) -> Any:
    where = prefix or "the top level"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table, got {_type_name(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in table:
        if name not in fields:
            raise ConfigError(f"{_key(prefix, name)}: unknown key")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        key = _key(prefix, name)
        if name in table:
            values[name] = _convert(hints[name], table[name], key, environ)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required but missing")
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, environ: Mapping[str, str]) -> Any:  # noqa: PLR0911, PLR0912
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Secret:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_type_name(value)}")
        if value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            return Secret(environ.get(name, ""), value)
        return Secret(value, "inline")
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast("type[Any]", hint), value, key, environ)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{key}: {value!r} is not one of {allowed}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {_type_name(value)}")
        return tuple(_convert(args[0], v, f"{key}[{i}]", environ) for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table, got {_type_name(value)}")
        return types.MappingProxyType(
            {k: _convert(args[1], v, f"{key}.{k}", environ) for k, v in value.items()}
        )
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_type_name(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_type_name(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {_type_name(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_type_name(value)}")
        return value
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _validate_http(http: HttpConfig) -> None:
    if not 0 <= http.port < 65536:
        raise ConfigError(f"http.port: {http.port} is not a TCP port (0-65535; 0 picks a free one)")
    if http.token.origin.startswith(ENV_PREFIX) and not http.token:
        raise ConfigError(
            f"http.token: {http.token.origin[len(ENV_PREFIX) :]} is not set in the environment "
            f'(from {http.token.origin}); set it, or write token = "" for no token on loopback'
        )
    for index, host in enumerate(http.allowed_hosts):
        if not _HOST_NAME.match(host):
            raise ConfigError(f"http.allowed_hosts[{index}]: {host!r} is not a host name")
    for name in ("threads", "max_connections", "max_header_bytes", "max_body_bytes"):
        if getattr(http, name) < 1:
            raise ConfigError(f"http.{name}: must be at least 1")
    if http.threads > http.max_connections:
        raise ConfigError(
            f"http.threads: more threads than connections ({http.threads} > {http.max_connections})"
        )
    if http.request_timeout_s <= 0:
        raise ConfigError("http.request_timeout_s: must be positive")
    if not _is_loopback(http.bind) and not http.token:
        raise ConfigError(
            f"http.token: binding {http.bind} (not loopback) without a token is refused; "
            "set http.token or bind 127.0.0.1"
        )


def _validate(config: Config) -> None:  # noqa: PLR0912
    _validate_http(config.http)
    kills = config.sources.kills
    if kills.heartbeat_interval_s <= 0:
        raise ConfigError("sources.kills.heartbeat_interval_s: must be positive")
    if kills.heartbeat_timeout_s <= kills.heartbeat_interval_s:
        raise ConfigError(
            "sources.kills.heartbeat_timeout_s: must be longer than heartbeat_interval_s "
            f"({kills.heartbeat_timeout_s} <= {kills.heartbeat_interval_s})"
        )
    if not kills.url.startswith(("ws://", "wss://", "http://", "https://")):
        raise ConfigError(f"sources.kills.url: {kills.url!r} is not a ws(s):// or http(s):// URL")
    _validate_sources(config.sources)
    seen: set[str] = set()
    for index, map_config in enumerate(config.maps):
        key = f"maps[{index}]"
        if not _SLUG.match(map_config.slug):
            raise ConfigError(f"{key}.slug: {map_config.slug!r} is not a map slug")
        if map_config.slug in seen:
            raise ConfigError(f"{key}.slug: {map_config.slug!r} appears twice")
        seen.add(map_config.slug)
        if not map_config.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{key}.base_url: {map_config.base_url!r} is not an http(s) URL")
        if map_config.keepalive_timeout_s <= 0:
            raise ConfigError(f"{key}.keepalive_timeout_s: must be positive")
        for bound in ("max_line_bytes", "max_event_bytes", "max_rest_bytes"):
            if getattr(map_config, bound) < 1:
                raise ConfigError(f"{key}.{bound}: must be at least 1")
        if not config.simulator.enabled and not map_config.api_key:
            raise ConfigError(
                f"{key}.api_key: empty (from {map_config.api_key.origin}); "
                "the map's API needs a Bearer key"
            )
    discord = config.notify.discord
    if "discord" in config.notify.sinks and not config.simulator.enabled:
        if discord.mode == "bot" and not discord.bot_token:
            raise ConfigError(
                f"notify.discord.bot_token: bot mode needs a bot token "
                f"(from {discord.bot_token.origin})"
            )
        if discord.mode == "bot" and not config.routes and not discord.channel_id:
            raise ConfigError("notify.discord.channel_id: bot mode needs a channel id")
        if discord.mode == "webhook" and not config.routes and not discord.webhook_url:
            raise ConfigError(
                f"notify.discord.webhook_url: webhook mode needs a webhook URL "
                f"(from {discord.webhook_url.origin})"
            )
    if discord.request_timeout_s <= 0:
        raise ConfigError("notify.discord.request_timeout_s: must be positive")
    _validate_static_info(config.static_info)
    if config.filters.max_kill_age_s <= 0:
        raise ConfigError("filters.max_kill_age_s: must be positive")
    for name in MailboxConfig.__dataclass_fields__:
        if getattr(config.mailbox, name) < 1:
            raise ConfigError(f"mailbox.{name}: capacity must be at least 1")
    flow = config.flow
    if not 0 < flow.low_watermark < flow.high_watermark <= config.mailbox.flow_control:
        raise ConfigError(
            "flow.high_watermark: need 0 < low_watermark < high_watermark <= "
            f"mailbox.flow_control ({flow.low_watermark}, {flow.high_watermark}, "
            f"{config.mailbox.flow_control})"
        )
    if config.dedup.max_entries < 1:
        raise ConfigError("dedup.max_entries: must be at least 1")
    _validate_journal(config.journal)
    _fail_on(routes_problem(config))


def _validate_journal(journal: JournalConfig) -> None:
    if journal.retention_days <= 0:
        raise ConfigError("journal.retention_days: must be positive")
    if journal.busy_timeout_s < 0:
        raise ConfigError("journal.busy_timeout_s: must not be negative")
    if not 0 < journal.retry_min_s <= journal.retry_max_s:
        raise ConfigError("journal.retry_min_s: need 0 < retry_min_s <= retry_max_s")
    if journal.tail_events < 1:
        raise ConfigError("journal.tail_events: must be at least 1")
    if journal.purge_rows < 1:
        raise ConfigError("journal.purge_rows: must be at least 1")


def _validate_static_info(static_info: StaticInfoConfig) -> None:
    if min(static_info.wait_s, static_info.min_interval_s) < 0:
        raise ConfigError("static_info.wait_s: wait_s and min_interval_s must not be negative")
    if static_info.request_timeout_s <= 0:
        raise ConfigError("static_info.request_timeout_s: must be positive")
    if not 0 < static_info.retry_min_s <= static_info.retry_max_s:
        raise ConfigError("static_info.retry_min_s: need 0 < retry_min_s <= retry_max_s")


def _validate_sources(sources: SourcesConfig) -> None:
    if not 1 <= sources.max_json_depth <= 254:
        raise ConfigError(
            f"sources.max_json_depth: {sources.max_json_depth} is not within 1-254 "
            "(deeper data cannot be encoded again)"
        )
    if sources.kills.max_frame_bytes < 1:
        raise ConfigError("sources.kills.max_frame_bytes: must be at least 1")
    if sources.journal_wait_max_s <= 0:
        raise ConfigError("sources.journal_wait_max_s: must be positive")
    if not 0 < sources.resend_min_s <= sources.resend_max_s:
        raise ConfigError(
            "sources.resend_min_s: need 0 < resend_min_s <= resend_max_s "
            f"({sources.resend_min_s}, {sources.resend_max_s})"
        )


def _fail_on(problem: str | None) -> None:
    if problem is not None:
        raise ConfigError(problem)


def _without_retired_keys(table: Mapping[str, Any]) -> Mapping[str, Any]:
    """``table`` without keys that once existed and mean nothing now (the input is not changed).

    Raises:
        ConfigError: ``[alerts] discord_channel_id`` is set: routes of kind
            ``alert`` replaced it, and the message says what to write instead.
            (Empty, it never did anything, and is let pass.)
    """
    alerts = table.get("alerts")
    if not isinstance(alerts, Mapping) or "discord_channel_id" not in alerts:
        return table
    channel = alerts["discord_channel_id"]
    if channel != "":
        raise ConfigError(
            'alerts.discord_channel_id: replaced by routes of kind "alert"; remove it and add\n'
            '[[routes]]\nname = "alerts"\nkinds = ["alert"]\n'
            f"channel_id = {json.dumps(str(channel))}"
        )
    kept = {key: value for key, value in alerts.items() if key != "discord_channel_id"}
    return {**table, "alerts": kept}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
