"""The checkpoint core: the contiguous settled prefix, and outcomes held until written."""

from __future__ import annotations

import pytest

from realtime.checkpoint import Checkpoint, HeldOutcome
from realtime.event import Outcome


def test_the_checkpoint_advances_over_the_contiguous_settled_prefix_only() -> None:
    checkpoint = Checkpoint(10)
    assert checkpoint.settle([12, 13], delivered_upto=20) == 10
    assert checkpoint.settle([11], delivered_upto=20) == 13
    assert checkpoint.settle([9, 25], delivered_upto=20) == 13  # old, and not delivered
    checkpoint.restart()
    assert checkpoint.settle([15], delivered_upto=20) == 13
    assert checkpoint.to_save() == 13


def test_a_held_outcome_keeps_the_saved_checkpoint_behind_it_until_written() -> None:
    checkpoint = Checkpoint(0)
    checkpoint.hold(HeldOutcome((3, 4), Outcome.DUPLICATE))
    assert checkpoint.settle([1, 2, 3, 4, 5], delivered_upto=5) == 5
    assert checkpoint.held_events == 2
    assert checkpoint.to_save() == 2
    written: list[HeldOutcome] = []

    def fail(_: HeldOutcome) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        checkpoint.write(fail)
    assert checkpoint.held_events == 2
    checkpoint.write(written.append)
    assert [held.seqs for held in written] == [(3, 4)]
    assert checkpoint.held_events == 0
    assert checkpoint.to_save() == 5
    checkpoint.saved = 5
    assert checkpoint.to_save() is None
