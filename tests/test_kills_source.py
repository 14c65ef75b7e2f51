"""The ``kills`` source actor against the loopback wanderer-kills server, on real sockets."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from actors.kills_source import child_spec
from actors.protocol import Names
from realtime.config import Config, KillsSourceConfig, SourcesConfig
from realtime.event import format_time
from simulator.kills_server import KillsServer
from supervision import ChildSpec, GetStatus, SupervisionTree
from tests.support.phoenix import killmail
from tests.support.source_neighbours import (
    JournalLog,
    TrackingLog,
    Trees,
    journal_spec,
    tracking_spec,
)
from tests.support.source_neighbours import trees as start_trees
from tests.support.waiting import wait_for

SYSTEM = 31000005
OTHER_SYSTEM = 30000142
THIRD_SYSTEM = 31000123
CHARACTER = 2117000001
OTHER_CHARACTER = 2117000999
INTERVAL_S = 0.2
TIMEOUT_S = 0.6


pytestmark = pytest.mark.kills_server(idle_timeout_s=10.0, close_timeout_s=0.5)


@pytest.fixture
def trees() -> Iterator[Trees]:
    yield from start_trees()


def config_for(kills_server: KillsServer, **overrides: Any) -> Config:
    settings = KillsSourceConfig(
        url=kills_server.url,
        heartbeat_interval_s=INTERVAL_S,
        heartbeat_timeout_s=TIMEOUT_S,
        reconnect_min_s=0.05,
        reconnect_max_s=0.4,
        circuit_failures=100,
        circuit_open_s=1.0,
    )
    settings = dataclasses.replace(settings, **overrides)
    sources = SourcesConfig(kills=settings, resend_min_s=0.05, resend_max_s=0.2)
    return dataclasses.replace(Config(), sources=sources)


def kills(config: Config, **options: Any) -> ChildSpec:
    options.setdefault("rand", random.Random(7).random)
    options.setdefault("tracking_retry_s", 0.05)
    return child_spec(config, **options)


def status(tree: SupervisionTree) -> dict[str, Any]:
    answer = tree.registry.ask(Names.KILLS, GetStatus())
    assert isinstance(answer, dict)
    return answer


def status_when(
    tree: SupervisionTree, condition: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The first status report that meets ``condition``."""
    reports: list[dict[str, Any]] = []

    def met() -> bool:
        report = status(tree)
        reports.append(report)
        return condition(report)

    wait_for(met, what=what)
    return reports[-1]


def state(tree: SupervisionTree) -> str:
    return str(status(tree)["connection"]["state"])


def joined_port(tree: SupervisionTree, kills_server: KillsServer) -> int:
    """The client port of the kills source's joined connection, once there is one."""

    def joined() -> int:
        report = status(tree)
        port = int(report["socket"]["local_port"])
        if report["connection"]["state"] not in ("connected", "degraded"):
            return 0
        try:
            return port if kills_server.statistics().connection(port).joined else 0
        except KeyError:
            return 0

    return wait_for(joined, what="the kills source joined")


def recent_kill(killmail_id: int, system_id: int = SYSTEM, **fields: Any) -> dict[str, Any]:
    fields.setdefault("kill_time", format_time(time.time() - 60))
    return killmail(killmail_id, system_id=system_id, **fields)


def start(
    trees: Trees,
    kills_server: KillsServer,
    journal: JournalLog,
    tracking: TrackingLog | None,
    **options: Any,
) -> SupervisionTree:
    overrides = options.pop("settings", {})
    children = [journal_spec(journal)]
    if tracking is not None:
        children.append(tracking_spec(tracking))
    children.append(kills(config_for(kills_server, **overrides), **options))
    return trees.start(children)


def test_join_carries_tracked_systems_and_characters_but_never_an_invalid_id(
    kills_server: KillsServer, trees: Trees
) -> None:
    tracking = TrackingLog([SYSTEM, OTHER_SYSTEM, 0, 60_000_000], [CHARACTER, 42])
    tree = start(trees, kills_server, JournalLog(), tracking)
    port = joined_port(tree, kills_server)
    connection = kills_server.statistics().connection(port)
    assert connection.systems == {SYSTEM, OTHER_SYSTEM}
    assert connection.characters == {CHARACTER}
    stats = kills_server.statistics()
    assert (stats.joins_ok, stats.joins_error) == (1, 0)
    assert status(tree)["subscription"]["dropped_ids"] == {
        "invalid_system_ids": 2,
        "invalid_character_ids": 1,
    }


