import json
import socket
import threading
import time

import pytest
import requests
import sseclient

from simulator import ulid
from simulator.map_server import MapServer
from tests.support.clocks import FakeClock
from tests.support.sim_map import AUTH, RawStream, parse_sse, raw_stream
from tests.support.waiting import wait_for

KEEPALIVE_S = 0.2
STREAM_PATH = "/api/maps/demo/events/stream"


pytestmark = pytest.mark.map_server(
    keepalive_s=KEEPALIVE_S, fake_clock=True, max_connections_per_key=3
)


def stream_url(map_server: MapServer, slug: str = "demo") -> str:
    return f"{map_server.base_url}/api/maps/{slug}/events/stream"


def test_a_stream_request_without_a_bearer_token_gets_a_json_401(map_server: MapServer) -> None:
    response = requests.get(stream_url(map_server), timeout=5)
    assert response.status_code == 401
    assert response.json() == {
        "error": "Missing or invalid 'Bearer' token",
        "code": "UNAUTHORIZED",
        "status": 401,
    }
    assert map_server.statistics().connect_attempts[-1].status == 401


def test_a_wrong_api_key_gets_401(map_server: MapServer) -> None:
    response = requests.get(
        stream_url(map_server), headers={"Authorization": "Bearer wrong"}, timeout=5
    )
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_an_unknown_map_slug_gets_a_json_404(map_server: MapServer) -> None:
    response = requests.get(stream_url(map_server, "other-map"), headers=AUTH, timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": "Map not found", "code": "MAP_NOT_FOUND", "status": 404}


def test_unknown_paths_and_methods_are_refused_with_json(map_server: MapServer) -> None:
    unknown = requests.get(f"{map_server.base_url}/api/maps/demo/nothing", headers=AUTH, timeout=5)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "NOT_FOUND"
    post = requests.post(stream_url(map_server), headers=AUTH, timeout=5)
    assert post.status_code == 405
    assert post.json()["status"] == 405


def test_the_first_event_is_connected_with_map_id_and_server_time_only(
    map_server: MapServer,
) -> None:
    map_server.publish("add_system", {"solar_system_id": 31000005})
    with requests.get(stream_url(map_server), headers=AUTH, stream=True, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        first = next(sseclient.SSEClient(response.iter_content(None)).events())
    assert first.event == "connected"
    data = json.loads(first.data)
    assert set(data) == {"map_id", "server_time"}
    assert data["map_id"] == map_server.map_id


def test_the_map_uuid_works_in_place_of_the_slug(map_server: MapServer) -> None:
    with raw_stream(map_server) as by_slug:
        assert by_slug.status == 200
    path = f"/api/maps/{map_server.map_id}/events/stream"
    by_id = RawStream(map_server.port, path)
    try:
        assert by_id.status == 200
        assert by_id.events(1)[0].event == "connected"
    finally:
        by_id.close()


def test_live_events_arrive_in_the_envelope_in_publication_order(
    map_server: MapServer, clock: FakeClock
) -> None:
    with raw_stream(map_server) as stream:
        stream.events(1)
        ids = [
            map_server.publish("add_system", {"solar_system_id": 31000005, "name": "J123450"}),
            map_server.publish_map_kill({"killmail_id": 123, "system_id": 31000005}),
            map_server.publish("deleted_system", {"solar_system_id": 31000005}),
        ]
        events = stream.events(3)
    assert [e.id for e in events] == ids == sorted(ids)
    assert [e.event for e in events] == ["add_system", "map_kill", "deleted_system"]
    envelope = events[0].json
    assert envelope == {
        "id": ids[0],
        "type": "add_system",
        "map_id": map_server.map_id,
        "timestamp": envelope["timestamp"],
        "payload": {"solar_system_id": 31000005, "name": "J123450"},
    }
    assert envelope["timestamp"].endswith("Z")
    assert events[1].json["payload"] == {"killmail_id": 123, "system_id": 31000005}


def test_the_events_filter_lets_only_the_named_types_through(map_server: MapServer) -> None:
    with raw_stream(map_server, "events=map_kill,%20character_added") as stream:
        stream.events(1)
        map_server.publish("add_system", {"solar_system_id": 1})
        wanted = map_server.publish("character_added", {"character_eve_id": "2117000001"})
        map_server.publish("deleted_system", {"solar_system_id": 1})
        last = map_server.publish_map_kill({"killmail_id": 5})
        events = stream.events(2)
    assert [e.id for e in events] == [wanted, last]


@pytest.mark.parametrize("query", ["", "events=*", "events="])
def test_no_filter_a_star_or_an_empty_filter_let_everything_through(
    map_server: MapServer, query: str
) -> None:
    with raw_stream(map_server, query) as stream:
        stream.events(1)
        map_server.publish("rally_point_added", {"rally_point_id": 1})
        assert stream.events(1)[0].event == "rally_point_added"


def test_backfill_replays_exactly_the_events_newer_than_last_event_id(
    map_server: MapServer,
) -> None:
    ids = [map_server.publish("add_system", {"solar_system_id": n}) for n in range(5)]
    with raw_stream(map_server, f"last_event_id={ids[1]}") as stream:
        events = stream.events(4)
        live = map_server.publish("deleted_system", {"solar_system_id": 0})
        events += stream.events(1)
    assert events[0].event == "connected"
    assert [e.id for e in events[1:]] == [*ids[2:], live]
    attempt = map_server.statistics().connect_attempts[-1]
    assert attempt.last_event_id == ids[1]
    assert attempt.status == 200


def test_a_backfill_cut_at_max_backfill_goes_live_leaving_a_gap_like_the_real_server(
    clock: FakeClock,
) -> None:
    with MapServer(clock=clock, max_backfill=2) as map_server:
        ids = [
            map_server.publish("add_system" if n % 2 else "map_kill", {"killmail_id": n})
            for n in range(8)
        ]
        with raw_stream(map_server, f"events=add_system&last_event_id={ids[0]}") as stream:
            connected, *backfill = stream.events(3)
            live = map_server.publish("add_system", {"solar_system_id": 1})
            backfill += stream.events(1)
    # The two oldest matching events, then live ones: ids[5] and ids[7] never come.
    assert [e.id for e in backfill] == [ids[1], ids[3], live]
    # The connected event's id is newer than every replayed one: the backfill is
    # the events before it, so a client can tell that it was cut.
    assert connected.id is not None
    assert all(e.id is not None and e.id < connected.id for e in backfill[:2])


def test_streams_opened_while_events_are_published_get_each_event_once_in_order(
    clock: FakeClock,
) -> None:
    map_server = MapServer(clock=clock, max_backfill=5000)
    map_server.start()
    published: list[str] = []

    def publish_many() -> None:
        published.extend(
            map_server.publish("add_system", {"solar_system_id": n}) for n in range(3000)
        )

    publisher = threading.Thread(target=publish_many)
    publisher.start()
    resumes: list[tuple[RawStream, int]] = []
    try:
        # Each connects at another point of the burst, so its backfill ends and its
        # live part begins while fan-outs of the newest events are still queued.
        for threshold in range(200, 2800, 350):
            wait_for(lambda threshold=threshold: len(published) > threshold)  # type: ignore[misc]
            resume_index = len(published) - 20
            path = f"{STREAM_PATH}?last_event_id={published[resume_index]}"
            resumes.append((RawStream(map_server.port, path), resume_index))
        publisher.join()
        for stream, resume_index in resumes:
            expected = published[resume_index + 1 :]
            received = [e.id for e in stream.events(1 + len(expected))[1:]]
            assert received == expected
    finally:
        publisher.join()
        for stream, _ in resumes:
            stream.close()
        map_server.stop()


def test_the_last_event_id_header_is_recorded_but_only_the_query_resumes(
    map_server: MapServer,
) -> None:
    first = map_server.publish("add_system", {"solar_system_id": 1})
    second = map_server.publish("add_system", {"solar_system_id": 2})
    with raw_stream(map_server, headers={"Last-Event-ID": first}) as stream:
        stream.events(1)
        live = map_server.publish("add_system", {"solar_system_id": 3})
        assert [e.id for e in stream.events(1)] == [live]
    with raw_stream(map_server, f"last_event_id={first}", {"Last-Event-ID": second}) as stream:
        assert [e.id for e in stream.events(2)[1:]] == [second]
    attempts = map_server.statistics().connect_attempts
    assert (attempts[0].last_event_id, attempts[0].last_event_id_header) == (None, first)
    assert (attempts[1].last_event_id, attempts[1].last_event_id_header) == (first, second)


def test_a_last_event_id_that_is_not_a_ulid_replays_nothing(map_server: MapServer) -> None:
    map_server.publish("add_system", {"solar_system_id": 1})
    with raw_stream(map_server, "last_event_id=garbage") as stream:
        stream.events(1)
        live = map_server.publish("add_system", {"solar_system_id": 2})
        assert [e.id for e in stream.events(1)] == [live]


def test_events_older_than_the_retention_window_are_not_replayed(
    map_server: MapServer, clock: FakeClock
) -> None:
    oldest = map_server.publish("add_system", {"solar_system_id": 1})
    clock.advance(300)
    middle = map_server.publish("add_system", {"solar_system_id": 2})
    clock.advance(301)  # ``oldest`` is now 601 s old, ``middle`` 301 s
    newest = map_server.publish("add_system", {"solar_system_id": 3})
    before_all = ulid.encode(0, 0)
    with raw_stream(map_server, f"last_event_id={before_all}") as stream:
        events = stream.events(3)
    assert oldest not in [e.id for e in events]
    assert [e.id for e in events[1:]] == [middle, newest]
    assert map_server.statistics().retained_events == 2


def test_the_retained_log_is_bounded_and_drops_its_oldest_events(clock: FakeClock) -> None:
    with MapServer(clock=clock, max_retained=3) as map_server:
        ids = [map_server.publish("add_system", {"solar_system_id": n}) for n in range(5)]
        stats = map_server.statistics()
        assert (stats.retained_events, stats.retained_capacity) == (3, 3)
        with raw_stream(map_server, f"last_event_id={ulid.encode(0, 0)}") as stream:
            assert [e.id for e in stream.events(4)[1:]] == ids[2:]


def test_a_silent_stream_gets_a_keepalive_comment_after_keepalive_s(map_server: MapServer) -> None:
    with raw_stream(map_server) as stream:
        stream.events(1)
        started = time.monotonic()
        chunk = stream.chunk()
        waited = time.monotonic() - started
    assert chunk == b": keepalive\n\n"
    assert KEEPALIVE_S * 0.8 <= waited < KEEPALIVE_S * 5
    wait_for(lambda: map_server.statistics().keepalives_written >= 1)


def test_keepalives_can_be_switched_off(map_server: MapServer) -> None:
    map_server.set_keepalive(False)
    with raw_stream(map_server) as stream:
        stream.events(1)
        stream.sock.settimeout(KEEPALIVE_S * 3)
        with pytest.raises(TimeoutError):
            stream.chunk()
    assert map_server.statistics().keepalives_written == 0


def test_streams_beyond_the_per_key_limit_get_429_until_one_closes(map_server: MapServer) -> None:
    clients = [RawStream(map_server.port) for _ in range(3)]
    try:
        assert [client.status for client in clients] == [200, 200, 200]
        with raw_stream(map_server) as refused:
            assert refused.status == 429
            assert b'"API_KEY_CONNECTION_LIMIT"' in refused.body
        clients[0].close()
        wait_for(lambda: map_server.statistics().open_streams == 2)
        with raw_stream(map_server) as admitted:
            assert admitted.status == 200
    finally:
        for client in clients:
            client.close()
    wait_for(lambda: map_server.statistics().open_streams == 0)


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 503])
def test_fail_next_answers_the_next_attempts_with_that_status_and_a_json_body(
    map_server: MapServer, status: int
) -> None:
    map_server.fail_next(status, 2)
    answers = []
    for _ in range(3):
        response = requests.get(stream_url(map_server), headers=AUTH, stream=True, timeout=5)
        answers.append(response.status_code)
        if response.status_code != 200:
            assert response.json()["status"] == status
            assert {"error", "code", "status"} == set(response.json())
        response.close()
    assert answers == [status, status, 200]
    assert [a.status for a in map_server.statistics().connect_attempts] == answers


