"""The kills server's wire: Phoenix V1 frames and the lobby's rules for ids.

Frames are JSON objects ``{"topic", "event", "payload", "ref"}`` on
``/socket/websocket``. The limits and error texts are the real
wanderer-kills server's; no state lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from simulator.traffic import parse_iso

SOCKET_PATH: Final = "/socket/websocket"
LOBBY: Final = "killmails:lobby"
MAX_SYSTEM_ID: Final = 50_000_000
MAX_SYSTEMS: Final = 10_000
MIN_CHARACTER_ID: Final = 90_000_000
MAX_CHARACTER_ID: Final = 3_000_000_000
MAX_CHARACTERS: Final = 50_000
UPDATES_PER_WINDOW: Final = 10
UPDATE_WINDOW_S: Final = 60.0
IDLE_CLOSE_CODE: Final = 1000
CRASH_CLOSE_CODE: Final = 1011

SUBSCRIPTION_EVENTS: Final = {
    "subscribe_systems": ("systems", True),
    "unsubscribe_systems": ("systems", False),
    "subscribe_characters": ("character_ids", True),
    "unsubscribe_characters": ("character_ids", False),
}
"""Each subscription event: the payload key it reads, and whether it adds."""


@dataclass(frozen=True, slots=True)
class Kill:
    """A published killmail with what matching and preloading need, computed once."""

    killmail_id: int
    system_id: int
    kill_time: float | None
    characters: frozenset[int]
    killmail: dict[str, Any]

    @classmethod
    def of(cls, killmail: Mapping[str, Any]) -> Kill:
        """A copy of ``killmail``, checked.

        Raises:
            ValueError: ``killmail_id`` or ``system_id`` is missing or not an
                int, or the killmail is not JSON-serialisable.
        """
        try:
            copied = orjson.loads(orjson.dumps(killmail))
        except TypeError as exc:
            msg = f"killmail is not JSON-serialisable: {exc}"
            raise ValueError(msg) from exc
        killmail_id, system_id = copied.get("killmail_id"), copied.get("system_id")
        if not is_int(killmail_id) or not is_int(system_id):
            msg = "a killmail needs integer killmail_id and system_id"
            raise ValueError(msg)
        kill_time = copied.get("kill_time")
        return cls(
            killmail_id=killmail_id,
            system_id=system_id,
            kill_time=parse_iso(kill_time) if isinstance(kill_time, str) else None,
            characters=frozenset(_involved_characters(copied)),
            killmail=copied,
        )


class RequestError(Exception):
    """A request the channel answers with an error reply carrying ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(message: str | bytes) -> dict[str, Any] | None:
    """A Phoenix V1 message, or None for anything the V1 serializer would crash on."""
    if isinstance(message, bytes):
        return None
    try:
        frame = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(frame, dict) or not {"topic", "event", "payload", "ref"} <= frame.keys():
        return None
    if not isinstance(frame["topic"], str) or not isinstance(frame["event"], str):
        return None
    return frame


def message(topic: str, event: str, payload: Mapping[str, Any], ref: object = None) -> str:
    """A V1 frame as text."""
    frame = {"topic": topic, "event": event, "payload": payload, "ref": ref}
    return orjson.dumps(frame).decode()


def reply(topic: str, ref: object, status: str, response: Mapping[str, Any]) -> str:
    """A ``phx_reply`` to the request ``ref``."""
    return message(topic, "phx_reply", {"status": status, "response": response}, ref)


def join_parameters(payload: object) -> tuple[list[int], list[int]]:
    """The validated systems and characters of a join; the preload options are ignored.

    Characters may come as ``character_ids`` or (newer servers) ``characters``;
    both are read.

    Raises:
        RequestError: the join is malformed or names an invalid id.
    """
    if not isinstance(payload, dict):
        raise RequestError("join crashed")
    systems = payload.get("systems", [])
    character_ids, characters = payload.get("character_ids", []), payload.get("characters", [])
    if not all(isinstance(ids, list) for ids in (systems, character_ids, characters)):
        raise RequestError("join crashed")
    return valid_systems(systems), valid_characters([*character_ids, *characters])


def valid_systems(ids: list[Any]) -> list[int]:
    """``ids`` without repeats, if each is a valid system id.

    Raises:
        RequestError: too many, or one is not a valid system id.
    """
    return _valid(ids, MAX_SYSTEMS, "systems", "System", lambda i: 0 < i <= MAX_SYSTEM_ID)


def valid_characters(ids: list[Any]) -> list[int]:
    """``ids`` without repeats, if each is a valid character id.

    Raises:
        RequestError: too many, or one is not a valid character id.
    """
    return _valid(
        ids,
        MAX_CHARACTERS,
        "characters",
        "Character",
        lambda i: MIN_CHARACTER_ID <= i <= MAX_CHARACTER_ID,
    )


def _valid(
    ids: list[Any], limit: int, plural: str, noun: str, in_range: Callable[[int], bool]
) -> list[int]:
    if len(ids) > limit:
        raise RequestError(f"Too many {plural} (max: {limit})")
    if not all(is_int(i) for i in ids):
        raise RequestError(f"{noun} IDs must be integers")
    if not all(in_range(i) for i in ids):
        raise RequestError(f"Invalid {noun.lower()} IDs")
    return list(dict.fromkeys(ids))


def is_int(value: object) -> bool:
    """An integer as Elixir's ``is_integer`` sees JSON: booleans are not integers."""
    return isinstance(value, int) and not isinstance(value, bool)


def _involved_characters(killmail: Mapping[str, Any]) -> Iterable[int]:
    victim = killmail.get("victim")
    if isinstance(victim, dict) and is_int(victim.get("character_id")):
        yield victim["character_id"]
    attackers = killmail.get("attackers")
    if isinstance(attackers, list):
        for attacker in attackers:
            if isinstance(attacker, dict) and is_int(attacker.get("character_id")):
                yield attacker["character_id"]
