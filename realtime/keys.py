"""Dedup keys: the identity of a real-world fact, whichever source delivered it.

Keys contain nothing random and nothing time-sliced: the same fact gives the
same key in every process, on every day. Three strategies:

- ``key``: a domain id. A killmail is ``killmail:{killmail_id}`` whether it came
  over the WebSocket or as a map's ``map_kill``; any other event with a
  source-native id (an SSE ULID) is ``{source}:{id}``.
- ``content``: a hash of the canonical content, for events with no stable id.
- ``hybrid``: ``key`` where a domain id exists, else ``content``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

import orjson

Strategy = Literal["key", "content", "hybrid"]

KILLMAIL_TYPES = frozenset({"killmail", "map_kill"})
"""Event types whose data carries a killmail with a ``killmail_id``."""


class NoDomainKeyError(ValueError):
    """The ``key`` strategy was asked for an event that has no stable id."""


def killmail_key(killmail_id: int) -> str:
    return f"killmail:{killmail_id}"


def domain_key(source: str, type_: str, id_: str, data: Mapping[str, Any]) -> str | None:
    """The domain key of an event, or ``None`` when it has no stable identity."""
    if type_ in KILLMAIL_TYPES:
        killmail_id = data.get("killmail_id")
        if isinstance(killmail_id, int) and not isinstance(killmail_id, bool):
            return killmail_key(killmail_id)
        return None
    if id_:
        return f"{source}:{id_}"
    return None


def content_key(type_: str, data: Mapping[str, Any]) -> str:
    """A hash of the event's type and canonical content (sorted keys, compact JSON)."""
    canonical = orjson.dumps([type_, data], option=orjson.OPT_SORT_KEYS)
    return "content:" + hashlib.blake2b(canonical, digest_size=16).hexdigest()


def event_key(
    source: str, type_: str, id_: str, data: Mapping[str, Any], strategy: Strategy
) -> str:
    """The dedup key of an event under ``strategy``.

    Raises:
        NoDomainKeyError: ``strategy`` is ``key`` and the event has no stable id.
    """
    if strategy == "content":
        return content_key(type_, data)
    key = domain_key(source, type_, id_, data)
    if key is not None:
        return key
    if strategy == "key":
        msg = f"{source} {type_!r} event {id_!r} has no domain id for the 'key' strategy"
        raise NoDomainKeyError(msg)
    return content_key(type_, data)
