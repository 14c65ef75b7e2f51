"""Builders of the events a source hands on: a killmail event, a map event.

Each test family fixes the moments and numbers it asserts on (its own ``at``,
``seq``, priority); the shape of the envelope is written once, here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from realtime.event import KILLS_SOURCE, Event, Priority


def kill_event(
    data: Mapping[str, Any],
    *,
    seq: int | None = None,
    at: float | None = None,
    kind: str = "killmail",
    source: str = KILLS_SOURCE,
    priority: Priority = Priority.NORMAL,
    received_at: int = 0,
    key: str | None = None,
    ident: str | None = None,
) -> Event:
    """The event of the killmail ``data``: its id (unless ``ident``) and key (unless
    ``key``: ``killmail:{id}``) from the killmail id; it happened ``at`` (Unix
    seconds; default: a minute ago)."""
    killmail_id = data.get("killmail_id")
    return Event(
        id=ident or str(killmail_id),
        source=source,
        type=kind,
        time=time.time() - 60 if at is None else at,
        received_at=received_at,
        key=key or f"killmail:{killmail_id}",
        priority=priority,
        data=data,
        seq=seq,
    )


def map_event(
    kind: str,
    payload: Mapping[str, Any],
    sse_id: str,
    *,
    slug: str = "home",
    seq: int | None = None,
    at: float | None = None,
    received_at: int = 0,
    key: str | None = None,
) -> Event:
    """The map ``slug``'s event ``kind`` with the SSE id ``sse_id``; its key is
    ``map:{slug}:{sse_id}`` unless given; it happened ``at`` (default: now)."""
    return Event(
        id=sse_id,
        source=f"map:{slug}",
        type=kind,
        time=time.time() if at is None else at,
        received_at=received_at,
        key=key or f"map:{slug}:{sse_id}",
        priority=Priority.NORMAL,
        data=payload,
        seq=seq,
    )
