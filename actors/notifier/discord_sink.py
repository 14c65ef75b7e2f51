"""The Discord sink: worker threads that send the queue's deliveries and record outcomes.

Also the two things the actor and its workers share: the ledger (used in
turn, under a lock) and the outcome counters (drained by the actor's tick).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator

from actors.discord_http import (
    Deferred,
    DiscordSender,
    Done,
    GiveUp,
    RetryPlan,
    SendAgain,
    StopSink,
)
from actors.notifier.send_queue import Delivery, SendQueue
from realtime.ledger import Ledger
from realtime.storage import StorageUnavailableError
from supervision import Backoff

logger = logging.getLogger(__name__)

MAX_LATENCY_SAMPLES = 2048
"""Delivery latencies kept between two drains by the actor (the newest win)."""

RECORD_RETRY = Backoff(0.05, 2.0, jitter=0.5)
"""Delays between a worker's tries to record an outcome while the database is busy or full."""


class LedgerClosedError(RuntimeError):
    """The ledger was asked for while it is not open (before the start or after the stop)."""


class SharedLedger:
    """The actor's :class:`Ledger`, used by the actor and its worker threads in turn.

    Closed until :meth:`open`; once :meth:`close` ran, :meth:`use` yields
    ``None``: a worker whose answer comes back after the actor stopped records
    nothing, and the entry stays pending for the next start (which resumes it
    with the same nonce).
    """

    def __init__(self) -> None:
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def open(self, ledger: Ledger) -> None:
        """Share ``ledger`` (closing one shared before, if any)."""
        self.close()
        with self._lock:
            self._ledger = ledger
            self._closed.clear()

    @contextlib.contextmanager
    def use(self) -> Iterator[Ledger | None]:
        """The ledger, held for the duration of the ``with`` block; ``None`` while closed."""
        with self._lock:
            yield self._ledger

    @contextlib.contextmanager
    def held(self) -> Iterator[Ledger]:
        """The ledger, held for the duration of the ``with`` block.

        Raises:
            LedgerClosedError: it is not open (the actor is not running).
        """
        with self._lock:
            if self._ledger is None:
                msg = "the notification ledger is not open"
                raise LedgerClosedError(msg)
            yield self._ledger

    def record(
        self,
        action: Callable[[Ledger], object],
        on_retry: Callable[[StorageUnavailableError, int], None],
        rand: Callable[[], float],
    ) -> bool:
        """Run ``action`` on the ledger until it is written; ``False`` if the ledger closed first.

        A database that is busy or full (:class:`StorageUnavailableError`) is
        not an end: ``on_retry`` is told (with the attempt number, 0 first),
        and the action is tried again after
        a growing delay (:data:`RECORD_RETRY`), with the ledger free for
        others meanwhile. What a worker learnt from Discord is so never lost
        to a passing storage fault; if the ledger closes first, the entry
        stays pending and the next start resumes it with the same nonce.
        """
        attempt = 0
        while True:
            with self._lock:
                if self._ledger is None:
                    return False
                try:
                    action(self._ledger)
                except StorageUnavailableError as error:
                    on_retry(error, attempt)
                else:
                    return True
            if self._closed.wait(RECORD_RETRY.delay(attempt, rand)):
                return False
            attempt += 1

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None


