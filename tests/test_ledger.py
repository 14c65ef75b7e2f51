from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from realtime.ledger import (
    Ledger,
    LedgerState,
    LedgerStatistics,
    nonce_for,
)
from realtime.storage import StorageBusyError, StorageCorruptError, StorageSettings


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(path: Path, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger.open(path, clock=clock) as opened:
        yield opened


def test_a_key_is_claimed_once_and_a_replayed_claim_returns_none(ledger: Ledger) -> None:
    entry = ledger.claim("kill:1@discord", 10, "discord")
    assert entry is not None
    assert (entry.state, entry.attempts, entry.seq) == (LedgerState.PENDING, 0, 10)
    assert ledger.claim("kill:1@discord", 99, "discord") is None
    assert ledger.claim("kill:1@console", 10, "console") is not None


@pytest.mark.parametrize("final", ["sent", "failed"])
def test_replay_never_claims_a_finished_key_again(ledger: Ledger, final: str) -> None:
    ledger.claim("kill:1@discord", 10, "discord")
    if final == "sent":
        ledger.mark_sent("kill:1@discord", "111")
    else:
        ledger.mark_failed("kill:1@discord", "403 Missing Access")
    assert ledger.claim("kill:1@discord", 10, "discord") is None


def test_nonce_is_deterministic_short_and_differs_per_channel() -> None:
    nonce = nonce_for("kill:123456789", "discord")
    assert nonce == nonce_for("kill:123456789", "discord")
    assert len(nonce) <= 25
    assert nonce.isalnum()
    assert nonce != nonce_for("kill:123456789", "alerts")
    assert nonce != nonce_for("kill:123456780", "discord")


def test_pending_entry_is_resumed_with_the_same_nonce_after_reopening(
    path: Path, clock: FakeClock
) -> None:
    with Ledger.open(path, clock=clock) as first:
        claimed = first.claim("kill:1@discord", 10, "discord", b'{"embeds":[]}')
        first.claim("kill:2@discord", 11, "discord")
        first.mark_sent("kill:2@discord", "222")
        first.mark_attempt("kill:1@discord", "timeout")
    assert claimed is not None
    with Ledger.open(path, clock=clock) as second:
        [resumed] = second.pending()
        assert resumed.key == "kill:1@discord"
        assert resumed.nonce == claimed.nonce
        assert resumed.payload == b'{"embeds":[]}'
        assert (resumed.attempts, resumed.last_error) == (1, "timeout")
        assert second.claim("kill:1@discord", 10, "discord") is None


def test_attempts_and_outcomes_are_recorded(ledger: Ledger, clock: FakeClock) -> None:
    ledger.claim("k", 1, "discord")
    clock.now += 5
    assert ledger.mark_attempt("k", "503")
    assert ledger.mark_attempt("k", "timeout")
    assert ledger.mark_sent("k", "999")
    entry = ledger.get("k")
    assert entry is not None
    assert entry.state is LedgerState.SENT
    assert entry.attempts == 3
    assert entry.discord_message_id == "999"
    assert entry.last_error is None
    assert entry.updated_at == entry.created_at + 5


def test_only_pending_entries_change_state(ledger: Ledger) -> None:
    ledger.claim("k", 1, "discord")
    assert ledger.mark_sent("k", "1")
    assert not ledger.mark_sent("k", "2")
    assert not ledger.mark_failed("k", "late")
    assert not ledger.mark_attempt("k", "late")
    entry = ledger.get("k")
    assert entry is not None
    assert (entry.state, entry.discord_message_id, entry.attempts) == (LedgerState.SENT, "1", 1)


def test_marking_an_unclaimed_key_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(KeyError):
        ledger.mark_sent("never", "1")
    with pytest.raises(KeyError):
        ledger.mark_attempt("never", "x")
    assert ledger.get("never") is None


def test_errors_are_stored_bounded(ledger: Ledger) -> None:
    ledger.claim("k", 1, "discord")
    ledger.mark_failed("k", "x" * 100_000)
    entry = ledger.get("k")
    assert entry is not None
    assert entry.last_error is not None
    assert len(entry.last_error) == 1000


def test_statistics_count_entries_per_state_and_survive_reopening(
    path: Path, clock: FakeClock
) -> None:
    with Ledger.open(path, clock=clock) as ledger:
        for i in range(6):
            ledger.claim(f"k{i}", i, "discord")
        ledger.mark_sent("k0", "1")
        ledger.mark_sent("k1", "2")
        ledger.mark_failed("k2", "404")
        ledger.mark_attempt("k3", "timeout")
        ledger.claim("k0", 0, "discord")
        expected = LedgerStatistics(pending=3, sent=2, failed=1)
        assert ledger.statistics() == expected
        assert ledger.statistics().total == 6
    with Ledger.open(path, clock=clock) as reopened:
        assert reopened.statistics() == expected


def test_pending_is_oldest_first_and_bounded(ledger: Ledger) -> None:
    for i in range(10):
        ledger.claim(f"k{i}", i, "discord")
    assert [entry.key for entry in ledger.pending(limit=3)] == ["k0", "k1", "k2"]


def test_prune_removes_old_finished_entries_but_never_pending_ones(
    ledger: Ledger, clock: FakeClock
) -> None:
    ledger.claim("old-sent", 1, "discord")
    ledger.mark_sent("old-sent", "1")
    ledger.claim("old-pending", 2, "discord")
    clock.now += 1000
    ledger.claim("new-sent", 3, "discord")
    ledger.mark_sent("new-sent", "3")
    assert ledger.prune(before=clock.now - 10) == 1
    assert ledger.get("old-sent") is None
    assert ledger.get("old-pending") is not None
    assert ledger.statistics() == LedgerStatistics(pending=1, sent=1, failed=0)


def test_claims_are_committed_and_visible_to_the_journals_own_connection(
    ledger: Ledger, path: Path
) -> None:
    journal = sqlite3.connect(path, isolation_level=None)
    try:
        journal.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body BLOB)")
        journal.execute("BEGIN")
        journal.execute("SELECT COUNT(*) FROM events").fetchone()
        ledger.claim("k", 1, "discord")
        journal.execute("COMMIT")
        (mode,) = journal.execute("PRAGMA journal_mode").fetchone()
        (state,) = journal.execute("SELECT state FROM notifications WHERE key = 'k'").fetchone()
        assert (mode, state) == ("wal", "pending")
    finally:
        journal.close()


def test_a_claim_waits_for_the_journals_write_transaction(path: Path) -> None:
    journal = sqlite3.connect(path, isolation_level=None)
    try:
        with Ledger.open(path, StorageSettings(busy_timeout_s=0.05)) as ledger:
            journal.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageBusyError, match="locked"):
                ledger.claim("k", 1, "discord")
            journal.execute("COMMIT")
            assert ledger.claim("k", 1, "discord") is not None
    finally:
        journal.close()


def test_a_foreign_notifications_table_is_refused(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notifications (key TEXT PRIMARY KEY, state TEXT)")
    connection.close()
    with pytest.raises(StorageCorruptError, match="lacks columns"):
        Ledger.open(path)
