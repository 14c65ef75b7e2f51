"""PhoenixClient: URL, join, channel state, heartbeats, liveness and reset."""

from __future__ import annotations

import pytest

from realtime.phoenix import (
    ChannelClosed,
    ChannelErrored,
    ChannelState,
    Joined,
    JoinFailed,
    PhoenixClient,
    Preload,
)
from realtime.subscriptions import Subscription
from tests.support.phoenix import (
    CHARACTER,
    LOBBY,
    OTHER_SYSTEM,
    SYSTEM,
    TIMEOUT_S,
    joined_client,
    make_client,
    message,
    reply,
    sent,
)

# -- connect_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://127.0.0.1:4004", "ws://127.0.0.1:4004/socket/websocket?vsn=1.0.0"),
        ("https://kills.example.com", "wss://kills.example.com/socket/websocket?vsn=1.0.0"),
        (
            "https://kills.example.com:8443/",
            "wss://kills.example.com:8443/socket/websocket?vsn=1.0.0",
        ),
        ("http://h:4004/socket/websocket", "ws://h:4004/socket/websocket?vsn=1.0.0"),
        ("https://proxy.example/kills/", "wss://proxy.example/kills/socket/websocket?vsn=1.0.0"),
        ("ws://127.0.0.1:4004/socket/websocket", "ws://127.0.0.1:4004/socket/websocket?vsn=1.0.0"),
        ("wss://h/socket/websocket?vsn=1.0.0", "wss://h/socket/websocket?vsn=1.0.0"),
        (
            "ws://h/socket/websocket?client=notifier",
            "ws://h/socket/websocket?client=notifier&vsn=1.0.0",
        ),
        ("HTTP://h:1/#fragment", "ws://h:1/socket/websocket?vsn=1.0.0"),
    ],
)
def test_connect_url_maps_a_base_url_to_the_v1_websocket_endpoint(base: str, url: str) -> None:
    assert PhoenixClient.connect_url(base) == url


@pytest.mark.parametrize(
    "base",
    ["ftp://h/", "h:4004", "http:///socket", "ws://h/socket/websocket?vsn=2.0.0", ""],
)
def test_connect_url_refuses_what_this_client_cannot_speak(base: str) -> None:
    with pytest.raises(ValueError, match=r"URL|host|vsn"):
        PhoenixClient.connect_url(base)


# -- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    [
        {"heartbeat_interval_s": 0.0},
        {"heartbeat_timeout_s": -1.0},
        {"updates_per_minute": 0},
        {"max_frame_bytes": 0},
        {"max_depth": 0},
        {"max_depth": 255},
        {"push_timeout_s": 0.0},
        {"max_systems": -1},
    ],
)
def test_out_of_range_settings_are_refused(setting: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(setting))):
        make_client(**setting)


# -- join ------------------------------------------------------------------------------


def test_join_frame_is_a_v1_phx_join_with_sorted_ids_and_the_preload_request() -> None:
    client = make_client()
    frame = sent(
        client.join_frame(
            [SYSTEM, OTHER_SYSTEM],
            [CHARACTER],
            0.0,
            preload=Preload(limit_per_system=5, since_hours=12),
        )
    )
    assert frame == {
        "topic": LOBBY,
        "event": "phx_join",
        "ref": frame["ref"],
        "payload": {
            "systems": [OTHER_SYSTEM, SYSTEM],
            "character_ids": [CHARACTER],
            "preload": {"enabled": True, "limit_per_system": 5, "since_hours": 12},
        },
    }
    assert isinstance(frame["ref"], str)
    assert client.state is ChannelState.JOINING


def test_join_drops_every_id_the_server_would_refuse_and_counts_it() -> None:
    client = make_client()
    systems = [1, 50_000_000, 0, -1, 50_000_001, "31000005", True, 1.5, None, SYSTEM, SYSTEM]
    characters = [90_000_000, 3_000_000_000, 89_999_999, 3_000_000_001, str(CHARACTER), False]
    frame = sent(client.join_frame(systems, characters, 0.0))
    assert frame["payload"]["systems"] == [1, SYSTEM, 50_000_000]
    assert frame["payload"]["character_ids"] == [90_000_000, 3_000_000_000]
    assert client.desired == Subscription(
        frozenset({1, SYSTEM, 50_000_000}), frozenset({90_000_000, 3_000_000_000})
    )
    assert client.statistics().dropped_ids == {
        "invalid_system_ids": 7,
        "invalid_character_ids": 4,
    }