class Outcomes:
    """What the workers did since the actor last looked: counters and latencies.

    Thread-safe; the actor drains it on its tick into its own counters, so
    that reporting stays in the actor's thread. Latency samples are bounded
    (the newest :data:`MAX_LATENCY_SAMPLES` are kept).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: collections.Counter[str] = collections.Counter()
        self._received: collections.deque[int] = collections.deque(maxlen=MAX_LATENCY_SAMPLES)
        self._delivered_ns: collections.deque[int] = collections.deque(maxlen=MAX_LATENCY_SAMPLES)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def delivered(self, received_at: int | None) -> None:
        now_ns = time.monotonic_ns()
        with self._lock:
            self._counters["sent_discord"] += 1
            if received_at is not None:
                self._received.append(received_at)
                self._delivered_ns.append(now_ns)

    def drain(self) -> tuple[collections.Counter[str], list[tuple[int, int]]]:
        """The counters and ``(received_at, delivered_at)`` pairs since the last drain."""
        with self._lock:
            counters, self._counters = self._counters, collections.Counter()
            pairs = list(zip(self._received, self._delivered_ns, strict=True))
            self._received.clear()
            self._delivered_ns.clear()
        return counters, pairs


# -- The Discord sink ---------------------------------------------------------------


class DiscordSink:
    """Worker threads that send the queue's deliveries, each to its route, and record the outcome.

    State: ``running`` until Discord refuses the bot itself (401 in bot mode:
    the token is wrong) or the configuration is unusable: then ``stopped``
    with :attr:`error`; the queue is closed and the unsent entries stay
    pending. Any other refusal of a destination (403 no access to the channel,
    404 a deleted channel or webhook, a webhook's 401) stops that route only
    (:attr:`halted`): its entries stay pending, the other routes go on.
    :attr:`failure` is set if a worker hit a bug; the actor then crashes so
    that its supervisor restarts it.
    """

    def __init__(
        self,
        sender: DiscordSender,
        plan: RetryPlan,
        queue: SendQueue,
        ledger: SharedLedger,
        outcomes: Outcomes,
        *,
        workers: int,
        seed: int | None = None,
    ) -> None:
        self.sender = sender
        self.queue = queue
        self._plan = plan
        self._ledger = ledger
        self._outcomes = outcomes
        self._lock = threading.Lock()
        self.error: str | None = None
        self.halted: dict[str, str] = {}
        """Route name -> why it stopped (this run)."""
        self.failure: BaseException | None = None
        seeds = random.Random(seed)
        self._threads = [
            threading.Thread(
                target=self._work,
                args=(random.Random(seeds.random()),),
                name=f"notifier-discord-{index}",
                daemon=True,
            )
            for index in range(max(1, workers))
        ]

    @property
    def state(self) -> str:
        return "running" if self.error is None else "stopped"

    @property
    def workers(self) -> int:
        return len(self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float) -> list[str]:
        """Close the queue and wait up to ``timeout_s`` in all for the workers to finish.

        Returns the names of workers still busy (an answer outstanding); they
        finish on their own, and record nothing once the ledger is closed.
        """
        self.queue.close()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        return [thread.name for thread in self._threads if thread.is_alive()]

    def halt(self, reason: str) -> None:
        """Stop sending for good (this run): remember why and close the queue."""
        with self._lock:
            if self.error is not None:
                return
            self.error = reason
        self.queue.close()
        self._outcomes.count("sink_stopped")
        logger.error("notifier: the Discord sink stopped: %s", reason)

    def halt_route(self, route: str, reason: str) -> None:
        """Stop sending to ``route`` (this run); its entries stay pending in the ledger."""
        with self._lock:
            if route in self.halted:
                return
            self.halted[route] = reason
        self._outcomes.count("route_stopped")
        logger.error("notifier: the Discord route %s stopped: %s", route, reason)

    def route_error(self, route: str) -> str | None:
        """Why ``route`` does not send, if it does not (the whole sink's reason first)."""
        with self._lock:
            return self.error or self.halted.get(route)

    def _work(self, rand: random.Random) -> None:
        try:
            while (delivery := self.queue.take()) is not None:
                if self.route_error(delivery.key.route) is not None:
                    self.queue.done(delivery)  # stays pending in the ledger
                    continue
                self._attempt(delivery, rand)
        except Exception as error:
            self.failure = error
            logger.exception("notifier: a Discord worker failed")
            self.queue.close()

    def _record(self, action: Callable[[Ledger], object], rand: random.Random) -> None:
        def on_retry(error: StorageUnavailableError, attempt: int) -> None:
            self._outcomes.count("ledger_retries")
            if attempt == 0:
                logger.warning("notifier: a Discord outcome waits for the database: %s", error)

        self._ledger.record(action, on_retry, rand.random)

    def _attempt(self, delivery: Delivery, rand: random.Random) -> None:
        route = delivery.key.route
        result = self.sender.send(delivery.body, delivery.nonce, route)
        decision, delivery.retry = self._plan.decide(delivery.retry, result, rand.random)
        key = delivery.key
        if isinstance(decision, Done):
            message_id = decision.message_id
            self._record(lambda ledger: ledger.mark_sent(key, message_id), rand)
            self._outcomes.delivered(delivery.received_at)
            self.queue.done(delivery)
        elif isinstance(decision, SendAgain):
            if not isinstance(result, Deferred):
                # an HTTP attempt was made and failed: count it on the entry
                self._outcomes.count("retries")
                failure = str(result)
                self._record(lambda ledger: ledger.mark_attempt(key, failure), rand)
            self.queue.again(delivery, max(decision.after_s, self.sender.wait_s(route)))
        elif isinstance(decision, GiveUp):
            reason = decision.reason
            self._record(lambda ledger: ledger.mark_failed(key, reason), rand)
            self._outcomes.count("failed_discord")
            logger.warning("notifier: gave up on %s: %s", delivery.key, decision.reason)
            self.queue.done(delivery)
        else:
            assert isinstance(decision, StopSink)
            self.queue.done(delivery)
            reason = f"Discord answered {decision.status}: {decision.reason}"
            if self.sender.mode == "bot" and decision.status == 401:
                self.halt(reason)
            else:
                self.halt_route(route, reason)
