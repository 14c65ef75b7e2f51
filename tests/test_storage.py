"""The journal database file: one way to open it, one layout, classified errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from realtime.journal_store import JournalStore
from realtime.ledger import Claim, Ledger, LedgerKey
from realtime.schema import TABLES
from realtime.storage import (
    Database,
    StorageBusyError,
    StorageCorruptError,
    StorageFullError,
    StorageSettings,
    StorageUnavailableError,
)
from realtime.tracking_store import TrackingStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.sqlite3"


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:
        return {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_whichever_owner_opens_a_new_file_first_creates_every_table(path: Path) -> None:
    for opener in (Ledger.open, TrackingStore.open, JournalStore.open):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        opener(path).close()
        assert tables(path) == {table.name for table in TABLES}, opener


def test_a_file_holding_only_the_ledgers_table_is_completed_into_a_journal(path: Path) -> None:
    # What `replay --notify` made of a fresh data dir before: the daemon refused it.
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as raw:
        notifications = next(t for t in TABLES if t.name == "notifications")
        for statement in notifications.statements:
            raw.execute(statement)
    with Ledger.open(path) as ledger:
        assert ledger.claim("discord", "kill:1", 1) is not None
    with JournalStore.open(path) as journal:
        assert journal.last_seq() == 0
    with Ledger.open(path) as ledger:
        assert ledger.statistics().pending == 1


def test_a_foreign_database_is_refused_by_every_owner_and_left_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE notes (body TEXT)")
    before = path.read_bytes()
    for opener in (Ledger.open, TrackingStore.open, JournalStore.open):
        with pytest.raises(StorageCorruptError, match=r"not a journal database \(tables: notes\)"):
            opener(path)
    assert path.read_bytes() == before


def test_every_connection_runs_in_wal_mode_with_the_same_pragmas(path: Path) -> None:
    settings = StorageSettings(busy_timeout_s=0.25, max_db_bytes=1 << 20)
    with Database.open(path, settings) as first, Database.open(path, settings) as second:
        for database in (first, second):
            with database.reading("pragmas") as db:
                assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
                assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 250
                page_size = db.execute("PRAGMA page_size").fetchone()[0]
                assert db.execute("PRAGMA max_page_count").fetchone()[0] == (1 << 20) // page_size


def test_the_size_cap_binds_the_ledger_too_and_a_full_write_changes_nothing(path: Path) -> None:
    settings = StorageSettings(max_db_bytes=128 * 1024)
    with Ledger.open(path, settings) as ledger:
        claimed = 0
        full: StorageFullError | None = None
        while full is None and claimed < 1000:
            try:
                ledger.claim_many([Claim("discord", f"kill:{claimed}", 0, b"x" * 4000)])
                claimed += 1
            except StorageFullError as error:
                full = error
        assert full is not None
        assert "database or disk is full" in str(full)
        assert ledger.statistics().pending == claimed
        assert ledger.get(LedgerKey("discord", f"kill:{claimed}")) is None


def test_a_lock_held_past_the_busy_timeout_is_classified_busy(path: Path) -> None:
    with TrackingStore.open(path, StorageSettings(busy_timeout_s=0.05)) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageBusyError, match="database is locked"):
                store.save({"demo": ({1: "A"}, {})})
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        store.save({"demo": ({1: "A"}, {})})
        assert store.load() == {"demo": ({1: "A"}, {})}


def test_a_read_only_connection_is_classified_unavailable_on_writes(path: Path) -> None:
    Database.open(path).close()
    with (
        Database.open(path, read_only=True) as reader,
        pytest.raises(StorageUnavailableError, match="readonly") as raised,
        reader.transaction("write") as db,
    ):
        db.execute("INSERT INTO meta (key, value) VALUES ('x', 1)")
    assert not isinstance(raised.value, StorageBusyError | StorageFullError)


def test_a_bug_in_the_sql_is_not_classified(path: Path) -> None:
    with (
        Database.open(path) as database,
        pytest.raises(sqlite3.OperationalError),
        database.reading("select") as db,
    ):
        db.execute("SELECT nothing FROM nowhere")
