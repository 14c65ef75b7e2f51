"""The C allocator's settings: freed memory goes back to the system; what it holds is told."""

from __future__ import annotations

import pytest

from actors import allocator

glibc_only = pytest.mark.skipif(
    allocator.statistics() is None, reason="needs glibc's mallinfo2 and malloc_trim"
)


def rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@glibc_only
def test_memory_freed_between_survivors_goes_back_to_the_system_when_released() -> None:
    # Objects above 512 bytes come from malloc; keeping one in sixteen pins
    # the heap's pages so that the allocator cannot shrink it by itself.
    blocks = [bytes(2000) + bytes([i % 256]) for i in range(40_000)]
    survivors = blocks[::16]
    del blocks
    held = rss_kb()
    assert allocator.release_free_memory()
    released = rss_kb()
    assert held - released > 20_000, f"RSS {held} kB -> {released} kB"
    assert len(survivors) == 2500


@glibc_only
def test_the_statistics_count_what_is_allocated_apart_from_what_is_free() -> None:
    before = allocator.statistics()
    blocks = [bytes(4000) + bytes([i % 256]) for i in range(5000)]
    during = allocator.statistics()
    assert before is not None
    assert during is not None
    assert during.in_use_bytes - before.in_use_bytes >= 5000 * 4000
    survivors = blocks[::16]  # pinning the freed blocks' pages inside the heap
    del blocks
    after = allocator.statistics()
    assert after is not None
    assert after.free_bytes - during.free_bytes >= 4000 * 4000
    assert after.in_use_bytes < during.in_use_bytes - 4000 * 4000
    assert len(survivors) == 313


def test_limiting_the_arenas_is_taken_by_glibc_and_harmless_elsewhere() -> None:
    assert allocator.limit_arenas() is (allocator.statistics() is not None)
