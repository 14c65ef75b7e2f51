"""The loopback wanderer-kills server speaks the real protocol to a raw Phoenix V1 client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from simulator.kills_server import KillsServer
from simulator.traffic import TrafficGenerator, iso_seconds
from tests.support.clocks import FakeClock
from tests.support.kills_probe import LOBBY, Probe

SYSTEM = 31000005
OTHER_SYSTEM = 30000142
PILOT = 2117000001

ProbeFactory = Callable[[], Probe]


pytestmark = pytest.mark.kills_server(idle_timeout_s=10.0, fake_clock=True)


@pytest.fixture
def connect(kills_server: KillsServer) -> Iterator[ProbeFactory]:
    probes: list[Probe] = []

    def open_probe() -> Probe:
        probe = Probe(kills_server.url + "?vsn=1.0.0")
        probes.append(probe)
        return probe

    yield open_probe
    for probe in probes:
        probe.close()


@pytest.fixture
def generator() -> TrafficGenerator:
    return TrafficGenerator(21, systems=[SYSTEM, OTHER_SYSTEM], characters=[PILOT])


def kill_in(
    generator: TrafficGenerator, clock: FakeClock, system: int, **kw: Any
) -> dict[str, Any]:
    return generator.killmail(clock(), system_id=system, **kw)


def is_event(event: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["event"] == event


def assert_silent(probe: Probe) -> None:
    """Nothing is queued for ``probe`` before a heartbeat's reply (the server answers in order)."""
    ref = probe.heartbeat()
    frame = probe.frame()
    assert (frame["event"], frame["ref"]) == ("phx_reply", ref), frame


def test_join_replies_ok_with_the_subscription(connect: ProbeFactory) -> None:
    probe = connect()
    ref = probe.join([SYSTEM, OTHER_SYSTEM, SYSTEM], [PILOT])
    reply = probe.reply(ref)
    assert reply["topic"] == LOBBY
    assert reply["payload"]["status"] == "ok"
    response = reply["payload"]["response"]
    assert response["subscribed_systems"] == [SYSTEM, OTHER_SYSTEM]
    assert response["subscribed_characters"] == [PILOT]
    assert response["status"] == "connected"
    assert response["subscription_id"]


@pytest.mark.parametrize(
    ("systems", "characters"),
    [
        ([SYSTEM, 0], []),
        ([SYSTEM, 50_000_001], []),
        ([SYSTEM, "30000142"], []),
        ([SYSTEM, 30000142.0], []),
        ([SYSTEM, True], []),
        ([SYSTEM], [PILOT, 89_999_999]),
        ([SYSTEM], [PILOT, 3_000_000_001]),
        (list(range(1, 10_002)), []),
    ],
)
def test_one_invalid_id_rejects_the_whole_join(
    kills_server: KillsServer, connect: ProbeFactory, systems: list[Any], characters: list[Any]
) -> None:
    probe = connect()
    reply = probe.reply(probe.join(systems, characters))
    assert reply["payload"]["status"] == "error"
    assert reply["payload"]["response"]["reason"]
    stats = kills_server.statistics()
    assert (stats.joins_ok, stats.joins_error) == (0, 1)
    assert not stats.connection(probe.local_port).joined


def test_boundary_ids_are_accepted(connect: ProbeFactory) -> None:
    response = connect().joined([1, 50_000_000], [90_000_000, 3_000_000_000])
    assert response["subscribed_systems"] == [1, 50_000_000]