def test_fail_next_without_a_count_fails_until_cleared(map_server: MapServer) -> None:
    map_server.fail_next(503, None)
    for _ in range(4):
        assert requests.get(stream_url(map_server), headers=AUTH, timeout=5).status_code == 503
    map_server.clear_failures()
    with raw_stream(map_server) as stream:
        assert stream.status == 200


def test_fail_next_refuses_statuses_that_are_not_errors(map_server: MapServer) -> None:
    with pytest.raises(ValueError, match="error status"):
        map_server.fail_next(200)
    with pytest.raises(ValueError, match="error status"):
        map_server.fail_next(499)
    with pytest.raises(ValueError, match="at least 1"):
        map_server.fail_next(500, 0)


def test_connect_attempts_carry_increasing_monotonic_times(map_server: MapServer) -> None:
    map_server.fail_next(500, 3)
    before = time.monotonic()
    for _ in range(3):
        requests.get(stream_url(map_server), headers=AUTH, timeout=5)
    after = time.monotonic()
    times = [attempt.at for attempt in map_server.statistics().connect_attempts]
    assert times == sorted(times)
    assert before <= times[0]
    assert times[-1] <= after


def test_recorded_connect_attempts_are_bounded(clock: FakeClock) -> None:
    with MapServer(clock=clock, max_recorded_attempts=2) as map_server:
        map_server.fail_next(500, None)
        for _ in range(5):
            requests.get(stream_url(map_server), headers=AUTH, timeout=5)
        stats = map_server.statistics()
    assert len(stats.connect_attempts) == 2
    assert stats.connect_attempts_total == 5


