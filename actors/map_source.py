"""The ``map:{slug}`` actors: one Wanderer map's events over Server-Sent Events.

Its reader thread (:mod:`actors.map_reader`) asks the journal for the
committed cursor, bootstraps the tracked state over REST when a resync is
due, then reads the event stream and hands its events to the journal.

A :class:`~actors.connection.SourceConnection` with SSE plugged in. The
actor owns time and decisions:

- a keepalive watchdog: nothing parsed (events or ``:`` comments) for
  ``keepalive_timeout_s`` closes the connection (the read timeout is the
  same, as a second line of defence);
- the backoff is reset only once a 200 with ``text/event-stream`` *and* the
  ``connected`` event arrived (the Elixir client reset it before looking at
  the status and retried a failing server every second);
- 401, 403 and 404 are configuration problems: logged with what to fix,
  health ``failed``, retried every ``config_error_retry_s``; 429 and 5xx back
  off longer (at least the server's ``Retry-After``), network errors use the
  reconnect policy (full jitter behind a circuit breaker);
- the health of the connection (:class:`~realtime.health.ConnectionHealth`,
  kind ``sse``), reported by :meth:`MapSource.status`.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from actors.connection import (
    ConnectionMessage,
    Ended,
    Phase,
    ReaderThread,
    SourceConnection,
)
from actors.map_reader import (
    Bootstrapped,
    HttpFailed,
    JournalSilent,
    MapReader,
    Opened,
    Settings,
    Shared,
    StreamConnected,
    StreamEnded,
)
from actors.protocol import Bootstrap, Names
from realtime.circuit import CircuitBreaker, ReconnectPolicy
from realtime.config import Config, MapConfig, SourcesConfig
from realtime.controls import escape_controls
from realtime.event import map_source
from realtime.health import ConnectionHealth
from realtime.keys import Strategy
from realtime.map_events import (
    DEFAULT_MAP_EVENTS,
    DEFAULT_MAX_RAW_BYTES,
)
from supervision import (
    ActorContext,
    ActorUnavailableError,
    Backoff,
    ChildSpec,
    MailboxFullError,
    MailboxSpec,
)

logger = logging.getLogger(__name__)

CONFIG_ERRORS: Final = frozenset({401, 403, 404})
_RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
_READ_TIMEOUT_MARGIN_S: Final = 1.0


_CONFIG_HINTS: Final = {
    401: "the API key was refused: set [[maps]] api_key for this map (an env:NAME "
    "secret must be set in the environment) to the map's API key",
    403: "server-sent events are disabled for this map: enable them in the map's settings",
    404: "the map was not found: check [[maps]] slug and base_url",
}


# -- the actor -------------------------------------------------------------------------


class MapSource(SourceConnection):
    """The ``map:{slug}`` source actor; see the module docstring.

    Args:
        ctx: from the supervisor.
        map_config: the map's ``[[maps]]`` table.
        sources: ``[sources]``.
        strategies, default_strategy: dedup key strategies by event type.
        max_reject_bytes: a reject keeps at most this many bytes of its data.
        stable_s: how long a live stream must last for its end to reset the
            backoff (it resets only after the ``connected`` event anyway).
        circuit_failures, circuit_open_s: the circuit breaker; open, it marks
            the connection ``failed`` until a probe succeeds.
        journal_retry_s: the wait before asking an unanswering journal again.
        rand: the jitter's random source (seed it in tests).
    """

    def __init__(
        self,
        ctx: ActorContext,
        map_config: MapConfig,
        sources: SourcesConfig,
        *,
        strategies: Mapping[str, Strategy] | None = None,
        default_strategy: Strategy = "hybrid",
        max_reject_bytes: int = DEFAULT_MAX_RAW_BYTES,
        stable_s: float = 60.0,
        circuit_failures: int = 8,
        circuit_open_s: float | None = None,
        journal_retry_s: float = 1.0,
        rand: Callable[[], float] | None = None,
    ) -> None:
        source = map_source(map_config.slug)
        jitter = rand or random.Random().random
        super().__init__(
            ctx,
            log=logger,
            health=ConnectionHealth(
                source,
                "sse",
                now=time.monotonic(),
                silence_timeout_s=map_config.keepalive_timeout_s,
            ),
            policy=ReconnectPolicy(
                Backoff(map_config.reconnect_min_s, map_config.reconnect_max_s, jitter=1.0),
                CircuitBreaker(
                    circuit_failures,
                    map_config.reconnect_max_s if circuit_open_s is None else circuit_open_s,
                ),
                rand=jitter,
                stable_s=stable_s,
            ),
            target=map_config.base_url,
            tick_s=min(1.0, map_config.keepalive_timeout_s / 10),
            sources=sources,
            rand=jitter,
        )
        self._map = map_config
        self._settings = Settings(
            slug=map_config.slug,
            source=source,
            base_url=map_config.base_url,
            api_key=map_config.api_key.value,
            events=map_config.events or DEFAULT_MAP_EVENTS,
            connect_timeout_s=map_config.connect_timeout_s,
            # Past the actor's watchdog: a second line of defence if it is late.
            read_timeout_s=map_config.keepalive_timeout_s + _READ_TIMEOUT_MARGIN_S,
            strategies=dict(strategies or {}),
            default_strategy=default_strategy,
            max_reject_bytes=max_reject_bytes,
            max_line_bytes=map_config.max_line_bytes,
            max_event_bytes=map_config.max_event_bytes,
            max_rest_bytes=map_config.max_rest_bytes,
            max_depth=sources.max_json_depth,
        )
        self._journal_retry_s = journal_retry_s
        self._shared = Shared(threading.Lock())
        # Equal jitter: each delay is at least the previous one's ceiling, so
        # an answering-but-failing server sees the gaps grow, never shrink.
        self._http_backoff = Backoff(
            min(2 * map_config.reconnect_min_s, map_config.reconnect_max_s),
            map_config.reconnect_max_s,
            jitter=0.5,
        )
        self._opened_at = 0.0
        # When the tracked state was last known current: the last activity of
        # a live stream, or the last bootstrap handed to tracking.
        self._fresh_at: float | None = None
        self._resync_due = True
        self._pending_bootstrap: Bootstrap | None = None
        self._bootstraps_sent = 0
        self._last_bootstrap: dict[str, Any] | None = None
        self._resume_cursor: str | None = None
        self._last_status: int | None = None
        self._config_errors = 0
        self._server_retry_s: float | None = None

    @property
    def source(self) -> str:
        return self._settings.source

    # -- hooks of the connection lifecycle ----------------------------------------------

    def _new_reader(self, generation: int) -> ReaderThread:
        now = time.monotonic()
        gap = None if self._fresh_at is None else now - self._fresh_at
        if gap is not None and gap > self._map.backfill_window_s and not self._resync_due:
            logger.warning(
                "%s: disconnected for %.1f s, longer than the %g s backfill: resyncing over REST",
                self.name,
                gap,
                self._map.backfill_window_s,
            )
            self._resync_due = True
        return MapReader(
            self.actor_ref,
            generation,
            self._journal.gate,
            name=self.name,
            settings=self._settings,
            bootstrap=self._resync_due,
            shared=self._shared,
            registry=self.registry,
            rejects=self._rejects,
        )

    def _on_connection_message(self, message: ConnectionMessage) -> None:
        if isinstance(message, Opened):
            self._opened(message.cursor)
        elif isinstance(message, StreamConnected):
            # A second greeting on one stream changes nothing.
            if self._phase is Phase.OPEN:
                self._stream_connected()
        elif isinstance(message, Bootstrapped):
            self._pending_bootstrap = message.bootstrap
            self._send_bootstrap()

    def _reader_ended(self, ended: Ended) -> None:
        if isinstance(ended, JournalSilent):
            self._journal_silent(ended.reason)
        elif isinstance(ended, HttpFailed):
            self._http_failed(ended)
        else:
            if isinstance(ended, StreamEnded):
                self._server_retry_s = ended.at_least_s
            self._connection_lost(ended.kind, ended.reason)

    def _liveness(self, now: float) -> tuple[str, str] | None:
        last_activity = self._shared.last_activity_at
        if last_activity > self._opened_at:
            self._health.message(last_activity)
            if self._phase is Phase.LIVE:
                self._fresh_at = last_activity
        silent_s = now - max(last_activity, self._opened_at)
        if silent_s < self._map.keepalive_timeout_s:
            return None
        limit_s = self._map.keepalive_timeout_s
        return (
            "keepalive_timeout",
            f"nothing received for {silent_s:.1f} s (keepalive_timeout_s {limit_s:g})",
        )

    def _on_tick(self, now: float) -> None:
        self._send_bootstrap()

    def _connection_lost(self, kind: str, reason: str, *, at_least_s: float = 0.0) -> None:
        if self._phase is Phase.LIVE:
            self._fresh_at = max(self._fresh_at or 0.0, self._shared.last_activity_at)
        if self._server_retry_s is not None:
            at_least_s = max(at_least_s, min(self._server_retry_s, self._map.reconnect_max_s))
        super()._connection_lost(kind, reason, at_least_s=at_least_s)

    # -- the stream -----------------------------------------------------------------

    def _opened(self, cursor: str | None) -> None:
        self._phase = Phase.OPEN
        self._opened_at = time.monotonic()
        self._last_status = 200
        self._resume_cursor = cursor
        logger.info("%s: stream open%s", self.name, f", resuming after {cursor}" if cursor else "")

    def _stream_connected(self) -> None:
        now = time.monotonic()
        self._live(now)
        self._health.message(now)
        self._fresh_at = now

    def _send_bootstrap(self) -> None:
        bootstrap = self._pending_bootstrap
        if bootstrap is None:
            return
        try:
            self.registry.tell(Names.TRACKING, bootstrap)
        except (ActorUnavailableError, MailboxFullError):
            return  # sent again on the next tick
        self._pending_bootstrap = None
        self._resync_due = False
        self._fresh_at = time.monotonic()
        self._bootstraps_sent += 1
        self._last_bootstrap = {
            "systems": len(bootstrap.systems),
            "characters": len(bootstrap.characters),
            "at": time.time(),
        }
        logger.info(
            "%s: tracked state resynced: %d systems, %d characters",
            self.name,
            len(bootstrap.systems),
            len(bootstrap.characters),
        )

    # -- failures -------------------------------------------------------------------

    def _journal_silent(self, reason: str) -> None:
        now = time.monotonic()
        self._retire_reader()
        logger.info(
            "%s: the journal did not give the cursor: %s", self.name, escape_controls(reason)
        )
        self._health.error("journal_unavailable", now)
        self._health.disconnected(reason, now)
        self._health.reconnecting(now, self._journal_retry_s)
        self._schedule_attempt(self._journal_retry_s)

    def _http_failed(self, failure: HttpFailed) -> None:
        now = time.monotonic()
        self._retire_reader()
        status = failure.status
        self._last_status = status
        self._health.error(f"http_{status}", now)
        if status is not None and (status in _RETRYABLE_STATUSES or status >= 500):
            self._health.disconnected(failure.reason, now)
            at_least_s = max(
                self._http_backoff.delay(self._policy.attempt, self._rand),
                min(failure.at_least_s or 0.0, self._map.config_error_retry_s),
            )
            delay = self._failure_delay(now, at_least_s)
            logger.warning(
                "%s: %s; retrying in %.2f s", self.name, escape_controls(failure.reason), delay
            )
            self._schedule_attempt(delay)
            return
        self._config_errors += 1
        hint = _CONFIG_HINTS.get(status or 0, "the server does not serve this map's event stream")
        logger.error(
            "%s: %s. To fix: %s (map %r at %s). Retrying in %g s.",
            self.name,
            escape_controls(failure.reason),
            hint,
            self._map.slug,
            self._map.base_url,
            self._map.config_error_retry_s,
        )
        self._health.failed(f"{failure.reason}: {hint}", now)
        self._schedule_attempt(self._map.config_error_retry_s)

    # -- reporting ------------------------------------------------------------------

    def _phase_name(self) -> str:
        return "streaming" if self._phase is Phase.OPEN else self._phase.value

    def _totals(self) -> Mapping[str, int]:
        with self._shared.lock:
            return {
                "chunks_total": self._shared.frames,
                "decoded_total": self._shared.events,
                "rejects_total": sum(self._shared.rejects.values()),
            }

    def _protocol_status(self) -> dict[str, Any]:
        with self._shared.lock:
            rejects = dict(self._shared.rejects)
            parser = self._shared.parser
            last_event_id = self._shared.last_event_id
            chunks, events = self._shared.frames, self._shared.events
        return {
            "rejects": rejects,
            "subscription": {
                "events": list(self._settings.events),
                "resumed_from": self._resume_cursor,
                "last_event_id": last_event_id or None,
                "resync_due": self._resync_due,
                "bootstraps_sent": self._bootstraps_sent,
                "last_bootstrap": self._last_bootstrap,
            },
            "sse": {
                "phase": self._phase_name(),
                "chunks": chunks,
                "events": events,
                "last_status": self._last_status,
                "config_errors": self._config_errors,
                "server_retry_s": self._server_retry_s,
                "parser": None if parser is None else dataclasses.asdict(parser),
            },
        }


def child_spec(config: Config, map_config: MapConfig, **options: Any) -> ChildSpec:
    """The ``map:{slug}`` child of the ``sources`` supervisor.

    ``options`` go to :class:`MapSource`.
    """
    options.setdefault("strategies", dict(config.dedup.strategies))
    options.setdefault("default_strategy", config.dedup.default_strategy)
    options.setdefault("max_reject_bytes", config.journal.max_reject_bytes)
    return ChildSpec(
        name=Names.map_source(map_config.slug),
        start=lambda ctx: MapSource.start(ctx, map_config, config.sources, **options),
        mailbox=MailboxSpec(config.mailbox.sources),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
