"""A firehose burst against the real program: the feed is slowed down, nothing is dropped.

The kills server pushes 100,000 kills as fast as its socket takes them, far
beyond what the journal commits (the journal's mailbox is kept small so that
it is full for most of the burst, as it is on a busy machine with the default
one). The program must then stop reading (TCP backpressure: the server's
queue for the connection grows, the test publishes only as fast as that queue
drains) rather than drop anything: every kill it was sent ends up in the
journal, and it never closes its connection or dials again.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from realtime.event import KILLS_SOURCE, format_time
from tests.support.fault_world import UNTRACKED_SYSTEMS, FaultWorld, fault_world, preload_frame
from tests.support.waiting import wait_for

KILLS = 100_000
FRAME_KILLS = 20
JOURNAL_MAILBOX = 8 * FRAME_KILLS
"""Events the journal's mailbox holds (eight frames): full after a few milliseconds of burst."""
OUTBOX_HIGH = 2_000
"""Frames queued on the server for the connection before the publisher waits for it to drain."""


def small_killmail(killmail_id: int, kill_time: str) -> dict[str, Any]:
    """A valid killmail of an untracked system: journaled, then decided silent downstream."""
    return {
        "killmail_id": killmail_id,
        "kill_time": kill_time,
        "system_id": UNTRACKED_SYSTEMS[0],
        "victim": {"character_id": 2_117_000_001, "ship_type_id": 587},
        "attackers": [{"character_id": 2_117_000_002, "final_blow": True}],
        "zkb": {"totalValue": 10_000_000.0},
    }


def outbox(world: FaultWorld) -> int:
    connections = world.kills.statistics().connections
    return max((c.outbox_size for c in connections), default=0)


def journaled_kill_ids(world: FaultWorld) -> set[int]:
    with sqlite3.connect(f"file:{world.database}?mode=ro", uri=True, timeout=5) as db:
        rows = db.execute(
            "SELECT id FROM events WHERE source = ? AND type = 'killmail'", (KILLS_SOURCE,)
        ).fetchall()
    return {int(row[0]) for row in rows}


def test_a_firehose_burst_is_slowed_down_by_the_program_never_dropped_nor_reconnected(
    tmp_path: Path,
) -> None:
    extra = f"\n[mailbox]\njournal = {JOURNAL_MAILBOX}\n"
    with fault_world(tmp_path, seed=81, heartbeat_s=2.0, config_extra=extra) as world:
        program = world.program_running()
        before = world.kills.statistics()
        kill_time = format_time(time.time() - 600)
        published: set[int] = set()
        first_id = 500_000_000
        high_water = 0
        for start in range(first_id, first_id + KILLS, FRAME_KILLS):
            kills = [small_killmail(k, kill_time) for k in range(start, start + FRAME_KILLS)]
            published.update(kill["killmail_id"] for kill in kills)
            world.kills.send_raw(preload_frame(UNTRACKED_SYSTEMS[0], kills))
            if (start - first_id) % (50 * FRAME_KILLS) == 0:
                queued = outbox(world)
                high_water = max(high_water, queued)
                if queued > OUTBOX_HIGH:
                    wait_for(
                        lambda: outbox(world) < OUTBOX_HIGH // 2,
                        timeout_s=60,
                        interval_s=0.005,
                        what="the server's queue for the program drains",
                    )
        wait_for(
            lambda: len(journaled_kill_ids(world)) >= KILLS,
            timeout_s=120,
            interval_s=0.25,
            what="every kill journaled",
        )
        assert journaled_kill_ids(world) == published
        # its heartbeats went on (the server closes a socket silent for 5 s)
        wait_for(
            lambda: world.kills.statistics().heartbeats_answered > before.heartbeats_answered,
            timeout_s=10,
            what="a heartbeat answered",
        )
        after = world.kills.statistics()
        # the program never closed its connection nor dialled again
        assert after.connections_accepted == before.connections_accepted
        assert after.joins_ok == before.joins_ok
        assert after.idle_timeouts == after.slow_consumer_drops == 0
        assert program.alive()
        journal = next(node for node in walk(program.tree()) if node["name"] == "journal")
        # the journal's mailbox was full: the reader met it and waited (a
        # reader's batch of more events than the whole capacity is taken by
        # an empty mailbox, so its load may have gone beyond it)
        assert journal["mailbox"]["high_water"] >= JOURNAL_MAILBOX
        assert journal["mailbox"]["rejected"] > 0
        assert high_water > 0, "the server never had to queue: no backpressure was exercised"


def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("children", []) for n in walk(child))]
