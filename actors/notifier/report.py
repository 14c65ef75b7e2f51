"""What the notifier shows in ``/api/status`` (under ``notifier``): sinks, routes, queue.

``routes`` has one entry per configured route: its kinds, where it posts
(a channel id, or which webhook: never the webhook's URL), its mention, its
state (``running``, ``stopped`` with the reason, or ``off`` when the Discord
sink is not among ``[notify] sinks``), and its ledger counts ``sent``,
``pending`` and ``failed`` (kept across restarts), with its last ping.
``unrouted`` counts, per kind, the notifications no route matched (this run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from actors.notifier.discord_sink import DiscordSink
from realtime.config import DiscordConfig, RouteConfig
from realtime.ledger import LedgerStatistics, RouteCounts


def route_status(
    routes: Sequence[RouteConfig],
    discord: DiscordConfig,
    ledger: LedgerStatistics | None,
    sink: DiscordSink | None,
    *,
    enabled: bool,
    sink_error: str | None,
    last_pings: Mapping[str, float],
) -> dict[str, Any]:
    """The ``routes`` table (see the module docstring)."""
    counts = ledger.routes if ledger is not None else {}
    table: dict[str, Any] = {}
    for route in routes:
        error = sink.route_error(route.name) if sink is not None else sink_error
        state = "off" if not enabled else ("stopped" if error else "running")
        numbers = counts.get(route.name, RouteCounts())
        table[route.name] = {
            "kinds": list(route.kinds),
            "destination": _destination(route, discord),
            "mention": route.mention,
            "state": state,
            "error": error if enabled else None,
            "sent": numbers.sent,
            "pending": numbers.pending,
            "failed": numbers.failed,
            "last_ping_at": last_pings.get(route.name),
        }
    return table


def _destination(route: RouteConfig, discord: DiscordConfig) -> str:
    if discord.mode == "bot":
        return f"channel {route.channel_id or discord.channel_id or '(none)'}"
    return "webhook (its own)" if route.webhook_url else "webhook ([notify.discord])"


def discord_status(sink: DiscordSink | None, mode: str, error: str | None) -> dict[str, Any]:
    """The ``sinks.discord`` entry: state, workers, requests, outcomes, rate limits."""
    if sink is None:
        return {"state": "stopped", "mode": mode, "error": error}
    sender = sink.sender.statistics()
    limits = sender.limits
    return {
        "state": sink.state,
        "mode": mode,
        "error": sink.error,
        "workers": sink.workers,
        "requests": sender.requests,
        "outcomes": dict(sender.outcomes),
        "rate_limits": {
            "buckets": limits.buckets,
            "exhausted_buckets": limits.exhausted_buckets,
            "global_blocked_s": limits.global_blocked_s,
            "rate_limited": limits.rate_limited,
            "rate_limited_global": limits.rate_limited_global,
            "invalid_in_window": limits.invalid_in_window,
        },
    }


def queue_status(sink: DiscordSink | None, *, backlog: bool) -> dict[str, Any]:
    """The ``queue`` entry: the send queue's figures, and whether the ledger holds a backlog."""
    queue: dict[str, Any] = {"backlog": backlog}
    if sink is not None:
        queue.update(dataclasses.asdict(sink.queue.statistics()))
    return queue
