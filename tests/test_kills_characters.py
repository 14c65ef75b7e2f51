"""Pilots anywhere: ``kills`` joined with the systems beside ``kills:characters`` joined
with the characters, against the loopback wanderer-kills server (which delivers what the
real one does), on real sockets."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.kills_source import JoinScope, child_spec, kills_connections
from actors.metrics import enabled_sources
from actors.protocol import Names
from app.system import source_children
from realtime.config import Config, MapConfig
from simulator.kills_server import KillsServer
from supervision import GetStatus, SupervisionTree
from tests.support.pipeline import Handled, checkpoint_reaches, ingest, pipeline
from tests.support.pipeline import config_for as pipeline_config
from tests.support.source_neighbours import (
    JournalLog,
    TrackingLog,
    Trees,
    journal_spec,
    tracking_spec,
)
from tests.support.source_neighbours import trees as start_trees
from tests.support.waiting import wait_for
from tests.test_kills_source import CHARACTER, OTHER_SYSTEM, SYSTEM, config_for, recent_kill

STRANGER = 2117000999


pytestmark = pytest.mark.kills_server(idle_timeout_s=10.0, close_timeout_s=0.5)


@pytest.fixture
def trees() -> Iterator[Trees]:
    yield from start_trees()


def start_both(
    trees: Trees, kills_server: KillsServer, journal: JournalLog, tracking: TrackingLog
) -> SupervisionTree:
    config = config_for(kills_server)
    connections = [
        child_spec(config, name=name, scope=scope, rand=random.Random(7).random,
                   tracking_retry_s=0.05)
        for name, scope in ((Names.KILLS, JoinScope.SYSTEMS),
                            (Names.KILLS_CHARACTERS, JoinScope.CHARACTERS))
    ]  # fmt: skip
    return trees.start([journal_spec(journal), tracking_spec(tracking), *connections])


def joined(tree: SupervisionTree, name: str, kills_server: KillsServer) -> dict[str, Any]:
    """The server's view of connection ``name`` once it is joined."""

    def look() -> dict[str, Any]:
        report = tree.registry.ask(name, GetStatus())
        port = int(report["socket"]["local_port"])
        try:
            connection = kills_server.statistics().connection(port)
        except KeyError:
            return {}
        return dataclasses.asdict(connection) if connection.joined else {}

    return wait_for(look, what=f"{name} joined")


def senders_of(journal: JournalLog, killmail_id: int) -> list[str]:
    return [
        ingest.sender
        for ingest in journal.ingests
        for event in ingest.events
        if event.data.get("killmail_id") == killmail_id
    ]


def kill_with(killmail_id: int, system_id: int, victim: int) -> dict[str, Any]:
    kill = recent_kill(killmail_id, system_id=system_id)
    kill["victim"]["character_id"] = victim
    return kill


def test_a_tracked_pilots_kill_outside_every_tracked_system_comes_on_the_characters_join(
    kills_server: KillsServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start_both(trees, kills_server, journal, TrackingLog([SYSTEM], [CHARACTER]))
    systems_join = joined(tree, Names.KILLS, kills_server)
    characters_join = joined(tree, Names.KILLS_CHARACTERS, kills_server)
    assert (systems_join["systems"], systems_join["characters"]) == ({SYSTEM}, set())
    assert (characters_join["systems"], characters_join["characters"]) == (set(), {CHARACTER})

    assert kills_server.publish(kill_with(801, OTHER_SYSTEM, CHARACTER)) == 1
    wait_for(lambda: senders_of(journal, 801), what="the pilot's kill anywhere")
    assert set(senders_of(journal, 801)) == {Names.KILLS_CHARACTERS}

    assert kills_server.publish(kill_with(802, OTHER_SYSTEM, STRANGER)) == 0


def test_a_kill_both_joins_receive_is_an_ordinary_duplicate(
    kills_server: KillsServer, trees: Trees, tmp_path: Path
) -> None:
    journal = JournalLog()
    tree = start_both(trees, kills_server, journal, TrackingLog([SYSTEM], [CHARACTER]))
    joined(tree, Names.KILLS, kills_server)
    joined(tree, Names.KILLS_CHARACTERS, kills_server)
    assert kills_server.publish(kill_with(803, SYSTEM, CHARACTER)) == 2
    wait_for(
        lambda: {Names.KILLS, Names.KILLS_CHARACTERS} <= set(senders_of(journal, 803)),
        what="the kill on both connections",
    )
    both = [e for i in journal.ingests for e in i.events if e.data.get("killmail_id") == 803]
    assert len({event.key for event in both}) == 1
    handled = Handled()
    with pipeline(pipeline_config(tmp_path), handled) as pipe:
        ingest(pipe, *both)
        wait_for(checkpoint_reaches(pipe, len(both)))
        assert [e.data["killmail_id"] for e in handled.seen(Names.NOTIFIER)] == [803]


def test_the_first_characters_rejoin_a_characters_join_that_listened_nowhere(
    kills_server: KillsServer, trees: Trees
) -> None:
    journal, tracking = JournalLog(), TrackingLog([SYSTEM], [])
    tree = start_both(trees, kills_server, journal, tracking)
    assert joined(tree, Names.KILLS_CHARACTERS, kills_server)["joins"] == 1
    tree.registry.tell(Names.KILLS_CHARACTERS, tracking.set([SYSTEM], [CHARACTER]))
    wait_for(
        lambda: joined(tree, Names.KILLS_CHARACTERS, kills_server)["joins"] == 2,
        what="a re-join with the characters",
    )
    assert kills_server.publish(kill_with(804, OTHER_SYSTEM, CHARACTER)) == 1
    wait_for(lambda: senders_of(journal, 804) == [Names.KILLS_CHARACTERS] * 2)


def test_the_journal_gives_a_refused_batch_back_to_the_connection_that_sent_it(
    kills_server: KillsServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start_both(trees, kills_server, journal, TrackingLog([SYSTEM], [CHARACTER]))
    joined(tree, Names.KILLS, kills_server)
    joined(tree, Names.KILLS_CHARACTERS, kills_server)
    journal.refusing.set()
    kills_server.publish(kill_with(805, OTHER_SYSTEM, CHARACTER))
    wait_for(lambda: journal.refused, what="a refusal")

    def refusals(name: str) -> int:
        return int(tree.registry.ask(name, GetStatus())["journal"]["refused_total"])

    wait_for(lambda: refusals(Names.KILLS_CHARACTERS) >= 1, what="kills:characters holds it")
    assert refusals(Names.KILLS) == 0
    journal.refusing.clear()
    wait_for(lambda: senders_of(journal, 805), what="resent once the journal takes it")
    assert set(senders_of(journal, 805)) == {Names.KILLS_CHARACTERS}


def test_the_characters_join_runs_beside_the_systems_join_whenever_maps_are_configured() -> None:
    with_maps = dataclasses.replace(Config(), maps=(MapConfig(slug="home"),))
    assert kills_connections(with_maps) == [
        (Names.KILLS, JoinScope.SYSTEMS),
        (Names.KILLS_CHARACTERS, JoinScope.CHARACTERS),
    ]
    assert enabled_sources(with_maps) == [Names.KILLS, Names.KILLS_CHARACTERS, "map:home"]
    assert [spec.name for spec in source_children(with_maps)] == enabled_sources(with_maps)
    assert kills_connections(Config()) == [(Names.KILLS, JoinScope.SYSTEMS)]
