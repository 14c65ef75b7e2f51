"""How fast the simulated map server fans events out to SSE streams.

Publishes ``EVENTS`` realistic ``map_kill`` events to ``STREAMS`` raw-socket
readers and times until every reader has every event. The baseline, measured in
the same run, writes the same SSE bytes straight to loopback sockets from one
thread: the ratio is the share of raw socket throughput the server keeps with
its per-event HTTP chunks, flushes and queues.

    python -m bench.sim_map_fanout
"""

from __future__ import annotations

import socket
import threading
import time

import orjson

from simulator.map_server import MapServer

EVENTS = 5000
STREAMS = 4
KILLMAIL = {
    "killmail_id": 123456789,
    "kill_time": "2026-11-27T12:00:00Z",
    "system_id": 31000005,
    "victim": {"character_id": 2117000001, "ship_type_id": 587, "damage_taken": 2450},
    "attackers": [
        {"character_id": 2117000002 + n, "ship_type_id": 11993, "damage_done": 100}
        for n in range(5)
    ],
    "zkb": {"totalValue": 12500000.0, "hash": "0f1e2d3c4b5a", "labels": ["solo", "wspace"]},
}


class Reader(threading.Thread):
    """Counts complete LF-framed events (``\\n\\n``) arriving on a socket."""

    def __init__(self, sock: socket.socket, expected: int) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.expected = expected
        self.count = 0
        self.done = threading.Event()

    def run(self) -> None:
        tail = b""
        while self.count < self.expected:
            data = self.sock.recv(1 << 20)
            if not data:
                break
            window = tail + data
            self.count += window.count(b"\n\n")
            tail = data[-1:] if not window.endswith(b"\n\n") else b""
        self.done.set()


def stream_socket(server: MapServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        b"GET /api/maps/demo/events/stream HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer demo-key\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    return sock


def measure_server() -> float:
    with MapServer(max_queued_per_stream=EVENTS + 10) as server:
        readers = [Reader(stream_socket(server), EVENTS + 1) for _ in range(STREAMS)]
        for reader in readers:
            reader.start()
        while server.statistics().open_streams < STREAMS:
            time.sleep(0.001)
        started = time.perf_counter()
        for _ in range(EVENTS):
            server.publish_map_kill(KILLMAIL)
        for reader in readers:
            reader.done.wait(60)
        elapsed = time.perf_counter() - started
        for reader in readers:
            reader.sock.close()
        received = sum(reader.count for reader in readers)
    if received != STREAMS * (EVENTS + 1):
        raise SystemExit(f"lost events: {received} of {STREAMS * (EVENTS + 1)}")
    return elapsed


def measure_raw_sockets(frame: bytes) -> float:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(STREAMS)]
    accepted = [listener.accept()[0] for _ in range(STREAMS)]
    readers = [Reader(sock, EVENTS) for sock in clients]
    for reader in readers:
        reader.start()
    started = time.perf_counter()
    for _ in range(EVENTS):
        for sock in accepted:
            sock.sendall(frame)
    for reader in readers:
        reader.done.wait(60)
    elapsed = time.perf_counter() - started
    for sock in (*clients, *accepted, listener):
        sock.close()
    return elapsed


def main() -> None:
    event_id = "01JDZ3J9Q5V8K2M4N6P8R0T2W4"
    envelope = {
        "id": event_id,
        "type": "map_kill",
        "map_id": "0b8f2c61-0000-5000-8000-000000000000",
        "timestamp": "2026-11-27T12:00:00.123456Z",
        "payload": KILLMAIL,
    }
    frame = b"event: map_kill\nid: %s\ndata: %s\n\n" % (event_id.encode(), orjson.dumps(envelope))
    server_s = measure_server()
    raw_s = measure_raw_sockets(frame)
    deliveries = EVENTS * STREAMS
    print(f"{EVENTS} map_kill events to {STREAMS} streams")
    print(f"  map server : {server_s:.3f} s  {EVENTS / server_s:,.0f} events/s published")
    print(f"               {deliveries / server_s:,.0f} deliveries/s")
    print(f"  raw sockets: {raw_s:.3f} s  {deliveries / raw_s:,.0f} frames/s (baseline)")
    print(f"  ratio      : {raw_s / server_s:.2%} of raw socket throughput")


if __name__ == "__main__":
    main()
