"""The HTTP server under the ``web`` actor: waitress, with every resource bounded.

Why waitress: one I/O thread reads every connection without blocking and hands
a worker only a *complete* request (headers and body already buffered, within
the size limits), so a client that sends slowly, or not at all, costs a file
descriptor and a small buffer, never a thread. The worker pool is fixed
(``[http] threads``); a thread-per-connection server (the standard library's,
or cheroot, which gives a new connection to a worker that then blocks reading
it) lets slow clients take every worker.

What this module adds to waitress, through its documented extension points
(``channel_class``, ``maintenance``, ``handle_accept``):

- **A deadline per request, not per byte.** Waitress closes a connection idle
  for ``channel_timeout``, but one byte every few seconds keeps it open for
  ever. Here a connection has ``request_timeout_s`` from its opening (or from
  its previous response) to deliver a complete request; then it is closed,
  however it trickles (``timed_out``).
- **A full server still answers.** At ``max_connections``, waitress stops
  accepting, so a few hundred idle sockets would lock out every new client
  (health probes included) until they time out. Here a new connection instead
  closes the open one that has waited longest without a request in progress
  (``evicted``); only when every open connection has a request in progress is
  the new one refused (``refused``). A probe therefore always gets in; an
  attacker must keep ``max_connections`` sockets busier than it to keep it out.
- Worker threads are waitress' own (they survive any exception of a request).
  The I/O loop runs on a thread this module owns; if it ever ends without
  being asked to, ``on_death`` is called with the error, so the owner can fail
  and be restarted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

from realtime.config import HttpConfig

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

logger = logging.getLogger(__name__)

LOOP_TIMEOUT_S = 0.25
"""How long the I/O loop waits for an event: the granularity of deadlines and of stopping."""

DRAIN_TIMEOUT_S = 3
"""On stop, how long requests already running may take to finish (whole seconds: waitress')."""

WARNING_INTERVAL_S = 60.0
"""At most one warning this often about evicted, refused or timed-out connections."""


@dataclass(frozen=True, slots=True)
class ServerStatistics:
    """The server's figures; counts are totals since it started.

    Attributes:
        connections: open now (at most ``max_connections``).
        accepted: connections accepted.
        evicted: closed to make room for a new one (the longest-waiting idle one).
        refused: closed at once because every open one had a request in progress.
        timed_out: closed because no complete request came within the deadline.
    """

    connections: int
    max_connections: int
    threads: int
    accepted: int
    evicted: int
    refused: int
    timed_out: int


class _Channel(HTTPChannel):
    """A connection that knows since when it has been waiting for a complete request."""

    waiting_since: float = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_since = time.monotonic()

    def received(self, data: bytes) -> bool:
        more: bool = super().received(data)
        if self.requests:
            self.waiting_since = time.monotonic()  # a complete request: its deadline is met
        return more

    def service(self) -> None:
        try:
            super().service()
        finally:
            self.waiting_since = time.monotonic()  # the next request's deadline starts now


class _Server(TcpWSGIServer):
    """Waitress' TCP server with the deadline and eviction described in the module doc."""

    channel_class = _Channel

    def __init__(self, application: WSGIApplication, adjustments: Adjustments, *, map: Any) -> None:
        self.request_timeout_s = 0.0
        self.accepted = self.evicted = self.refused = self.timed_out = 0
        self._next_check = 0.0
        self._warned_at = -WARNING_INTERVAL_S
        super().__init__(application, map=map, adj=adjustments)

    def channels(self) -> list[_Channel]:
        return list(cast("dict[int, _Channel]", self.active_channels).values())

    def readable(self) -> bool:
        # Called on every turn of the loop: the deadline check runs from here,
        # as waitress' own maintenance does; and the server never stops accepting.
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + min(LOOP_TIMEOUT_S, self.request_timeout_s / 4)
            self._close_late(now)
        return bool(self.accepting)

    def maintenance(self, now: float) -> None:
        """Waitress' idle check is replaced by :meth:`_close_late` (a stricter one)."""

    def _close_late(self, now: float) -> None:
        cutoff = now - self.request_timeout_s
        late = [c for c in self.channels() if not c.requests and c.waiting_since < cutoff]
        for channel in late:
            channel.handle_close()  # the loop thread's own channel, no request running
        if late:
            self.timed_out += len(late)
            self._warn(now, f"{len(late)} connection(s) sent no complete request in time")

    def handle_accept(self) -> None:
        channels = self.channels()
        if len(channels) >= self.adj.connection_limit:
            idle = [c for c in channels if not c.requests]
            if idle:
                min(idle, key=lambda c: c.waiting_since).handle_close()
                self.evicted += 1
                self._warn(time.monotonic(), "connection limit reached: closing idle connections")
            else:
                self._refuse()
                return
        self.accepted += 1
        super().handle_accept()

    def _refuse(self) -> None:
        accepted = self.accept()
        if accepted is not None:
            accepted[0].close()
            self.refused += 1
            self._warn(
                time.monotonic(), "connection limit reached, every connection busy: refusing"
            )

    def _warn(self, now: float, message: str) -> None:
        if now - self._warned_at >= WARNING_INTERVAL_S:
            self._warned_at = now
            logger.warning(
                "web: %s (so far: %d evicted, %d refused, %d timed out; [http] max_connections=%d)",
                message,
                self.evicted,
                self.refused,
                self.timed_out,
                self.adj.connection_limit,
            )


class BoundedServer:
    """Serves a WSGI application on ``[http] bind:port`` within ``[http]``'s bounds.

    Args:
        application: the WSGI application (called on worker threads).
        http: bind address, port and bounds.
        on_death: called (on the loop thread) with the error if the I/O loop
            ends without :meth:`stop`.

    Raises:
        OSError: the address cannot be bound (from the constructor).
    """

    def __init__(
        self,
        application: WSGIApplication,
        http: HttpConfig,
        on_death: Callable[[BaseException], None],
    ) -> None:
        adjustments = Adjustments(
            host=http.bind,
            port=http.port,
            threads=http.threads,
            connection_limit=http.max_connections,
            # Waitress refuses a size equal to its limit; ours are the largest accepted.
            max_request_header_size=http.max_header_bytes + 1,
            max_request_body_size=http.max_body_bytes + 1,
            # Bodies are small and bounded: never spill a request to a temporary file.
            inbuf_overflow=max(http.max_body_bytes, 65536),
            asyncore_use_poll=True,  # select() cannot watch descriptors above 1023
            ident="wanderer-realtime",
            expose_tracebacks=False,
            log_socket_errors=False,
        )
        self._map: dict[int, Any] = {}
        self._server = _Server(application, adjustments, map=self._map)
        self._server.request_timeout_s = http.request_timeout_s
        self._on_death = on_death
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="web-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        server: Any = self._server  # waitress' stubs leave these out
        return str(server.effective_host), int(server.effective_port)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                wasyncore.poll2(LOOP_TIMEOUT_S, self._map)
        except BaseException as error:  # reported to the owner, who fails
            logger.exception("web: the HTTP loop failed")
            self._on_death(error)
        finally:
            # Stop accepting at once (the port is free for a successor), let the requests
            # already running write their answers, then close every connection.
            wasyncore.dispatcher.close(self._server)
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=DRAIN_TIMEOUT_S)
            wasyncore.close_all(self._map, ignore_all=True)

    def stop(self, timeout_s: float = DRAIN_TIMEOUT_S + 2.0) -> None:
        """Stop accepting, let running requests answer (up to :data:`DRAIN_TIMEOUT_S`),
        close every connection and stop the workers; waits up to ``timeout_s``."""
        self._stopping.set()
        with contextlib.suppress(OSError):  # the loop already ended and closed its trigger
            self._server.pull_trigger()
        self._thread.join(timeout_s)

    def statistics(self) -> ServerStatistics:
        server = self._server
        return ServerStatistics(
            connections=len(server.active_channels),  # type: ignore[arg-type]
            max_connections=server.adj.connection_limit,
            threads=server.adj.threads,
            accepted=server.accepted,
            evicted=server.evicted,
            refused=server.refused,
            timed_out=server.timed_out,
        )
