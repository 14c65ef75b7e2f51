"""PhoenixClient: changing the subscription without re-joining, within the rate limit."""

from __future__ import annotations

import pytest

from realtime.phoenix import ChannelState, PhoenixClient
from realtime.subscriptions import Subscription, SubscriptionAck, UpdateKind
from tests.support.phoenix import (
    CHARACTER,
    OTHER_SYSTEM,
    SYSTEM,
    joined_client,
    make_client,
    message,
    reply,
    sent,
)


def updates(frames: list[str]) -> dict[str, list[int]]:
    """Update frames as ``{event: ids}``, checking their envelope."""
    result: dict[str, list[int]] = {}
    for frame in frames:
        decoded = sent(frame)
        assert decoded["topic"] == "killmails:lobby"
        assert isinstance(decoded["ref"], str)
        ((field, ids),) = decoded["payload"].items()
        assert field == ("systems" if "systems" in decoded["event"] else "character_ids")
        result[decoded["event"]] = ids
    return result


def confirm_all(frames: list[str], client: PhoenixClient, now: float) -> None:
    for frame in frames:
        client.receive(reply(sent(frame)["ref"]), 0, now)


def test_nothing_is_sent_before_the_channel_is_joined() -> None:
    client = make_client()
    client.set_desired([SYSTEM], [])
    assert client.pending_updates(0.0) == []
    client.join_frame([], [], 0.0)
    client.set_desired([SYSTEM], [])
    assert client.pending_updates(1.0) == []


def test_nothing_is_sent_when_the_server_has_what_is_desired() -> None:
    client = joined_client()
    assert client.pending_updates(1.0) == []
    client.set_desired([SYSTEM], [CHARACTER])
    assert client.pending_updates(2.0) == []


def test_the_difference_goes_out_as_one_frame_per_kind_removals_first() -> None:
    client = joined_client(systems=(SYSTEM, OTHER_SYSTEM), characters=(CHARACTER,))
    new_systems = list(range(30000001, 30000101))
    client.set_desired([SYSTEM, *reversed(new_systems)], [CHARACTER + 1])
    frames = client.pending_updates(1.0)
    assert [sent(frame)["event"] for frame in frames] == [
        "unsubscribe_systems",
        "unsubscribe_characters",
        "subscribe_systems",
        "subscribe_characters",
    ]
    assert updates(frames) == {
        "unsubscribe_systems": [OTHER_SYSTEM],
        "unsubscribe_characters": [CHARACTER],
        "subscribe_systems": new_systems,
        "subscribe_characters": [CHARACTER + 1],
    }


def test_a_confirmed_change_is_acknowledged_and_not_sent_again() -> None:
    client = joined_client()
    client.set_desired([SYSTEM, OTHER_SYSTEM], [])
    frames = client.pending_updates(1.0)
    assert updates(frames) == {
        "subscribe_systems": [OTHER_SYSTEM],
        "unsubscribe_characters": [CHARACTER],
    }
    controls = [client.receive(reply(sent(f)["ref"]), 0, 1.1).control for f in frames]
    assert controls == [
        SubscriptionAck(UpdateKind.UNSUBSCRIBE_CHARACTERS, frozenset({CHARACTER}), ok=True),
        SubscriptionAck(UpdateKind.SUBSCRIBE_SYSTEMS, frozenset({OTHER_SYSTEM}), ok=True),
    ]
    assert client.acknowledged == Subscription(frozenset({SYSTEM, OTHER_SYSTEM}), frozenset())
    assert client.pending_updates(2.0) == []
    assert client.statistics().updates_confirmed == 2


def test_a_change_awaiting_its_reply_is_not_sent_twice() -> None:
    client = joined_client()
    client.set_desired([SYSTEM, OTHER_SYSTEM], [CHARACTER])
    assert len(client.pending_updates(1.0)) == 1
    assert client.pending_updates(2.0) == []
    assert client.statistics().updates_in_flight == 1


def test_a_refused_change_is_reported_and_sent_again_later() -> None:
    client = joined_client()
    client.set_desired([SYSTEM, OTHER_SYSTEM], [CHARACTER])
    (frame,) = client.pending_updates(1.0)
    received = client.receive(reply(sent(frame)["ref"], "error", {"reason": "busy"}), 0, 1.1)
    assert received.control == SubscriptionAck(
        UpdateKind.SUBSCRIBE_SYSTEMS, frozenset({OTHER_SYSTEM}), ok=False, reason="busy"
    )
    assert client.acknowledged.systems == {SYSTEM}
    assert updates(client.pending_updates(2.0)) == {"subscribe_systems": [OTHER_SYSTEM]}
    assert client.statistics().updates_failed == 1


def test_an_unanswered_change_times_out_and_is_sent_again() -> None:
    client = joined_client(push_timeout_s=10.0)
    client.set_desired([SYSTEM, OTHER_SYSTEM], [CHARACTER])
    (first,) = client.pending_updates(1.0)
    assert client.pending_updates(10.9) == []
    (second,) = client.pending_updates(11.0)
    assert sent(second)["payload"] == sent(first)["payload"]
    assert sent(second)["ref"] != sent(first)["ref"]
    assert client.statistics().updates_timed_out == 1
    # The late reply to the first is nobody's.
    assert client.receive(reply(sent(first)["ref"]), 0, 11.5).control is None


