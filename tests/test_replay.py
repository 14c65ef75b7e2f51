"""Replay and export: the journal read back through the same actors."""

from __future__ import annotations

import io
from pathlib import Path

from actors.protocol import Names
from app.replay import HandlerSpecs, Selection, read_journal, replay
from realtime.config import Config
from realtime.export import read_msgpack, write_msgpack
from realtime.journal_store import JournalStore
from supervision import GetStatus
from tests.support.pipeline import (
    Handled,
    checkpoint_reaches,
    config_for,
    handler_spec,
    ingest,
    kill_event,
    map_event,
    pipeline,
)
from tests.support.waiting import wait_for


def live_day(tmp_path: Path) -> tuple[Config, dict[str, int]]:
    """A small 'day': kills with duplicates, map changes, an unrouted type."""
    config = config_for(tmp_path)
    handled = Handled()
    with pipeline(config, handled) as tree:
        for killmail_id in range(1, 31):
            ingest(tree, kill_event(killmail_id), kill_event(killmail_id))
        ingest(tree, kill_event(5, source="map:demo"))
        ingest(tree, map_event("add_system", "01JA", {"solar_system_id": 31000005}))
        ingest(tree, map_event("signature_added", "01JB", {"solar_system_id": 31000005}))
        ingest(tree, map_event("rally_point_added", "01JC", {"rally_point_id": 1}))
        wait_for(checkpoint_reaches(tree, 64), timeout_s=20)
        decisions = dict(tree.registry.ask(Names.ROUTER, GetStatus(), 5)["decisions"])
    return config, decisions


def recording(handled: Handled) -> HandlerSpecs:
    return lambda _config: [
        handler_spec(Names.TRACKING, handled),
        handler_spec(Names.NOTIFIER, handled),
    ]


def test_replay_of_the_journal_makes_the_live_routing_decisions(tmp_path: Path) -> None:
    config, live = live_day(tmp_path)
    handled = Handled()
    events = read_journal(config.data_path / "journal.sqlite3", Selection())
    result = replay(config, events, recording(handled))
    assert result.events == 64
    assert result.decisions == live
    assert result.outcomes["duplicate"] == 31
    assert sorted(
        {e.data["killmail_id"] for e in handled.seen(Names.NOTIFIER) if "killmail_id" in e.data}
    ) == list(range(1, 31))


def test_replay_is_idempotent_replaying_twice_decides_the_same(tmp_path: Path) -> None:
    config, _ = live_day(tmp_path)
    path = config.data_path / "journal.sqlite3"
    first = replay(config, read_journal(path, Selection()), recording(Handled()))
    second = replay(config, read_journal(path, Selection()), recording(Handled()))
    assert first.decisions == second.decisions
    assert first.outcomes == second.outcomes


def test_replay_from_a_msgpack_export_decides_as_from_the_journal(tmp_path: Path) -> None:
    config, live = live_day(tmp_path)
    path = config.data_path / "journal.sqlite3"
    buffer = io.BytesIO()
    write_msgpack(read_journal(path, Selection()), buffer)
    buffer.seek(0)
    result = replay(config, read_msgpack(buffer), recording(Handled()))
    assert result.decisions == live


def test_journal_selection_filters_by_seq_type_source_and_limit(tmp_path: Path) -> None:
    config, _ = live_day(tmp_path)
    path = config.data_path / "journal.sqlite3"
    assert [e.seq for e in read_journal(path, Selection(since_seq=10, until_seq=12))] == [
        10,
        11,
        12,
    ]
    assert {e.type for e in read_journal(path, Selection(types=("add_system",)))} == {"add_system"}
    assert {e.source for e in read_journal(path, Selection(sources=("map:demo",)))} == {"map:demo"}
    assert len(list(read_journal(path, Selection(limit=7)))) == 7
    with JournalStore.open(path, read_only=True) as store:
        assert store.last_seq() == 64
