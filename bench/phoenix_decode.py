"""Decoding speed of wanderer-kills frames: ``PhoenixClient.receive`` vs bare ``orjson.loads``.

Each frame is a ``killmail_update`` push carrying one killmail of about 2.5 KB
with 8 attackers, the common case on the wire. The baseline is the cheapest
possible decode of the same frames (``orjson.loads`` alone); the ratio is what
validation, events, dedup keys and rejects cost on top of it.

Run: ``python -m bench.phoenix_decode [--frames N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import orjson

from realtime.phoenix import PhoenixClient

_START_ID = 126_000_000


def killmail(killmail_id: int, attackers: int) -> dict[str, Any]:
    """A killmail shaped like wanderer-kills' (docs/protocols.md), names included."""
    return {
        "killmail_id": killmail_id,
        "kill_time": "2026-11-27T12:00:00Z",
        "system_id": 31000005,
        "victim": {
            "character_id": 2117000001,
            "corporation_id": 98000001,
            "alliance_id": 99000001,
            "ship_type_id": 587,
            "damage_taken": 2450 * attackers,
            "character_name": "Example Victim Pilot",
            "corporation_name": "Example Victim Corporation",
            "alliance_name": "Example Victim Alliance",
            "ship_name": "Rifter",
        },
        "attackers": [
            {
                "character_id": 2117000100 + n,
                "corporation_id": 98000100 + n,
                "ship_type_id": 11993,
                "weapon_type_id": 2456,
                "damage_done": 2450,
                "final_blow": n == 0,
                "security_status": -2.1,
                "character_name": f"Attacker Pilot {n}",
                "ship_name": "Cerberus",
            }
            for n in range(attackers)
        ],
        "zkb": {
            "locationID": 40000001,
            "hash": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
            "totalValue": 12500000.0,
            "fittedValue": 9000000.0,
            "droppedValue": 1000000.0,
            "destroyedValue": 11500000.0,
            "points": 1,
            "npc": False,
            "solo": False,
            "awox": False,
            "labels": ["pvp", "wspace", "loc:w-space"],
        },
        "attacker_count": attackers,
    }


def frames(count: int, attackers: int = 8) -> list[bytes]:
    """``count`` killmail_update frames, each with one distinct killmail."""
    return [
        orjson.dumps(
            {
                "topic": "killmails:lobby",
                "event": "killmail_update",
                "payload": {
                    "system_id": 31000005,
                    "killmails": [killmail(_START_ID + n, attackers)],
                    "timestamp": "2026-11-27T12:00:01Z",
                    "preload": False,
                },
                "ref": None,
            }
        )
        for n in range(count)
    ]


def _best_rate(run: Callable[[], None], count: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # Text frames, as websocket-client hands them over.
    texts = [frame.decode() for frame in frames(args.frames)]
    client = PhoenixClient(heartbeat_interval_s=30.0, heartbeat_timeout_s=60.0)

    def decode_all() -> None:
        for text in texts:
            received = client.receive(text, 0, 0.0)
            if len(received.events) != 1:
                raise SystemExit(f"benchmark frame was not decoded: {received.rejects}")

    def loads_all() -> None:
        for text in texts:
            orjson.loads(text)

    baseline = _best_rate(loads_all, len(texts), args.rounds)
    decoded = _best_rate(decode_all, len(texts), args.rounds)
    size = sum(len(text) for text in texts) / len(texts)
    print(f"frame: {size:.0f} bytes, 1 killmail, 8 attackers; {len(texts)} frames")
    print(f"orjson.loads baseline:  {baseline:12,.0f} frames/s  {1e6 / baseline:6.1f} µs/frame")
    print(f"PhoenixClient.receive:  {decoded:12,.0f} frames/s  {1e6 / decoded:6.1f} µs/frame")
    print(f"receive / baseline:     {decoded / baseline:12.2f} (1.00 = as fast as bare loads)")


if __name__ == "__main__":
    main()