def test_the_join_carries_at_most_max_systems_ids_and_counts_the_ones_left_out(
    kills_server: KillsServer, trees: Trees
) -> None:
    tracking = TrackingLog([SYSTEM, OTHER_SYSTEM], [CHARACTER])
    tree = start(trees, kills_server, JournalLog(), tracking, settings={"max_systems": 1})
    port = joined_port(tree, kills_server)
    assert kills_server.statistics().connection(port).systems == {min(SYSTEM, OTHER_SYSTEM)}
    assert status(tree)["subscription"]["dropped_ids"] == {"excess_system_ids": 1}


def test_subscription_follows_tracking_changes_without_rejoining(
    kills_server: KillsServer, trees: Trees
) -> None:
    tracking = TrackingLog([SYSTEM], [CHARACTER])
    tree = start(trees, kills_server, JournalLog(), tracking)
    port = joined_port(tree, kills_server)
    tree.registry.tell(Names.KILLS, tracking.set([OTHER_SYSTEM, THIRD_SYSTEM], [OTHER_CHARACTER]))
    wait_for(
        lambda: (
            kills_server.statistics().connection(port).systems == {OTHER_SYSTEM, THIRD_SYSTEM}
            and kills_server.statistics().connection(port).characters == {OTHER_CHARACTER}
        ),
        what="the server's subscription follows tracking",
    )
    connection = kills_server.statistics().connection(port)
    assert connection.joins == 1
    assert connection.subscription_updates == 4  # unsubscribe and subscribe, of each kind
    assert kills_server.statistics().connections_accepted == 1


def test_tracking_that_starts_late_is_asked_again_and_followed_without_rejoining(
    kills_server: KillsServer, trees: Trees
) -> None:
    tracking = TrackingLog([SYSTEM], [CHARACTER], answering=False)
    tree = start(trees, kills_server, JournalLog(), tracking, tracking_grace_s=0.1)
    port = joined_port(tree, kills_server)
    assert kills_server.statistics().connection(port).systems == set()
    tracking.answering.set()
    wait_for(
        lambda: kills_server.statistics().connection(port).systems == {SYSTEM}, what="late tracking"
    )
    assert kills_server.statistics().connection(port).joins == 1
    assert status(tree)["subscription"]["tracking_known"] is True


def test_heartbeat_and_ping_round_trips_are_measured_from_their_replies(
    kills_server: KillsServer, trees: Trees
) -> None:
    tree = start(trees, kills_server, JournalLog(), TrackingLog([SYSTEM]))
    port = joined_port(tree, kills_server)
    report = status_when(
        tree,
        lambda r: r["phoenix"]["heartbeat_replies"] >= 2 and r["socket"]["ping_rtt_ms"] is not None,
        "heartbeat and ping replies",
    )
    assert 0 < report["phoenix"]["last_rtt_s"] < 0.1
    assert 0 < report["socket"]["ping_rtt_ms"] < 100
    assert 0 < report["connection"]["rtt_ms"] < 100
    assert kills_server.statistics().connection(port).heartbeats >= 2


def test_half_open_connection_is_detected_within_the_heartbeat_timeout_and_recovered(
    kills_server: KillsServer, trees: Trees
) -> None:
    tree = start(trees, kills_server, JournalLog(), TrackingLog([SYSTEM]))
    first = joined_port(tree, kills_server)
    kills_server.set_half_open(True)
    went_silent = time.monotonic()
    wait_for(
        lambda: state(tree) not in ("connected", "degraded"),
        timeout_s=TIMEOUT_S + 1.0,
        interval_s=0.005,
        what="half-open detected",
    )
    detected_after = time.monotonic() - went_silent
    assert detected_after <= TIMEOUT_S + 1.0
    errors = status(tree)["connection"]["errors"]
    assert errors.get("heartbeat_timeout", 0) + errors.get("silent", 0) >= 1
    kills_server.set_half_open(False)
    second = joined_port(tree, kills_server)
    assert second != first
    assert status(tree)["connection"]["reconnects"] >= 1


def test_abrupt_drops_are_recovered_with_a_growing_backoff(
    kills_server: KillsServer, trees: Trees
) -> None:
    tree = start(trees, kills_server, JournalLog(), TrackingLog([SYSTEM]), stable_s=60.0)
    ports = [joined_port(tree, kills_server)]
    for drop in range(1, 4):
        assert kills_server.drop_all() == 1
        wait_for(
            lambda: joined_port(tree, kills_server) not in ports, what=f"rejoined after drop {drop}"
        )
        ports.append(joined_port(tree, kills_server))
        assert status(tree)["reconnect"]["attempt"] == drop
    report = status(tree)
    assert report["connection"]["reconnects"] == 3
    assert report["reconnect"]["resets"] == 0
    assert kills_server.statistics().joins_ok == 4


