"""Capped exponential backoff with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays for retry number ``attempt`` (0 for the first retry).

    The ceiling grows as ``min_s * factor ** attempt`` up to ``max_s``. With
    ``jitter = 1.0`` the delay is uniform in ``[0, ceiling]`` ("full jitter",
    which spreads reconnect storms best); with ``jitter = 0.5`` it is uniform in
    ``[ceiling / 2, ceiling]``, so successive delays provably grow; with
    ``jitter = 0`` it is the ceiling itself.
    """

    min_s: float
    max_s: float
    factor: float = 2.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_s <= self.max_s:
            msg = f"backoff needs 0 <= min_s <= max_s, got {self.min_s}, {self.max_s}"
            raise ValueError(msg)
        if self.factor < 1:
            msg = f"backoff factor must be at least 1, got {self.factor}"
            raise ValueError(msg)
        if not 0 <= self.jitter <= 1:
            msg = f"backoff jitter must be within [0, 1], got {self.jitter}"
            raise ValueError(msg)

    def ceiling(self, attempt: int) -> float:
        """The largest delay retry number ``attempt`` can get."""
        if self.min_s == 0:
            return 0.0
        # Cap the exponent so that a long outage cannot overflow the float.
        exponent = min(attempt, 1024)
        return min(self.max_s, self.min_s * self.factor**exponent)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """A delay for retry number ``attempt``; ``rand`` returns a float in [0, 1)."""
        ceiling = self.ceiling(attempt)
        return ceiling * (1.0 - self.jitter * rand())
