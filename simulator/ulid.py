"""Monotonic ULIDs from an injected clock, as the Wanderer map server issues them.

A ULID is 26 characters of Crockford base32: 10 for a 48-bit Unix time in
milliseconds, 16 for 80 bits of randomness. Crockford's alphabet is in ASCII
order, so comparing two ULIDs as strings compares them in time order.

:class:`UlidGenerator` is monotonic: within one millisecond (or when the clock
steps back) it increments the previous randomness instead of drawing new bits,
so every ULID it returns sorts after the one before.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_LENGTH = 26
_TIME_CHARS = 10
_RANDOM_BITS = 80
_MAX_TIME_MS = (1 << 48) - 1
_DECODE = {char: value for value, char in enumerate(CROCKFORD)}


def encode(time_ms: int, randomness: int) -> str:
    """The ULID of a millisecond timestamp and 80 random bits.

    Raises:
        ValueError: ``time_ms`` does not fit 48 bits or ``randomness`` 80 bits.
    """
    if not 0 <= time_ms <= _MAX_TIME_MS:
        msg = f"ULID time must fit 48 bits, got {time_ms}"
        raise ValueError(msg)
    if not 0 <= randomness < 1 << _RANDOM_BITS:
        msg = "ULID randomness must fit 80 bits"
        raise ValueError(msg)
    number = (time_ms << _RANDOM_BITS) | randomness
    chars = []
    for _ in range(ULID_LENGTH):
        chars.append(CROCKFORD[number & 31])
        number >>= 5
    return "".join(reversed(chars))


def is_ulid(text: str) -> bool:
    """Whether ``text`` is a canonical (upper-case) ULID of 26 characters."""
    return len(text) == ULID_LENGTH and text[0] <= "7" and all(c in _DECODE for c in text)


def time_ms(ulid: str) -> int:
    """The Unix time in milliseconds encoded in ``ulid``.

    Raises:
        ValueError: ``ulid`` is not a canonical ULID.
    """
    if not is_ulid(ulid):
        msg = f"not a ULID: {ulid!r}"
        raise ValueError(msg)
    value = 0
    for char in ulid[:_TIME_CHARS]:
        value = value * 32 + _DECODE[char]
    return value


class UlidGenerator:
    """Issues strictly increasing ULIDs; safe to call from several threads.

    Args:
        clock: Unix seconds (``time.time`` by default; tests inject their own).
        rng: the source of the random bits (seed it for reproducible ids).
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, rng: random.Random | None = None
    ) -> None:
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self) -> str:
        """A ULID for now that sorts after every ULID issued before.

        When the clock has not advanced past the previous ULID's millisecond,
        the previous randomness plus one is used; should that overflow 80 bits,
        the time part moves one millisecond ahead of the clock.
        """
        now_ms = int(self._clock() * 1000)
        with self._lock:
            if now_ms > self._last_ms:
                self._last_ms = now_ms
                self._last_random = self._rng.getrandbits(_RANDOM_BITS)
            else:
                self._last_random += 1
                if self._last_random >> _RANDOM_BITS:
                    self._last_ms += 1
                    self._last_random = self._rng.getrandbits(_RANDOM_BITS)
            return encode(self._last_ms, self._last_random)
