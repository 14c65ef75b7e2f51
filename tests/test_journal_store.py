"""The SQLite event store: seqs, atomicity, settling, retention, failures, durability."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack  # msgpack ships no type hints
import orjson
import pytest

from realtime.checkpoint import HeldOutcome
from realtime.event import SCHEMA_VERSION, Cursor, Event, Outcome, Priority, Reject
from realtime.journal_store import JournalStore, encode_payload
from realtime.schema import SCHEMA_VERSION as JOURNAL_SCHEMA_VERSION
from realtime.storage import (
    StorageBusyError,
    StorageCorruptError,
    StorageFullError,
    StorageSettings,
    StorageUnavailableError,
)
from tests.support.clocks import FakeClock
from tests.support.journal_sigkill_writer import CURSOR_SOURCE, expected_event
from tests.support.process import ROOT


def event(
    n: int,
    *,
    source: str = "wanderer-kills",
    type_: str = "killmail",
    time: float | None = None,
    schema: int = SCHEMA_VERSION,
    padding: int = 0,
) -> Event:
    return Event(
        id=str(n),
        source=source,
        type=type_,
        time=1_700_000_000.0 + n if time is None else time,
        received_at=n * 1000,
        key=f"killmail:{n}",
        priority=Priority.NORMAL,
        data={"killmail_id": n, "padding": "x" * padding},
        schema=schema,
    )


def reject(reason: str) -> Reject:
    return Reject("wanderer-kills", reason, "could not decode", b"{not json", 7)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def store(path: Path, clock: FakeClock) -> Iterator[JournalStore]:
    with JournalStore.open(path, clock=clock) as opened:
        yield opened


@contextlib.contextmanager
def raw_database(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the journal file, beside the store: commits, then closes."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            yield connection
    finally:
        connection.close()


def seqs(events: list[Event]) -> list[int]:
    return [e.committed_seq for e in events]


def test_groups_of_appends_get_monotonic_gap_free_seqs_that_survive_reopen(
    path: Path, store: JournalStore
) -> None:
    first = store.append([event(n) for n in range(3)])
    second = store.append([event(n) for n in range(3, 8)])
    assert seqs(first) + seqs(second) == list(range(1, 9))
    store.close()
    with JournalStore.open(path) as reopened:
        assert reopened.last_seq() == 8
        assert seqs(reopened.append([event(9)])) == [9]
        assert seqs(reopened.read(0, 100)) == list(range(1, 10))
        assert reopened.count() == 9


def test_append_returns_the_events_with_seq_and_read_gives_them_back_equal(
    store: JournalStore,
) -> None:
    sent = [event(1), event(2).with_priority(Priority.CRITICAL)]
    committed = store.append(sent)
    assert committed == [sent[0].with_seq(1), sent[1].with_seq(2)]
    assert store.read(0, 10) == committed


def test_an_append_with_only_rejects_or_cursors_uses_no_seq(store: JournalStore) -> None:
    assert store.append([]) == []
    assert store.settle([], Outcome.HANDLED) == 0
    assert store.append([], [reject("invalid_json")], [Cursor("map:demo", "01A")]) == []
    assert store.last_seq() == 0
    assert store.cursor("map:demo") == "01A"
    assert seqs(store.append([event(1)])) == [1]


def test_cursor_is_committed_with_the_events_it_covers(path: Path, store: JournalStore) -> None:
    assert store.cursor("map:demo") is None
    store.append([event(1), event(2)], cursors=[Cursor("map:demo", "01A")])
    store.append([event(3)], cursors=[Cursor("map:demo", "01B")])
    assert store.cursor("map:demo") == "01B"
    with raw_database(path) as raw:
        assert raw.execute("SELECT value, seq FROM cursors").fetchall() == [("01B", 3)]


def test_a_failure_mid_transaction_writes_neither_events_nor_rejects_nor_cursor(
    path: Path, store: JournalStore
) -> None:
    store.append([event(1)], cursors=[Cursor("map:demo", "01A")])
    with raw_database(path) as raw:
        raw.execute(
            "CREATE TRIGGER fail_cursor BEFORE UPDATE ON cursors"
            " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    batch = [event(2), event(3)]
    with pytest.raises(sqlite3.IntegrityError, match="injected failure"):
        store.append(batch, [reject("invalid_json")], [Cursor("map:demo", "01B")])
    assert store.last_seq() == 1
    assert store.count() == 1
    assert seqs(store.read(0, 10)) == [1]
    assert store.cursor("map:demo") == "01A"
    assert store.statistics().rejects == 0
    with raw_database(path) as raw:
        raw.execute("DROP TRIGGER fail_cursor")
    assert seqs(store.append(batch, [reject("invalid_json")], [Cursor("map:demo", "01B")])) == [
        2,
        3,
    ]
    assert store.cursor("map:demo") == "01B"


def test_data_that_cannot_be_packed_fails_before_anything_is_written(store: JournalStore) -> None:
    unpackable = Event(
        "1", "wanderer-kills", "killmail", 0.0, 0, "k", Priority.LOW, {"x": object()}
    )
    with pytest.raises(TypeError):
        store.append([event(1), unpackable])
    assert store.last_seq() == 0


def test_event_data_is_stored_as_its_json_and_reads_back_equal(
    path: Path, store: JournalStore
) -> None:
    committed = store.append([event(1, padding=3)])
    with raw_database(path) as raw:
        (payload,) = raw.execute("SELECT payload FROM events").fetchone()
    assert payload == orjson.dumps(committed[0].data)
    assert store.read(0, 10) == committed


def test_given_payloads_are_stored_as_given(path: Path, store: JournalStore) -> None:
    first, second = event(1), event(2)
    encoded = encode_payload(first.data)
    store.append([first, second], payloads=[encoded, None])
    with raw_database(path) as raw:
        stored = [row[0] for row in raw.execute("SELECT payload FROM events ORDER BY seq")]
    assert stored == [encoded, orjson.dumps(second.data)]


def test_data_json_cannot_hold_is_stored_as_msgpack_and_reads_back_equal(
    store: JournalStore,
) -> None:
    odd = Event(
        "1",
        "replay",
        "killmail",
        0.0,
        0,
        "k",
        Priority.LOW,
        {"raw": b"\x00\xff", "by_id": {7: "x"}},
    )
    assert encode_payload(odd.data)[:1] != b"{"
    assert store.read(0, 10) == []
    assert store.append([odd]) == store.read(0, 10)


def test_a_journal_whose_payloads_are_msgpack_as_earlier_releases_wrote_reads_back(
    path: Path, store: JournalStore
) -> None:
    # Releases before JSON payloads stored msgpack.packb(dict(event.data)).
    data = {"killmail_id": 5, "victim": {"character_id": 9}, "zkb": {"totalValue": 1.5e9}}
    with raw_database(path) as raw:
        raw.execute(
            "INSERT INTO events (seq, id, source, type, time, received_at, ingested_at, key,"
            " priority, schema, payload) VALUES (1, '5', 'wanderer-kills', 'killmail', 1.0, 2,"
            " 3.0, 'killmail:5', 2, 1, ?)",
            (msgpack.packb(data),),
        )
    (read,) = store.read(0, 10)
    assert read.data == data
    assert read.seq == 1
    store.append([event(6)])
    assert [e.data for e in store.read(0, 10)] == [data, event(6).data]


def test_outcomes_and_the_checkpoint_commit_with_the_events_in_one_transaction(
    path: Path, store: JournalStore
) -> None:
    store.append([event(1), event(2)])
    with raw_database(path) as raw:
        raw.execute(
            "CREATE TRIGGER fail_checkpoint BEFORE INSERT ON checkpoints"
            " BEGIN SELECT RAISE(ABORT, 'injected'); END"
        )
    duplicate = HeldOutcome((2,), Outcome.DUPLICATE, "seen")
    with pytest.raises(sqlite3.IntegrityError):
        store.append([event(3)], outcomes=[duplicate], checkpoint=3)
    assert store.last_seq() == 2
    assert store.outcomes_count()[Outcome.DUPLICATE] == 0
    with raw_database(path) as raw:
        raw.execute("DROP TRIGGER fail_checkpoint")
    store.append([event(3)], outcomes=[duplicate], checkpoint=3)
    assert store.checkpoint() == 3
    assert store.outcomes_count()[Outcome.DUPLICATE] == 1
    assert [e.seq for e in store.read(0, 10, include_settled=False)] == [1, 3]


def test_two_stores_on_one_file_still_get_gap_free_seqs(path: Path, store: JournalStore) -> None:
    with JournalStore.open(path) as other:
        store.append([event(1)])
        other.append([event(2), event(3)])
        store.append([event(4)])
        assert seqs(other.read(0, 10)) == [1, 2, 3, 4]


def test_checkpoints_start_at_zero_are_named_and_stay_within_the_journal(
    store: JournalStore,
) -> None:
    store.append([event(n) for n in range(5)])
    assert store.checkpoint() == 0
    store.set_checkpoint(3)
    store.set_checkpoint(5, name="replay")
    assert (store.checkpoint(), store.checkpoint("replay")) == (3, 5)
    with pytest.raises(ValueError, match=r"outside 0\.\.5"):
        store.set_checkpoint(6)
    with pytest.raises(ValueError, match="outside"):
        store.set_checkpoint(-1)
    assert store.checkpoint() == 3


def test_settled_events_stay_readable_and_the_first_outcome_wins(
    path: Path, store: JournalStore
) -> None:
    store.append([event(n) for n in range(1, 6)])
    assert store.settle([1, 2], Outcome.HANDLED) == 2
    assert store.settle([2, 3], Outcome.DUPLICATE, detail="first seq 1") == 1
    assert store.settle([4, 99], Outcome.SHED) == 1
    assert seqs(store.read(0, 10)) == [1, 2, 3, 4, 5]
    assert seqs(store.read(0, 10, include_settled=False)) == [5]
    counts = store.outcomes_count()
    assert counts[Outcome.HANDLED] == 2
    assert counts[Outcome.DUPLICATE] == 1
    assert counts[Outcome.SHED] == 1
    assert counts[Outcome.DEAD_LETTER] == 0
    with raw_database(path) as raw:
        assert raw.execute(
            "SELECT outcome, outcome_detail FROM events WHERE seq = 3"
        ).fetchone() == (
            "duplicate",
            "first seq 1",
        )
    store.close()
    with JournalStore.open(path) as reopened:
        assert reopened.outcomes_count() == counts


def test_read_filters_by_seq_time_type_and_source_and_pages_oldest_first(
    store: JournalStore,
) -> None:
    store.append(
        [
            event(1, type_="killmail"),
            event(2, type_="add_system", source="map:demo"),
            event(3, type_="killmail", source="map:demo"),
            event(4, type_="killmail"),
            event(5, type_="add_system", source="map:other"),
        ]
    )
    assert seqs(store.read(0, 2)) == [1, 2]
    assert seqs(store.read(2, 2)) == [3, 4]
    assert seqs(store.read(4, 2)) == [5]
    assert seqs(store.read(1, 10, until_seq=3)) == [2, 3]
    assert seqs(store.read(0, 10, types=["killmail"])) == [1, 3, 4]
    assert seqs(store.read(0, 10, sources={"map:demo", "map:other"})) == [2, 3, 5]
    assert seqs(store.read(0, 10, types=["killmail"], sources=["map:demo"])) == [3]
    assert store.read(0, 10, types=[]) == []
    with pytest.raises(TypeError, match="not a single string"):
        store.read(0, 10, types="killmail")
    assert seqs(store.read(0, 10, since_time=1_700_000_002.0, until_time=1_700_000_004.0)) == [
        2,
        3,
        4,
    ]
    with pytest.raises(ValueError, match="limit"):
        store.read(0, 0)


def test_recent_gives_keys_ingested_within_the_window_newest_kept_in_seq_order(
    store: JournalStore, clock: FakeClock
) -> None:
    start = clock.now
    store.append([event(1), event(2)])
    clock.now = start + 100
    store.append([event(3), event(4), event(5)])
    assert store.recent(window_s=50, now=start + 120, limit=10) == [
        ("killmail:3", 3, "wanderer-kills", start + 100),
        ("killmail:4", 4, "wanderer-kills", start + 100),
        ("killmail:5", 5, "wanderer-kills", start + 100),
    ]
    assert [seq for _, seq, _, _ in store.recent(window_s=500, now=start + 120, limit=4)] == [
        2,
        3,
        4,
        5,
    ]


def test_purge_deletes_old_rows_in_chunks_but_never_after_the_checkpoint(
    store: JournalStore, clock: FakeClock
) -> None:
    start = clock.now
    store.append([event(n) for n in range(1, 11)], [reject("invalid_json"), reject("too_big")])
    clock.now = start + 1000
    store.append([event(n) for n in range(11, 14)])
    store.set_checkpoint(6)
    store.settle(list(range(1, 7)), Outcome.HANDLED)

    assert store.purge(older_than=start + 500, max_rows=4) == 4
    assert store.purge(older_than=start + 500, max_rows=4) == 2 + 2
    assert store.purge(older_than=start + 500, max_rows=4) == 0
    assert seqs(store.read(0, 100)) == list(range(7, 14))
    stats = store.statistics()
    assert (stats.rows, stats.first_seq, stats.last_seq, stats.rejects) == (7, 7, 13, 0)
    assert store.outcomes_count()[Outcome.HANDLED] == 0

    store.set_checkpoint(13)
    assert store.purge(older_than=start + 500, max_rows=100) == 4
    assert seqs(store.read(0, 100)) == [11, 12, 13]
    with pytest.raises(ValueError, match="max_rows"):
        store.purge(older_than=start, max_rows=0)


def test_seqs_keep_counting_after_every_event_was_purged(
    path: Path, store: JournalStore, clock: FakeClock
) -> None:
    store.append([event(1), event(2)])
    store.set_checkpoint(2)
    assert store.purge(older_than=clock.now + 1, max_rows=10) == 2
    store.close()
    with JournalStore.open(path, clock=clock) as reopened:
        assert reopened.count() == 0
        assert reopened.last_seq() == 2
        assert seqs(reopened.append([event(3)])) == [3]


def test_purge_with_no_checkpoint_keeps_every_event(store: JournalStore, clock: FakeClock) -> None:
    store.append([event(1)], [reject("invalid_json")])
    assert store.purge(older_than=clock.now + 1, max_rows=10) == 1
    assert store.count() == 1


def test_statistics_report_rows_seqs_checkpoints_size_and_rejects_by_reason(
    path: Path, store: JournalStore
) -> None:
    store.append(
        [event(1), event(2)],
        [reject("invalid_json"), reject("invalid_json"), reject("missing_killmail_id")],
    )
    store.set_checkpoint(1)
    stats = store.statistics()
    assert (stats.rows, stats.first_seq, stats.last_seq) == (2, 1, 2)
    assert dict(stats.checkpoints) == {"pipeline": 1}
    assert dict(stats.rejects_by_reason) == {"invalid_json": 2, "missing_killmail_id": 1}
    assert stats.rejects == 3
    assert stats.db_bytes > 0
    assert stats.wal_bytes == path.with_name("journal.db-wal").stat().st_size
    store.close()
    with JournalStore.open(path) as reopened:
        assert reopened.statistics().rejects_by_reason == stats.rejects_by_reason


def test_events_of_an_unknown_newer_schema_are_kept_and_read(store: JournalStore) -> None:
    future = event(1, schema=SCHEMA_VERSION + 5)
    store.append([future])
    (read,) = store.read(0, 10)
    assert read.schema == SCHEMA_VERSION + 5
    assert read == future.with_seq(1)


def test_an_unknown_priority_reads_as_low(path: Path, store: JournalStore) -> None:
    store.append([event(1)])
    with raw_database(path) as raw:
        raw.execute("UPDATE events SET priority = 9")
    assert store.read(0, 1)[0].priority is Priority.LOW


def test_a_damaged_payload_is_reported_with_its_seq(path: Path, store: JournalStore) -> None:
    store.append([event(1), event(2)])
    with raw_database(path) as raw:
        raw.execute("UPDATE events SET payload = x'c1' WHERE seq = 2")
    with pytest.raises(StorageCorruptError, match="seq 2"):
        store.read(0, 10)


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(path: Path) -> None:
    garbage = b"this is not a database, it is someone's notes\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(StorageCorruptError) as raised:
        JournalStore.open(path)
    message = str(raised.value)
    assert str(path) in message
    assert "not a database" in message
    assert "move the file" in message
    assert path.read_bytes() == garbage


def test_a_truncated_database_is_refused_and_left_untouched(path: Path) -> None:
    with JournalStore.open(path) as store:
        for start in range(0, 2000, 500):
            store.append([event(n, padding=300) for n in range(start, start + 500)])
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(StorageCorruptError, match=r"is damaged \(") as raised:
        JournalStore.open(path)
    assert str(path) in str(raised.value)
    assert path.read_bytes() == whole[: len(whole) // 2]


def test_a_damaged_page_inside_the_database_is_found_at_open(path: Path) -> None:
    with JournalStore.open(path) as store:
        for start in range(0, 2000, 500):
            store.append([event(n, padding=300) for n in range(start, start + 500)])
    damaged = bytearray(path.read_bytes())
    middle = len(damaged) // 4096 // 2 * 4096
    damaged[middle : middle + 4096] = random.Random(7).randbytes(4096)
    path.write_bytes(damaged)
    with pytest.raises(StorageCorruptError, match="integrity_check") as raised:
        JournalStore.open(path)
    assert "left untouched" in str(raised.value)
    assert path.read_bytes() == damaged


def test_a_foreign_sqlite_database_is_refused_and_left_untouched(path: Path) -> None:
    with raw_database(path) as raw:
        raw.execute("CREATE TABLE notes (body TEXT)")
        raw.execute("INSERT INTO notes VALUES ('keep me')")
    before = path.read_bytes()
    with pytest.raises(StorageCorruptError, match=r"not a journal database \(tables: notes\)"):
        JournalStore.open(path)
    assert path.read_bytes() == before


def test_a_journal_from_a_newer_release_is_refused(path: Path) -> None:
    JournalStore.open(path).close()
    with raw_database(path) as raw:
        raw.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'",
            (JOURNAL_SCHEMA_VERSION + 1,),
        )
    with pytest.raises(StorageCorruptError, match="newer release"):
        JournalStore.open(path)


def test_an_empty_file_becomes_a_new_journal(path: Path) -> None:
    path.write_bytes(b"")
    with JournalStore.open(path) as store:
        assert seqs(store.append([event(1)])) == [1]


def append_until_full(store: JournalStore) -> tuple[int, StorageFullError]:
    """Append batches (each with a cursor) until the journal is full; how many fitted."""
    for batch in range(1000):
        try:
            store.append(
                [event(n, padding=1000) for n in range(batch * 20, batch * 20 + 20)],
                cursors=[Cursor("kills", str(batch))],
            )
        except StorageFullError as error:
            return batch, error
    raise AssertionError("the journal never filled up")


def test_disk_full_raises_unavailable_then_the_same_batch_succeeds_once_space_returns(
    path: Path, clock: FakeClock
) -> None:
    with JournalStore.open(path, StorageSettings(max_db_bytes=256 * 1024), clock=clock) as store:
        batches, full = append_until_full(store)
        assert "database or disk is full" in str(full)
        assert isinstance(full.__cause__, sqlite3.OperationalError)
        last = store.last_seq()
        assert last == batches * 20
        assert store.count() == last
        assert store.cursor("kills") == str(batches - 1)

        retry = [event(n, padding=1000) for n in range(5000, 5020)]
        with pytest.raises(StorageFullError):
            store.append(retry, cursors=[Cursor("kills", "retry")])
        store.set_checkpoint(last)
        clock.now += 10
        while store.purge(older_than=clock.now, max_rows=50):
            pass
        assert seqs(store.append(retry, cursors=[Cursor("kills", "retry")])) == list(
            range(last + 1, last + 21)
        )
        assert store.cursor("kills") == "retry"


def test_a_read_only_journal_raises_unavailable_on_writes_and_still_reads(path: Path) -> None:
    with JournalStore.open(path) as writer:
        writer.append([event(1)])
        with JournalStore.open(path, read_only=True) as reader:
            with pytest.raises(StorageUnavailableError, match="readonly database"):
                reader.append([event(2)])
            with pytest.raises(StorageUnavailableError, match="readonly database"):
                reader.set_checkpoint(1)
            assert seqs(reader.read(0, 10)) == [1]
            writer.append([event(3)])
            assert seqs(reader.read(0, 10)) == [1, 2]
            assert reader.last_seq() == 2
        assert seqs(writer.append([event(4)])) == [3]


def test_a_write_lock_held_past_the_busy_timeout_raises_unavailable_then_clears(
    path: Path,
) -> None:
    with JournalStore.open(path, StorageSettings(busy_timeout_s=0.05)) as store:
        store.append([event(1)])
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageBusyError, match="database is locked"):
                store.append([event(2)], cursors=[Cursor("kills", "2")])
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        assert seqs(store.append([event(2)], cursors=[Cursor("kills", "2")])) == [2]


def test_a_read_only_open_of_a_missing_journal_creates_nothing(path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        JournalStore.open(path, read_only=True)
    assert not path.exists()


def test_the_store_refuses_calls_from_another_thread(store: JournalStore) -> None:
    errors: list[BaseException] = []

    def call() -> None:
        try:
            store.last_seq()
        except sqlite3.ProgrammingError as error:
            errors.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(timeout=10)
    assert len(errors) == 1


def test_a_journal_opened_with_sync_each_commit_commits_and_reads_back(path: Path) -> None:
    with JournalStore.open(path, StorageSettings(sync_each_commit=True)) as store:
        store.append([event(1)])
    with JournalStore.open(path) as store:
        assert store.last_seq() == 1


def kill_writer_after(path: Path, acknowledgements: int, delay_s: float) -> list[int]:
    """Run the writer, SIGKILL it ``delay_s`` after that many acknowledgements.

    Returns:
        every seq it acknowledged, in order.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.journal_sigkill_writer", str(path), "200"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    acknowledged: list[int] = []
    try:
        while len(acknowledged) < acknowledgements:
            line = process.stdout.readline()
            assert line, f"writer died: {process.stderr.read() if process.stderr else ''}"
            acknowledged.append(int(line))
        # Not a wait for anything: a random pause moves the kill to a random
        # point of the writer's cycle (packing, inserting, committing).
        time.sleep(delay_s)
        os.kill(process.pid, signal.SIGKILL)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGKILL
    acknowledged.extend(int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n"))
    return acknowledged


def test_every_acknowledged_event_survives_sigkill_of_the_writer(path: Path) -> None:
    rng = random.Random(20240611)
    seen = 0
    for _ in range(6):
        acknowledged = kill_writer_after(path, rng.randint(1, 10), rng.uniform(0, 0.02))
        assert acknowledged == sorted(acknowledged)
        assert acknowledged[0] > seen
        seen = acknowledged[-1]
        with JournalStore.open(path) as store:
            last = store.last_seq()
            assert last >= seen
            stored = []
            after = 0
            while page := store.read(after, 500):
                stored.extend(page)
                after = page[-1].committed_seq
            assert stored == [expected_event(n).with_seq(n) for n in range(1, last + 1)]
            assert store.cursor(CURSOR_SOURCE) == str(last)
        with raw_database(path) as raw:
            assert raw.execute("PRAGMA quick_check").fetchall() == [("ok",)]
            seen = last
