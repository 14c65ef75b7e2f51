"""A mailbox bounded by what its messages hold; the journal's counts the events of a batch."""

from __future__ import annotations

import pytest
from pykka._envelope import Envelope

from actors import journal
from actors.protocol import Demand, Ingest
from realtime.config import parse
from realtime.event import Event, Priority, Reject
from supervision import BoundedMailbox, MailboxFullError, MailboxSpec, OverflowPolicy


def mailbox(capacity: int, policy: OverflowPolicy = OverflowPolicy.REJECT) -> BoundedMailbox:
    return BoundedMailbox(MailboxSpec(capacity, policy, size_of=len))


def put(box: BoundedMailbox, message: object) -> None:
    box.put(Envelope(message))


def test_a_sized_mailbox_refuses_what_would_take_its_load_past_the_capacity() -> None:
    box = mailbox(10)
    put(box, "abcdef")
    with pytest.raises(MailboxFullError, match="6 of 10 in size"):
        put(box, "abcde")
    put(box, "abcd")
    assert box.statistics().size == 10
    assert len(box) == 2
    assert box.get().message == "abcdef"
    put(box, "abcde")
    assert box.statistics().size == 9
    assert box.statistics().high_water == 10


def test_a_message_larger_than_the_whole_capacity_is_taken_by_an_empty_mailbox_only() -> None:
    box = mailbox(10)
    put(box, "x" * 25)
    assert box.statistics().size == 25
    with pytest.raises(MailboxFullError):
        put(box, "y")
    box.get()
    put(box, "y")
    assert box.statistics().size == 1


def test_dropping_the_oldest_drops_as_many_as_it_takes_to_make_room() -> None:
    box = mailbox(10, OverflowPolicy.DROP_OLDEST)
    for message in ("aaa", "bbb", "ccc"):
        put(box, message)
    put(box, "dddddd")
    assert [box.get().message, box.get().message] == ["ccc", "dddddd"]
    assert box.statistics().dropped == 2
    assert box.statistics().size == 0


def test_a_drained_mailbox_holds_nothing() -> None:
    box = mailbox(10)
    put(box, "abcdefghij")
    assert box.drain() == ["abcdefghij"]
    put(box, "abcdefghij")
    assert box.statistics().size == 10


def killmail(n: int) -> Event:
    return Event(
        id=str(n),
        source="wanderer-kills",
        type="killmail",
        time=1_700_000_000.0 + n,
        received_at=n,
        key=f"killmail:{n}",
        priority=Priority.NORMAL,
        data={"killmail_id": n},
    )


def batch(first: int, events: int, rejects: int = 0) -> Ingest:
    return Ingest(
        "wanderer-kills",
        tuple(killmail(n) for n in range(first, first + events)),
        tuple(Reject("wanderer-kills", "bad_json", "", b"{", 1) for _ in range(rejects)),
    )


def test_the_journal_mailbox_holds_at_most_its_capacity_in_events_not_in_batches() -> None:
    config = parse({"mailbox": {"journal": 1000}}, {})
    box = BoundedMailbox(journal.child_spec(config).mailbox)
    put(box, batch(0, 600, rejects=10))
    put(box, Demand("flow_control", 512))  # the control lane: never counted
    with pytest.raises(MailboxFullError):
        put(box, batch(600, 391))  # a batch of 391 events counts 391, not 1
    put(box, batch(600, 390))
    assert box.statistics().size == 1000
    assert len(box) == 2