def test_preload_replays_are_flagged_and_live_kills_are_not(
    kills_server: KillsServer, trees: Trees
) -> None:
    kills_server.publish_many([recent_kill(9000 + n) for n in range(3)])
    journal = JournalLog()
    tree = start(trees, kills_server, journal, TrackingLog([SYSTEM]))
    joined_port(tree, kills_server)
    wait_for(lambda: len(journal.events) == 3, what="the preload")
    assert all(event.data["preload"] is True for event in journal.events)
    kills_server.publish(recent_kill(9100))
    wait_for(lambda: len(journal.events) == 5, what="the live kill, pushed twice")
    live = journal.events[3:]
    assert {event.id for event in live} == {"9100"}
    assert all(event.data["preload"] is False for event in live)
    assert {event.key for event in live} == {"killmail:9100"}


GARBAGE: list[tuple[str | bytes, str]] = [
    ("{not json", "invalid_json"),
    (b"\x00\xff\xfe", "binary_frame"),
    ("[1, 2, 3]", "not_an_object"),
    ('{"topic": "killmails:lobby", "event": 5, "payload": {}, "ref": null}', "invalid_frame"),
    ('{"topic": "elsewhere", "event": "x", "payload": {}, "ref": null}', "unknown_topic"),
    ('{"topic": "killmails:lobby", "event": "what", "payload": {}, "ref": null}', "unknown_event"),
    ("[" * 200 + "]" * 200, "too_deep"),
    ("x" * 70_000, "frame_too_large"),
]


def _push(event: str, payload: object) -> str:
    return orjson.dumps(
        {"topic": "killmails:lobby", "event": event, "payload": payload, "ref": None}
    ).decode()


