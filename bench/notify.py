"""Benchmark of the notification cores and the ledger: ``python -m bench.notify``.

Figures, each with a baseline measured in the same run:

- kill decisions per second, against decoding the same killmail from JSON
  (the work every kill already costs before it reaches the notifier);
- rendering a kill's Discord body (with :func:`fit_to_limits`) per second,
  against encoding that body to JSON, for a plain kill and for one with 200
  tracked attackers and 256-character names (the worst case truncation sees);
- ledger claims per second (each one committed with ``synchronous=FULL``),
  against plain inserts into a table of the same file with ``synchronous=OFF``.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from realtime.config import KillNotifyConfig
from realtime.event import Event, Priority, format_time
from realtime.ledger import Ledger
from realtime.notifications import Notification, kill_notification
from realtime.render import message_payload
from realtime.tracking import TrackedState

NOW = 1_800_000_000.0


def _rate(action: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        action(index)
    return count / (time.perf_counter() - start)


def _killmail(attackers: int, name: str) -> dict[str, Any]:
    return {
        "killmail_id": 123456789,
        "kill_time": format_time(NOW - 60),
        "system_id": 30000142,
        "victim": {
            "character_id": 2117000001,
            "character_name": name,
            "corporation_name": name,
            "ship_type_id": 587,
            "ship_name": "Rifter",
        },
        "attackers": [
            {
                "character_id": 2117000100 + i,
                "character_name": name,
                "ship_name": name,
                "damage_done": i,
                "final_blow": i == 0,
            }
            for i in range(attackers)
        ],
        "zkb": {"totalValue": 12_500_000.0},
    }


def _tracked(characters: int) -> TrackedState:
    tracked = TrackedState()
    tracked.bootstrap(
        "bench",
        {31000000 + i: f"J{i}" for i in range(5000)},
        {2117000100 + i: f"P{i}" for i in range(characters)},
    )
    return tracked


def _decisions() -> None:
    data = _killmail(10, "Example Pilot")
    raw = orjson.dumps(data)
    event = Event("1", "wanderer-kills", "killmail", NOW, 0, "killmail:1", Priority.NORMAL, data, 1)
    tracked, config = _tracked(10), KillNotifyConfig()
    count = 50_000
    decide = _rate(lambda _: kill_notification(event, tracked, config, 3600.0, NOW), count)
    decode = _rate(lambda _: orjson.loads(raw), count)
    print(f"kill decisions:   {decide:12,.0f}/s   JSON decode {decode:12,.0f}/s   "
          f"ratio {decode / decide:6.1f}x")  # fmt: skip


def _rendering(label: str, attackers: int, name: str, count: int) -> None:
    data = _killmail(attackers, name)
    event = Event("1", "wanderer-kills", "killmail", NOW, 0, "killmail:1", Priority.NORMAL, data, 1)
    result = kill_notification(event, _tracked(attackers), KillNotifyConfig(), 3600.0, NOW)
    assert isinstance(result, Notification)
    body = message_payload(result)
    render = _rate(lambda _: message_payload(result), count)
    encode = _rate(lambda _: orjson.dumps(body), count)
    print(f"render {label}: {render:12,.0f}/s   JSON encode {encode:12,.0f}/s   "
          f"ratio {encode / render:6.1f}x")  # fmt: skip


def _ledger(directory: Path) -> None:
    path = directory / "journal.sqlite3"
    count = 500
    with Ledger.open(path) as ledger:
        claims = _rate(lambda i: ledger.claim("discord", f"kill:{i}", i), count)
    plain = sqlite3.connect(path, isolation_level=None)
    plain.execute("PRAGMA synchronous=OFF")
    plain.execute("CREATE TABLE baseline (key TEXT PRIMARY KEY, seq INTEGER)")
    inserts = _rate(
        lambda i: plain.execute("INSERT INTO baseline VALUES (?, ?)", (str(i), i)), count
    )
    plain.close()
    print(f"ledger claims:    {claims:12,.0f}/s   unsynced insert {inserts:8,.0f}/s   "
          f"ratio {inserts / claims:6.1f}x")  # fmt: skip


def main() -> None:
    _decisions()
    _rendering("plain kill ", 10, "Example Pilot", 5_000)
    _rendering("200 x 256ch", 200, "\U0001f680" + "N" * 255, 500)
    with tempfile.TemporaryDirectory() as directory:
        _ledger(Path(directory))


if __name__ == "__main__":
    main()
