"""The ``metrics`` actor's status polls: what each actor last answered, and the
ask in flight.

Every tick the actor collects the answers that arrived (:meth:`StatusPolls.harvest`)
and asks again (:meth:`StatusPolls.ask`) with a non-blocking ask; an actor that
has not answered the previous ask is not asked again, so a stuck actor's control
lane does not grow. At most ``max_actors`` actors are polled.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from supervision import GetStatus, Registry


@dataclass(slots=True)
class Poll:
    """The status of one actor as last seen, and the ask in flight."""

    ref: pykka.ActorRef[Any] | None = None
    future: pykka.Future[Any] | None = None
    status: Mapping[str, Any] | None = None
    answered_at: float | None = None
    missed: int = 0
    error: str | None = None


class StatusPolls:
    """The polls of at most ``max_actors`` actors; ``clock`` dates the answers."""

    def __init__(self, max_actors: int, clock: Callable[[], float]) -> None:
        self._max_actors = max_actors
        self._clock = clock
        self._polls: dict[str, Poll] = {}

    def __len__(self) -> int:
        return len(self._polls)

    def items(self) -> ItemsView[str, Poll]:
        return self._polls.items()

    def status_of(self, name: str) -> Mapping[str, Any] | None:
        """The last status ``name`` answered, if any."""
        poll = self._polls.get(name)
        return None if poll is None else poll.status

    def record(self, name: str, status: Any) -> None:
        """Take the status ``name`` answered (a non-mapping is kept as ``{"status": it}``)."""
        poll = self._polls.get(name)
        if poll is None:
            if len(self._polls) >= self._max_actors:
                return
            poll = self._polls[name] = Poll()
        poll.missed = 0
        poll.error = None
        poll.answered_at = self._clock()
        poll.status = status if isinstance(status, Mapping) else {"status": status}

    def harvest(self) -> None:
        """Record the answers that arrived; count a miss for each ask still open or failed."""
        for name, poll in self._polls.items():
            if poll.future is None:
                continue
            try:
                status = poll.future.get(timeout=0)
            except pykka.Timeout:
                poll.missed += 1
                poll.error = f"no answer for {poll.missed} ticks"
                continue
            except Exception as error:  # noqa: BLE001 -- an actor's failure is data here
                poll.future = None
                poll.missed += 1
                poll.error = f"{type(error).__name__}: {error}"
                continue
            poll.future = None
            self.record(name, status)

    def ask(self, registry: Registry, names: Iterable[str]) -> None:
        """Ask each of ``names`` for its status, unless its previous ask is still open;
        a name with no running actor counts a miss (``not running``)."""
        for name in names:
            if name not in self._polls and len(self._polls) >= self._max_actors:
                continue
            poll = self._polls.setdefault(name, Poll())
            ref = registry.lookup(name)
            if ref is None:
                poll.ref = poll.future = None
                poll.missed += 1
                poll.error = "not running"
                continue
            if poll.future is not None and poll.ref is ref:
                continue  # still waiting for the previous answer: do not pile up asks
            poll.ref = ref
            try:
                poll.future = ref.ask(GetStatus(), block=False)
            except pykka.ActorDeadError:
                poll.future = None
                poll.missed += 1
                poll.error = "not running"
