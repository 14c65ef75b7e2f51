from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from actors.notifier.discord_sink import SharedLedger
from realtime.journal_store import JournalStore
from realtime.ledger import (
    Claim,
    Ledger,
    LedgerKey,
    LedgerState,
    LedgerStatistics,
    RouteCounts,
    nonce_for,
)
from realtime.schema import SCHEMA_VERSION
from realtime.storage import Database, StorageBusyError, StorageCorruptError, StorageSettings
from tests.support.clocks import FakeClock
from tests.support.waiting import wait_for

K = LedgerKey


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def ledger(path: Path, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger.open(path, clock=clock) as opened:
        yield opened


def test_a_key_is_claimed_once_and_a_replayed_claim_returns_none(ledger: Ledger) -> None:
    entry = ledger.claim("discord", "kill:1", 10)
    assert entry is not None
    assert (entry.state, entry.attempts, entry.seq) == (LedgerState.PENDING, 0, 10)
    assert ledger.claim("discord", "kill:1", 99) is None
    assert ledger.claim("console", "kill:1", 10) is not None


@pytest.mark.parametrize("final", ["sent", "failed"])
def test_replay_never_claims_a_finished_key_again(ledger: Ledger, final: str) -> None:
    ledger.claim("discord", "kill:1", 10)
    if final == "sent":
        ledger.mark_sent(K("discord", "kill:1"), "111")
    else:
        ledger.mark_failed(K("discord", "kill:1"), "403 Missing Access")
    assert ledger.claim("discord", "kill:1", 10) is None


def test_nonce_is_deterministic_short_and_differs_per_route() -> None:
    nonce = nonce_for("discord", "kill:123456789")
    assert nonce == nonce_for("discord", "kill:123456789")
    assert len(nonce) <= 25
    assert nonce.isalnum()
    assert nonce != nonce_for("alerts", "kill:123456789")
    assert nonce != nonce_for("discord", "kill:123456780")


def test_pending_entry_is_resumed_with_the_same_nonce_after_reopening(
    path: Path, clock: FakeClock
) -> None:
    with Ledger.open(path, clock=clock) as first:
        claimed = first.claim("discord", "kill:1", 10, b'{"embeds":[]}')
        first.claim("discord", "kill:2", 11)
        first.mark_sent(K("discord", "kill:2"), "222")
        first.mark_attempt(K("discord", "kill:1"), "timeout")
    assert claimed is not None
    with Ledger.open(path, clock=clock) as second:
        [resumed] = second.pending()
        assert resumed.key == K("discord", "kill:1")
        assert resumed.nonce == claimed.nonce
        assert resumed.payload == b'{"embeds":[]}'
        assert (resumed.attempts, resumed.last_error) == (1, "timeout")
        assert second.claim("discord", "kill:1", 10) is None


def test_attempts_and_outcomes_are_recorded(ledger: Ledger, clock: FakeClock) -> None:
    ledger.claim("discord", "k", 1)
    clock.now += 5
    assert ledger.mark_attempt(K("discord", "k"), "503")
    assert ledger.mark_attempt(K("discord", "k"), "timeout")
    assert ledger.mark_sent(K("discord", "k"), "999")
    entry = ledger.get(K("discord", "k"))
    assert entry is not None
    assert entry.state is LedgerState.SENT
    assert entry.attempts == 3
    assert entry.discord_message_id == "999"
    assert entry.last_error is None
    assert entry.updated_at == entry.created_at + 5


def test_only_pending_entries_change_state(ledger: Ledger) -> None:
    ledger.claim("discord", "k", 1)
    assert ledger.mark_sent(K("discord", "k"), "1")
    assert not ledger.mark_sent(K("discord", "k"), "2")
    assert not ledger.mark_failed(K("discord", "k"), "late")
    assert not ledger.mark_attempt(K("discord", "k"), "late")
    entry = ledger.get(K("discord", "k"))
    assert entry is not None
    assert (entry.state, entry.discord_message_id, entry.attempts) == (LedgerState.SENT, "1", 1)


def test_marking_an_unclaimed_key_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(KeyError):
        ledger.mark_sent(K("discord", "never"), "1")
    with pytest.raises(KeyError):
        ledger.mark_attempt(K("discord", "never"), "x")
    assert ledger.get(K("discord", "never")) is None


def test_errors_are_stored_bounded(ledger: Ledger) -> None:
    ledger.claim("discord", "k", 1)
    ledger.mark_failed(K("discord", "k"), "x" * 100_000)
    entry = ledger.get(K("discord", "k"))
    assert entry is not None
    assert entry.last_error is not None
    assert len(entry.last_error) == 1000


def test_statistics_count_entries_per_state_and_survive_reopening(
    path: Path, clock: FakeClock
) -> None:
    with Ledger.open(path, clock=clock) as ledger:
        for i in range(6):
            ledger.claim("discord", f"k{i}", i)
        ledger.mark_sent(K("discord", "k0"), "1")
        ledger.mark_sent(K("discord", "k1"), "2")
        ledger.mark_failed(K("discord", "k2"), "404")
        ledger.mark_attempt(K("discord", "k3"), "timeout")
        ledger.claim("discord", "k0", 0)
        expected = LedgerStatistics(
            pending=3,
            sent=2,
            failed=1,
            routes=MappingProxyType({"discord": RouteCounts(pending=3, sent=2, failed=1)}),
        )
        assert ledger.statistics() == expected
        assert ledger.statistics().total == 6
    with Ledger.open(path, clock=clock) as reopened:
        assert reopened.statistics() == expected


def test_a_batch_finds_its_keys_through_the_primary_key_not_by_scanning_the_ledger(
    ledger: Ledger,
) -> None:
    # A scan made every batch cost as much as the whole ledger: quadratic over a run.
    ledger.claim_many([Claim("console", f"kill:{n}", n) for n in range(50)])
    plans: list[str] = []
    with ledger._database.reading("trace") as db:
        statements: list[str] = []
        db.set_trace_callback(statements.append)
        try:
            ledger.claim_many([Claim("console", f"kill:{n}", n) for n in range(40, 60)])
            ledger.mark_sent_many([K("console", f"kill:{n}") for n in range(40, 60)])
            ledger.existing([K("console", "kill:1"), K("discord", "kill:1")])
        finally:
            db.set_trace_callback(None)
        for sql in statements:
            if "notifications" in sql and sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
                plan = db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
                plans += [str(row[3]) for row in plan]
    assert plans
    assert not [
        step
        for step in plans
        if step.startswith("SCAN") and "CONSTANT ROWS" not in step and not step.startswith("SCAN k")
    ]
    assert ledger.statistics().sent == 20


def test_pending_is_oldest_first_and_bounded(ledger: Ledger) -> None:
    for i in range(10):
        ledger.claim("discord", f"k{i}", i)
    assert [entry.notification for entry in ledger.pending(limit=3)] == ["k0", "k1", "k2"]


def test_prune_removes_old_finished_entries_but_never_pending_ones(
    ledger: Ledger, clock: FakeClock
) -> None:
    ledger.claim("discord", "old-sent", 1)
    ledger.mark_sent(K("discord", "old-sent"), "1")
    ledger.claim("discord", "old-pending", 2)
    clock.now += 1000
    ledger.claim("discord", "new-sent", 3)
    ledger.mark_sent(K("discord", "new-sent"), "3")
    assert ledger.prune(before=clock.now - 10) == 1
    assert ledger.get(K("discord", "old-sent")) is None
    assert ledger.get(K("discord", "old-pending")) is not None
    statistics = ledger.statistics()
    assert (statistics.pending, statistics.sent, statistics.failed) == (1, 1, 0)


def test_claims_are_committed_and_visible_to_the_journals_own_connection(
    ledger: Ledger, path: Path
) -> None:
    journal = sqlite3.connect(path, isolation_level=None)
    try:
        journal.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body BLOB)")
        journal.execute("BEGIN")
        journal.execute("SELECT COUNT(*) FROM events").fetchone()
        ledger.claim("discord", "k", 1)
        journal.execute("COMMIT")
        (mode,) = journal.execute("PRAGMA journal_mode").fetchone()
        (state,) = journal.execute(
            "SELECT state FROM notifications WHERE notification = 'k'"
        ).fetchone()
        assert (mode, state) == ("wal", "pending")
    finally:
        journal.close()


