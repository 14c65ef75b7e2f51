"""A loopback wanderer-kills server: the real Phoenix V1 protocol, with fault switches.

It speaks what the real server speaks on ``/socket/websocket`` (Phoenix "V1"
JSON frames ``{"topic", "event", "payload", "ref"}``) and behaves like it where
clients get hurt:

- ``killmails:lobby`` joins validate every id; one invalid id rejects the join;
- a successful join is followed by a preload (at most ``preload_per_system``
  kills per system from the last ``history_s`` seconds, ``"preload": true``,
  then ``preload_complete``), whatever preload the client asked for; a re-join
  on the same socket closes the old channel (``phx_close``) and preloads again;
- what a join receives follows the real channel's topics: a join with
  systems listens to those systems' topics only (so its character ids add
  nothing: a kill elsewhere never reaches it); a join with no systems and some
  characters listens to the all-systems topic, filtered to kills whose victim
  or any attacker is one of them; ``subscribe_systems`` adds system topics to
  either; a join with neither listens to nothing;
- every live kill is pushed twice (the real server's plain and "detailed"
  topics);
- subscription changes without a re-join, limited to 10 per minute per
  connection (the 11th gets an error reply);
- an unknown event, or a malformed payload, crashes the channel: the client
  gets ``phx_error`` and must join again; a frame that is not a V1 message
  (invalid JSON, a binary frame, missing keys) crashes the whole socket, which
  Cowboy closes with code 1011;
- a socket with no inbound bytes (frames, pings, pongs) for ``idle_timeout_s``
  is closed with code 1000.

Fault switches for tests: :meth:`KillsServer.drop_all`,
:meth:`KillsServer.set_half_open`, :meth:`KillsServer.send_raw`,
:meth:`KillsServer.refuse_joins`,
:meth:`KillsServer.restart`. The server runs an asyncio event loop in a thread
it owns; every public method is thread-safe and must not be called from that
thread. Every queue and history has a bound and :meth:`KillsServer.statistics`
shows how full it is.

Where things live:

- :mod:`~simulator.kills_server.server`: :class:`KillsServer`, the control API
  (publishing, fault switches, statistics, restart) and :class:`TrafficRunner`;
- :mod:`~simulator.kills_server.sockets`: the WebSocket listener and each
  connection's reading and writing, half-open mode, idle and crash closes;
- :mod:`~simulator.kills_server.lobby`: the ``killmails:lobby`` channel (joins,
  subscriptions, preloads, live pushes);
- :mod:`~simulator.kills_server.phoenix`: Phoenix V1 frames and the id rules;
- :mod:`~simulator.kills_server.model`: settings and statistics.
"""

from simulator.kills_server.model import ConnectionStatistics, KillsServerStatistics
from simulator.kills_server.phoenix import LOBBY, SOCKET_PATH
from simulator.kills_server.server import KillsServer, TrafficRunner

__all__ = [
    "LOBBY",
    "SOCKET_PATH",
    "ConnectionStatistics",
    "KillsServer",
    "KillsServerStatistics",
    "TrafficRunner",
]