def test_a_desired_change_during_a_pending_change_converges() -> None:
    client = joined_client()
    client.set_desired([SYSTEM, OTHER_SYSTEM], [CHARACTER])
    (adding,) = client.pending_updates(1.0)
    client.set_desired([SYSTEM], [CHARACTER])
    assert client.pending_updates(1.5) == []
    client.receive(reply(sent(adding)["ref"]), 0, 2.0)
    (removing,) = client.pending_updates(2.5)
    assert updates([removing]) == {"unsubscribe_systems": [OTHER_SYSTEM]}
    client.receive(reply(sent(removing)["ref"]), 0, 3.0)
    assert client.acknowledged == client.desired
    assert client.pending_updates(4.0) == []


def test_invalid_desired_ids_are_dropped_counted_and_never_sent() -> None:
    client = joined_client()
    client.set_desired([SYSTEM, 0, 99_000_000, "30000142"], [CHARACTER, 12345])
    assert client.pending_updates(1.0) == []
    assert client.statistics().dropped_ids == {
        "invalid_system_ids": 3,
        "invalid_character_ids": 1,
    }


def test_at_most_ten_changes_go_out_in_any_minute() -> None:
    client = joined_client(systems=(), characters=())
    sent_at: list[float] = []
    now = 0.0
    while now < 180.0:
        # Alternate between two subscriptions so that there is always a change to send.
        client.set_desired([SYSTEM] if len(sent_at) % 2 == 0 else [], [])
        frames = client.pending_updates(now)
        confirm_all(frames, client, now)
        sent_at.extend(now for _ in frames)
        now = round(now + 0.5, 1)
    assert sent_at[:11] == [n * 0.5 for n in range(10)] + [60.0]
    for first in sent_at:
        assert sum(first <= t < first + 60.0 for t in sent_at) <= 10
    # The limit is used, not just respected: ten a minute, three minutes.
    assert len(sent_at) == 30
    assert client.statistics().update_window_limit == 10


def test_a_full_minute_blocks_the_next_change_until_the_oldest_is_a_minute_old() -> None:
    client = joined_client(systems=(), characters=(), updates_per_minute=2)
    client.set_desired([SYSTEM], [])
    confirm_all(client.pending_updates(0.0), client, 0.0)
    client.set_desired([], [])
    confirm_all(client.pending_updates(10.0), client, 10.0)
    client.set_desired([SYSTEM], [])
    assert client.pending_updates(59.9) == []
    assert client.statistics().update_window_used == 2
    assert len(client.pending_updates(60.0)) == 1
    client.set_desired([], [])
    assert client.pending_updates(200.0) == []
    assert client.statistics().update_window_used == 0


def test_changes_that_do_not_fit_the_minute_wait_for_a_later_call() -> None:
    client = joined_client(updates_per_minute=3)
    client.set_desired([OTHER_SYSTEM], [CHARACTER + 1])
    frames = client.pending_updates(0.0)
    assert [sent(f)["event"] for f in frames] == [
        "unsubscribe_systems",
        "unsubscribe_characters",
        "subscribe_systems",
    ]
    confirm_all(frames, client, 0.1)
    assert client.pending_updates(30.0) == []
    assert updates(client.pending_updates(60.0)) == {"subscribe_characters": [CHARACTER + 1]}


@pytest.mark.parametrize("event", ["phx_close", "phx_error"])
def test_a_channel_end_drops_pending_changes_and_a_rejoin_carries_the_desired(event: str) -> None:
    client = joined_client()
    client.set_desired([SYSTEM, OTHER_SYSTEM], [CHARACTER])
    (pending,) = client.pending_updates(1.0)
    client.receive(message(event, {}), 0, 2.0)
    assert client.statistics().updates_in_flight == 0
    assert client.receive(reply(sent(pending)["ref"]), 0, 2.1).control is None
    join = sent(client.join_frame(client.desired.systems, client.desired.characters, 3.0))
    assert join["payload"]["systems"] == [OTHER_SYSTEM, SYSTEM]
    client.receive(reply(join["ref"]), 0, 3.1)
    assert client.state is ChannelState.JOINED
    assert client.acknowledged == client.desired
    assert client.pending_updates(4.0) == []


def test_reset_restarts_the_rate_window_for_the_new_connection() -> None:
    client = joined_client(updates_per_minute=1)
    client.set_desired([SYSTEM, OTHER_SYSTEM], [CHARACTER])
    assert len(client.pending_updates(0.0)) == 1
    client.reset()
    join = sent(client.join_frame(client.desired.systems, (), 1.0))
    client.receive(reply(join["ref"]), 0, 1.1)
    client.set_desired([SYSTEM], [CHARACTER])
    assert len(client.pending_updates(2.0)) == 1