def test_join_sends_at_most_the_server_limit_of_ids_keeping_the_lowest() -> None:
    client = make_client(max_systems=3, max_characters=1)
    frame = sent(client.join_frame([5, 4, 3, 2, 1], [CHARACTER + 1, CHARACTER], 0.0))
    assert frame["payload"]["systems"] == [1, 2, 3]
    assert frame["payload"]["character_ids"] == [CHARACTER]
    dropped = client.statistics().dropped_ids
    assert dropped == {"excess_system_ids": 2, "excess_character_ids": 1}


def test_join_reply_ok_joins_and_acknowledges_the_subscription_sent() -> None:
    client = make_client()
    ref = sent(client.join_frame([SYSTEM], [CHARACTER], 0.0))["ref"]
    response = {"subscription_id": "abc", "subscribed_systems": [SYSTEM], "status": "connected"}
    received = client.receive(reply(ref, response=response), 7, 0.1)
    expected = Subscription(frozenset({SYSTEM}), frozenset({CHARACTER}))
    assert received.control == Joined(expected, "abc")
    assert received.events == ()
    assert received.rejects == ()
    assert client.state is ChannelState.JOINED
    assert client.acknowledged == expected


def test_join_reply_error_fails_the_join_with_the_server_reason() -> None:
    client = make_client()
    ref = sent(client.join_frame([SYSTEM], [], 0.0))["ref"]
    received = client.receive(reply(ref, "error", {"reason": "Invalid system IDs"}), 0, 0.1)
    assert received.control == JoinFailed("Invalid system IDs")
    assert client.state is ChannelState.ERRORED
    assert client.acknowledged == Subscription()
    assert client.statistics().join_failures == 1


def test_join_error_without_a_text_reason_reports_the_whole_response() -> None:
    client = make_client()
    ref = sent(client.join_frame([SYSTEM], [], 0.0))["ref"]
    received = client.receive(reply(ref, "error", {"reason": {"code": 42}}), 0, 0.1)
    assert received.control == JoinFailed('{"reason":{"code":42}}')


def test_a_reply_to_an_earlier_join_does_not_complete_the_current_one() -> None:
    client = make_client()
    first = sent(client.join_frame([SYSTEM], [], 0.0))["ref"]
    client.join_frame([OTHER_SYSTEM], [], 1.0)
    received = client.receive(reply(first), 0, 1.1)
    assert received.control is None
    assert client.state is ChannelState.JOINING
    assert client.statistics().ignored == {"unmatched_reply": 1}


def test_phx_close_closes_the_channel_and_forgets_the_acknowledged_subscription() -> None:
    client = joined_client()
    received = client.receive(message("phx_close", {}), 0, 1.0)
    assert received.control == ChannelClosed()
    assert client.state is ChannelState.CLOSED
    assert client.acknowledged == Subscription()
    assert client.desired.systems == {SYSTEM}


def test_phx_error_errors_the_channel() -> None:
    client = joined_client()
    received = client.receive(message("phx_error", {}, ref="1"), 0, 1.0)
    assert received.control == ChannelErrored()
    assert client.state is ChannelState.ERRORED
    assert client.acknowledged == Subscription()


def test_the_close_of_a_channel_instance_replaced_by_a_rejoin_is_ignored() -> None:
    client = make_client()
    first = sent(client.join_frame([SYSTEM], [], 0.0))["ref"]
    client.receive(reply(first), 0, 0.1)
    second = sent(client.join_frame([SYSTEM], [], 1.0))["ref"]
    assert client.receive(message("phx_close", {}, ref=first), 0, 1.1).control is None
    assert client.state is ChannelState.JOINING
    assert client.receive(reply(second), 0, 1.2).control is not None
    assert client.statistics().state is ChannelState.JOINED
    assert client.statistics().ignored == {"stale_channel_event": 1}