def test_preload_after_join_replays_recent_kills_flagged_preload(
    kills_server: KillsServer, connect: ProbeFactory, generator: TrafficGenerator, clock: FakeClock
) -> None:
    in_system = [kill_in(generator, clock, SYSTEM) for _ in range(7)]
    other = [kill_in(generator, clock, OTHER_SYSTEM) for _ in range(2)]
    stale = kill_in(generator, clock, OTHER_SYSTEM)
    stale["kill_time"] = iso_seconds(clock() - 2 * 86_400)
    for kill in [*in_system, stale, *other]:
        kills_server.publish(kill)

    probe = connect()
    probe.reply(probe.join([SYSTEM, OTHER_SYSTEM, 31000999]))
    complete, preloads = probe.until(is_event("preload_complete"))

    by_system = {frame["payload"]["system_id"]: frame["payload"] for frame in preloads}
    assert all(frame["event"] == "killmail_update" for frame in preloads)
    assert all(payload["preload"] is True for payload in by_system.values())
    ids = {system: [k["killmail_id"] for k in p["killmails"]] for system, p in by_system.items()}
    assert ids == {
        SYSTEM: [k["killmail_id"] for k in in_system[-5:]],
        OTHER_SYSTEM: [k["killmail_id"] for k in other],
    }
    assert complete["payload"] == {"total_kills": 7, "systems_processed": 3, "errors": []}


def test_live_kill_is_pushed_twice_to_a_subscriber_and_never_to_others(
    kills_server: KillsServer, connect: ProbeFactory, generator: TrafficGenerator, clock: FakeClock
) -> None:
    subscriber, bystander = connect(), connect()
    subscriber.joined([SYSTEM])
    bystander.joined([OTHER_SYSTEM])
    kill = kill_in(generator, clock, SYSTEM)

    assert kills_server.publish(kill) == 1
    pushes = [subscriber.frame(), subscriber.frame()]
    for push in pushes:
        assert push["event"] == "killmail_update"
        assert push["ref"] is None
        assert push["payload"]["preload"] is False
        assert push["payload"]["system_id"] == SYSTEM
        assert push["payload"]["killmails"] == [kill]
    assert_silent(subscriber)
    assert_silent(bystander)


def test_live_kill_reaches_a_character_subscriber_whatever_the_system(
    kills_server: KillsServer, connect: ProbeFactory, generator: TrafficGenerator, clock: FakeClock
) -> None:
    probe = connect()
    probe.joined([], [PILOT])
    for _ in range(6):
        kill = kill_in(generator, clock, OTHER_SYSTEM, involving=PILOT)
        assert kills_server.publish(kill) == 1
        assert probe.frame()["payload"]["killmails"][0]["killmail_id"] == kill["killmail_id"]
        assert probe.frame()["payload"]["killmails"][0]["killmail_id"] == kill["killmail_id"]


def test_subscription_changes_without_rejoining(
    kills_server: KillsServer, connect: ProbeFactory, generator: TrafficGenerator, clock: FakeClock
) -> None:
    probe = connect()
    probe.joined([OTHER_SYSTEM])

    added = probe.reply(probe.send(LOBBY, "subscribe_systems", {"systems": [SYSTEM]}))
    assert added["payload"] == {
        "status": "ok",
        "response": {"subscribed_systems": sorted([SYSTEM, OTHER_SYSTEM])},
    }
    assert probe.frame()["event"] == "preload_complete"  # nothing to replay for SYSTEM
    assert kills_server.publish(kill_in(generator, clock, SYSTEM)) == 1
    assert probe.frame()["event"] == "killmail_update"
    assert probe.frame()["event"] == "killmail_update"

    removed = probe.reply(probe.send(LOBBY, "unsubscribe_systems", {"systems": [SYSTEM]}))
    assert removed["payload"]["response"] == {"subscribed_systems": [OTHER_SYSTEM]}
    assert kills_server.publish(kill_in(generator, clock, SYSTEM)) == 0

    probe.reply(probe.send(LOBBY, "subscribe_characters", {"character_ids": [PILOT]}))
    unchanged = probe.reply(probe.send(LOBBY, "subscribe_characters", {"character_ids": [PILOT]}))
    assert unchanged["payload"]["response"] == {
        "message": "Already subscribed to all requested characters"
    }
    connection = kills_server.statistics().connection(probe.local_port)
    assert connection.joins == 1
    assert connection.systems == {OTHER_SYSTEM}
    assert connection.characters == {PILOT}
    assert connection.subscription_updates == 4


