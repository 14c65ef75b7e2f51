"""The journal actor under storage faults: a full disk, a corrupt database."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

from actors.base import ReportingActor
from actors.protocol import IngestRefused, Names
from realtime.event import Event
from supervision import ActorContext, ChildSpec, MailboxSpec
from tests.pipeline_support import (
    Handled,
    config_for,
    ingest,
    journal_status,
    kill_event,
    pipeline,
)
from tests.process import ROOT
from tests.support import wait_for


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
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "could not start" in result.stderr
    assert str(journal_file) in result.stderr
    assert journal_file.read_bytes() == before