def test_a_repeated_close_of_a_closed_channel_does_not_close_its_rejoin() -> None:
    client = make_client()
    first = sent(client.join_frame([SYSTEM], [], 0.0))["ref"]
    client.receive(reply(first), 0, 0.1)
    client.receive(message("phx_close", {}, ref=first), 0, 1.0)
    client.join_frame([SYSTEM], [], 2.0)
    assert client.receive(message("phx_close", {}, ref=first), 0, 2.1).control is None
    assert client.state is ChannelState.JOINING


# -- heartbeats --------------------------------------------------------------------------


def test_heartbeat_frame_goes_to_the_phoenix_topic_with_a_fresh_ref_each_time() -> None:
    client = make_client()
    first = sent(client.heartbeat_frame(0.0))
    second = sent(client.heartbeat_frame(30.0))
    assert first == {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": first["ref"]}
    assert first["ref"] != second["ref"]
    assert client.statistics().heartbeats_sent == 2


def test_the_reply_with_the_heartbeat_ref_gives_the_round_trip_from_the_injected_clock() -> None:
    client = make_client()
    ref = sent(client.heartbeat_frame(100.0))["ref"]
    received = client.receive(reply(ref, topic="phoenix"), 0, 100.25)
    assert received.rtt_s == pytest.approx(0.25)
    assert client.last_rtt_s == pytest.approx(0.25)
    stats = client.statistics()
    assert stats.heartbeat_replies == 1
    assert stats.last_rtt_s == pytest.approx(0.25)


def test_a_reply_with_another_ref_is_no_round_trip() -> None:
    client = make_client()
    ref = sent(client.heartbeat_frame(0.0))["ref"]
    received = client.receive(reply(ref + "0", topic="phoenix"), 0, 0.5)
    assert received.rtt_s is None
    assert client.last_rtt_s is None
    assert client.statistics().ignored == {"unmatched_reply": 1}
    # The awaited reply still counts when it comes.
    assert client.receive(reply(ref, topic="phoenix"), 0, 0.75).rtt_s == pytest.approx(0.75)


def test_a_heartbeat_answered_twice_gives_one_round_trip() -> None:
    client = make_client()
    ref = sent(client.heartbeat_frame(0.0))["ref"]
    assert client.receive(reply(ref, topic="phoenix"), 0, 0.1).rtt_s is not None
    assert client.receive(reply(ref, topic="phoenix"), 0, 0.2).rtt_s is None


def test_heartbeat_is_due_an_interval_after_the_connection_is_first_seen_then_after_each() -> None:
    client = make_client()
    assert not client.heartbeat_due(5.0)
    assert not client.heartbeat_due(34.9)
    assert client.heartbeat_due(35.0)
    client.heartbeat_frame(35.0)
    assert not client.heartbeat_due(64.9)
    assert client.heartbeat_due(65.0)


# -- liveness --------------------------------------------------------------------------


def test_a_heartbeat_unanswered_when_the_next_is_due_is_a_dead_connection() -> None:
    client = joined_client(now=0.0)
    client.heartbeat_frame(30.0)
    assert client.is_dead(59.9) is None
    reason = client.is_dead(60.0)
    assert reason is not None
    assert reason.startswith("heartbeat_timeout:")


def test_an_answered_heartbeat_keeps_the_connection_alive() -> None:
    client = joined_client(now=0.0)
    ref = sent(client.heartbeat_frame(30.0))["ref"]
    client.receive(reply(ref, topic="phoenix"), 0, 30.05)
    assert client.is_dead(60.0) is None
    ref = sent(client.heartbeat_frame(60.0))["ref"]
    client.receive(reply(ref, topic="phoenix"), 0, 60.05)
    assert client.is_dead(90.0) is None


def test_heartbeats_sent_since_do_not_hide_the_oldest_unanswered_one() -> None:
    client = joined_client(now=0.0)
    client.heartbeat_frame(30.0)
    client.receive(message("kill_count_update", {}), 0, 40.0)
    client.heartbeat_frame(45.0)
    assert client.is_dead(59.9) is None
    reason = client.is_dead(60.0)
    assert reason is not None
    assert reason.startswith("heartbeat_timeout:")


def test_a_reply_answers_its_heartbeat_and_every_earlier_one() -> None:
    client = joined_client(now=0.0)
    client.heartbeat_frame(30.0)
    ref = sent(client.heartbeat_frame(45.0))["ref"]
    assert client.receive(reply(ref, topic="phoenix"), 0, 46.0).rtt_s == 1.0
    assert client.is_dead(74.9) is None


def test_silence_for_the_heartbeat_timeout_is_a_dead_connection() -> None:
    client = joined_client(now=0.0)
    assert client.is_dead(59.9) is None
    reason = client.is_dead(60.0)
    assert reason is not None
    assert reason.startswith("silent:")


def test_a_heartbeat_sent_is_not_traffic() -> None:
    # The Elixir client recorded heartbeats when sent: a half-open socket looked alive.
    client = joined_client(now=0.0)
    client.heartbeat_frame(59.0)
    reason = client.is_dead(60.0)
    assert reason is not None
    assert reason.startswith("silent:")


def test_any_inbound_frame_is_traffic_even_one_that_is_rejected() -> None:
    client = joined_client(now=0.0)
    assert client.receive(b"\xff\xfe", 0, 50.0).rejects
    assert client.is_dead(109.9) is None
    assert client.is_dead(110.0) is not None


def test_silence_counts_from_when_the_connection_is_first_seen() -> None:
    client = make_client()
    assert client.is_dead(1000.0) is None
    assert client.is_dead(1000.0 + TIMEOUT_S) is not None


def test_a_join_unanswered_for_the_push_timeout_is_a_dead_connection() -> None:
    client = make_client(push_timeout_s=10.0)
    client.join_frame([SYSTEM], [], 0.0)
    client.receive(message("kill_count_update", {}), 0, 9.0)
    assert client.is_dead(9.9) is None
    reason = client.is_dead(10.0)
    assert reason is not None
    assert reason.startswith("join_timeout:")


def test_while_reading_is_paused_unanswered_heartbeats_and_silence_are_not_death() -> None:
    client = joined_client(now=0.0)
    client.heartbeat_frame(30.0)
    client.reading_paused(40.0)
    client.heartbeat_frame(60.0)  # the previous answer waits unread in the socket
    client.heartbeat_frame(90.0)
    assert client.is_dead(500.0) is None


def test_after_a_pause_the_peer_owes_only_what_it_owed_when_reading_stopped() -> None:
    client = joined_client(now=0.0)
    client.receive(message("kill_count_update", {}), 0, 25.0)
    client.heartbeat_frame(30.0)
    client.reading_paused(40.0)
    client.reading_resumed(140.0)
    # 10 s of the heartbeat's 30 s had passed when reading stopped
    assert client.is_dead(159.9) is None
    reason = client.is_dead(160.0)
    assert reason is not None
    assert reason.startswith("heartbeat_timeout:")


def test_a_heartbeat_sent_during_a_pause_is_owed_from_when_reading_resumed() -> None:
    client = joined_client(now=0.0)
    client.reading_paused(10.0)
    ref = sent(client.heartbeat_frame(30.0))["ref"]
    client.reading_resumed(100.0)
    client.receive(reply(ref, topic="phoenix"), 0, 100.5)
    assert client.statistics().last_rtt_s == 0.5
    assert client.is_dead(129.9) is None


# -- reset -------------------------------------------------------------------------------


def test_reset_keeps_the_desired_subscription_and_forgets_the_connection() -> None:
    client = joined_client(systems=(SYSTEM, OTHER_SYSTEM))
    ref = sent(client.heartbeat_frame(30.0))["ref"]
    client.receive(reply(ref, topic="phoenix"), 0, 30.1)
    stale = sent(client.heartbeat_frame(60.0))["ref"]
    client.reset()
    assert client.state is ChannelState.CLOSED
    assert client.acknowledged == Subscription()
    assert client.desired.systems == {SYSTEM, OTHER_SYSTEM}
    assert client.last_rtt_s is None
    # A new clock: nothing is pending, nothing is overdue.
    assert client.is_dead(500.0) is None
    assert not client.heartbeat_due(500.0)
    # A late reply from the old connection is not taken for the new one's.
    assert client.receive(reply(stale, topic="phoenix"), 0, 501.0).rtt_s is None
    new_ref = sent(client.join_frame(client.desired.systems, client.desired.characters, 502.0))
    assert new_ref["ref"] not in {ref, stale}
    stats = client.statistics()
    assert (stats.heartbeats_sent, stats.joins_sent, stats.frames_received) == (2, 2, 3)
