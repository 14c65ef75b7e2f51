"""The event-sourced pipeline: journal -> dedup -> flow_control -> router -> handlers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actors.protocol import Names
from realtime.event import Event, Outcome
from realtime.journal_store import JournalStore
from supervision import Crash, GetStatus, SupervisionTree
from tests.support.pipeline import (
    Handled,
    checkpoint_reaches,
    config_for,
    ingest,
    journal_status,
    kill_event,
    map_event,
    pipeline,
)
from tests.support.waiting import wait_for


def killmail_ids(events: Sequence[Event]) -> list[int]:
    return [int(e.data["killmail_id"]) for e in events]


def router_status(tree: SupervisionTree) -> dict[str, Any]:
    return dict(tree.registry.ask(Names.ROUTER, GetStatus(), 5))


def test_events_reach_their_handlers_once_and_the_checkpoint_advances(tmp_path: Path) -> None:
    handled = Handled()
    with pipeline(config_for(tmp_path), handled) as tree:
        for killmail_id in range(1, 51):
            ingest(tree, kill_event(killmail_id))
        wait_for(lambda: len(handled.seen(Names.NOTIFIER)) == 50)
        wait_for(checkpoint_reaches(tree, 50))
        assert sorted(killmail_ids(handled.seen(Names.NOTIFIER))) == list(range(1, 51))
        assert handled.seen(Names.TRACKING) == []


def test_websocket_double_delivery_and_map_kill_reach_the_notifier_once(tmp_path: Path) -> None:
    handled = Handled()
    with pipeline(config_for(tmp_path), handled) as tree:
        ingest(tree, kill_event(7), kill_event(7))
        ingest(tree, kill_event(7, source="map:demo"))
        ingest(tree, kill_event(7, preload=True))
        wait_for(checkpoint_reaches(tree, 4))
        assert killmail_ids(handled.seen(Names.NOTIFIER)) == [7]
        # Outcomes are counted when their commit lands, which may follow the checkpoint.
        wait_for(lambda: journal_status(tree)["outcomes"].get("duplicate") == 3)


def test_map_changes_go_to_tracking_before_the_notifier(tmp_path: Path) -> None:
    handled = Handled()
    with pipeline(config_for(tmp_path), handled) as tree:
        ingest(tree, map_event("add_system", "01JA", {"solar_system_id": 31000005}))
        ingest(tree, map_event("signature_added", "01JB", {"solar_system_id": 31000005}))
        wait_for(checkpoint_reaches(tree, 2))
        assert [e.type for e in handled.seen(Names.TRACKING)] == ["add_system"]
        assert [e.type for e in handled.seen(Names.NOTIFIER)] == ["add_system"]
        wait_for(lambda: journal_status(tree)["outcomes"].get("ignored") == 1)


def test_a_crashed_router_loses_nothing_the_journal_redelivers_from_the_checkpoint(
    tmp_path: Path,
) -> None:
    handled = Handled()
    handled.gated.add(Names.NOTIFIER)
    with pipeline(config_for(tmp_path), handled) as tree:
        for killmail_id in range(1, 21):
            ingest(tree, kill_event(killmail_id))
        wait_for(lambda: journal_status(tree)["last_seq"] == 20)
        tree.registry.tell(Names.ROUTER, Crash())
        handled.gate.set()
        wait_for(checkpoint_reaches(tree, 20), timeout_s=10)
        assert set(killmail_ids(handled.seen(Names.NOTIFIER))) == set(range(1, 21))


def test_every_pipeline_stage_can_crash_and_everything_is_still_handled(tmp_path: Path) -> None:
    handled = Handled()
    with pipeline(config_for(tmp_path), handled) as tree:
        next_id = 1
        for stage in (Names.DEDUP, Names.FLOW_CONTROL, Names.ROUTER, Names.JOURNAL):
            for _ in range(10):
                ingest(tree, kill_event(next_id))
                next_id += 1
            before = wait_for(lambda: tree.registry.lookup(stage))  # noqa: B023
            assert before is not None
            before.tell(Crash())
            wait_for(lambda: tree.registry.lookup(stage) not in (None, before), timeout_s=10)  # noqa: B023
        total = next_id - 1
        wait_for(lambda: journal_status(tree)["last_seq"] == total, timeout_s=10)
        wait_for(checkpoint_reaches(tree, total), timeout_s=20)
        assert set(killmail_ids(handled.seen(Names.NOTIFIER))) == set(range(1, total + 1))


def test_a_failing_handler_is_retried_and_then_dead_lettered_in_the_journal(
    tmp_path: Path,
) -> None:
    handled = Handled()
    handled.failures_left[Names.NOTIFIER] = 2
    config = config_for(tmp_path, {"routing": {"max_attempts": 6}})
    with pipeline(config, handled) as tree:
        ingest(tree, kill_event(1))
        wait_for(lambda: killmail_ids(handled.seen(Names.NOTIFIER)) == [1], timeout_s=10)
        handled.failures_left[Names.NOTIFIER] = 10
        ingest(tree, kill_event(2))
        wait_for(checkpoint_reaches(tree, 2), timeout_s=20)
        wait_for(lambda: journal_status(tree)["outcomes"].get("dead_letter") == 1)
    with JournalStore.open(tmp_path / "data" / "journal.sqlite3") as store:
        assert store.outcomes_count()[Outcome.DEAD_LETTER] == 1


def test_a_handler_that_cannot_take_events_is_retried_until_it_can_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    handled = Handled()
    handled.refusals_left[Names.NOTIFIER] = 25
    config = config_for(tmp_path, {"routing": {"max_attempts": 2}})
    with pipeline(config, handled) as tree:
        ingest(tree, *(kill_event(killmail_id) for killmail_id in range(1, 11)))
        wait_for(lambda: router_status(tree)["stalled"] is not None)
        stalled = router_status(tree)["stalled"]
        assert stalled["severity"] == "critical"
        assert "notifier refused on purpose" in stalled["message"]
        wait_for(checkpoint_reaches(tree, 10), timeout_s=20)
        assert sorted(killmail_ids(handled.seen(Names.NOTIFIER))) == list(range(1, 11))
        assert journal_status(tree)["outcomes"]["dead_letter"] == 0
        assert router_status(tree)["stalled"] is None
        assert router_status(tree)["handler_failures"] == 25


def test_only_the_event_a_handler_keeps_raising_on_is_dead_lettered(tmp_path: Path) -> None:
    handled = Handled()
    handled.poison.add(3)
    config = config_for(tmp_path, {"routing": {"max_attempts": 2}})
    with pipeline(config, handled) as tree:
        ingest(tree, *(kill_event(killmail_id) for killmail_id in range(1, 6)))
        wait_for(checkpoint_reaches(tree, 5), timeout_s=20)
        assert sorted(killmail_ids(handled.seen(Names.NOTIFIER))) == [1, 2, 4, 5]
        wait_for(lambda: journal_status(tree)["outcomes"].get("dead_letter") == 1)


def test_kills_older_than_the_max_age_are_dropped_as_stale(tmp_path: Path) -> None:
    handled = Handled()
    config = config_for(tmp_path, {"filters": {"max_kill_age_s": 60}})
    with pipeline(config, handled) as tree:
        ingest(tree, kill_event(1, age_s=3600), kill_event(2))
        wait_for(checkpoint_reaches(tree, 2))
        assert killmail_ids(handled.seen(Names.NOTIFIER)) == [2]
        wait_for(lambda: journal_status(tree)["outcomes"].get("stale") == 1)


def test_a_restart_of_the_whole_pipeline_redelivers_what_was_not_handled(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path)
    blocked = Handled()
    blocked.gated.add(Names.NOTIFIER)
    with pipeline(config, blocked) as tree:
        for killmail_id in range(1, 11):
            ingest(tree, kill_event(killmail_id))
        wait_for(lambda: journal_status(tree)["last_seq"] == 10)
        assert journal_status(tree)["checkpoint"] == 0
        blocked.failures_left[Names.NOTIFIER] = 1000  # nothing gets through before the stop
    handled = Handled()
    with pipeline(config, handled) as tree:
        wait_for(checkpoint_reaches(tree, 10), timeout_s=10)
        assert sorted(killmail_ids(handled.seen(Names.NOTIFIER))) == list(range(1, 11))


def test_ingest_never_waits_for_a_stalled_pipeline(tmp_path: Path) -> None:
    handled = Handled()
    handled.gated.add(Names.NOTIFIER)
    with pipeline(config_for(tmp_path), handled) as tree:
        started = time.monotonic()
        for killmail_id in range(1, 20_001):
            ingest(tree, kill_event(killmail_id))
        sending = time.monotonic() - started
        wait_for(lambda: journal_status(tree)["last_seq"] == 20_000, timeout_s=60)
        status = journal_status(tree)
        # The backlog is on disk, not in flow control or a mailbox.
        assert status["backlog"] == 20_000
        assert sending < 30  # generous: only catches a producer blocked on the pipeline
        handled.gate.set()
        wait_for(checkpoint_reaches(tree, 20_000), timeout_s=60)


def test_a_restarted_dedup_rebuilds_its_window_from_the_journal(tmp_path: Path) -> None:
    handled = Handled()
    with pipeline(config_for(tmp_path), handled) as tree:
        ingest(tree, kill_event(1))
        wait_for(checkpoint_reaches(tree, 1))
        before = tree.registry.require(Names.DEDUP)
        before.tell(Crash())
        wait_for(lambda: tree.registry.lookup(Names.DEDUP) not in (None, before))
        ingest(tree, kill_event(1, preload=True))  # a preload replay after a reconnect
        wait_for(checkpoint_reaches(tree, 2))
        assert killmail_ids(handled.seen(Names.NOTIFIER)) == [1]
        wait_for(lambda: journal_status(tree)["outcomes"].get("duplicate") == 1)


def test_under_load_critical_events_are_handled_before_low_ones(tmp_path: Path) -> None:
    handled = Handled()
    handled.gated.add(Names.NOTIFIER)
    config = config_for(tmp_path, {"flow": {"batch": 16}, "routing": {"handler_timeout_s": 60}})
    with pipeline(config, handled) as tree:
        ingest(tree, kill_event(1))  # occupies the notifier until the gate opens
        wait_for(lambda: journal_status(tree)["delivered_upto"] >= 1)
        low = [kill_event(100 + n, preload=True) for n in range(200)]  # old preload kills: low
        for event in low:
            ingest(tree, event)
        rally = map_event("rally_point_added", "01JRALLY", {"rally_point_id": 7})
        ingest(tree, rally)  # critical
        wait_for(lambda: journal_status(tree)["last_seq"] == 202)
        handled.gate.set()
        wait_for(checkpoint_reaches(tree, 202), timeout_s=20)
        order = [e.type for e in handled.seen(Names.NOTIFIER)]
        # The rally point overtakes the queued preload kills.
        assert order.index("rally_point_added") < 20
