"""The C allocator (glibc's malloc): few arenas, and freed memory given back.

Why: a decoded killmail weighs about 17 KB in memory (its JSON about 3 KB),
so a one-second stall at a few thousand events a second holds tens of
megabytes of events for a moment. CPython allocates objects larger than
512 bytes (the killmails' dicts and lists) with ``malloc``; when they are
freed, glibc keeps the pages it got for them, fragmented between small
long-lived allocations, and the process's RSS keeps every burst's high-water
mark forever (the soak measured +8 MB at each reconnect's replay burst,
none of it Python objects). Two remedies, both measured:

- :func:`limit_arenas`: glibc gives threads arenas of their own, up to eight
  per core, each keeping its own free pages; two arenas pool them.
- :func:`release_free_memory` (``malloc_trim(0)``) returns the free pages
  of every arena to the system; about a millisecond on this process.

:func:`statistics` (``mallinfo2``, every arena) tells the memory the
allocator holds in use from the free memory it keeps, which RSS alone
cannot: the soak reports both.

On a C library without these functions (musl, macOS) they do nothing and
answer ``False`` (:func:`statistics`: ``None``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from typing import Final

M_ARENA_MAX: Final = -8
"""``mallopt``'s parameter for the most arenas (glibc's malloc.h)."""
ARENAS: Final = 2
"""Arenas kept by :func:`limit_arenas`: threads mostly allocate under the GIL, so
more arenas buy little concurrency and hold more free memory."""


@dataclass(frozen=True, slots=True)
class AllocatorStatistics:
    """What ``malloc`` holds, over every arena.

    Attributes:
        in_use_bytes: allocated and not freed (``mmap``-ed blocks included).
        free_bytes: freed and kept by the allocator (part of it may have been
            given back with :func:`release_free_memory` and not count in RSS).
        arena_bytes: obtained from the system for the arenas.
    """

    in_use_bytes: int
    free_bytes: int
    arena_bytes: int


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Let ``malloc`` create at most ``arenas`` arenas (best before threads start).

    Returns whether the C library took the setting.
    """
    libc = _libc()
    return libc is not None and bool(libc.mallopt(M_ARENA_MAX, arenas))


def release_free_memory() -> bool:
    """Give the free pages of every ``malloc`` arena back to the system.

    Returns whether the C library could (``malloc_trim`` exists), not
    whether anything was released.
    """
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def statistics() -> AllocatorStatistics | None:
    """What ``malloc`` holds now (``mallinfo2``, glibc 2.33 and later); else ``None``."""
    libc = _libc()
    mallinfo2 = getattr(libc, "mallinfo2", None)
    if mallinfo2 is None:
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return AllocatorStatistics(
        in_use_bytes=int(info.uordblks + info.hblkhd),
        free_bytes=int(info.fordblks),
        arena_bytes=int(info.arena),
    )