def test_invalid_id_in_a_subscription_change_is_an_error_reply(connect: ProbeFactory) -> None:
    probe = connect()
    probe.joined([SYSTEM])
    reply = probe.reply(probe.send(LOBBY, "subscribe_systems", {"systems": [OTHER_SYSTEM, -1]}))
    assert reply["payload"]["status"] == "error"
    status = probe.reply(probe.send(LOBBY, "get_status", {}))
    assert status["payload"]["response"]["subscribed_systems"] == [SYSTEM]


def test_eleventh_subscription_update_within_a_minute_is_rejected(
    kills_server: KillsServer, connect: ProbeFactory, clock: FakeClock
) -> None:
    probe = connect()
    probe.joined([])
    for i in range(10):
        ref = probe.send(LOBBY, "subscribe_characters", {"character_ids": [PILOT + i]})
        assert probe.reply(ref)["payload"]["status"] == "ok"
        clock.advance(5.0)
    limited = probe.reply(probe.send(LOBBY, "subscribe_characters", {"character_ids": [PILOT]}))
    assert limited["payload"]["status"] == "error"
    assert "rate limited" in limited["payload"]["response"]["reason"]

    clock.advance(15.0)  # the first update is now more than a minute old
    allowed = probe.reply(probe.send(LOBBY, "subscribe_characters", {"character_ids": [PILOT]}))
    assert allowed["payload"]["status"] == "ok"
    stats = kills_server.statistics()
    assert (stats.subscription_updates, stats.subscription_updates_rate_limited) == (11, 1)


def test_heartbeat_reply_carries_the_same_ref_joined_or_not(
    kills_server: KillsServer, connect: ProbeFactory
) -> None:
    probe = connect()
    before = probe.heartbeat()
    assert probe.frame() == {
        "topic": "phoenix",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": before,
    }
    probe.joined([SYSTEM])
    refs = [probe.heartbeat() for _ in range(5)]
    assert [probe.frame()["ref"] for _ in refs] == refs
    assert kills_server.statistics().heartbeats_answered == 6


def test_get_status_reports_the_subscription(connect: ProbeFactory) -> None:
    probe = connect()
    subscription_id = probe.joined([SYSTEM], [PILOT])["subscription_id"]
    status = probe.reply(probe.send(LOBBY, "get_status", {}))["payload"]
    assert status["status"] == "ok"
    assert status["response"]["subscription_id"] == subscription_id
    assert status["response"]["subscribed_systems"] == [SYSTEM]
    assert status["response"]["subscribed_characters"] == [PILOT]


def test_rejoin_closes_the_old_channel_and_replays_the_preload(
    kills_server: KillsServer, connect: ProbeFactory, generator: TrafficGenerator, clock: FakeClock
) -> None:
    kills_server.publish(kill_in(generator, clock, SYSTEM))
    probe = connect()
    first_ref = probe.join([SYSTEM])
    probe.until(is_event("preload_complete"))

    second_ref = probe.join([SYSTEM, OTHER_SYSTEM])
    closed = probe.frame()
    assert (closed["event"], closed["ref"]) == ("phx_close", first_ref)
    assert probe.frame()["ref"] == second_ref
    _, preloads = probe.until(is_event("preload_complete"))
    assert [frame["payload"]["preload"] for frame in preloads] == [True]
    assert kills_server.statistics().connection(probe.local_port).joins == 2


