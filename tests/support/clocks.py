"""The tests' one fake clock: seconds that pass only when a test says so."""

from __future__ import annotations

import threading

UNIX_START = 1_800_000_000.0
"""Where a clock starts unless told otherwise: a plausible Unix time (January 2027)."""


class FakeClock:
    """A clock (``clock()`` returns seconds) that a test moves by hand.

    It serves as a wall clock and as a monotonic one alike, and one instance may
    serve both sides of a test at once (a server thread and the client under
    test): reads and moves are thread-safe. ``advance`` moves it by a step
    (a negative one steps it back, as a wall clock set back would); assigning
    ``now`` sets it anywhere.
    """

    def __init__(self, start: float = UNIX_START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    @property
    def now(self) -> float:
        return self()

    @now.setter
    def now(self, value: float) -> None:
        with self._lock:
            self._now = value

    def advance(self, seconds: float) -> float:
        """Move by ``seconds``; returns the new time."""
        with self._lock:
            self._now += seconds
            return self._now
