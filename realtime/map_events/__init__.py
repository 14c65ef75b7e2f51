"""A Wanderer map's stream and REST bootstrap, decoded into domain values.

:func:`decode_map_event` turns one :class:`~realtime.sse.SseEvent` into an
:class:`~realtime.event.Event`, a :class:`~realtime.event.Reject` or, for the
stream's ``connected`` greeting, a :class:`MapControl`. :func:`parse_systems`
and :func:`parse_tracked_characters` read the REST answers that bootstrap what
a map tracks. :func:`stream_url` and :func:`stream_headers` build the request
that opens the stream.

One module per concern; import from this package:

- :mod:`~realtime.map_events.stream`: the stream's events, their types and
  priorities;
- :mod:`~realtime.map_events.bootstrap`: the REST answers;
- :mod:`~realtime.map_events.request`: the stream's URL and headers, resume points.
"""

from realtime.map_events.bootstrap import (
    MapSystem,
    TrackedCharacter,
    parse_systems,
    parse_tracked_characters,
)
from realtime.map_events.request import is_resume_point, stream_headers, stream_url
from realtime.map_events.stream import (
    CONNECTED,
    DEFAULT_MAP_EVENTS,
    DEFAULT_MAX_RAW_BYTES,
    KNOWN_MAP_EVENTS,
    MapControl,
    decode_map_event,
    map_event_priority,
)

__all__ = [
    "CONNECTED",
    "DEFAULT_MAP_EVENTS",
    "DEFAULT_MAX_RAW_BYTES",
    "KNOWN_MAP_EVENTS",
    "MapControl",
    "MapSystem",
    "TrackedCharacter",
    "decode_map_event",
    "is_resume_point",
    "map_event_priority",
    "parse_systems",
    "parse_tracked_characters",
    "stream_headers",
    "stream_url",
]
