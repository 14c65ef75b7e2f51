"""The tables of what is told and where: ``[notify]`` (sinks, Discord, kill
and map notifications), ``[[routes]]``, ``[status]``, ``[static_info]`` and
``[filters]``.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Literal

from realtime.config.secret import NO_SECRET, Secret


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
