"""``run.py events`` and ``run.py replay`` on journals as they are: damaged, deep, missing."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

from realtime.export import write_msgpack
from realtime.journal_store import JournalStore
from tests.support.pipeline import kill_event
from tests.support.process import QUIET, run_cli, running, write_config
from tests.support.sockets import free_port

CONSOLE_ONLY = QUIET + '[notify]\nsinks = ["console"]\n'


def nested(depth: int) -> dict[str, Any]:
    data: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        data = {"inner": data}
    return data


def test_events_on_a_damaged_journal_exits_1_with_one_line_and_no_traceback(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, QUIET, free_port())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "journal.sqlite3").write_bytes(b"not a database at all\n" * 200)
    result = run_cli("events", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith("events: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_an_event_nested_deeper_than_json_allows_ends_the_export_with_one_line_naming_it(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, QUIET, free_port())
    deep = dataclasses.replace(kill_event(2), data=nested(300))
    with JournalStore.open(tmp_path / "data" / "journal.sqlite3") as store:
        store.append([kill_event(1), deep, kill_event(3)])
    result = run_cli("events", "--config", str(config))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1  # the event before it was written
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("events: event seq 2 ")
    after = run_cli("events", "--config", str(config), "--since", "3")
    assert after.returncode == 0
    assert len(after.stdout.splitlines()) == 1


def test_replay_notify_on_a_fresh_data_dir_leaves_a_journal_the_program_starts_on(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export.msgpack"
    buffer = io.BytesIO()
    write_msgpack([kill_event(1), kill_event(2)], buffer)
    export.write_bytes(buffer.getvalue())
    port = free_port()
    config = write_config(tmp_path, CONSOLE_ONLY, port)
    result = run_cli("replay", "--config", str(config), "--file", str(export), "--notify")
    assert result.returncode == 0, result.stderr
    with JournalStore.open(tmp_path / "data" / "journal.sqlite3") as store:
        assert store.last_seq() == 0
    with running(config, port) as instance:
        assert instance.process.poll() is None
