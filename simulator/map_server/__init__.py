"""A Wanderer map server on loopback: SSE event stream, REST bootstrap, fault switches.

It speaks the protocol of docs/protocols.md ("Wanderer map") over real HTTP/1.1 on a
real socket, so the map source, the demo, tests and benchmarks all exercise the
same code they run against a real map. It owns an asyncio loop on a background
thread and writes responses byte by byte itself: every SSE write is one HTTP
chunk (``Transfer-Encoding: chunked``) sent as one TCP write with
``TCP_NODELAY`` and flushed before the next, so the fault modes control exactly
where a client's reads are cut.

Behaviour mirrored from the real server (``wanderer-industries/wanderer``):

- the ``connected`` event carries an ``id`` of its own, a fresh ULID newer than
  every backfilled event that follows it: a client must not take it as its
  resume point;
- the resume point is read only from the ``last_event_id`` query parameter; the
  ``Last-Event-ID`` header is recorded (see :meth:`MapServer.statistics`), never used;
- a ``last_event_id`` that is not a ULID replays nothing;
- a backfill is the oldest ``max_backfill`` matching events newer than
  ``last_event_id``; when it is cut there, the stream goes live from the moment
  of connection and the events in between never come on it (a client sees the
  cut: its backfill, the events with ids below ``connected``'s, is full);
- ``events=`` names are trimmed; unknown names match nothing; ``*``, an empty
  value or no parameter match everything;
- the content type is ``text/event-stream; charset=utf-8``.

Retention is measured on the injected ``clock`` (tests step it); keepalives and
the recorded connect times use the real monotonic clock, because they are about
real silence and real client delays.

Where things live:

- :mod:`~simulator.map_server.server`: :class:`MapServer`, the control API
  (the map's contents, publishing, fault switches, statistics);
- :mod:`~simulator.map_server.state`: what the map holds and decides (contents,
  event log and backfill, REST bodies, who may connect, counters), shared by
  both threads under one lock;
- :mod:`~simulator.map_server.serving`: the asyncio loop thread that serves
  requests and runs each stream;
- :mod:`~simulator.map_server.wire`: HTTP/1.1 heads and answers, SSE events and
  their framing.
"""

from simulator.map_server.server import MapServer
from simulator.map_server.serving import STATIC_INFO_PATH
from simulator.map_server.state import (
    ConnectAttempt,
    MapCharacter,
    MapServerStatistics,
    MapSystem,
)
from simulator.map_server.wire import Framing

__all__ = [
    "STATIC_INFO_PATH",
    "ConnectAttempt",
    "Framing",
    "MapCharacter",
    "MapServer",
    "MapServerStatistics",
    "MapSystem",
]
