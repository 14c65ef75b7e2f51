"""Decoding a Wanderer map's SSE events, its REST bootstrap, and the stream request."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from realtime.event import Event, Priority, Reject, parse_time
from realtime.keys import Strategy, content_key, killmail_key
from realtime.map_events import (
    DEFAULT_MAP_EVENTS,
    KNOWN_MAP_EVENTS,
    MapControl,
    MapSystem,
    TrackedCharacter,
    decode_map_event,
    map_event_priority,
    parse_systems,
    parse_tracked_characters,
    stream_headers,
    stream_url,
)
from realtime.sse import SseEvent, SseParser

ULID = "01JDZ3J9Q5V8K2M4N6P8R0T2W4"
MAP_ID = "0b8f2c61-5c1e-4f0e-9a55-2d4c1f0e8a77"
STAMP = "2026-11-27T12:00:00.123456Z"
RECEIVED = 123_456_789


def envelope(type_: str, payload: Any, **overrides: Any) -> dict[str, Any]:
    document = {"id": ULID, "type": type_, "map_id": MAP_ID, "timestamp": STAMP}
    document["payload"] = payload
    document.update(overrides)
    return document


def broken_envelope(overrides: dict[str, Any]) -> dict[str, Any]:
    document = envelope("add_system", {"solar_system_id": 5})
    document.update(overrides)
    return document


def sse(type_: str, data: Any, last_event_id: str = ULID) -> SseEvent:
    text = data if isinstance(data, str) else orjson.dumps(data).decode()
    return SseEvent(type=type_, data=text, last_event_id=last_event_id, retry_ms=None)


def decode(
    event: SseEvent,
    strategies: dict[str, Strategy] | None = None,
    default: Strategy = "hybrid",
) -> Event | Reject | MapControl:
    return decode_map_event("demo", event, RECEIVED, strategies or {}, default)


def decoded_event(event: SseEvent) -> Event:
    result = decode(event)
    assert isinstance(result, Event), result
    return result


def rejected(event: SseEvent) -> Reject:
    result = decode(event)
    assert isinstance(result, Reject), result
    return result


# --- events -------------------------------------------------------------------


def test_an_add_system_event_becomes_a_unified_event() -> None:
    payload = {"solar_system_id": 31000005, "name": "J123450", "position_x": 100}
    event = decoded_event(sse("add_system", envelope("add_system", payload)))
    assert event == Event(
        id=ULID,
        source="map:demo",
        type="add_system",
        time=parse_time(STAMP),
        received_at=RECEIVED,
        key=f"map:demo:{ULID}",
        priority=Priority.HIGH,
        data={**payload, "map_id": MAP_ID},
    )
    assert event.time == pytest.approx(1795780800.123456)


def test_a_map_kill_has_the_same_key_as_the_kill_feeds_killmail() -> None:
    payload = {"killmail_id": 123, "solar_system_id": 31000005, "zkb": {"totalValue": 1e9}}
    event = decoded_event(sse("map_kill", envelope("map_kill", payload)))
    assert event.key == killmail_key(123)
    assert event.data["killmail_id"] == 123
    assert event.id == ULID


def test_the_strategy_is_chosen_per_event_type_with_a_default() -> None:
    payload = {"solar_system_id": 1}
    event = sse("add_system", envelope("add_system", payload))
    by_type = decode(event, {"add_system": "content"}, "key")
    assert isinstance(by_type, Event)
    assert by_type.key == content_key("add_system", {**payload, "map_id": MAP_ID})
    by_default = decode(event, {"deleted_system": "content"}, "key")
    assert isinstance(by_default, Event)
    assert by_default.key == f"map:demo:{ULID}"


def test_an_unknown_type_is_still_a_valid_event_of_low_priority() -> None:
    event = decoded_event(sse("wormhole_collapsed", envelope("wormhole_collapsed", {"x": 1})))
    assert event.type == "wormhole_collapsed"
    assert event.priority == Priority.LOW


def test_priorities_follow_what_the_notifier_needs() -> None:
    assert map_event_priority("map_kill") == Priority.HIGH
    assert map_event_priority("signature_added") == Priority.NORMAL
    assert map_event_priority("brand_new") == Priority.LOW


def test_every_known_type_decodes() -> None:
    for type_ in sorted(KNOWN_MAP_EVENTS):
        payload = {"killmail_id": 1} if type_ == "map_kill" else {"solar_system_id": 1}
        event = decoded_event(sse(type_, envelope(type_, payload)))
        assert event.type == type_


def test_the_envelope_map_id_wins_over_a_payload_field_of_that_name() -> None:
    event = decoded_event(sse("add_system", envelope("add_system", {"map_id": "other"})))
    assert event.data["map_id"] == MAP_ID


def test_an_envelope_without_map_id_or_type_still_decodes() -> None:
    document = envelope("add_system", {"solar_system_id": 1})
    del document["map_id"], document["type"]
    event = decoded_event(sse("add_system", document))
    assert event.data == {"solar_system_id": 1}


def test_an_empty_payload_is_an_event_with_only_the_map_id() -> None:
    event = decoded_event(sse("acl_member_updated", envelope("acl_member_updated", {})))
    assert event.data == {"map_id": MAP_ID}


def test_the_decoded_data_is_a_copy_of_the_payload() -> None:
    payload = {"solar_system_id": 1}
    document = envelope("add_system", payload)
    event = decoded_event(sse("add_system", document))
    assert "map_id" not in payload
    assert event.data is not payload


def test_a_stream_parsed_end_to_end_decodes_into_events_and_a_control() -> None:
    connected = orjson.dumps({"map_id": MAP_ID, "server_time": STAMP})
    kill = orjson.dumps(envelope("map_kill", {"killmail_id": 77}))
    stream = b"event: connected\ndata: " + connected + b"\n\n"
    stream += b": keepalive\nid: " + ULID.encode() + b"\nevent: map_kill\ndata: " + kill + b"\n\n"
    items = SseParser().feed(stream)
    results = [decode(item) for item in items if isinstance(item, SseEvent)]
    assert results[0] == MapControl(type="connected", map_id=MAP_ID, server_time=parse_time(STAMP))
    assert isinstance(results[1], Event)
    assert results[1].key == killmail_key(77)


# --- connected ------------------------------------------------------------------


def test_connected_is_a_control_value_not_an_event() -> None:
    result = decode(sse("connected", {"map_id": MAP_ID, "server_time": STAMP}, ""))
    assert result == MapControl(type="connected", map_id=MAP_ID, server_time=parse_time(STAMP))


@pytest.mark.parametrize("server_time", [None, "yesterday", 1795780800, {"t": 1}])
def test_connected_with_an_unusable_server_time_has_none(server_time: object) -> None:
    result = decode(sse("connected", {"map_id": MAP_ID, "server_time": server_time}))
    assert result == MapControl(type="connected", map_id=MAP_ID, server_time=None)


def test_connected_without_map_id_has_an_empty_one() -> None:
    assert decode(sse("connected", {})) == MapControl("connected", "", None)


@pytest.mark.parametrize(
    ("data", "reason"),
    [("{", "invalid_json"), ("[1]", "not_an_object"), ('{"map_id": 5}', "invalid_map_id")],
)
def test_a_broken_connected_greeting_is_rejected(data: str, reason: str) -> None:
    assert rejected(sse("connected", data)).reason == reason


# --- rejects ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("not json", "invalid_json"),
        ("", "invalid_json"),
        ('{"id": "x"', "invalid_json"),
        ("\ufffd", "invalid_json"),
        ("[]", "not_an_object"),
        ('"text"', "not_an_object"),
        ("null", "not_an_object"),
        ("42", "not_an_object"),
    ],
)
def test_data_that_is_not_a_json_object_is_rejected(data: str, reason: str) -> None:
    assert rejected(sse("add_system", data)).reason == reason


@pytest.mark.parametrize(
    ("overrides", "last_event_id", "reason"),
    [
        ({"map_id": 12}, ULID, "invalid_map_id"),
        ({}, "", "missing_event_id"),
        ({"id": None}, ULID, "missing_event_id"),
        ({"id": ""}, ULID, "missing_event_id"),
        ({"id": 17}, ULID, "missing_event_id"),
        ({"id": "01JDZ000000000000000000000"}, ULID, "mismatched_event_id"),
        ({"type": "deleted_system"}, ULID, "mismatched_type"),
        ({"type": None}, ULID, "mismatched_type"),
        ({"timestamp": None}, ULID, "missing_timestamp"),
        ({"timestamp": "27/11/2026"}, ULID, "invalid_timestamp"),
        ({"timestamp": 1795780800}, ULID, "invalid_timestamp"),
        ({"timestamp": "2026-13-01T00:00:00Z"}, ULID, "invalid_timestamp"),
        ({"payload": None}, ULID, "missing_payload"),
        ({"payload": [1, 2]}, ULID, "invalid_payload"),
        ({"payload": "text"}, ULID, "invalid_payload"),
    ],
)
def test_a_broken_envelope_is_rejected_with_a_precise_reason(
    overrides: dict[str, Any], last_event_id: str, reason: str
) -> None:
    document = broken_envelope(overrides)
    assert rejected(sse("add_system", document, last_event_id)).reason == reason


def test_missing_envelope_fields_are_rejected_like_null_ones() -> None:
    for field, reason in [
        ("id", "missing_event_id"),
        ("timestamp", "missing_timestamp"),
        ("payload", "missing_payload"),
    ]:
        document = broken_envelope({})
        del document[field]
        assert rejected(sse("add_system", document)).reason == reason


def test_an_event_carrying_the_previous_events_id_is_a_mismatch_not_a_duplicate() -> None:
    # An SSE block without its own id line inherits the last one; trusting it
    # would journal the event under another event's id.
    stream = b"id: " + ULID.encode() + b"\nevent: add_system\ndata: "
    stream += orjson.dumps(envelope("add_system", {"solar_system_id": 1})) + b"\n\n"
    stream += b"event: add_system\ndata: "
    stream += orjson.dumps(envelope("add_system", {"solar_system_id": 2}, id="01JDZ4")) + b"\n\n"
    first, second = SseParser().feed(stream)
    assert isinstance(first, SseEvent)
    assert isinstance(second, SseEvent)
    assert isinstance(decode(first), Event)
    assert rejected(second).reason == "mismatched_event_id"


@pytest.mark.parametrize("killmail_id", [None, "123", 1.5, True, [123]])
def test_a_map_kill_without_an_integer_killmail_id_is_rejected(killmail_id: object) -> None:
    payload: dict[str, Any] = {"solar_system_id": 1}
    if killmail_id is not None:
        payload["killmail_id"] = killmail_id
    reject = rejected(sse("map_kill", envelope("map_kill", payload)))
    assert reject.reason == "missing_killmail_id"


def test_a_reject_keeps_source_raw_bytes_detail_and_arrival() -> None:
    reject = rejected(sse("add_system", "{oops", "01ABC"))
    assert reject == Reject(
        source="map:demo",
        reason="invalid_json",
        detail=reject.detail,
        raw=b"{oops",
        received_at=RECEIVED,
    )
    assert reject.detail.startswith("add_system 01ABC: data is not JSON")


def test_a_reject_keeps_at_most_max_raw_bytes() -> None:
    big = "x" * 1000
    result = decode_map_event("demo", sse("add_system", big), 0, {}, "hybrid", max_raw_bytes=10)
    assert isinstance(result, Reject)
    assert result.raw == b"x" * 10


# --- defaults -------------------------------------------------------------------


def test_default_events_are_known_types_the_notifier_needs() -> None:
    assert set(DEFAULT_MAP_EVENTS) <= KNOWN_MAP_EVENTS
    for needed in ("add_system", "deleted_system", "character_added", "map_kill"):
        assert needed in DEFAULT_MAP_EVENTS
    assert len(set(DEFAULT_MAP_EVENTS)) == len(DEFAULT_MAP_EVENTS)
    assert len(KNOWN_MAP_EVENTS) == 23


# --- REST: systems ------------------------------------------------------------------


def test_systems_are_read_with_every_documented_field() -> None:
    document = {
        "data": {
            "systems": [
                {
                    "solar_system_id": 31000005,
                    "name": "J123450",
                    "original_name": "J123450",
                    "custom_name": "Home",
                    "temporary_name": None,
                    "status": 2,
                    "position_x": 100,
                    "position_y": 200.5,
                    "locked": True,
                    "visible": False,
                    "labels": '{"customLabel":"","labels":["A","B"]}',
                }
            ],
            "connections": [],
        }
    }
    assert parse_systems(document) == [
        MapSystem(
            solar_system_id=31000005,
            name="J123450",
            original_name="J123450",
            custom_name="Home",
            temporary_name=None,
            status=2,
            position_x=100.0,
            position_y=200.5,
            locked=True,
            visible=False,
            labels=("A", "B"),
        )
    ]


def test_a_system_with_only_its_id_gets_defaults() -> None:
    system = parse_systems({"data": {"systems": [{"solar_system_id": "30000142"}]}})[0]
    assert system == MapSystem(solar_system_id=30000142)
    assert system.display_name == "30000142"


def test_optional_system_fields_of_the_wrong_type_are_ignored() -> None:
    entry = {
        "solar_system_id": 1,
        "name": 5,
        "status": "2",
        "position_x": "10",
        "locked": "yes",
        "visible": 0,
        "labels": 7,
    }
    assert parse_systems({"data": {"systems": [entry]}}) == [MapSystem(solar_system_id=1)]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ('["a", "b"]', ("a", "b")),
        ('{"labels": ["x"], "customLabel": "c"}', ("x",)),
        ('{"customLabel": "c"}', ()),
        ("", ()),
        ("not json", ()),
        ("null", ()),
        ('["a", 1, "", null]', ("a",)),
        (["already", "a", "list"], ("already", "a", "list")),
        (None, ()),
    ],
)
def test_labels_decode_from_their_json_string(labels: object, expected: tuple[str, ...]) -> None:
    system = parse_systems({"data": {"systems": [{"solar_system_id": 1, "labels": labels}]}})[0]
    assert system.labels == expected


def test_the_display_name_prefers_temporary_then_custom_then_name() -> None:
    assert MapSystem(1, name="N", custom_name="C", temporary_name="T").display_name == "T"
    assert MapSystem(1, name="N", custom_name="C", temporary_name="").display_name == "C"
    assert MapSystem(1, name="N").display_name == "N"
    assert MapSystem(1, original_name="O").display_name == "O"


@pytest.mark.parametrize(
    "document",
    [None, [], {"systems": []}, {"data": []}, {"data": {"systems": {}}}, {"data": {}}, "text"],
)
def test_systems_of_the_wrong_shape_raise_a_clear_error(document: object) -> None:
    with pytest.raises(ValueError, match=r"expected \{\"data\": \{\"systems\""):
        parse_systems(document)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ([1], r"systems\[0\] is a list"),
        ({"name": "x"}, r"systems\[0\] has no integer solar_system_id"),
        ({"solar_system_id": "J1"}, "has no integer solar_system_id: 'J1'"),
        ({"solar_system_id": True}, "has no integer solar_system_id"),
        ({"solar_system_id": 1.0}, "has no integer solar_system_id"),
    ],
)
def test_a_system_without_a_usable_id_raises(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_systems({"data": {"systems": [entry]}})


def test_an_empty_system_list_is_no_systems() -> None:
    assert parse_systems({"data": {"systems": []}}) == []


# --- REST: tracked characters --------------------------------------------------------


def test_tracked_characters_take_their_eve_id_from_the_character_as_an_int() -> None:
    document = {
        "data": [
            {
                "id": "settings-1",
                "map_id": MAP_ID,
                "character_id": "c3f1a0d2-uuid",
                "tracked": True,
                "character": {
                    "eve_id": "2119999999",
                    "name": "Pilot",
                    "corporation_id": 98000001,
                    "corporation_ticker": "CORP",
                    "alliance_id": 99000001,
                    "alliance_ticker": "ALLY",
                },
            }
        ]
    }
    assert parse_tracked_characters(document) == [
        TrackedCharacter(
            eve_id=2119999999,
            name="Pilot",
            corporation_id=98000001,
            corporation_ticker="CORP",
            alliance_id=99000001,
            alliance_ticker="ALLY",
            character_id="c3f1a0d2-uuid",
            tracked=True,
        )
    ]


def test_a_tracked_character_with_only_an_eve_id_gets_defaults() -> None:
    document = {"data": [{"character": {"eve_id": 5, "alliance_id": None}}]}
    assert parse_tracked_characters(document) == [TrackedCharacter(eve_id=5)]


def test_the_tracked_flag_is_kept_so_the_caller_can_filter() -> None:
    document = {"data": [{"tracked": False, "character": {"eve_id": "1"}}]}
    assert parse_tracked_characters(document)[0].tracked is False


def test_corporation_and_alliance_ids_sent_as_strings_become_ints() -> None:
    document = {"data": [{"character": {"eve_id": "1", "corporation_id": "2", "alliance_id": "x"}}]}
    character = parse_tracked_characters(document)[0]
    assert (character.corporation_id, character.alliance_id) == (2, None)


@pytest.mark.parametrize("document", [None, [], {"data": {}}, {"characters": []}, {"data": "x"}])
def test_tracked_characters_of_the_wrong_shape_raise_a_clear_error(document: object) -> None:
    with pytest.raises(ValueError, match=r"expected \{\"data\": \[\.\.\.\]\}"):
        parse_tracked_characters(document)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("x", r"data\[0\] is a str"),
        ({"character": None}, r"data\[0\] has no character object"),
        ({"character": {"name": "x"}}, r"data\[0\]\.character has no decimal eve_id"),
        ({"character": {"eve_id": "-5"}}, "has no decimal eve_id"),
        ({"character": {"eve_id": "\uff11\uff12"}}, "has no decimal eve_id"),  # fullwidth
    ],
)
def test_a_tracked_character_without_a_usable_eve_id_raises(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tracked_characters({"data": [entry]})


# --- the stream request -------------------------------------------------------------


def test_the_stream_url_carries_events_and_the_resume_point_as_query_parameters() -> None:
    url = stream_url("http://map.example/", "my map", ["add_system", "map_kill"], ULID)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "http",
        "map.example",
        "/api/maps/my%20map/events/stream",
    )
    assert parse_qs(parts.query) == {"events": ["add_system,map_kill"], "last_event_id": [ULID]}
    assert "events=add_system,map_kill" in url


def test_the_stream_url_omits_empty_parameters() -> None:
    base = "http://127.0.0.1:4010/api/maps/demo/events/stream"
    assert stream_url("http://127.0.0.1:4010", "demo", [], None) == base
    assert stream_url("http://127.0.0.1:4010", "demo", (), "") == base


def test_the_stream_url_keeps_the_all_events_wildcard_readable() -> None:
    assert stream_url("http://h", "demo", ["*"], None).endswith("?events=*")


def test_a_slug_cannot_escape_its_path_segment() -> None:
    url = stream_url("http://h", "../admin?x=1", [], None)
    assert urlsplit(url).path == "/api/maps/..%2Fadmin%3Fx%3D1/events/stream"


@pytest.mark.parametrize("name", ["", "a,b"])
def test_an_event_type_that_would_break_the_events_list_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="events= list"):
        stream_url("http://h", "demo", ["add_system", name], None)


def test_stream_headers_send_the_key_the_resume_point_no_cache_and_no_compression() -> None:
    assert stream_headers("secret", ULID) == {
        "Authorization": "Bearer secret",
        "Accept": "text/event-stream",
        "Accept-Encoding": "identity",
        "Last-Event-ID": ULID,
        "Cache-Control": "no-cache",
    }


def test_stream_headers_without_key_or_resume_point_omit_them() -> None:
    assert stream_headers("", None) == {
        "Accept": "text/event-stream",
        "Accept-Encoding": "identity",
        "Cache-Control": "no-cache",
    }
    assert "Last-Event-ID" not in stream_headers("k", "")


@pytest.mark.parametrize(
    ("key", "last_id"), [("a\r\nX-Evil: 1", None), ("k", "id\n"), ("k\0", None)]
)
def test_stream_headers_refuse_values_that_would_split_a_header(
    key: str, last_id: str | None
) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        stream_headers(key, last_id)


def test_a_coordinate_too_large_for_a_float_is_no_coordinate() -> None:
    document = {"data": {"systems": [{"solar_system_id": 31000005, "position_x": 10**400}]}}
    (system,) = parse_systems(document)
    assert system.position_x is None


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_an_event_nested_deeper_than_the_bound_is_rejected_before_it_is_parsed() -> None:
    # 300 deep decoded fine and then broke the msgpack export of the journal
    deep = envelope("add_system", {"solar_system_id": 5, "labels": nested(300)})
    reject = rejected(sse("add_system", json.dumps(deep)))  # orjson cannot write it
    assert reject.reason == "too_deep"
    assert "max_depth 64" in reject.detail


def test_an_event_within_the_nesting_bound_decodes() -> None:
    event = decoded_event(sse("add_system", envelope("add_system", {"a": nested(60)})))
    assert event.data["a"] == nested(60)
