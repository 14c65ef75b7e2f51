"""Checks of ``[[routes]]`` and ``[status]``: the first problem, as a message naming the key.

Kept apart from :mod:`realtime.config` so that the loader stays readable; it
reads the configuration's types only for checking them (no import cycle), and
returns the problem as text for the loader to raise as its ``ConfigError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from realtime.config import Config, RouteConfig

RESERVED_ROUTE_NAMES = frozenset({"console"})
"""Names a route cannot take: the ledger keeps the console sink's entries under them."""

ROUTE_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
ROLE_MENTION = re.compile(r"^<@&(\d{1,20})>$")
EVERYONE_MENTIONS = frozenset({"@here", "@everyone"})
WEBHOOK_PATH = re.compile(r"^https?://[^/]+/api(?:/v\d+)?/webhooks/\d+/[^/]+/?$")

KILL_ONLY_OPTIONS = ("involving", "min_value_isk", "wormhole_only", "mention_min_value_isk")
"""Route options that filter kills: set on a route without kind ``kill``, they are a mistake."""

_KILL_ONLY_DEFAULTS: dict[str, object] = {
    "involving": ("system", "character"),
    "min_value_isk": 0.0,
    "wormhole_only": False,
    "mention_min_value_isk": 0.0,
}


def mention_problem(mention: str) -> str | None:
    """Why ``mention`` is not a mention a route may use (``None``: it is fine)."""
    if mention == "" or mention in EVERYONE_MENTIONS or ROLE_MENTION.match(mention):
        return None
    return f'{mention!r} is not "", "@here", "@everyone" or a role mention "<@&ROLE_ID>"'


def routes_problem(config: Config) -> str | None:
    """The first problem of ``config.routes`` and ``config.status``, or ``None``."""
    return next(_problems(config), None)


def _problems(config: Config) -> Iterator[str]:
    status = config.status
    if not (math.isfinite(status.catch_up_s) and status.catch_up_s >= 0):
        yield "status.catch_up_s: must be a number of seconds, 0 or more"
    if not (math.isfinite(status.heartbeat_s) and status.heartbeat_s > 0):
        yield "status.heartbeat_s: must be positive"
    seen: dict[str, int] = {}
    for index, route in enumerate(config.routes):
        key = f"routes[{index}]"
        if not ROUTE_NAME.match(route.name):
            yield f"{key}.name: {route.name!r} is not a route name ([a-z0-9_-], 1 to 64 characters)"
        if route.name in RESERVED_ROUTE_NAMES:
            yield f"{key}.name: {route.name!r} is reserved (the console sink's)"
        if route.name in seen:
            yield f"{key}.name: {route.name!r} appears twice (also routes[{seen[route.name]}])"
        seen.setdefault(route.name, index)
        yield from _route_problems(config, key, route)


def _route_problems(config: Config, key: str, route: RouteConfig) -> Iterator[str]:
    if not route.kinds:
        yield f"{key}.kinds: empty: a route carries at least one kind"
    for kind in {kind for kind in route.kinds if route.kinds.count(kind) > 1}:
        yield f"{key}.kinds: {kind!r} appears twice"
    if route.channel_id and not route.channel_id.isdigit():
        yield f"{key}.channel_id: {route.channel_id!r} is not a channel id (digits)"
    slugs = [map_config.slug for map_config in config.maps]
    for position, slug in enumerate(route.maps):
        if slug not in slugs:
            known = ", ".join(slugs) or "none"
            yield f"{key}.maps[{position}]: {slug!r} is not a configured map (maps: {known})"
    if "kill" not in route.kinds:
        for option in KILL_ONLY_OPTIONS:
            if getattr(route, option) != _KILL_ONLY_DEFAULTS[option]:
                yield f'{key}.{option}: filters kills, and this route has no kind "kill"'
    yield from _kill_problems(key, route)
    problem = mention_problem(route.mention)
    if problem is not None:
        yield f"{key}.mention: {problem}"
    if route.mention_min_value_isk > 0 and not route.mention:
        yield f"{key}.mention_min_value_isk: has no effect without a mention"
    yield from _destination_problems(config, key, route)


def _kill_problems(key: str, route: RouteConfig) -> Iterator[str]:
    if not route.involving:
        yield f'{key}.involving: empty: list "system", "character" or both'
    for reason in {reason for reason in route.involving if route.involving.count(reason) > 1}:
        yield f"{key}.involving: {reason!r} appears twice"
    for option in ("min_value_isk", "mention_min_value_isk", "mention_cooldown_s"):
        value = getattr(route, option)
        if not (math.isfinite(value) and value >= 0):
            yield f"{key}.{option}: must be a finite number, 0 or more"


def _destination_problems(config: Config, key: str, route: RouteConfig) -> Iterator[str]:
    """A route must lead somewhere when Discord is really used (not the demo world)."""
    if "discord" not in config.notify.sinks or config.simulator.enabled:
        return
    discord = config.notify.discord
    webhook = route.webhook_url
    if webhook.origin != "inline" and not webhook:
        yield f"{key}.webhook_url: {webhook.origin} is empty or unset"
    if webhook and not WEBHOOK_PATH.match(webhook.value):
        yield (
            f"{key}.webhook_url: not a Discord webhook URL "
            f"(https://.../api/webhooks/ID/TOKEN; from {webhook.origin})"
        )
    if discord.mode == "bot" and not (route.channel_id or discord.channel_id):
        yield (
            f"{key}.channel_id: bot mode needs a channel: set it here or "
            "[notify.discord] channel_id"
        )
    if discord.mode == "webhook" and not (webhook or discord.webhook_url):
        yield (
            f"{key}.webhook_url: webhook mode needs a webhook: set it here or "
            "[notify.discord] webhook_url"
        )
