"""The sans-I/O core of the wanderer-kills client: a Phoenix channel over WebSocket.

:class:`PhoenixClient` owns no socket, no thread and no clock: the connection
actor feeds it the frames it receives and sends the frames it returns; ``now``
is always a monotonic clock in seconds.

This package is the wire protocol: the Phoenix "V1" JSON serializer
(``vsn=1.0.0``), where every frame is one JSON object ``{"topic", "event",
"payload", "ref"}``, the channel's state, the join, heartbeats and liveness.
What the pushes become is :mod:`realtime.kill_events`; keeping the server's
subscription in step is :mod:`realtime.subscriptions` (as the map side has
:mod:`realtime.sse` and :mod:`realtime.map_events`).

Input is never trusted and never raises: whatever cannot become an
:class:`~realtime.event.Event` becomes a :class:`~realtime.event.Reject` with a
:class:`~realtime.kill_events.RejectReason`.

One module per concern; import from this package:

- :mod:`~realtime.phoenix.client`: :class:`PhoenixClient`, the channel (join,
  subscription changes, heartbeats) and the dispatch of inbound frames;
- :mod:`~realtime.phoenix.wire`: the V1 frame format, the socket URL, envelopes;
- :mod:`~realtime.phoenix.liveness`: heartbeat round trips, silence and the
  join's timeout, on a reading clock that stands still while reading is paused;
- :mod:`~realtime.phoenix.model`: the channel state, :class:`Preload`,
  :class:`Received` and its :data:`Control` values, :class:`PhoenixStatistics`.
"""

from realtime.phoenix.client import PhoenixClient
from realtime.phoenix.model import (
    DEFAULT_PRELOAD,
    ChannelClosed,
    ChannelErrored,
    ChannelState,
    Control,
    Joined,
    JoinFailed,
    PhoenixStatistics,
    Preload,
    PreloadComplete,
    Received,
)
from realtime.phoenix.wire import DEFAULT_TOPIC, PROTOCOL_VSN, SOCKET_PATH

__all__ = [
    "DEFAULT_PRELOAD",
    "DEFAULT_TOPIC",
    "PROTOCOL_VSN",
    "SOCKET_PATH",
    "ChannelClosed",
    "ChannelErrored",
    "ChannelState",
    "Control",
    "JoinFailed",
    "Joined",
    "PhoenixClient",
    "PhoenixStatistics",
    "Preload",
    "PreloadComplete",
    "Received",
]
