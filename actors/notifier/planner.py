"""Planning claims: each notification on the console, and on every Discord route it matches.

For the console sink (when on) a notification is one claim under the reserved
route ``console``, whatever the routes say. For the Discord sink (when on) it
is one claim per matching route (:func:`realtime.routes.routes_of`), each with
its own body: the rendered message, with the route's mention when the message
pings (:class:`realtime.routes.Pings`) and no mention allowed otherwise. A
notification that matches no route is counted per kind, not claimed.

Whether a message pings is decided only for pairs not in the ledger yet (a
replay or a redelivery is refused by the ledger anyway, and must not spend a
route's cooldown); if the claims then fail, the pings taken are given back
(:meth:`Plan.pings_before`).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from actors.notifier.console import ConsoleSink
from realtime.config import RouteConfig
from realtime.event import Priority
from realtime.ledger import Claim, Ledger, LedgerKey
from realtime.notifications import Notification
from realtime.render import message_payload
from realtime.routes import MapMembership, Pings, mention_body, routes_of, silent_body

CONSOLE = "console"
"""The console sink's entries in the ledger are kept under this (reserved) route name."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A notification to plan, with what delivery needs from its event."""

    notification: Notification
    received_at: int | None = None
    priority: Priority = Priority.NORMAL


@dataclass(slots=True)
class Plan:
    """The claims of a batch, in order, each with its candidate.

    Attributes:
        claims: what to claim.
        candidates: the candidate of each claim (same order).
        unrouted: per kind, notifications that matched no Discord route.
        pings_before: the routes' last pings before this plan took any.
    """

    claims: list[Claim] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    unrouted: collections.Counter[str] = field(default_factory=collections.Counter)
    pings_before: dict[str, float] = field(default_factory=dict)

    def add(self, claim: Claim, candidate: Candidate) -> None:
        self.claims.append(claim)
        self.candidates.append(candidate)


class Planner:
    """Plans the claims of the notifier's sinks and routes (see the module docstring).

    Args:
        routes: the effective routes (``[[routes]]``, or the default one).
        console: the console sink is on.
        discord: the Discord sink is on.
        pings: each route's last ping (loaded from the ledger at start).
    """

    def __init__(
        self, routes: Sequence[RouteConfig], *, console: bool, discord: bool, pings: Pings
    ) -> None:
        self.routes = tuple(routes)
        self._console = console
        self._discord = discord
        self.pings = pings

    def plan(
        self,
        candidates: Sequence[Candidate],
        ledger: Ledger,
        membership: MapMembership,
        now: float,
    ) -> Plan:
        """The claims for ``candidates``; reads the ledger to know which pairs are new."""
        plan = Plan(pings_before=self.pings.last())
        routed: list[tuple[Candidate, RouteConfig, dict[str, Any]]] = []
        for candidate in candidates:
            notification = candidate.notification
            if self._console:
                payload = ConsoleSink.payload(notification)
                plan.add(Claim(CONSOLE, notification.key, notification.seq, payload), candidate)
            if not self._discord:
                continue
            matched = routes_of(self.routes, notification, membership)
            if not matched:
                plan.unrouted[notification.kind] += 1
                continue
            body = message_payload(notification)
            routed += [(candidate, route, body) for route in matched]
        pinging = [
            LedgerKey(route.name, candidate.notification.key)
            for candidate, route, _ in routed
            if route.mention
        ]
        known = ledger.existing(pinging) if pinging else set()
        for candidate, route, body in routed:
            notification = candidate.notification
            ping = (
                bool(route.mention)
                and LedgerKey(route.name, notification.key) not in known
                and self.pings.take(route, notification, now)
            )
            message = mention_body(body, route.mention) if ping else silent_body(body)
            claim = Claim(
                route.name, notification.key, notification.seq, orjson.dumps(message), ping
            )
            plan.add(claim, candidate)
        return plan
