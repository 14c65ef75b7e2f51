"""The journal actor under storage faults: a full disk, a corrupt database."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actors.base import ReportingActor
from actors.protocol import IngestRefused, Names
from realtime.event import Event
from supervision import (
    ActorContext,
    ActorUnavailableError,
    ChildSpec,
    MailboxSpec,
    SupervisionTree,
)
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
from tests.support.process import run_cli
from tests.support.waiting import wait_for


def killmail_ids(events: Sequence[Event]) -> list[int]:
    return [int(e.data["killmail_id"]) for e in events]


def big_kill(killmail_id: int) -> Event:
    event = kill_event(killmail_id)
    return dataclasses.replace(event, data={**event.data, "padding": "x" * 4000})


def test_a_full_disk_is_reported_holds_ingest_and_recovers_when_space_returns(
    tmp_path: Path,
) -> None:
    config = config_for(
        tmp_path, {"journal": {"max_db_mb": 0.25, "retention_days": 2e-5, "purge_every_s": 0.2}}
    )
    handled = Handled()
    with pipeline(config, handled) as tree:
        killmail_id = 0
        while journal_status(tree)["error"] is None:
            killmail_id += 1
            ingest(tree, big_kill(killmail_id))
            assert killmail_id < 500, "the database never filled"
        status = journal_status(tree)
        assert "full" in status["error"]
        held = status["pending"]
        assert held >= 1
        # Space returns: everything handled so far is purged by retention.
        wait_for(lambda: journal_status(tree)["error"] is None, timeout_s=30)
        wait_for(lambda: journal_status(tree)["last_seq"] == killmail_id, timeout_s=10)
        wait_for(lambda: len(handled.seen(Names.NOTIFIER)) == killmail_id, timeout_s=10)


def journal_restarts(tree: SupervisionTree) -> int:
    return next(node.restarts for node in tree.snapshot().walk() if node.name == Names.JOURNAL)


def test_a_locked_database_holds_everything_without_a_restart_and_resumes_when_released(
    tmp_path: Path,
) -> None:
    config = config_for(
        tmp_path, {"journal": {"busy_timeout_s": 0.02, "retry_min_s": 0.02, "retry_max_s": 0.1}}
    )
    handled = Handled()
    handled.gated.add(Names.NOTIFIER)
    with pipeline(config, handled) as tree:
        # An ignored event is settled (and its outcome written) after its batch's kill.
        ingest(tree, kill_event(1), map_event("signature_added", "01JB", {}))
        wait_for(lambda: journal_status(tree)["last_seq"] == 2)
        holder = sqlite3.connect(tmp_path / "data" / "journal.sqlite3", isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            handled.gate.set()
            ingest(tree, kill_event(2))
            wait_for(lambda: journal_status(tree)["unwritten_outcomes"] == 1)
            status = journal_status(tree)
            assert "database is locked" in status["error"]
            assert status["pending"] == 1
            assert journal_restarts(tree) == 0
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        wait_for(checkpoint_reaches(tree, 3), timeout_s=10)
        wait_for(lambda: journal_status(tree)["error"] is None)
        status = journal_status(tree)
        assert status["outcomes"]["ignored"] == 1
        assert status["unwritten_outcomes"] == 0
        assert killmail_ids(handled.seen(Names.NOTIFIER)) == [1, 2]
        assert journal_restarts(tree) == 0


def test_a_journal_that_cannot_open_its_database_retries_without_a_restart(
    tmp_path: Path,
) -> None:
    config = config_for(
        tmp_path, {"journal": {"busy_timeout_s": 0.02, "retry_min_s": 0.02, "retry_max_s": 0.1}}
    )
    database = tmp_path / "data" / "journal.sqlite3"
    database.parent.mkdir(parents=True)
    holder = sqlite3.connect(database, isolation_level=None)
    handled = Handled()
    try:
        holder.execute("BEGIN EXCLUSIVE")  # a new file: creating its tables must wait
        with pipeline(config, handled) as tree:
            ingest(tree, kill_event(1))
            wait_for(lambda: journal_status(tree)["error"] is not None)
            assert journal_status(tree)["pending"] == 1
            holder.execute("ROLLBACK")
            wait_for(checkpoint_reaches(tree, 1), timeout_s=10)
            assert killmail_ids(handled.seen(Names.NOTIFIER)) == [1]
            assert journal_restarts(tree) == 0
    finally:
        holder.close()


def test_an_event_whose_data_cannot_be_stored_becomes_a_reject_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    data: dict[str, Any] = {"leaf": 1}
    for _ in range(1100):  # deeper than msgpack packs
        data = {"inner": data}
    unstorable = dataclasses.replace(kill_event(1), data=data)
    handled = Handled()
    with pipeline(config_for(tmp_path), handled) as tree:
        ingest(tree, unstorable, kill_event(2))
        wait_for(checkpoint_reaches(tree, 1))
        assert killmail_ids(handled.seen(Names.NOTIFIER)) == [2]
        assert journal_status(tree)["rejects"] == {"unstorable_event": 1}
        assert journal_restarts(tree) == 0


def test_a_writer_thread_that_fails_restarts_the_journal_and_its_ingest_is_committed_once(
    tmp_path: Path,
) -> None:
    # The journal restarts until the trigger is gone: slowly enough, and never given up on.
    restarts = {"backoff_min_s": 0.05, "backoff_max_s": 0.1, "max_restarts": 100_000}
    handled = Handled()
    with pipeline(config_for(tmp_path, {"supervision": restarts}), handled) as tree:
        ingest(tree, kill_event(1))
        wait_for(checkpoint_reaches(tree, 1))
        database = tmp_path / "data" / "journal.sqlite3"
        with sqlite3.connect(database, isolation_level=None) as raw:
            # Not a storage fault but an error nothing expects: the writer ends on it.
            raw.execute(
                "CREATE TRIGGER broken BEFORE INSERT ON events"
                " BEGIN SELECT RAISE(ABORT, 'injected'); END"
            )
        ingest(tree, kill_event(2))
        wait_for(lambda: journal_restarts(tree) >= 1, timeout_s=10)
        with sqlite3.connect(database, isolation_level=None) as raw:
            raw.execute("DROP TRIGGER broken")
        reached = checkpoint_reaches(tree, 2)

        def settled() -> bool:
            try:
                return reached()
            except ActorUnavailableError:  # between two incarnations
                return False

        wait_for(settled, timeout_s=10)
        # Redelivered after the restart perhaps (stages are idempotent), committed once.
        assert sorted(set(killmail_ids(handled.seen(Names.NOTIFIER)))) == [1, 2]
        assert journal_status(tree)["last_seq"] == 2


class _RefusalRecorder(ReportingActor):
    def __init__(self, ctx: ActorContext, refused: list[IngestRefused]) -> None:
        super().__init__(ctx)
        self.refused = refused

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, IngestRefused):
            self.refused.append(message)
            return None
        return super().on_receive(message)


def test_ingest_beyond_the_bound_is_refused_back_to_its_source_never_dropped(
    tmp_path: Path,
) -> None:
    from actors import journal
    from supervision import SupervisionTree, SupervisorSpec

    config = config_for(tmp_path, {"journal": {"max_db_mb": 0.1, "max_pending": 3}})
    refused: list[IngestRefused] = []
    spec = SupervisorSpec(
        "root",
        [
            journal.child_spec(config),
            ChildSpec(
                Names.KILLS,
                lambda ctx: _RefusalRecorder.start(ctx, refused),
                mailbox=MailboxSpec(100),
            ),
        ],
    )
    with SupervisionTree(spec) as tree:
        killmail_id = 0
        while journal_status(tree)["error"] is None:
            killmail_id += 1
            ingest(tree, big_kill(killmail_id))
            assert killmail_id < 500, "the database never filled"
        held = journal_status(tree)["pending"]
        while len(refused) < 2:
            killmail_id += 1
            ingest(tree, big_kill(killmail_id))
            # Each ingest ends up held in memory (up to the bound) or refused.
            wait_for(lambda: journal_status(tree)["pending"] + len(refused) > held)  # noqa: B023
            held = journal_status(tree)["pending"]
            assert held <= 3
            assert killmail_id < 600, "nothing was refused"
        status = journal_status(tree)
        refused_ids = {e.data["killmail_id"] for r in refused for e in r.ingest.events}
        # Every event is committed, held, or back with its source: none is lost.
        assert status["last_seq"] + status["pending"] + len(refused_ids) == killmail_id
        assert all(r.reason for r in refused)


def test_a_corrupt_journal_stops_the_start_with_a_clear_message_and_is_left_alone(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    journal_file = data / "journal.sqlite3"
    journal_file.write_bytes(b"this is not a database" * 100)
    before = journal_file.read_bytes()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[app]\ndata_dir = "{data}"\n[http]\nport = 0\n[simulator]\nenabled = false\n'
        "[sources.kills]\nenabled = false\n"
    )
    result = run_cli("--config", str(config))
    assert result.returncode == 1
    assert "could not start" in result.stderr
    assert str(journal_file) in result.stderr
    assert journal_file.read_bytes() == before
