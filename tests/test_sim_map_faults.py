import pytest
import requests

from simulator import ulid
from simulator.map_server import MapServer
from tests.support.clocks import FakeClock
from tests.support.sim_map import AUTH, RawStream, parse_sse, raw_stream
from tests.support.waiting import wait_for

KEEPALIVE_S = 0.2
PAYLOAD = {"solar_system_id": 31000005, "name": "Jé ünïcødé €"}


pytestmark = pytest.mark.map_server(keepalive_s=KEEPALIVE_S, fake_clock=True, seed=7)


def connected_stream(map_server: MapServer, query: str = "") -> RawStream:
    path = f"/api/maps/demo/events/stream{'?' + query if query else ''}"
    stream = RawStream(map_server.port, path)
    assert stream.events(1)[0].event == "connected"
    return stream


@pytest.mark.parametrize(("mode", "newline"), [("lf", b"\n"), ("crlf", b"\r\n"), ("cr", b"\r")])
def test_line_ending_modes_write_each_event_whole_with_that_terminator(
    map_server: MapServer, mode: str, newline: bytes
) -> None:
    map_server.set_framing(mode)  # type: ignore[arg-type]
    stream = connected_stream(map_server)
    try:
        event_id = map_server.publish("add_system", PAYLOAD)
        chunk = stream.chunk()
    finally:
        stream.close()
    assert chunk.startswith(b"event: add_system" + newline + b"id: " + event_id.encode() + newline)
    assert chunk.endswith(b"}" + newline + newline)
    others = {b"\n", b"\r\n", b"\r"} - {newline}
    assert chunk.count(newline) == 4
    if mode != "crlf":
        assert not any(other in chunk for other in others)
    (event,), _ = parse_sse(chunk)
    assert event.json["payload"] == PAYLOAD


def test_split_mode_cuts_events_inside_utf8_characters_and_between_cr_and_lf(
    map_server: MapServer,
) -> None:
    map_server.set_framing("split")
    stream = connected_stream(map_server)
    try:
        ids = [map_server.publish("add_system", PAYLOAD) for _ in range(3)]
        pieces = stream.chunks_until_events(3)
    finally:
        stream.close()
    raw = b"".join(pieces)
    assert len(pieces) >= 3 * 3
    events, _ = parse_sse(raw)
    assert [e.id for e in events] == ids
    assert all(e.json["payload"] == PAYLOAD for e in events)
    assert raw.count(b"\r\n") == 3 * 4
    assert any(piece.endswith(b"\r") for piece in pieces)
    undecodable = 0
    for piece in pieces:
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            undecodable += 1
    assert undecodable >= 3


def test_split_cuts_are_reproducible_from_the_seed() -> None:
    def cuts(seed: int) -> list[int]:
        with MapServer(clock=FakeClock(), seed=seed) as map_server:
            map_server.set_framing("split")
            stream = connected_stream(map_server)
            try:
                map_server.publish("add_system", PAYLOAD)
                pieces = stream.chunks_until_events(1)
            finally:
                stream.close()
        return [len(piece) for piece in pieces]

    assert cuts(11) == cuts(11)
    assert cuts(11) != cuts(12)


def test_coalesce_mode_writes_connected_and_the_backfill_in_one_write(
    map_server: MapServer,
) -> None:
    ids = [map_server.publish("add_system", PAYLOAD) for _ in range(4)]
    map_server.set_framing("coalesce")
    with raw_stream(map_server, f"last_event_id={ulid.encode(0, 0)}") as stream:
        chunk = stream.chunk()
    events, _ = parse_sse(chunk)
    assert [e.event for e in events] == ["connected"] + ["add_system"] * 4
    assert [e.id for e in events[1:]] == ids


def test_coalesce_mode_puts_live_events_published_together_in_one_write(
    map_server: MapServer,
) -> None:
    map_server.set_framing("coalesce")
    stream = connected_stream(map_server)
    try:
        ids = [map_server.publish("map_kill", {"killmail_id": n}) for n in range(5)]
        chunks = stream.chunks_until_events(5)
    finally:
        stream.close()
    assert [e.id for e in parse_sse(b"".join(chunks))[0]] == ids
    assert max(len(parse_sse(chunk)[0]) for chunk in chunks) >= 2


def test_set_framing_refuses_unknown_modes(map_server: MapServer) -> None:
    with pytest.raises(ValueError, match="unknown framing"):
        map_server.set_framing("zigzag")  # type: ignore[arg-type]


def test_drop_all_closes_every_stream_without_the_final_chunk(map_server: MapServer) -> None:
    streams = [connected_stream(map_server) for _ in range(2)]
    try:
        assert map_server.drop_all() == 2
        assert map_server.statistics().open_streams == 0
        for stream in streams:
            with pytest.raises(EOFError):
                stream.chunk()
    finally:
        for stream in streams:
            stream.close()
    with raw_stream(map_server) as again:
        assert again.status == 200


