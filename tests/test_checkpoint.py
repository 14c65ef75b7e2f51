"""The checkpoint core: the contiguous settled prefix, and outcomes held until written."""

from __future__ import annotations

from realtime.checkpoint import Checkpoint, HeldOutcome
from realtime.event import Outcome


def test_the_checkpoint_advances_over_the_contiguous_settled_prefix_only() -> None:
    checkpoint = Checkpoint(10)
    assert checkpoint.settle([12, 13], delivered_upto=20) == 10
    assert checkpoint.settle([11], delivered_upto=20) == 13
    assert checkpoint.settle([9, 25], delivered_upto=20) == 13  # old, and not delivered
    checkpoint.restart()
    assert checkpoint.settle([15], delivered_upto=20) == 13
    assert checkpoint.plan() == ((), 13)


def test_held_outcomes_are_written_with_the_checkpoint_that_covers_them_or_not_at_all() -> None:
    checkpoint = Checkpoint(0)
    duplicate = HeldOutcome((3, 4), Outcome.DUPLICATE)
    checkpoint.hold(duplicate)
    assert checkpoint.settle([1, 2, 3, 4, 5], delivered_upto=5) == 5
    assert checkpoint.held_events == 2
    assert checkpoint.plan() == ((duplicate,), 5)
    # The transaction failed: nothing changes, the next plan is the same.
    assert checkpoint.plan() == ((duplicate,), 5)
    shed = HeldOutcome((6,), Outcome.SHED)
    checkpoint.hold(shed)  # while the first plan is being written
    checkpoint.committed(1, 5)
    assert checkpoint.held_events == 1
    assert checkpoint.saved == 5
    assert checkpoint.plan() == ((shed,), None)
    checkpoint.committed(1, None)
    assert checkpoint.plan() == ((), None)
