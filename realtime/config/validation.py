"""Checks across a loaded configuration: ranges, URLs, slugs, secrets a mode
needs, bounds that must agree; the first problem raises a
:class:`~realtime.config.ConfigError` naming the key. ``[[routes]]`` and
``[status]`` are checked by :mod:`realtime.route_checks`.
"""

from __future__ import annotations

import ipaddress
import re

from realtime.config.feeds import SourcesConfig
from realtime.config.notify import StaticInfoConfig
from realtime.config.pipeline import JournalConfig
from realtime.config.root import Config
from realtime.config.secret import ENV_PREFIX, ConfigError
from realtime.config.service import AlertsConfig, HttpConfig, MailboxConfig
from realtime.route_checks import routes_problem

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


def validate(config: Config) -> None:  # noqa: PLR0912
    """Raise :class:`~realtime.config.ConfigError` for the first problem of ``config``."""
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
    _validate_alerts(config.alerts)
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


def _validate_alerts(alerts: AlertsConfig) -> None:
    for name in ("cooldown_s", "down_grace_s", "shed_hold_s"):
        if getattr(alerts, name) < 0:
            raise ConfigError(f"alerts.{name}: must not be negative")
    if alerts.silent_ticks < 1:
        raise ConfigError("alerts.silent_ticks: must be at least 1")


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
    for bound in ("max_systems", "max_characters"):
        if getattr(sources.kills, bound) < 1:
            raise ConfigError(f"sources.kills.{bound}: must be at least 1")
    if sources.kills.push_timeout_s <= 0:
        raise ConfigError("sources.kills.push_timeout_s: must be positive")
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
