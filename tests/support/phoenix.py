"""Frames and clients for the PhoenixClient tests (a wanderer-kills server's side)."""

from __future__ import annotations

from typing import Any

import orjson

from realtime.phoenix import Joined, PhoenixClient

LOBBY = "killmails:lobby"
INTERVAL_S = 30.0
TIMEOUT_S = 60.0
SYSTEM = 31000005
OTHER_SYSTEM = 30000142
CHARACTER = 2117000001


def make_client(**settings: Any) -> PhoenixClient:
    """A client with the shipped heartbeat settings (30 s / 60 s) unless overridden."""
    settings.setdefault("heartbeat_interval_s", INTERVAL_S)
    settings.setdefault("heartbeat_timeout_s", TIMEOUT_S)
    return PhoenixClient(**settings)


def sent(frame: str) -> dict[str, Any]:
    """An outgoing frame, decoded."""
    message = orjson.loads(frame)
    assert isinstance(message, dict)
    return message


def message(event: str, payload: object, *, topic: str = LOBBY, ref: str | None = None) -> str:
    return orjson.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref}).decode()


def reply(ref: str, status: str = "ok", response: object = None, *, topic: str = LOBBY) -> str:
    body = {} if response is None else response
    return message("phx_reply", {"status": status, "response": body}, topic=topic, ref=ref)


def killmail(killmail_id: int, *, attackers: int = 1, **fields: Any) -> dict[str, Any]:
    """A killmail shaped like wanderer-kills' (docs/protocols.md)."""
    data: dict[str, Any] = {
        "killmail_id": killmail_id,
        "kill_time": "2026-11-27T12:00:00Z",
        "system_id": SYSTEM,
        "victim": {
            "character_id": CHARACTER,
            "corporation_id": 98000001,
            "alliance_id": 99000001,
            "ship_type_id": 587,
            "damage_taken": 2450,
            "character_name": "Example Pilot",
            "corporation_name": "Example Corp",
            "ship_name": "Rifter",
        },
        "attackers": [
            {
                "character_id": 2117000002 + n,
                "corporation_id": 98000002,
                "ship_type_id": 11993,
                "weapon_type_id": 2456,
                "damage_done": 2450 // attackers,
                "final_blow": n == 0,
                "security_status": -2.1,
                "character_name": f"Other Pilot {n}",
                "ship_name": "Cerberus",
            }
            for n in range(attackers)
        ],
        "zkb": {
            "locationID": 40000001,
            "hash": "0f1e2d3c4b5a6978",
            "totalValue": 12500000.0,
            "fittedValue": 9000000.0,
            "droppedValue": 1000000.0,
            "destroyedValue": 11500000.0,
            "points": 1,
            "npc": False,
            "solo": attackers == 1,
            "awox": False,
            "labels": ["solo", "wspace"],
        },
        "attacker_count": attackers,
    }
    data.update(fields)
    return data


def killmail_update(*killmails: object, preload: bool | None = False) -> str:
    """A ``killmail_update`` push; ``preload=None`` leaves the flag out."""
    payload: dict[str, Any] = {
        "system_id": SYSTEM,
        "killmails": list(killmails),
        "timestamp": "2026-11-27T12:00:01Z",
    }
    if preload is not None:
        payload["preload"] = preload
    return message("killmail_update", payload)


def joined_client(
    systems: tuple[int, ...] = (SYSTEM,),
    characters: tuple[int, ...] = (CHARACTER,),
    *,
    now: float = 0.0,
    **settings: Any,
) -> PhoenixClient:
    """A client whose join at ``now`` the server has accepted."""
    client = make_client(**settings)
    ref = sent(client.join_frame(systems, characters, now))["ref"]
    received = client.receive(reply(ref), 0, now)
    assert isinstance(received.control, Joined)
    return client