def test_unknown_event_crashes_the_channel_until_the_next_join(connect: ProbeFactory) -> None:
    probe = connect()
    join_ref = probe.join([SYSTEM])
    probe.until(is_event("preload_complete"))

    probe.send(LOBBY, "no_such_event", {})
    crashed = probe.frame()
    assert (crashed["event"], crashed["ref"]) == ("phx_error", join_ref)
    after = probe.reply(probe.send(LOBBY, "get_status", {}))
    assert after["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
    probe.joined([SYSTEM])


def test_malformed_subscription_payload_crashes_the_channel(
    kills_server: KillsServer, connect: ProbeFactory
) -> None:
    probe = connect()
    probe.joined([])
    probe.send(LOBBY, "subscribe_systems", {"systems": "31000005"})
    assert probe.frame()["event"] == "phx_error"
    assert kills_server.statistics().channel_crashes == 1


def test_message_before_join_or_to_another_topic_is_unmatched(connect: ProbeFactory) -> None:
    probe = connect()
    for topic, event in [(LOBBY, "subscribe_systems"), ("killmails:other", "phx_join")]:
        reply = probe.reply(probe.send(topic, event, {"systems": [SYSTEM]}))
        assert reply["topic"] == topic
        assert reply["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}


def test_kill_count_update_reaches_system_subscribers(
    kills_server: KillsServer, connect: ProbeFactory
) -> None:
    probe = connect()
    probe.joined([SYSTEM])
    assert kills_server.push_kill_count(SYSTEM, 12) == 1
    assert kills_server.push_kill_count(OTHER_SYSTEM, 3) == 0
    frame, _ = probe.until(is_event("kill_count_update"))
    assert frame["payload"]["system_id"] == SYSTEM
    assert frame["payload"]["count"] == 12


def test_websocket_ping_is_answered_with_a_pong(connect: ProbeFactory) -> None:
    probe = connect()
    probe.ws.ping("rtt-1")
    opcode, frame = probe.ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PONG
    assert frame.data == b"rtt-1"


def test_idle_socket_is_closed_with_code_1000(clock: FakeClock) -> None:
    with KillsServer(idle_timeout_s=0.3, clock=clock) as kills_server:
        idle = Probe(kills_server.url)
        try:
            started = time.monotonic()
            opcode, data = idle.ws.recv_data(control_frame=True)
            waited = time.monotonic() - started
        finally:
            idle.close()
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 1000
        assert 0.2 < waited < 2.0
        assert kills_server.statistics().idle_timeouts == 1


def test_websocket_pings_alone_keep_an_idle_socket_open(clock: FakeClock) -> None:
    with KillsServer(idle_timeout_s=0.3, clock=clock) as kills_server:
        pinging = Probe(kills_server.url)
        try:
            for _ in range(6):  # 0.1 s apart: twice the idle timeout in all
                pinging.ws.ping()
                opcode, _ = pinging.ws.recv_data_frame(control_frame=True)
                assert opcode == websocket.ABNF.OPCODE_PONG
                pinging.ws.settimeout(0.1)
                with pytest.raises(websocket.WebSocketTimeoutException):
                    pinging.ws.recv()
            assert kills_server.statistics().idle_timeouts == 0
        finally:
            pinging.close()


def test_only_the_socket_path_upgrades(kills_server: KillsServer) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"ws://127.0.0.1:{kills_server.port}/other", timeout=5)
    assert refused.value.status_code == 404


def test_history_is_bounded_and_keeps_the_newest(
    clock: FakeClock, generator: TrafficGenerator
) -> None:
    with KillsServer(clock=clock, history_limit=3) as kills_server:
        kills = [kill_in(generator, clock, SYSTEM) for _ in range(5)]
        for kill in kills:
            kills_server.publish(kill)
        stats = kills_server.statistics()
        assert (stats.history_size, stats.history_capacity) == (3, 3)
        probe = Probe(kills_server.url)
        try:
            probe.reply(probe.join([SYSTEM]))
            _, preloads = probe.until(is_event("preload_complete"))
        finally:
            probe.close()
        replayed = [k["killmail_id"] for k in preloads[0]["payload"]["killmails"]]
        assert replayed == [k["killmail_id"] for k in kills[-3:]]


def test_publish_refuses_a_killmail_without_integer_ids(kills_server: KillsServer) -> None:
    for broken in ({"killmail_id": "1", "system_id": SYSTEM}, {"killmail_id": 1}):
        with pytest.raises(ValueError, match="integer"):
            kills_server.publish(broken)
    assert kills_server.statistics().kills_published == 0


def test_frames_are_v1_json_objects(connect: ProbeFactory) -> None:
    probe = connect()
    probe.send(LOBBY, "phx_join", {"systems": [SYSTEM]})
    raw = probe.ws.recv()
    assert set(json.loads(raw)) == {"topic", "event", "payload", "ref"}


def test_publish_many_pushes_in_order_and_refuses_a_bad_batch_whole(
    kills_server: KillsServer, connect: ProbeFactory, generator: TrafficGenerator, clock: FakeClock
) -> None:
    probe = connect()
    probe.joined([SYSTEM])
    batch = [kill_in(generator, clock, system) for system in (SYSTEM, OTHER_SYSTEM, SYSTEM)]
    with pytest.raises(ValueError, match="integer"):
        kills_server.publish_many([*batch, {"killmail_id": None, "system_id": SYSTEM}])
    assert kills_server.statistics().kills_published == 0

    assert kills_server.publish_many(batch) == 2
    received = [probe.frame()["payload"]["killmails"][0]["killmail_id"] for _ in range(4)]
    first, third = batch[0]["killmail_id"], batch[2]["killmail_id"]
    assert received == [first, first, third, third]
    assert kills_server.statistics().kills_published == 3


def test_a_join_with_systems_gets_only_their_kills_even_of_its_characters(
    kills_server: KillsServer, connect: ProbeFactory, generator: TrafficGenerator, clock: FakeClock
) -> None:
    probe = connect()
    probe.joined([SYSTEM], [PILOT])
    assert kills_server.publish(kill_in(generator, clock, OTHER_SYSTEM, involving=PILOT)) == 0
    assert kills_server.publish(kill_in(generator, clock, SYSTEM)) == 1
    assert probe.frame()["payload"]["system_id"] == SYSTEM


def test_a_characters_only_join_gets_their_kills_anywhere_and_nothing_else(
    kills_server: KillsServer, connect: ProbeFactory, generator: TrafficGenerator, clock: FakeClock
) -> None:
    probe = connect()
    probe.joined([], [PILOT])
    assert kills_server.publish(kill_in(generator, clock, OTHER_SYSTEM)) == 0
    mine = kill_in(generator, clock, SYSTEM, involving=PILOT)
    assert kills_server.publish(mine) == 1
    assert probe.frame()["payload"]["killmails"] == [mine]


def test_characters_subscribed_after_an_empty_join_get_nothing(
    kills_server: KillsServer, connect: ProbeFactory, generator: TrafficGenerator, clock: FakeClock
) -> None:
    probe = connect()
    probe.joined([], [])
    probe.reply(probe.send(LOBBY, "subscribe_characters", {"characters": [PILOT]}))
    assert kills_server.statistics().connection(probe.local_port).characters == {PILOT}
    assert kills_server.publish(kill_in(generator, clock, OTHER_SYSTEM, involving=PILOT)) == 0


def test_a_join_reads_characters_under_either_name(connect: ProbeFactory) -> None:
    probe = connect()
    ref = probe.send(LOBBY, "phx_join", {"systems": [], "characters": [PILOT], "character_ids": []})
    assert probe.reply(ref)["payload"]["response"]["subscribed_characters"] == [PILOT]


def test_a_raw_preload_can_go_to_the_systems_joins_only(
    kills_server: KillsServer, connect: ProbeFactory
) -> None:
    systems, characters = connect(), connect()
    systems.joined([SYSTEM])
    characters.joined([], [PILOT])
    assert kills_server.send_raw('{"preload": 1}', systems_joins_only=True) == 1
    assert systems.frame() == {"preload": 1}
    assert_silent(characters)
