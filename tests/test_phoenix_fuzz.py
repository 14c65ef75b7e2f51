"""PhoenixClient under arbitrary input and arbitrary call sequences (hypothesis, fixed seed)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.event import KILLS_SOURCE, Event
from realtime.kill_events import RejectReason
from realtime.phoenix import Received
from tests.support.phoenix import killmail, make_client, message, reply, sent

FUZZ = settings(max_examples=200, derandomize=True, deadline=None)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

EVENTS = [
    "killmail_update",
    "kill_count_update",
    "preload_complete",
    "preload_status",
    "preload_batch",
    "new_kill",
    "phx_reply",
    "phx_close",
    "phx_error",
    "heartbeat",
]


def killmail_like() -> st.SearchStrategy[Any]:
    """Killmails with some fields replaced by arbitrary values."""
    fields = st.dictionaries(
        st.sampled_from(["killmail_id", "kill_time", "victim", "attackers", "system_id"]),
        json_values,
        max_size=3,
    )
    return st.builds(lambda changes: {**killmail(1), **changes}, fields) | json_values


envelopes = st.fixed_dictionaries(
    {
        "topic": st.sampled_from(["killmails:lobby", "phoenix", "other"]) | json_values,
        "event": st.sampled_from(EVENTS) | json_values,
        "payload": st.fixed_dictionaries(
            {},
            optional={
                "killmails": st.lists(killmail_like(), max_size=4) | json_values,
                "preload": st.booleans() | json_values,
                "system_id": json_values,
                "count": json_values,
                "timestamp": st.just("2026-11-27T12:00:00Z") | json_values,
                "status": st.sampled_from(["ok", "error"]) | json_values,
                "response": json_values,
            },
        )
        | json_values,
        "ref": st.sampled_from([None, "1", "2", "3"]) | json_values,
    }
)


def check(received: Received) -> None:
    """What every answer of ``receive`` must satisfy, whatever the input."""
    assert isinstance(received, Received)
    for reject in received.rejects:
        assert reject.reason in set(RejectReason) - {RejectReason.INTERNAL_ERROR}, reject.detail
        assert reject.detail
        assert isinstance(reject.raw, bytes)
    for event in received.events:
        assert isinstance(event, Event)
        assert event.source == KILLS_SOURCE
        assert event.key
        if event.type == "killmail":
            assert event.key == f"killmail:{event.id}"
            assert isinstance(event.data["preload"], bool)


@FUZZ
@given(st.binary(max_size=512))
def test_receive_never_raises_on_arbitrary_bytes(frame: bytes) -> None:
    check(make_client().receive(frame, 0, 0.0))


@FUZZ
@given(st.text(max_size=512))
def test_receive_never_raises_on_arbitrary_text(frame: str) -> None:
    check(make_client().receive(frame, 0, 0.0))


@FUZZ
@given(envelopes)
def test_receive_never_raises_on_arbitrary_phoenix_shaped_frames(envelope: dict[str, Any]) -> None:
    client = make_client()
    client.join_frame([31000005], [], 0.0)
    frame = orjson.dumps(envelope)
    check(client.receive(frame.decode(), 0, 0.5))
    check(client.receive(frame, 0, 0.6))


@settings(FUZZ, max_examples=100)
@given(st.lists(killmail_like(), max_size=6), st.booleans())
def test_each_killmail_of_a_batch_becomes_exactly_one_event_or_one_reject(
    killmails: list[Any], preload: bool
) -> None:
    frame = message("killmail_update", {"killmails": killmails, "preload": preload})
    received = make_client().receive(frame, 0, 0.0)
    check(received)
    assert len(received.events) + len(received.rejects) == len(killmails)
    assert all(event.data["preload"] is preload for event in received.events)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@FUZZ
@given(st.text(alphabet='[]{}",:\\ a1', max_size=300))
def test_the_nesting_limit_is_exact_for_any_bracket_soup(frame: str) -> None:
    client = make_client(max_depth=4)
    received = client.receive(frame, 0, 0.0)
    check(received)
    reasons = {reject.reason for reject in received.rejects}
    try:
        depth = _depth(json.loads(frame))
    except ValueError:
        return  # malformed: any reject will do, as long as nothing raised
    assert ("too_deep" in reasons) == (depth > 4)


nested = st.recursive(
    st.integers(0, 9) | st.text(alphabet='[]{}"\\', max_size=4),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=40,
)


@FUZZ
@given(nested, st.integers(1, 12))
def test_the_nesting_limit_is_exact_for_any_valid_json(value: object, limit: int) -> None:
    frame = orjson.dumps(value).decode()
    received = make_client(max_depth=limit).receive(frame, 0, 0.0)
    check(received)
    reasons = {reject.reason for reject in received.rejects}
    assert ("too_deep" in reasons) == (_depth(value) > limit)


# -- call sequences ----------------------------------------------------------------------

actions = st.lists(
    st.one_of(
        st.tuples(st.just("desire"), st.sets(st.integers(1, 6)), st.sets(st.integers(0, 2))),
        st.tuples(st.just("updates"), st.just(None), st.just(None)),
        st.tuples(st.just("confirm"), st.booleans(), st.just(None)),
        st.tuples(st.just("wait"), st.floats(0.0, 20.0), st.just(None)),
        st.tuples(st.just("join"), st.just(None), st.just(None)),
        st.tuples(st.just("close"), st.sampled_from(["phx_close", "phx_error"]), st.just(None)),
        st.tuples(st.just("reset"), st.just(None), st.just(None)),
    ),
    max_size=40,
)


@FUZZ
@given(actions)
def test_subscription_invariants_hold_for_any_sequence_of_calls(
    steps: list[tuple[str, Any, Any]],
) -> None:
    client = make_client(updates_per_minute=3, push_timeout_s=10.0)
    now = 0.0
    awaiting: list[str] = []
    sent_times: list[float] = []
    for name, first, second in steps:
        if name == "desire":
            client.set_desired([30000000 + n for n in first], [2117000000 + n for n in second])
        elif name == "updates":
            frames = client.pending_updates(now)
            awaiting.extend(sent(frame)["ref"] for frame in frames)
            sent_times.extend(now for _ in frames)
        elif name == "confirm" and awaiting:
            check(client.receive(reply(awaiting.pop(0), "ok" if first else "error"), 0, now))
        elif name == "wait":
            now += first
        elif name == "join":
            ref = sent(client.join_frame(client.desired.systems, client.desired.characters, now))
            check(client.receive(reply(ref["ref"]), 0, now))
        elif name == "close":
            check(client.receive(message(first, {}), 0, now))
        elif name == "reset":
            client.reset()
            sent_times.clear()
        stats = client.statistics()
        assert stats.updates_in_flight <= 4
        assert stats.update_window_used <= 3
        for start in sent_times:
            assert sum(start <= t < start + 60.0 for t in sent_times) <= 3
        # The server only ever acknowledges ids that were desired at some point.
        assert client.acknowledged.systems <= {30000000 + n for n in range(1, 7)}
