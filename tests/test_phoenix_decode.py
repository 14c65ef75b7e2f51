"""PhoenixClient.receive: server pushes become events; bad input becomes rejects."""

from __future__ import annotations

import orjson
import pytest

import realtime.kill_events
from realtime.event import KILLS_SOURCE, Priority, parse_time
from realtime.keys import content_key, killmail_key
from realtime.kill_events import RejectReason
from realtime.phoenix import PhoenixClient, PreloadComplete, Received
from tests.support.phoenix import (
    SYSTEM,
    killmail,
    killmail_update,
    make_client,
    message,
)

KILL_TIME = parse_time("2026-11-27T12:00:00Z")
COUNT = {"system_id": SYSTEM, "count": 3, "timestamp": "2026-11-27T12:05:00Z"}


def receive(client: PhoenixClient, frame: str | bytes, received_at_ns: int = 42) -> Received:
    return client.receive(frame, received_at_ns, 1.0)


def only_reject(received: Received) -> tuple[str, str, bytes]:
    assert received.events == ()
    (reject,) = received.rejects
    assert reject.source == KILLS_SOURCE
    assert reject.detail
    return reject.reason, reject.detail, reject.raw


# -- killmails -------------------------------------------------------------------------


def test_a_killmail_update_becomes_a_killmail_event() -> None:
    client = make_client()
    kill = killmail(123456789)
    received = receive(client, killmail_update(kill), received_at_ns=987654321)
    (event,) = received.events
    assert received.rejects == ()
    assert (event.source, event.type, event.id) == (KILLS_SOURCE, "killmail", "123456789")
    assert event.time == KILL_TIME
    assert event.received_at == 987654321
    assert event.key == killmail_key(123456789)
    assert event.priority is Priority.NORMAL
    assert event.seq is None
    assert event.data == {**kill, "preload": False}
    assert client.statistics().events == 1


@pytest.mark.parametrize(("flag", "expected"), [(True, True), (False, False), (None, False)])
def test_the_preload_flag_of_the_push_is_kept_in_each_killmail(
    flag: bool | None, expected: bool
) -> None:
    received = receive(make_client(), killmail_update(killmail(1), killmail(2), preload=flag))
    assert [event.data["preload"] for event in received.events] == [expected, expected]


def test_one_bad_killmail_does_not_reject_its_siblings() -> None:
    bad = killmail(2)
    del bad["killmail_id"]
    received = receive(make_client(), killmail_update(killmail(1), bad, killmail(3)))
    assert [event.id for event in received.events] == ["1", "3"]
    (reject,) = received.rejects
    assert reject.reason == "missing_killmail_id"
    assert "killmails[1]" in reject.detail
    assert orjson.loads(reject.raw) == bad
    assert reject.received_at == 42


def test_the_same_kill_delivered_twice_gives_two_events_with_the_same_key() -> None:
    # The server publishes each kill on two topics per system: duplicates are normal.
    client = make_client()
    first = receive(client, killmail_update(killmail(7)), received_at_ns=1).events
    second = receive(client, killmail_update(killmail(7)), received_at_ns=2).events
    assert len(first) == len(second) == 1
    assert first[0].key == second[0].key == killmail_key(7)
    assert (first[0].received_at, second[0].received_at) == (1, 2)


@pytest.mark.parametrize("strategy", ["key", "content", "hybrid"])
def test_a_preload_replay_has_the_key_of_the_live_kill_under_every_strategy(
    strategy: str,
) -> None:
    client = make_client(key_strategy=strategy)
    (live,) = receive(client, killmail_update(killmail(7), preload=False)).events
    (replayed,) = receive(client, killmail_update(killmail(7), preload=True)).events
    assert live.key == replayed.key
    assert live.data["preload"] is False
    assert replayed.data["preload"] is True


def test_the_content_strategy_keys_a_killmail_by_its_content() -> None:
    kill = killmail(7)
    (event,) = receive(make_client(key_strategy="content"), killmail_update(kill)).events
    assert event.key == content_key("killmail", kill)


def test_a_realistic_killmail_with_200_attackers_is_decoded() -> None:
    kill = killmail(128389930, attackers=200)
    frame = killmail_update(kill)
    assert len(frame) > 40_000
    (event,) = receive(make_client(), frame).events
    assert len(event.data["attackers"]) == 200
    assert event.data["attackers"][199]["character_name"] == "Other Pilot 199"
    assert event.key == killmail_key(128389930)


def test_binary_frames_holding_utf8_json_are_decoded_like_text() -> None:
    frame = killmail_update(killmail(5, victim={"character_name": "Åsa Ødegård"}))
    (event,) = receive(make_client(), frame.encode()).events
    assert event.data["victim"]["character_name"] == "Åsa Ødegård"


