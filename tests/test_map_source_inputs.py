"""The ``map:{slug}`` source against a hand-written HTTP server that sends what the simulator won't.

:class:`RawMapServer` answers the two REST endpoints with whatever bytes a
test set, and serves an event stream that it may gzip whatever the request
asked (as a proxy that compresses event streams does).
"""

from __future__ import annotations

import dataclasses
import http.server
import itertools
import random
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from actors.map_source import child_spec
from actors.protocol import Names
from realtime.config import Config, MapConfig, Secret
from simulator import ulid
from supervision import GetStatus, SupervisionTree
from tests.support.source_neighbours import (
    JournalLog,
    TrackingLog,
    Trees,
    journal_spec,
    tracking_spec,
)
from tests.support.source_neighbours import trees as start_trees
from tests.support.waiting import wait_for

SLUG = "raw"
SYSTEMS = {"data": {"systems": [{"solar_system_id": 31000005, "name": "J123450"}]}}
CHARACTERS = {"data": [{"character": {"eve_id": "2117000001", "name": "Pilot"}}]}


_ids = itertools.count(1)


def new_ulid() -> str:
    """A fresh ULID, increasing within the test run."""
    return ulid.encode(int(time.time() * 1000), next(_ids))


class RawMapServer(http.server.ThreadingHTTPServer):
    """A map server on loopback whose answers a test sets; thread-safe."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.systems_body = orjson.dumps(SYSTEMS)
        self.characters_body = orjson.dumps(CHARACTERS)
        self.gzip_stream = False
        self.events: list[tuple[str, str, bytes]] = []
        self.requests: dict[str, int] = {}
        self.stream_encodings: list[str] = []
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5)

    def count(self, endpoint: str) -> int:
        with self.lock:
            return self.requests.get(endpoint, 0)

    def publish(self, event_type: str, payload: dict[str, Any]) -> str:
        event_id = new_ulid()
        envelope = {
            "id": event_id,
            "type": event_type,
            "map_id": "m",
            "timestamp": "2026-11-27T12:00:00Z",
            "payload": payload,
        }
        with self.lock:
            self.events.append((event_id, event_type, orjson.dumps(envelope)))
        return event_id


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RawMapServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        endpoint = self.path.split("?")[0].rsplit("/", 1)[-1]
        with self.server.lock:
            self.server.requests[endpoint] = self.server.requests.get(endpoint, 0) + 1
        if endpoint in ("systems", "tracked-characters"):
            body = (
                self.server.systems_body if endpoint == "systems" else self.server.characters_body
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif endpoint == "stream":
            self._stream()
        else:
            self.send_error(404)

    def _stream(self) -> None:
        server = self.server
        with server.lock:
            server.stream_encodings.append(self.headers.get("Accept-Encoding", ""))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        compressor = zlib.compressobj(wbits=31) if server.gzip_stream else None
        if compressor is not None:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()

        def write(data: bytes) -> None:
            if compressor is not None:
                data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            self.wfile.write(data)
            self.wfile.flush()

        write(f"event: connected\nid: {new_ulid()}\ndata: {{}}\n\n".encode())
        sent = 0
        try:
            while not server.stopping.is_set():
                with server.lock:
                    pending = server.events[sent:]
                for event_id, event_type, data in pending:
                    write(
                        f"id: {event_id}\nevent: {event_type}\n".encode()
                        + b"data: "
                        + data
                        + b"\n\n"
                    )
                sent += len(pending)
                write(b": keepalive\n\n")
                server.stopping.wait(0.05)
        except OSError:
            return


@pytest.fixture
def server() -> Iterator[RawMapServer]:
    running = RawMapServer()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def trees() -> Iterator[Trees]:
    yield from start_trees()


def start(
    trees: Trees, server: RawMapServer, journal: JournalLog, **overrides: Any
) -> SupervisionTree:
    settings = MapConfig(
        slug=SLUG,
        base_url=server.base_url,
        api_key=Secret("key", "inline"),
        keepalive_timeout_s=1.0,
        connect_timeout_s=1.0,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        config_error_retry_s=0.2,
    )
    spec = child_spec(
        Config(),
        dataclasses.replace(settings, **overrides),
        rand=random.Random(5).random,
        circuit_failures=100,
    )
    return trees.start([journal_spec(journal), tracking_spec(TrackingLog()), spec])


def status(tree: SupervisionTree) -> dict[str, Any]:
    answer = tree.registry.ask(Names.map_source(SLUG), GetStatus())
    assert isinstance(answer, dict)
    return answer


def test_a_number_too_large_in_a_rest_answer_is_bad_input_counted_and_retried_with_backoff(
    server: RawMapServer, trees: Trees
) -> None:
    # it killed the reader thread: the map then stayed "connecting" for good
    server.systems_body = (
        b'{"data": {"systems": [{"solar_system_id": 31000005, "position_x": ' + b"9" * 400 + b"}]}}"
    )
    journal = JournalLog()
    tree = start(trees, server, journal)
    wait_for(
        lambda: status(tree)["connection"]["errors"].get("bad_input", 0) >= 3,
        what="the bootstrap retried",
    )
    report = status(tree)
    assert report["rejects"]["invalid_rest_answer"] >= 3
    assert report["connection"]["errors"]["bad_input"] >= 3
    assert report["reconnect"]["failures"] >= 3
    assert server.count("stream") == 0
    assert "invalid_rest_answer" in journal.reject_reasons()
    server.systems_body = orjson.dumps(SYSTEMS)
    wait_for(lambda: status(tree)["sse"]["phase"] == "live", what="live once the answer is good")


def test_a_rest_answer_over_the_cap_is_rejected_unread_past_it(
    server: RawMapServer, trees: Trees
) -> None:
    padding = [{"solar_system_id": 31000000 + n, "name": "x" * 200} for n in range(200)]
    server.systems_body = orjson.dumps({"data": {"systems": padding}})
    journal = JournalLog()
    tree = start(trees, server, journal, max_rest_bytes=16_384)
    wait_for(lambda: "rest_answer_too_large" in journal.reject_reasons(), what="the reject")
    reject = next(r for r in journal.rejects if r.reason == "rest_answer_too_large")
    assert "max_rest_bytes 16384" in reject.detail
    assert status(tree)["rejects"]["rest_answer_too_large"] >= 1


def test_an_event_stream_compressed_by_the_server_is_decoded(
    server: RawMapServer, trees: Trees
) -> None:
    server.gzip_stream = True
    journal = JournalLog()
    tree = start(trees, server, journal)
    wait_for(lambda: status(tree)["sse"]["phase"] == "live", what="the stream is live")
    published = [server.publish("add_system", {"solar_system_id": 31000100 + n}) for n in range(3)]
    wait_for(lambda: [e.id for e in journal.events] == published, what="the events, decoded")
    assert server.stream_encodings[0] == "identity"
    assert status(tree)["reconnect"]["failures"] == 0
