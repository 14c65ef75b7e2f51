"""The notifier's building blocks: send queue, tracked snapshot, batched ledger claims."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from actors.notifier import Delivery, SendQueue
from realtime.event import Event, Priority
from realtime.ledger import Claim, Ledger, LedgerKey, nonce_for
from realtime.tracking import TrackedSnapshot, TrackedState
from tests.support.clocks import FakeClock


def delivery(key: str) -> Delivery:
    return Delivery(
        key=LedgerKey("discord", key), nonce=nonce_for("discord", key), body={}, received_at=None
    )


def test_the_send_queue_holds_at_most_its_capacity_counting_deliveries_in_flight() -> None:
    queue = SendQueue(2, FakeClock(100.0))
    assert queue.offer(delivery("a"))
    assert queue.offer(delivery("b"))
    assert not queue.offer(delivery("c"))
    taken = queue.take()
    assert taken is not None
    assert taken.key.notification == "a"
    assert not queue.offer(delivery("c"))
    queue.again(taken, 5.0)  # a retry always fits: it is still held
    assert queue.statistics().waiting == 2
    statistics = queue.statistics()
    assert (statistics.capacity, statistics.high_water, statistics.refused) == (2, 2, 2)


def test_the_send_queue_never_holds_a_key_twice() -> None:
    queue = SendQueue(5, FakeClock(100.0))
    assert queue.offer(delivery("a"))
    assert not queue.offer(delivery("a"))
    taken = queue.take()
    assert taken is not None
    assert not queue.offer(delivery("a"))
    queue.done(taken)
    assert queue.offer(delivery("a"))


def test_a_retry_waits_for_its_due_time_behind_deliveries_due_now() -> None:
    clock = FakeClock(100.0)
    queue = SendQueue(5, clock)
    queue.offer(delivery("a"))
    first = queue.take()
    assert first is not None
    queue.again(first, 1.0)
    queue.offer(delivery("b"))
    second = queue.take()
    assert second is not None
    assert second.key.notification == "b"
    clock.now += 1.0
    third = queue.take()
    assert third is not None
    assert third.key.notification == "a"


def test_closing_the_send_queue_wakes_its_workers_and_forgets_what_waits() -> None:
    queue = SendQueue(5, FakeClock(100.0))
    taken: list[Delivery | None] = []
    worker = threading.Thread(target=lambda: taken.append(queue.take()))
    worker.start()
    queue.offer(delivery("a"))
    worker.join(5)
    queue.offer(delivery("b"))
    queue.close()
    assert queue.take() is None
    assert taken[0] is not None
    queue.again(taken[0], 0.0)
    assert queue.held() == 0
    assert queue.room() == 0
    assert not queue.offer(delivery("c"))


def test_a_send_queue_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SendQueue(0)


def test_a_snapshot_does_not_change_with_the_state_it_was_taken_from() -> None:
    state = TrackedState()
    state.bootstrap("home", {31000005: "J100005"}, {2117000001: ""})
    snapshot = state.snapshot()
    state.bootstrap("home", {}, {})
    assert snapshot.is_tracked_system(31000005)
    assert snapshot.system_name(31000005) == "J100005"
    assert snapshot.is_tracked_character(2117000001)
    assert snapshot.character_name(2117000001) is None
    assert not state.is_tracked_system(31000005)
    with pytest.raises(TypeError):
        snapshot.systems[1] = "x"  # type: ignore[index]
    assert TrackedSnapshot().subscription() == (frozenset(), frozenset())


def test_map_contents_rebuild_a_map_and_the_revision_counts_changes() -> None:
    state = TrackedState()
    state.bootstrap("home", {31000005: "J100005", 30000142: "Jita"}, {2117000001: "A"})
    revision = state.revision
    state.apply(_map_event("character_updated", {"eve_id": "2117000001", "name": "B"}))
    assert state.revision == revision + 1
    state.apply(_map_event("character_updated", {"eve_id": "2117000001", "name": "B"}))
    assert state.revision == revision + 1
    rebuilt = TrackedState()
    rebuilt.bootstrap("home", *state.map_contents("home"))
    assert rebuilt.snapshot().systems == state.snapshot().systems
    assert rebuilt.character_name(2117000001) == "B"
    assert state.map_contents("nowhere") == ({}, {})
    assert state.maps() == ("home",)


def _map_event(kind: str, payload: dict[str, object]) -> Event:
    return Event("1", "map:home", kind, 0.0, 0, "k", Priority.NORMAL, payload, seq=1)


def test_claim_many_is_one_transaction_and_answers_like_claim(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "journal.sqlite3") as ledger:
        ledger.claim("discord", "kill:1", 1)
        entries = ledger.claim_many(
            [
                Claim("discord", "kill:1", 5),
                Claim("discord", "kill:2", 6, b"{}"),
                Claim("discord", "kill:2", 7),
                Claim("console", "kill:2", 6),
            ]
        )
        assert [entry is not None for entry in entries] == [False, True, False, True]
        assert entries[1] is not None
        assert entries[1].nonce == nonce_for("discord", "kill:2")
        assert ledger.statistics().pending == 3
        assert [e.key for e in ledger.pending(routes={"console"})] == [
            LedgerKey("console", "kill:2")
        ]
        assert ledger.claim_many([]) == []


def test_a_failed_claim_many_commits_none_of_its_claims(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Ledger.open(path) as ledger:
        bad = Claim("discord", "kill:4", 1)
        object.__setattr__(bad, "seq", object())  # an unbindable parameter fails the insert
        with pytest.raises(sqlite3.ProgrammingError):
            ledger.claim_many([Claim("discord", "kill:3", 1), bad])
        assert ledger.statistics().pending == 0
        assert ledger.get(LedgerKey("discord", "kill:3")) is None
        assert ledger.claim("discord", "kill:3", 1) is not None
