"""A writer process for the journal's SIGKILL durability test.

``python -m tests.support.journal_sigkill_writer PATH BATCH`` appends batches of
``BATCH`` events to the journal at ``PATH`` until it is killed, and prints the
last seq of every committed batch on its own line. It expects to be the only
writer, so the event it numbers ``n`` gets seq ``n``; :func:`expected_event`
lets the test check every stored event against what was written.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from realtime.event import KILLS_SOURCE, Cursor, Event, Priority
from realtime.journal_store import JournalStore

CURSOR_SOURCE = "sigkill-writer"


def expected_event(n: int) -> Event:
    """The event the writer appends as its ``n``-th (1-based); about 300 B of payload."""
    digest = hashlib.sha256(str(n).encode()).hexdigest()
    return Event(
        id=str(n),
        source=KILLS_SOURCE,
        type="killmail",
        time=1_700_000_000.0 + n,
        received_at=n,
        key=f"killmail:{n}",
        priority=Priority(n % len(Priority)),
        data={
            "killmail_id": n,
            "digest": digest,
            "victim": {"ship_type_id": n % 700, "damage_taken": n * 3.5},
            "attackers": [{"character_id": n + i, "final_blow": i == 0} for i in range(3)],
            "padding": digest * 2,
        },
    )


def main(argv: list[str]) -> None:
    path, batch = Path(argv[0]), int(argv[1])
    with JournalStore.open(path) as store:
        last = store.last_seq()
        while True:
            events = [expected_event(n) for n in range(last + 1, last + batch + 1)]
            committed = store.append(events, cursors=[Cursor(CURSOR_SOURCE, str(last + batch))])
            last = committed[-1].committed_seq
            print(last, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
