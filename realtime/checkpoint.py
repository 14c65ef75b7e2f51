"""The pipeline's checkpoint: how far every delivered event is settled, and what to write.

Stages settle events in any order; the checkpoint is the highest seq up to
which *every* event is settled (the contiguous settled prefix), so a restart
redelivers exactly what may not be finished. Outcomes other than ``handled``
are written to the journal; one that cannot be written yet (the database is
full or locked) is held here, oldest first, and the checkpoint to save stays
behind it, so that a crash meanwhile redelivers its event rather than lose
its outcome.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from realtime.event import Outcome


@dataclass(frozen=True, slots=True)
class HeldOutcome:
    """Events finished with, for ``outcome``, whose outcome is not written yet."""

    seqs: tuple[int, ...]
    outcome: Outcome
    detail: str = ""


class Checkpoint:
    """The settled prefix and the held outcomes of one journal (see the module doc).

    Args:
        saved: the checkpoint read from the journal at start.
    """

    def __init__(self, saved: int) -> None:
        self.value = saved
        """Every delivered event up to this seq is settled."""
        self.saved = saved
        """The value last written to the journal."""
        self._settled: set[int] = set()
        self._held: collections.deque[HeldOutcome] = collections.deque()
        self.held_events = 0
        """Events whose outcome is held."""

    def settle(self, seqs: Sequence[int], delivered_upto: int) -> int:
        """Mark ``seqs`` settled; the checkpoint after it.

        Seqs at or before the checkpoint (a redelivery settled twice) or after
        ``delivered_upto`` (of an earlier delivery stream) change nothing.
        """
        checkpoint = self.value
        settled = self._settled
        for seq in seqs:
            if checkpoint < seq <= delivered_upto:
                settled.add(seq)
        while checkpoint + 1 in settled:
            checkpoint += 1
            settled.discard(checkpoint)
        self.value = checkpoint
        return checkpoint

    def restart(self) -> None:
        """Delivery restarts after the checkpoint: what was settled beyond it comes again."""
        self._settled.clear()

    def hold(self, outcome: HeldOutcome) -> None:
        """Keep ``outcome`` until :meth:`write` has written it."""
        self._held.append(outcome)
        self.held_events += len(outcome.seqs)

    def write(self, write: Callable[[HeldOutcome], object]) -> None:
        """Write the held outcomes, oldest first, with ``write``.

        An exception from ``write`` propagates; that outcome and the ones
        after it stay held.
        """
        held = self._held
        while held:
            write(held[0])
            self.held_events -= len(held.popleft().seqs)

    def to_save(self) -> int | None:
        """The checkpoint to write now (never past a held outcome); ``None``: nothing new."""
        target = self.value
        if self._held:
            target = min(target, min(min(held.seqs) for held in self._held) - 1)
        return target if target > self.saved else None
