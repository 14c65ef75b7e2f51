"""The pipeline's checkpoint: how far every delivered event is settled, and what to write.

Stages settle events in any order; the checkpoint is the highest seq up to
which *every* event is settled (the contiguous settled prefix), so a restart
redelivers exactly what may not be finished. Outcomes other than ``handled``
are written to the journal; each is held here, oldest first, until a
transaction writes it together with the checkpoint that covers it
(:meth:`Checkpoint.plan`), so that the saved checkpoint never passes an
outcome that is not written: a crash meanwhile (or a database that cannot be
written) redelivers its event rather than lose its outcome.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
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

    def plan(self) -> tuple[tuple[HeldOutcome, ...], int | None]:
        """What one transaction writes now: every held outcome, then the checkpoint.

        Written together, the outcomes no longer hold the checkpoint back; the
        checkpoint is ``None`` when it has not moved since it was last saved.
        Report the transaction's success with :meth:`committed`.
        """
        return tuple(self._held), self.value if self.value > self.saved else None

    def committed(self, outcomes: int, checkpoint: int | None) -> None:
        """The first ``outcomes`` held outcomes and ``checkpoint`` (unless ``None``) are written."""
        held = self._held
        for _ in range(outcomes):
            self.held_events -= len(held.popleft().seqs)
        if checkpoint is not None:
            self.saved = max(self.saved, checkpoint)
