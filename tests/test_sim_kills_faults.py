"""The loopback wanderer-kills server's fault switches, lifecycle and traffic runner."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import websocket

from simulator.kills_server import KillsServer
from simulator.traffic import Schedule, TrafficGenerator
from tests.support.kills_probe import LOBBY, Probe
from tests.support.waiting import wait_for

SYSTEM = 31000005


pytestmark = pytest.mark.kills_server(idle_timeout_s=10.0, close_timeout_s=0.5)


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    opened: list[Probe] = []
    yield opened
    for probe in opened:
        probe.close()


def open_probe(kills_server: KillsServer, probes: list[Probe]) -> Probe:
    probe = Probe(kills_server.url)
    probes.append(probe)
    return probe


def close_code(probe: Probe) -> int:
    """Read until the server's close frame; its status code."""
    while True:
        opcode, data = probe.ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big")


def test_drop_all_aborts_connections_without_a_close_frame(
    kills_server: KillsServer, probes: list[Probe]
) -> None:
    probe = open_probe(kills_server, probes)
    probe.joined([SYSTEM])
    assert kills_server.drop_all() == 1
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionResetError)):
        probe.ws.recv_data(control_frame=True)
    wait_for(lambda: kills_server.statistics().sockets_open == 0)
    stats = kills_server.statistics()
    assert (stats.sockets_dropped, stats.connections_current) == (1, 0)
    open_probe(kills_server, probes).joined([SYSTEM])


def test_half_open_server_answers_nothing_and_closes_nothing(probes: list[Probe]) -> None:
    with KillsServer(idle_timeout_s=0.3, close_timeout_s=0.5) as kills_server:
        half_open_exchange(kills_server, open_probe(kills_server, probes))


def half_open_exchange(kills_server: KillsServer, probe: Probe) -> None:
    probe.joined([SYSTEM])
    kills_server.set_half_open(True)
    heartbeat_ref = probe.heartbeat()
    probe.ws.ping("are-you-there")
    assert kills_server.publish(TrafficGenerator(1).killmail(time.time(), system_id=SYSTEM)) == 1

    probe.ws.settimeout(1.0)  # more than three idle timeouts
    with pytest.raises(websocket.WebSocketTimeoutException):
        probe.ws.recv_data_frame(control_frame=True)
    stats = kills_server.statistics()
    assert stats.half_open
    assert (stats.sockets_open, stats.idle_timeouts) == (1, 0)
    assert stats.frames_withheld == 2  # the kill's two pushes went nowhere

    kills_server.set_half_open(False)
    probe.ws.settimeout(5.0)
    late: set[tuple[str, str]] = set()
    while len(late) < 2:
        opcode, frame = probe.ws.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_PONG:
            late.add(("pong", frame.data.decode()))
        else:
            late.add(("reply", json.loads(frame.data)["ref"]))
    assert late == {("pong", "are-you-there"), ("reply", heartbeat_ref)}


def test_half_open_server_never_completes_a_new_handshake(
    kills_server: KillsServer, probes: list[Probe]
) -> None:
    kills_server.set_half_open(True)
    with pytest.raises(websocket.WebSocketTimeoutException):
        websocket.create_connection(kills_server.url, timeout=0.5)
    kills_server.set_half_open(False)
    open_probe(kills_server, probes).joined([SYSTEM])


def test_handshake_sent_while_half_open_is_answered_once_it_ends(kills_server: KillsServer) -> None:
    kills_server.set_half_open(True)
    with socket.create_connection(("127.0.0.1", kills_server.port), timeout=0.3) as raw:
        raw.sendall(
            b"GET /socket/websocket?vsn=1.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        with pytest.raises(TimeoutError):
            raw.recv(1024)
        kills_server.set_half_open(False)
        raw.settimeout(5.0)
        assert raw.recv(1024).startswith(b"HTTP/1.1 101")


def test_stop_returns_promptly_while_half_open_with_a_pending_handshake() -> None:
    kills_server = KillsServer(close_timeout_s=0.5)
    kills_server.start()
    probe = Probe(kills_server.url)
    raw = socket.create_connection(("127.0.0.1", kills_server.port))
    try:
        probe.joined([SYSTEM])
        kills_server.set_half_open(True)
        wait_for(lambda: kills_server.statistics().sockets_open == 2)
        started = time.monotonic()
        kills_server.stop()
        assert time.monotonic() - started < 3.0
    finally:
        raw.close()
        probe.close()


@pytest.mark.parametrize(
    "garbage",
    [
        "not json {",
        b"\x00\x01\xfe binary",
        '["a", "list", "not", "an", "object"]',
        '{"topic":"killmails:lobby","event":"surprise","payload":{"odd":true},"ref":null}',
        '{"topic":"killmails:lobby","event":"killmail_update","payload":{"killmails":"nope"}}',
        "x" * (2 << 20),
    ],
    ids=["invalid-json", "binary", "json-list", "unknown-event", "wrong-shape", "two-mib-frame"],
)
def test_garbage_reaches_the_client_exactly_as_sent(
    kills_server: KillsServer, probes: list[Probe], garbage: str | bytes
) -> None:
    probe = open_probe(kills_server, probes)
    probe.joined([SYSTEM])
    assert kills_server.send_raw(garbage) == 1
    opcode, data = probe.ws.recv_data()
    if isinstance(garbage, bytes):
        assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, garbage)
    else:
        assert (opcode, data) == (websocket.ABNF.OPCODE_TEXT, garbage.encode())
    ref = probe.heartbeat()
    assert probe.reply(ref)["payload"]["status"] == "ok"