def test_garbage_frames_of_every_kind_are_rejected_with_reasons_and_the_connection_goes_on(
    kills_server: KillsServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start(
        trees, kills_server, journal, TrackingLog([SYSTEM]), settings={"max_frame_bytes": 65536}
    )
    port = joined_port(tree, kills_server)
    frames = [
        *GARBAGE,
        (_push("killmail_update", {"system_id": SYSTEM, "killmails": 7}), "invalid_payload"),
        (
            _push("killmail_update", {"system_id": SYSTEM, "killmails": [{"victim": {}}]}),
            "missing_killmail_id",
        ),
        (
            _push("killmail_update", {"killmails": [recent_kill(5, kill_time="yesterday")]}),
            "invalid_kill_time",
        ),
        (_push("kill_count_update", {"system_id": SYSTEM, "count": "many"}), "invalid_payload"),
    ]
    for frame, _reason in frames:
        assert kills_server.send_raw(frame) == 1
    expected = {reason for _frame, reason in frames}
    wait_for(lambda: journal.reject_reasons() == expected, what="every garbage frame rejected")
    kills_server.publish(recent_kill(777))
    wait_for(
        lambda: any(event.id == "777" for event in journal.events), what="a kill after garbage"
    )
    report = status(tree)
    assert sum(report["rejects"].values()) == len(frames)
    assert report["rejects"]["invalid_payload"] == 2
    assert kills_server.statistics().connections_accepted == 1
    assert kills_server.statistics().connection(port).joins == 1
    raw = next(r.raw for r in journal.rejects if r.reason == "binary_frame")
    assert raw == b"\x00\xff\xfe"


def test_server_restart_on_the_same_port_is_recovered(
    kills_server: KillsServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start(trees, kills_server, journal, TrackingLog([SYSTEM]))
    first = joined_port(tree, kills_server)
    kills_server.restart(down_s=0.3)
    second = joined_port(tree, kills_server)
    assert second != first
    kills_server.publish(recent_kill(4242))
    wait_for(lambda: any(event.id == "4242" for event in journal.events), what="a kill after")
    errors = status(tree)["connection"]["errors"]
    assert errors.get("connection_lost", 0) >= 1


def test_an_unreachable_server_opens_the_circuit_and_a_later_probe_recovers(
    kills_server: KillsServer, trees: Trees
) -> None:
    tree = start(
        trees,
        kills_server,
        JournalLog(),
        TrackingLog([SYSTEM]),
        settings={"circuit_failures": 3, "circuit_open_s": 0.3},
    )
    joined_port(tree, kills_server)
    restarting = threading.Thread(target=kills_server.restart, kwargs={"down_s": 1.0})
    restarting.start()
    try:
        report = status_when(tree, lambda r: r["connection"]["state"] == "failed", "circuit open")
        assert report["reconnect"]["circuit"] == "open"
        assert report["connection"]["quality"]["score"] == 0
    finally:
        restarting.join()
    joined_port(tree, kills_server)
    assert status(tree)["reconnect"]["circuit"] == "closed"


def test_refused_batches_are_held_and_resent_once_the_journal_takes_them(
    kills_server: KillsServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start(trees, kills_server, journal, TrackingLog([SYSTEM]))
    joined_port(tree, kills_server)
    journal.refusing.set()
    kills_server.publish(recent_kill(31))
    wait_for(lambda: status(tree)["journal"]["size"] >= 1, what="a batch held")
    assert journal.events == []
    journal.refusing.clear()
    kills_server.publish(recent_kill(32))
    wait_for(
        lambda: {event.id for event in journal.events} == {"31", "32"},
        what="held and new batches journaled",
    )
    report = status_when(tree, lambda r: r["journal"]["gate"]["open"] is True, "the gate reopened")
    assert report["journal"]["size"] == 0
    assert report["journal"]["refused_total"] >= 1
    assert kills_server.statistics().connections_accepted == 1


def test_a_journal_that_falls_behind_slows_the_feed_and_nothing_is_dropped_or_reconnected(
    kills_server: KillsServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = trees.start(
        [
            journal_spec(journal, capacity=4),
            tracking_spec(TrackingLog([SYSTEM])),
            # One frame a batch: the frames fill the journal's mailbox of 4 batches.
            kills(config_for(kills_server), batch_max=1),
        ]
    )
    port = joined_port(tree, kills_server)
    journal.flowing.clear()
    try:
        published = [recent_kill(60_000 + n) for n in range(300)]
        kills_server.publish_many(published)
        status_when(
            tree,
            lambda r: r["journal"]["reading_paused_s"] > 3 * TIMEOUT_S,
            "the reader paused for longer than the heartbeat timeout",
        )
        # The pause the program chose is not a dead peer: its heartbeats go on.
        heartbeats = kills_server.statistics().connection(port).heartbeats
        wait_for(
            lambda: kills_server.statistics().connection(port).heartbeats >= heartbeats + 2,
            what="heartbeats while paused",
        )
        assert status(tree)["reconnect"]["failures"] == 0
    finally:
        journal.flowing.set()
    expected = [str(kill["killmail_id"]) for kill in published for _twice in range(2)]
    wait_for(lambda: len(journal.events) >= len(expected), what="every frame journaled")
    assert [event.id for event in journal.events] == expected
    report = status(tree)
    assert report["reconnect"]["failures"] == 0
    assert report["journal"]["gate"]["waits_total"] >= 1
    assert report["journal"]["held_total"] == 0
    assert kills_server.statistics().connections_accepted == 1
    assert kills_server.statistics().connection(port).joins == 1


def test_a_refusing_journal_pauses_reading_on_the_same_connection_until_it_takes_again(
    kills_server: KillsServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start(trees, kills_server, journal, TrackingLog([SYSTEM]))
    port = joined_port(tree, kills_server)
    journal.refusing.set()
    kills_server.publish(recent_kill(40))
    status_when(tree, lambda r: r["journal"]["gate"]["open"] is False, "the gate closed")
    kills_server.publish_many([recent_kill(41 + n) for n in range(3)])
    status_when(tree, lambda r: r["journal"]["gate"]["waiting"] == 1, "the reader waits")
    journal.refusing.clear()
    expected = [str(40 + n) for n in range(4) for _twice in range(2)]
    wait_for(lambda: [e.id for e in journal.events] == expected, what="everything, in order")
    assert kills_server.statistics().connections_accepted == 1
    assert kills_server.statistics().connection(port).joins == 1


def test_stopping_closes_the_socket_and_ends_the_reader_thread(
    kills_server: KillsServer, trees: Trees
) -> None:
    tree = start(trees, kills_server, JournalLog(), TrackingLog([SYSTEM]))
    joined_port(tree, kills_server)
    tree.stop()
    wait_for(
        lambda: kills_server.statistics().connections_current == 0, what="the server sees the close"
    )
    assert not [t for t in threading.enumerate() if t.name.startswith("kills-reader")]