def test_stop_closes_open_streams_and_a_restart_listens_on_the_same_port(
    clock: FakeClock,
) -> None:
    map_server = MapServer(clock=clock)
    map_server.start()
    try:
        port = map_server.port
        stream = RawStream(map_server.port)
        stream.events(1)
        map_server.stop()
        with pytest.raises(EOFError):
            stream.chunk()
        stream.close()
        map_server.start()
        assert map_server.port == port
        with raw_stream(map_server) as again:
            assert again.events(1)[0].event == "connected"
    finally:
        map_server.stop()


def test_starting_twice_is_refused_and_stopping_twice_is_harmless(map_server: MapServer) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        map_server.start()
    other = MapServer(port=map_server.port)
    with pytest.raises(OSError):  # noqa: PT011  # the errno varies by platform
        other.start()
    other.stop()


def test_a_client_sending_an_oversized_head_gets_431(map_server: MapServer) -> None:
    with socket.create_connection(("127.0.0.1", map_server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_parse_sse_helper_handles_every_line_ending() -> None:
    events, comments = parse_sse(
        b": c\r\nevent: a\rid: 1\ndata: x\r\n\r\nevent: b\ndata: y\n\ndata: z"
    )
    assert [(e.event, e.id, e.data) for e in events] == [("a", "1", ["x"]), ("b", None, ["y"])]
    assert comments == ["c"]
