"""Routes: which Discord routes a notification goes to, and whether its message pings.

Pure decisions over a :class:`~realtime.notifications.Notification` and the
``[[routes]]`` configuration (:class:`~realtime.config.RouteConfig`):

- :func:`matches`: the notification's kind is one of the route's ``kinds``;
  for a map event, its map is one of the route's ``maps`` (when the route
  lists any; alerts and status messages concern no map and pass); for a kill,
  at least one of the route's ``involving`` reasons holds: its system is
  tracked (by one of the route's ``maps``, when it lists any), or a tracked
  character is the victim or an attacker (tracked by one of those maps); and
  its value is at least ``min_value_isk``, and it is in J-space when
  ``wormhole_only``. Which map tracks what is read from a
  :class:`MapMembership` (the tracked snapshot); a view without it knows no
  map, so a kill passes no route that lists ``maps``.
- :class:`Pings`: whether a message pings: the route has a ``mention``, a kill
  is worth at least ``mention_min_value_isk``, and the route has not pinged
  within ``mention_cooldown_s``. A message in the cooldown still goes, without
  the ping. :func:`mention_body` puts the ping in the message and makes
  ``allowed_mentions`` permit exactly it; :func:`silent_body` permits none.
  Nothing pings unless a route says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from realtime.config import RouteConfig
from realtime.notifications import (
    WORMHOLE_SYSTEM_IDS,
    KillDetails,
    Notification,
    NotificationKind,
)
from realtime.render import NO_MENTIONS, with_mention

MAPLESS_KINDS = frozenset({NotificationKind.ALERT, NotificationKind.STATUS})
"""Kinds that concern no map: a route's ``maps`` does not filter them."""

_ROLE = re.compile(r"^<@&(\d+)>$")


@runtime_checkable
class MapMembership(Protocol):
    """Which maps track a system or a character."""

    def maps_tracking_system(self, system_id: int) -> frozenset[str]: ...

    def maps_tracking_character(self, character_id: int) -> frozenset[str]: ...


class NoMembership:
    """A view that knows no map."""

    def maps_tracking_system(self, system_id: int) -> frozenset[str]:
        return frozenset()

    def maps_tracking_character(self, character_id: int) -> frozenset[str]:
        return frozenset()


NO_MEMBERSHIP = NoMembership()


def matches(
    route: RouteConfig, notification: Notification, membership: MapMembership = NO_MEMBERSHIP
) -> bool:
    """Whether ``notification`` goes to ``route`` (see the module docstring)."""
    if notification.kind not in route.kinds:
        return False
    details = notification.details
    if isinstance(details, KillDetails):
        return _kill_matches(route, details, membership)
    return (
        not route.maps
        or notification.kind in MAPLESS_KINDS
        or not set(route.maps).isdisjoint(notification.maps)
    )


def _kill_matches(route: RouteConfig, kill: KillDetails, membership: MapMembership) -> bool:
    if kill.value_isk < route.min_value_isk:
        return False
    if route.wormhole_only and kill.system_id not in WORMHOLE_SYSTEM_IDS:
        return False
    wanted = frozenset(route.maps)

    def on_wanted_map(maps: frozenset[str]) -> bool:
        return not wanted or not wanted.isdisjoint(maps)

    if (
        "system" in route.involving
        and kill.tracked_system
        and on_wanted_map(membership.maps_tracking_system(kill.system_id))
    ):
        return True
    return "character" in route.involving and any(
        on_wanted_map(membership.maps_tracking_character(pilot.character_id))
        for pilot in kill.tracked_pilots
        if pilot.character_id is not None
    )


def routes_of(
    routes: Sequence[RouteConfig],
    notification: Notification,
    membership: MapMembership = NO_MEMBERSHIP,
) -> list[RouteConfig]:
    """The routes ``notification`` goes to, in configuration order."""
    return [route for route in routes if matches(route, notification, membership)]


def allowed_mentions(mention: str) -> dict[str, Any]:
    """Discord's ``allowed_mentions`` that let exactly ``mention`` ping, and nothing else.

    ``@here`` and ``@everyone`` need ``parse: ["everyone"]`` (Discord has one
    switch for both); a role ``<@&ID>`` is listed by id; anything else
    (including "") allows no ping at all.
    """
    if mention in {"@here", "@everyone"}:
        return {"parse": ["everyone"]}
    role = _ROLE.match(mention)
    if role is not None:
        return {"parse": [], "roles": [role.group(1)]}
    return {"parse": []}


def mention_body(body: Mapping[str, Any], mention: str) -> dict[str, Any]:
    """``body`` pinging ``mention``: it leads the content, and is the only mention allowed.

    Content already in ``body`` follows the mention on the next line; the
    result is fitted to Discord's limits again (the mention comes first, so a
    cut never takes it).
    """
    content = body.get("content")
    text = mention if not isinstance(content, str) or not content else f"{mention}\n{content}"
    return with_mention(body, text, allowed_mentions(mention))


def silent_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` allowed to ping no one, whatever its text says."""
    return {**body, "allowed_mentions": dict(NO_MENTIONS)}


class Pings:
    """When each route last pinged, and whether the next message may (not thread-safe).

    Args:
        last: route name -> when it last pinged (Unix seconds), e.g. from the
            ledger at start, so that a cooldown holds across restarts.
    """

    def __init__(self, last: Mapping[str, float] | None = None) -> None:
        self._last: dict[str, float] = dict(last or {})

    def take(self, route: RouteConfig, notification: Notification, now: float) -> bool:
        """Whether ``notification``'s message on ``route`` pings; a ping starts the cooldown.

        A last ping recorded in the future (the wall clock went back) counts
        as now: the cooldown is never shortened by a clock step.
        """
        if not route.mention:
            return False
        details = notification.details
        if isinstance(details, KillDetails) and details.value_isk < route.mention_min_value_isk:
            return False
        last = self._last.get(route.name)
        if last is not None:
            if last > now:
                self._last[route.name] = last = now
            if now - last < route.mention_cooldown_s:
                return False
        self._last[route.name] = now
        return True

    def last(self) -> dict[str, float]:
        """Route name -> when it last pinged (a copy; :meth:`restore` takes it back)."""
        return dict(self._last)

    def restore(self, last: Mapping[str, float]) -> None:
        """Forget the pings taken since :meth:`last` gave ``last`` (their claims failed)."""
        self._last = dict(last)