def test_drop_all_mid_event_cuts_the_next_event_which_backfill_then_replays(
    map_server: MapServer,
) -> None:
    stream = connected_stream(map_server)
    try:
        before = map_server.publish("add_system", PAYLOAD)
        assert stream.events(1)[0].id == before
        assert map_server.drop_all(mid_event=True) == 1
        cut = map_server.publish("deleted_system", {"solar_system_id": 31000005})
        half = stream.chunk()
        with pytest.raises(EOFError):
            stream.chunk()
    finally:
        stream.close()
    assert half.startswith(b"event: deleted_system")
    assert not half.endswith(b"\n\n")
    assert parse_sse(half)[0] == []
    with raw_stream(map_server, f"last_event_id={before}") as resumed:
        assert [e.id for e in resumed.events(2)[1:]] == [cut]
    # ``before`` live and ``cut`` on the resume only; counted once the write has returned.
    wait_for(lambda: map_server.statistics().events_written == 2)


def test_send_raw_writes_the_bytes_as_they_are_in_one_write(map_server: MapServer) -> None:
    garbage = [
        b"\xef\xbb\xbfdata: after a BOM\n\n",
        b"event: add_system\ndata: {not json\n\n",
        b"data: no id\n\n",
        b"data: \xff\xfe invalid utf-8\n\n",
        b"data: " + b"x" * 1_000_000 + b"\n\n",
    ]
    stream = connected_stream(map_server)
    try:
        for data in garbage:
            assert map_server.send_raw(data) == 1
        received = [stream.chunk() for _ in garbage]
    finally:
        stream.close()
    assert received == garbage
    wait_for(lambda: map_server.statistics().raw_writes == len(garbage))


def test_send_raw_and_events_keep_their_order(map_server: MapServer) -> None:
    stream = connected_stream(map_server)
    try:
        first = map_server.publish("add_system", PAYLOAD)
        map_server.send_raw(b": between\n\n")
        second = map_server.publish("add_system", PAYLOAD)
        chunks = [stream.chunk() for _ in range(3)]
    finally:
        stream.close()
    assert chunks[1] == b": between\n\n"
    assert [parse_sse(c)[0][0].id for c in (chunks[0], chunks[2])] == [first, second]


def test_a_silent_server_answers_the_head_and_then_nothing(map_server: MapServer) -> None:
    map_server.set_silent(True)
    with raw_stream(map_server) as stream:
        assert stream.status == 200
        map_server.publish("add_system", PAYLOAD)
        stream.sock.settimeout(KEEPALIVE_S * 3)
        with pytest.raises(TimeoutError):
            stream.chunk()
    map_server.set_silent(False)
    with raw_stream(map_server) as alive:
        assert alive.events(1)[0].event == "connected"


def test_set_silent_kills_open_streams_for_good(map_server: MapServer) -> None:
    stream = connected_stream(map_server)
    try:
        map_server.set_silent(True)
        map_server.publish("add_system", PAYLOAD)
        map_server.set_silent(False)
        map_server.publish("add_system", PAYLOAD)
        stream.sock.settimeout(KEEPALIVE_S * 3)
        with pytest.raises(TimeoutError):
            stream.chunk()
    finally:
        stream.close()
    assert map_server.statistics().events_written == 0
    assert map_server.statistics().keepalives_written == 0


def test_a_client_that_does_not_read_is_dropped_when_its_queue_is_full() -> None:
    with MapServer(clock=FakeClock(), max_queued_per_stream=4) as map_server:
        response = requests.get(
            f"{map_server.base_url}/api/maps/demo/events/stream",
            headers=AUTH,
            stream=True,
            timeout=5,
        )
        try:
            big = {"blob": "x" * 200_000}
            for _ in range(400):
                map_server.publish("signatures_updated", big)
                if map_server.statistics().slow_consumer_drops:
                    break
            wait_for(lambda: map_server.statistics().open_streams == 0)
        finally:
            response.close()
        assert map_server.statistics().slow_consumer_drops == 1


def test_the_fault_switches_are_harmless_when_the_server_is_not_running() -> None:
    map_server = MapServer()
    assert map_server.drop_all() == 0
    assert map_server.send_raw(b"x") == 0
    map_server.set_silent(True)
    map_server.publish("add_system", PAYLOAD)
    assert map_server.statistics().retained_events == 1


def test_a_requests_client_sees_a_dropped_stream_as_an_error_not_a_clean_end(
    map_server: MapServer,
) -> None:
    url = f"{map_server.base_url}/api/maps/demo/events/stream"
    with requests.get(url, headers=AUTH, stream=True, timeout=5) as response:
        chunks = response.iter_content(None)
        assert next(chunks).startswith(b"event: connected")
        map_server.drop_all(mid_event=True)
        map_server.publish("add_system", PAYLOAD)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for _ in chunks:
                pass
