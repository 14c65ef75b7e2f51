from realtime.keys import content_key, event_key, killmail_key


def test_killmail_has_the_same_key_from_websocket_and_map() -> None:
    ws = event_key("wanderer-kills", "killmail", "123", {"killmail_id": 123}, "hybrid")
    sse = event_key(
        "map:demo", "map_kill", "01JDZ3J9Q5V8K2M4N6P8R0T2W4", {"killmail_id": 123}, "key"
    )
    assert ws == sse == killmail_key(123)


def test_map_event_key_is_its_source_and_sse_id() -> None:
    key = event_key("map:demo", "add_system", "01JDZ", {"solar_system_id": 1}, "key")
    assert key == "map:demo:01JDZ"


def test_content_key_ignores_key_order_and_nothing_else() -> None:
    assert content_key("t", {"a": 1, "b": 2}) == content_key("t", {"b": 2, "a": 1})
    assert content_key("t", {"a": 1}) != content_key("t", {"a": 2})
    assert content_key("t", {"a": 1}) != content_key("u", {"a": 1})


def test_hybrid_falls_back_to_content_without_an_id() -> None:
    data = {"system_id": 5, "count": 3}
    assert event_key("wanderer-kills", "kill_count_update", "", data, "hybrid") == content_key(
        "kill_count_update", data
    )