def test_brackets_and_escaped_quotes_inside_strings_do_not_count_as_nesting() -> None:
    name = '\\"' + "[" * 500 + "{" * 500
    kill = killmail(5, victim={"character_name": name})
    (event,) = receive(make_client(max_depth=8), killmail_update(kill)).events
    assert event.data["victim"]["character_name"] == name


def test_nesting_up_to_max_depth_is_accepted() -> None:
    client = make_client(max_depth=8)
    # frame{ payload{ killmails[ killmail{ extra[ [ [ [ → depth 8
    accepted = killmail_update(killmail(5, extra=[[[[]]]]))
    assert len(receive(client, accepted).events) == 1
    refused = killmail_update(killmail(5, extra=[[[[[]]]]]))
    assert only_reject(receive(client, refused))[0] == "too_deep"


# -- other pushes ----------------------------------------------------------------------


def test_a_kill_count_update_becomes_an_event_keyed_by_its_content() -> None:
    received = receive(make_client(), message("kill_count_update", COUNT), received_at_ns=5)
    (event,) = received.events
    assert (event.source, event.type, event.id) == (KILLS_SOURCE, "kill_count_update", "")
    assert event.time == parse_time("2026-11-27T12:05:00Z")
    assert event.key == content_key("kill_count_update", COUNT)
    assert event.data == COUNT
    assert event.received_at == 5


def test_preload_complete_is_a_control_value_not_an_event() -> None:
    payload = {"total_kills": 25, "systems_processed": 5, "errors": []}
    received = receive(make_client(), message("preload_complete", payload))
    assert received.control == PreloadComplete(payload)
    assert received.events == ()
    assert received.rejects == ()


@pytest.mark.parametrize("event", ["preload_status", "preload_batch", "new_kill"])
def test_newer_server_pushes_are_ignored_and_counted(event: str) -> None:
    client = make_client()
    received = receive(client, message(event, {"kills": [killmail(1)]}))
    assert received == Received()
    receive(client, message(event, {}))
    assert client.statistics().ignored == {event: 2}
    assert client.statistics().rejects == {}


# -- rejects ---------------------------------------------------------------------------


def _killmail_without(field: str, value: object = None) -> dict[str, object]:
    kill = killmail(99)
    if value is None:
        del kill[field]
    else:
        kill[field] = value
    return kill


REJECTED_FRAMES: list[tuple[str, str | bytes, str]] = [
    ("binary_frame", b"\xff\xfe{}", "not valid UTF-8"),
    ("binary_frame", b'{"topic":', "unexpected end"),
    ("invalid_json", '{"topic":', "unexpected end"),
    ("invalid_json", "", "empty"),
    ("invalid_json", '{"topic": "\ud800"}', "surrogates"),
    ("not_an_object", "[1, 2]", "a list of 2 items"),
    ("not_an_object", '"heartbeat"', "not a Phoenix V1 object"),
    ("invalid_frame", message("x", {}).replace('"topic":"killmails:lobby"', '"topic":1'), "topic"),
    ("invalid_frame", '{"topic":"killmails:lobby","payload":{},"ref":null}', "event is null"),
    ("invalid_frame", '{"topic":"t","event":"e","payload":[],"ref":null}', "payload"),
    ("invalid_frame", '{"topic":"t","event":"e","payload":{},"ref":7}', "ref"),
    ("unknown_topic", message("killmail_update", {}, topic="killmails:other"), "other"),
    ("unknown_event", message("surprise", {}), "surprise"),
    ("unknown_event", message("heartbeat", {}, topic="phoenix"), "heartbeat"),
    ("invalid_payload", message("killmail_update", {"killmails": {}}), "killmails"),
    ("invalid_payload", message("killmail_update", {"killmails": [], "preload": "yes"}), "preload"),
    ("invalid_payload", message("kill_count_update", {**COUNT, "count": "3"}), "count"),
    ("invalid_payload", message("kill_count_update", {**COUNT, "system_id": True}), "system_id"),
    ("invalid_payload", message("phx_reply", {"response": {}}, ref="1"), "status"),
    (
        "invalid_payload",
        message("phx_reply", {"status": "ok", "response": []}, ref="1"),
        "response",
    ),
    ("invalid_killmail", killmail_update(5), "killmails[0] is int 5"),
    ("invalid_killmail", killmail_update([killmail(1)]), "a list of 1 items"),
    ("missing_killmail_id", killmail_update(_killmail_without("killmail_id")), "null or missing"),
    ("missing_killmail_id", killmail_update(killmail(0)), "int 0"),
    ("missing_killmail_id", killmail_update(killmail(-5)), "int -5"),
    ("missing_killmail_id", killmail_update(_killmail_without("killmail_id", "99")), "'99'"),
    ("missing_killmail_id", killmail_update(_killmail_without("killmail_id", True)), "True"),
    ("missing_killmail_id", killmail_update(_killmail_without("killmail_id", 1.5)), "1.5"),
    ("missing_killmail_id", killmail_update(_killmail_without("killmail_id", 1e30)), "float"),
    ("invalid_kill_time", killmail_update(_killmail_without("kill_time")), "killmail 99"),
    ("invalid_kill_time", killmail_update(_killmail_without("kill_time", 1795780800)), "int"),
    (
        "invalid_kill_time",
        killmail_update(_killmail_without("kill_time", "yesterday")),
        "yesterday",
    ),
    ("invalid_kill_time", killmail_update(_killmail_without("kill_time", "2026-13-01")), "month"),
    ("invalid_timestamp", message("kill_count_update", {**COUNT, "timestamp": "soon"}), "soon"),
    ("invalid_timestamp", message("kill_count_update", {"system_id": 1, "count": 2}), "null"),
]