def test_a_claim_waits_for_the_journals_write_transaction(path: Path) -> None:
    journal = sqlite3.connect(path, isolation_level=None)
    try:
        with Ledger.open(path, StorageSettings(busy_timeout_s=0.05)) as ledger:
            journal.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageBusyError, match="locked"):
                ledger.claim("discord", "k", 1)
            journal.execute("COMMIT")
            assert ledger.claim("discord", "k", 1) is not None
    finally:
        journal.close()


def test_a_foreign_notifications_table_is_refused(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notifications (key TEXT PRIMARY KEY, state TEXT)")
    connection.close()
    with pytest.raises(StorageCorruptError, match="lacks columns"):
        Ledger.open(path)


V1_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "ledger_v1.sqlite3"


@pytest.fixture
def v1_copy(tmp_path: Path) -> Path:
    """A copy of a ledger written by the code before routes (see tests/fixtures)."""
    copy = tmp_path / "journal.sqlite3"
    copy.write_bytes(V1_FIXTURE.read_bytes())
    return copy


def test_a_ledger_written_before_routes_is_migrated_with_every_row_kept(v1_copy: Path) -> None:
    with Ledger.open(v1_copy) as ledger:
        pending = ledger.pending()
        assert [entry.key for entry in pending] == [
            K("discord", "kill:1"),
            K("console", "rally:home:7"),
        ]
        resumed = pending[0]
        assert (resumed.seq, resumed.attempts) == (10, 1)
        assert resumed.last_error == "no answer within 10.0 s (ReadTimeout)"
        assert resumed.payload == b'{"embeds":[{"title":"Rifter destroyed in J100005"}]}'
        sent = ledger.get(K("discord", "kill:2"))
        assert sent is not None
        assert (sent.state, sent.discord_message_id) == (LedgerState.SENT, "1300000000000000002")
        failed = ledger.get(K("discord", "kill:3"))
        assert failed is not None
        assert failed.state is LedgerState.FAILED
        assert ledger.statistics().routes == {
            "console": RouteCounts(pending=1, sent=1),
            "discord": RouteCounts(pending=1, sent=1, failed=1),
        }


def test_a_migrated_pending_entry_keeps_its_nonce_which_the_new_formula_also_gives(
    v1_copy: Path,
) -> None:
    old = sqlite3.connect(v1_copy)
    (stored,) = old.execute(
        "SELECT nonce FROM notifications WHERE key = 'kill:1@discord'"
    ).fetchone()
    old.close()
    with Ledger.open(v1_copy) as ledger:
        entry = ledger.get(K("discord", "kill:1"))
        assert entry is not None
        assert entry.nonce == stored == nonce_for("discord", "kill:1")


def test_after_the_migration_replays_stay_refused_and_reopening_migrates_nothing(
    v1_copy: Path,
) -> None:
    with Ledger.open(v1_copy) as ledger:
        for key in ("kill:1", "kill:2", "kill:3"):
            assert ledger.claim("discord", key, 10) is None
        assert ledger.claim("console", "kill:1", 10) is None
        assert ledger.claim("kills", "kill:1", 10) is not None  # a new route's own entry
    with Ledger.open(v1_copy) as reopened:
        assert reopened.statistics().total == 6
    database = sqlite3.connect(v1_copy)
    try:
        version = database.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchone() == (SCHEMA_VERSION,)
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master")}
        assert "notifications_v1" not in tables
    finally:
        database.close()


def test_a_route_is_counted_apart_and_its_pending_entries_can_be_read_alone(
    ledger: Ledger,
) -> None:
    ledger.claim("kills", "kill:1", 1)
    ledger.claim("big", "kill:1", 1)
    ledger.claim("big", "kill:2", 2)
    ledger.mark_sent(K("big", "kill:1"), "9")
    assert [e.key for e in ledger.pending(routes={"big"})] == [K("big", "kill:2")]
    assert ledger.pending(routes=set()) == []
    assert ledger.statistics().routes == {
        "big": RouteCounts(pending=1, sent=1),
        "kills": RouteCounts(pending=1),
    }


def test_abandoning_a_route_fails_its_pending_entries_only(ledger: Ledger) -> None:
    ledger.claim("gone", "kill:1", 1)
    ledger.claim("gone", "kill:2", 2)
    ledger.mark_sent(K("gone", "kill:2"), "5")
    ledger.claim("kept", "kill:1", 1)
    assert ledger.abandon("gone", "route gone is no longer configured") == 1
    entry = ledger.get(K("gone", "kill:1"))
    assert entry is not None
    assert (entry.state, entry.attempts) == (LedgerState.FAILED, 0)
    assert ledger.statistics().routes["gone"] == RouteCounts(sent=1, failed=1)
    assert [e.key for e in ledger.pending()] == [K("kept", "kill:1")]


def test_the_last_ping_per_route_and_the_last_sign_of_life_survive_reopening(
    path: Path, clock: FakeClock
) -> None:
    with Ledger.open(path, clock=clock) as ledger:
        assert ledger.last_alive() is None
        ledger.claim("rally", "rally:1", 1, mentioned=True)
        clock.now += 60
        ledger.claim("rally", "rally:2", 2)
        ledger.claim("kills", "kill:1", 3)
        ledger.record_alive()
    with Ledger.open(path, clock=clock) as reopened:
        assert reopened.last_mentions() == {"rally": clock.now - 60}
        assert reopened.last_alive() == clock.now
        entry = reopened.get(K("rally", "rally:1"))
        assert entry is not None
        assert entry.mentioned


def test_whichever_owner_opens_an_old_file_first_migrates_it_and_reading_it_needs_no_migration(
    v1_copy: Path,
) -> None:
    with Database.open(v1_copy, read_only=True) as reader, reader.reading("test") as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
    with JournalStore.open(v1_copy) as journal:
        assert journal.last_seq() == 1
    with Ledger.open(v1_copy) as ledger:
        assert [entry.key for entry in ledger.pending()] == [
            K("discord", "kill:1"),
            K("console", "rally:home:7"),
        ]


def test_a_worker_outcome_waits_out_a_locked_database_and_is_recorded_once_free(
    path: Path,
) -> None:
    shared = SharedLedger()
    shared.open(Ledger.open(path, StorageSettings(busy_timeout_s=0.01)))
    with shared.held() as ledger:
        entry = ledger.claim("discord", "k", 1)
    assert entry is not None
    journal = sqlite3.connect(path, isolation_level=None)
    retries: list[int] = []
    recorded: list[bool] = []
    journal.execute("BEGIN IMMEDIATE")
    worker = threading.Thread(
        target=lambda: recorded.append(
            shared.record(
                lambda ledger: ledger.mark_sent(entry.key, "m1"),
                lambda _error, attempt: retries.append(attempt),
                random.Random(7).random,
            )
        )
    )
    worker.start()
    try:
        wait_for(lambda: len(retries) >= 2, timeout_s=10)
    finally:
        journal.execute("COMMIT")
        journal.close()
    worker.join(10)
    assert recorded == [True]
    with shared.held() as ledger:
        stored = ledger.get(entry.key)
    assert stored is not None
    assert (stored.state, stored.discord_message_id) == ("sent", "m1")
    assert retries[:2] == [0, 1]
    shared.close()


def test_a_worker_outcome_waiting_for_the_database_gives_up_when_the_ledger_closes(
    path: Path,
) -> None:
    shared = SharedLedger()
    shared.open(Ledger.open(path, StorageSettings(busy_timeout_s=0.01)))
    with shared.held() as ledger:
        entry = ledger.claim("discord", "k", 1)
    assert entry is not None
    journal = sqlite3.connect(path, isolation_level=None)
    journal.execute("BEGIN IMMEDIATE")
    retries: list[int] = []
    recorded: list[bool] = []
    worker = threading.Thread(
        target=lambda: recorded.append(
            shared.record(
                lambda ledger: ledger.mark_sent(entry.key, "m1"),
                lambda _error, attempt: retries.append(attempt),
                random.Random(7).random,
            )
        )
    )
    worker.start()
    try:
        wait_for(lambda: retries, timeout_s=10)
        shared.close()
        worker.join(10)
    finally:
        journal.execute("COMMIT")
        journal.close()
    assert recorded == [False]
    with Ledger.open(path) as ledger:
        stored = ledger.get(entry.key)
    assert stored is not None
    assert stored.state == "pending"  # resumed by the next start, with the same nonce
