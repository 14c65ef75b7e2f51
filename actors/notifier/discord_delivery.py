"""The notifier's Discord side: starting the sink, offering what was just
claimed, and refilling the send queue from the backlog in the ledger.

A new entry goes straight into the send queue only while no older entry waits
in the ledger (no *backlog*) and the queue has room; otherwise it stays pending
in the ledger and :meth:`DiscordDelivery.refill` moves pending entries into the
queue, in claim order, as room appears.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

import orjson

from actors.discord_http import DiscordSender, RetryPlan
from actors.notifier.discord_sink import DiscordSink, Outcomes, SharedLedger
from actors.notifier.send_queue import Delivery, SendQueue
from realtime.config import DiscordConfig, RouteConfig
from realtime.event import Priority
from realtime.ledger import LedgerEntry

logger = logging.getLogger(__name__)

DISCORD = "discord"

UNREADABLE_BODY = "the stored message body is unreadable"


class DiscordDelivery:
    """The Discord sink of one notifier, or why it could not start.

    Args:
        config: ``[notify.discord]``.
        routes: the effective routes.
        ledger: the notifier's ledger, shared with the sink's workers.
        outcomes: where the workers count what happened.
        counters: the actor's counters (``sink_stopped``, ``failed_discord``).
        mark_failed: marks an entry failed (entry, sink, reason), counted and logged.
        seed: seeds the workers' retry jitter (``None``: unpredictable).
    """

    def __init__(
        self,
        config: DiscordConfig,
        routes: tuple[RouteConfig, ...],
        *,
        ledger: SharedLedger,
        outcomes: Outcomes,
        counters: collections.Counter[str],
        mark_failed: Callable[[LedgerEntry, str, str], None],
        seed: int | None,
    ) -> None:
        self._config = config
        self._routes = routes
        self._ledger = ledger
        self._outcomes = outcomes
        self._counters = counters
        self._mark_failed = mark_failed
        self._seed = seed
        self.sink: DiscordSink | None = None
        self.start_error: str | None = None
        self.backlog = False

    def start(self) -> None:
        """Start the sink's workers; a configuration it cannot use stops it instead.

        Stopped, it alerts and the notifier keeps claiming: the entries wait in
        the ledger for a start with a usable configuration.
        """
        try:
            sender = DiscordSender(self._config, routes=self._routes)
        except ValueError as error:
            self.start_error = str(error)
            self._counters["sink_stopped"] += 1
            logger.error("notifier: the Discord sink cannot start: %s", error)
            return
        self.sink = DiscordSink(
            sender,
            RetryPlan.from_config(self._config),
            SendQueue(self._config.send_queue),
            self._ledger,
            self._outcomes,
            workers=self._config.concurrency,
            seed=self._seed,
        )
        self.sink.start()

    def stop(self, timeout_s: float) -> None:
        """Stop the workers (waiting at most ``timeout_s`` for answers outstanding)."""
        if self.sink is None:
            return
        busy = self.sink.stop(timeout_s)
        if busy:
            logger.warning("notifier: stopped with answers outstanding: %s", ", ".join(busy))
        self.sink.sender.close()

    def error(self) -> str | None:
        """Why Discord delivery is stopped, whole or for a route (the first one)."""
        sink = self.sink
        if sink is None:
            return self.start_error
        if sink.error is not None:
            return sink.error
        halted = dict(sink.halted)
        return next((f"route {route}: {reason}" for route, reason in halted.items()), None)

    def offer(self, entry: LedgerEntry, received_at: int | None, priority: Priority) -> None:
        """Queue a new entry, unless older ones wait in the ledger or it does not fit.

        An entry not queued stays pending in the ledger; :meth:`refill` queues
        it, in claim order, once there is room.
        """
        sink = self.sink
        if self.backlog or sink is None or sink.route_error(entry.route) is not None:
            return
        body = _body(entry)
        if body is None:
            self._mark_failed(entry, DISCORD, UNREADABLE_BODY)
        elif not sink.queue.offer(Delivery(entry.key, entry.nonce, body, received_at, priority)):
            self.backlog = True

    def refill(self) -> None:
        """Move pending entries from the ledger into the send queue while it has room.

        Reads and offers under the ledger's lock, so that an entry a worker is
        finishing (marked sent, not yet released from the queue) is either no
        longer pending or still held: it is never queued twice.
        """
        sink = self.sink
        if not self.backlog or sink is None or sink.error is not None:
            return
        sending = [r.name for r in self._routes if sink.route_error(r.name) is None]
        with self._ledger.use() as ledger:
            if ledger is None:
                return
            room = sink.queue.room()
            if room == 0:
                return
            limit = sink.queue.held() + room
            entries = ledger.pending(limit, routes=sending)
            refused = False
            for entry in entries:
                if sink.queue.room() == 0:
                    refused = True
                    break
                body = _body(entry)
                if body is None:
                    ledger.mark_failed(entry.key, UNREADABLE_BODY)
                    self._counters["failed_discord"] += 1
                    continue
                sink.queue.offer(Delivery(entry.key, entry.nonce, body, None))
        self.backlog = refused or len(entries) == limit


def _body(entry: LedgerEntry) -> dict[str, Any] | None:
    try:
        body = orjson.loads(entry.payload)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None