@pytest.mark.parametrize(
    "garbage",
    [
        "not json {",
        b'{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}',
        "[]",
        '{"topic":"phoenix","event":"heartbeat","payload":{}}',
        '{"topic":1,"event":"heartbeat","payload":{},"ref":"1"}',
    ],
    ids=["invalid-json", "binary", "json-list", "missing-ref", "topic-not-a-string"],
)
def test_frame_that_is_not_a_v1_message_crashes_the_socket_with_1011(
    kills_server: KillsServer, probes: list[Probe], garbage: str | bytes
) -> None:
    probe = open_probe(kills_server, probes)
    if isinstance(garbage, bytes):
        probe.ws.send_binary(garbage)
    else:
        probe.ws.send(garbage)
    assert close_code(probe) == 1011
    assert kills_server.statistics().socket_crashes == 1


def test_restart_closes_with_1001_and_listens_again_on_the_same_port(
    kills_server: KillsServer, probes: list[Probe]
) -> None:
    kills_server.publish(TrafficGenerator(2).killmail(time.time(), system_id=SYSTEM))
    probe = open_probe(kills_server, probes)
    probe.joined([SYSTEM])
    port = kills_server.port

    kills_server.restart()
    assert close_code(probe) == 1001
    assert kills_server.port == port
    again = open_probe(kills_server, probes)
    again.reply(again.join([SYSTEM]))
    _, preloads = again.until(lambda frame: frame["event"] == "preload_complete")
    assert len(preloads) == 1  # the history survived the restart
    stats = kills_server.statistics()
    assert (stats.restarts, stats.connections_accepted, stats.listening) == (1, 2, True)


def test_restart_with_down_time_refuses_connections_meanwhile(
    kills_server: KillsServer, probes: list[Probe]
) -> None:
    restarting = threading.Thread(target=kills_server.restart, kwargs={"down_s": 0.5})
    restarting.start()
    try:
        wait_for(lambda: not kills_server.statistics().listening)
        with pytest.raises(ConnectionRefusedError):
            websocket.create_connection(kills_server.url, timeout=1.0)
    finally:
        restarting.join(5.0)
    open_probe(kills_server, probes).joined([SYSTEM])


def test_a_client_that_lets_its_outbox_fill_is_dropped(probes: list[Probe]) -> None:
    with KillsServer(outbox_capacity=2) as kills_server:
        probe = open_probe(kills_server, probes)
        probe.joined([SYSTEM])
        for _ in range(30):  # 60 MiB the client never reads
            if kills_server.send_raw("x" * (2 << 20)) == 0:
                break
        wait_for(lambda: kills_server.statistics().slow_consumer_drops == 1)
        wait_for(lambda: kills_server.statistics().connections_current == 0)


def test_stop_closes_connections_joins_the_thread_and_frees_the_port() -> None:
    kills_server = KillsServer(close_timeout_s=0.5)
    kills_server.start()
    probe = Probe(kills_server.url)
    port = kills_server.port
    try:
        probe.joined([SYSTEM])
        kills_server.stop()
        assert close_code(probe) == 1001
    finally:
        probe.close()
    assert not any(t.name == "kills-server" for t in threading.enumerate())
    with pytest.raises(RuntimeError, match="not running"):
        kills_server.statistics()
    kills_server.stop()
    with KillsServer(port=port) as reborn:
        assert reborn.port == port


def test_traffic_runner_publishes_to_subscribers_until_stopped(
    kills_server: KillsServer, probes: list[Probe]
) -> None:
    probe = open_probe(kills_server, probes)
    probe.joined([SYSTEM])
    generator = TrafficGenerator(3, systems=[SYSTEM])
    runner = kills_server.run_traffic(generator, Schedule(400.0, seed=1), tick_s=0.01)
    wait_for(lambda: runner.published >= 20)
    runner.stop()
    assert not runner.running
    update, _ = probe.until(lambda frame: frame["event"] == "killmail_update")
    assert update["topic"] == LOBBY
    assert update["payload"]["preload"] is False
    assert kills_server.statistics().kills_published == runner.published


def test_stopping_the_server_stops_its_traffic_runners() -> None:
    kills_server = KillsServer()
    kills_server.start()
    runner = kills_server.run_traffic(TrafficGenerator(4), Schedule(50.0, seed=2), tick_s=0.01)
    assert runner.running
    kills_server.stop()
    assert not runner.running