@pytest.mark.parametrize(("reason", "frame", "in_detail"), REJECTED_FRAMES)
def test_bad_input_is_rejected_with_a_precise_reason(
    reason: str, frame: str | bytes, in_detail: str
) -> None:
    client = make_client()
    got_reason, detail, raw = only_reject(receive(client, frame))
    assert got_reason == reason
    assert in_detail in detail
    if reason in ("invalid_killmail", "missing_killmail_id", "invalid_kill_time"):
        # A killmail's reject keeps that killmail alone, so it can be replayed.
        (item,) = orjson.loads(frame)["payload"]["killmails"]
        assert orjson.loads(raw) == item
    else:
        assert raw == (
            frame if isinstance(frame, bytes) else frame.encode("utf-8", "surrogatepass")
        )
    assert client.statistics().rejects == {reason: 1}


def test_a_frame_over_max_frame_bytes_is_rejected_unparsed_with_its_raw_truncated() -> None:
    client = make_client(max_frame_bytes=500, max_reject_bytes=100)
    frame = killmail_update(killmail(1))
    reason, detail, raw = only_reject(receive(client, frame))
    assert reason == "frame_too_large"
    assert f"{len(frame)} bytes" in detail
    assert raw == frame.encode()[:100]


def test_the_size_limit_counts_utf8_bytes_not_characters() -> None:
    frame = message("surprise", {"name": "€" * 400})
    assert len(frame) < 1000 < len(frame.encode())
    assert only_reject(receive(make_client(max_frame_bytes=1000), frame))[0] == "frame_too_large"
    assert only_reject(receive(make_client(max_frame_bytes=2000), frame))[0] == "unknown_event"


@pytest.mark.parametrize(
    "frame",
    [
        "[" * 500_000 + "]" * 500_000,
        '{"a":' * 200_000 + "1" + "}" * 200_000,
        '["]",' * 200_000,
        "[" * 1_000_000,
    ],
)
def test_a_frame_nested_deep_enough_to_crash_the_parser_is_rejected_unparsed(frame: str) -> None:
    # orjson 3.8 overflows the C stack at about 200,000 levels in a thread.
    client = make_client(max_frame_bytes=2_000_000, max_reject_bytes=16)
    reason, _, raw = only_reject(receive(client, frame))
    assert reason == "too_deep"
    assert len(raw) == 16


def test_the_key_strategy_rejects_an_event_without_a_domain_id() -> None:
    client = make_client(key_strategy="key")
    reason, detail, _ = only_reject(receive(client, message("kill_count_update", COUNT)))
    assert reason == "no_dedup_key"
    assert "kill_count_update" in detail


def test_a_bug_in_the_decoder_becomes_a_reject_instead_of_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(_text: str) -> float:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(realtime.kill_events, "parse_time", broken)
    client = make_client()
    frame = killmail_update(killmail(1))
    reason, detail, raw = only_reject(receive(client, frame))
    assert reason == "internal_error"
    assert detail == "RuntimeError: decoder bug"
    assert raw == frame.encode()


def test_every_reject_reason_is_covered_by_these_tests() -> None:
    covered = {reason for reason, _, _ in REJECTED_FRAMES}
    covered |= {"frame_too_large", "too_deep", "no_dedup_key", "internal_error"}
    assert covered == {reason.value for reason in RejectReason}


def test_rejects_are_counted_per_reason() -> None:
    client = make_client()
    receive(client, "nope")
    receive(client, "nope")
    receive(client, killmail_update(killmail(1), 5, killmail(0)))
    stats = client.statistics()
    assert stats.rejects == {"invalid_json": 2, "invalid_killmail": 1, "missing_killmail_id": 1}
    assert stats.frames_received == 3
    assert stats.events == 1
