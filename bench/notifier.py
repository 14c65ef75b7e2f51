"""Benchmark of the notifier's ledger claims: ``python -m bench.notifier``.

The notifier claims every notification of a ``Handle`` batch before it
answers the router, each on disk (``synchronous=FULL``). Figures, each against
a baseline measured in the same run:

- claims per second in batches of 256 (:meth:`Ledger.claim_many`, one
  transaction and one sync per batch), against one transaction per claim
  (:meth:`Ledger.claim`, what a batch would cost claimed one by one);
- the time to answer one ``Handle`` of 256 notifiable kills with the console
  and Discord sinks (decide, render both bodies, claim 512 entries), against
  the same batch claimed one entry per transaction.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import orjson

from actors.notifier import ConsoleSink
from realtime.config import KillNotifyConfig
from realtime.event import Event, Priority, format_time
from realtime.ledger import Claim, Ledger
from realtime.notifications import Notification, kill_notification
from realtime.render import message_payload
from realtime.tracking import TrackedSnapshot

NOW = 1_800_000_000.0
BATCH = 256


def _claims_per_s(path: Path, batches: int) -> tuple[float, float]:
    with Ledger.open(path) as ledger:
        start = time.perf_counter()
        for batch in range(batches):
            ledger.claim_many([Claim("discord", f"a:{batch}:{i}", i) for i in range(BATCH)])
        batched = batches * BATCH / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(BATCH):
            ledger.claim("discord", f"b:{i}", i)
        single = BATCH / (time.perf_counter() - start)
    return batched, single


def _events() -> list[Event]:
    events = []
    for n in range(BATCH):
        data = {
            "killmail_id": 100_000 + n,
            "kill_time": format_time(NOW - 60),
            "system_id": 31000005,
            "victim": {
                "character_id": 2117000001,
                "character_name": "Victim",
                "ship_name": "Rifter",
            },
            "attackers": [
                {"character_id": 2117000100 + i, "final_blow": i == 0} for i in range(10)
            ],
            "zkb": {"totalValue": 12_500_000.0},
        }
        events.append(
            Event(str(n), "wanderer-kills", "killmail", NOW, 0, f"k:{n}", Priority.HIGH, data, n)
        )
    return events


def _handle_s(path: Path, events: list[Event], *, batched: bool) -> float:
    view = TrackedSnapshot.of({31000005: "J100005"}, {2117000001: "Victim"})
    config = KillNotifyConfig()
    with Ledger.open(path) as ledger:
        start = time.perf_counter()
        claims = []
        for event in events:
            notification = kill_notification(event, view, config, 3600.0, NOW)
            assert isinstance(notification, Notification)
            key = f"{notification.key}:{batched}"
            claims.append(Claim("console", key, event.seq, ConsoleSink.payload(notification)))
            claims.append(
                Claim("discord", key, event.seq, orjson.dumps(message_payload(notification)))
            )
        if batched:
            ledger.claim_many(claims)
        else:
            for claim in claims:
                ledger.claim(claim.route, claim.notification, claim.seq, claim.payload)
        return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "journal.sqlite3"
        batched, single = _claims_per_s(path, 20)
        print(f"ledger claims:  batched {batched:10,.0f}/s   one by one {single:8,.0f}/s   "
              f"ratio {batched / single:6.1f}x")  # fmt: skip
        events = _events()
        fast = _handle_s(path, events, batched=True)
        slow = _handle_s(path, events, batched=False)
        print(f"Handle of {BATCH} kills, 2 sinks: {fast * 1000:8.1f} ms   one claim per "
              f"transaction {slow * 1000:8.1f} ms   ratio {slow / fast:6.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
