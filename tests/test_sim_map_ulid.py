import random

import pytest

from simulator import ulid
from tests.support.clocks import FakeClock


def test_a_ulid_is_26_crockford_characters_carrying_the_clock_milliseconds() -> None:
    clock = FakeClock(1_800_000_000.123)
    value = ulid.UlidGenerator(clock, random.Random(1)).new()
    assert len(value) == 26
    assert set(value) <= set(ulid.CROCKFORD)
    assert ulid.time_ms(value) == 1_800_000_000_123


def test_encode_and_time_ms_round_trip_the_extremes() -> None:
    assert ulid.encode(0, 0) == "0" * 26
    top = ulid.encode((1 << 48) - 1, (1 << 80) - 1)
    assert top == "7" + "Z" * 25
    assert ulid.time_ms(top) == (1 << 48) - 1


def test_encode_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="48 bits"):
        ulid.encode(1 << 48, 0)
    with pytest.raises(ValueError, match="80 bits"):
        ulid.encode(0, 1 << 80)


def test_ulids_within_one_millisecond_still_sort_in_issue_order() -> None:
    generator = ulid.UlidGenerator(FakeClock(), random.Random(2))
    issued = [generator.new() for _ in range(1000)]
    assert issued == sorted(issued)
    assert len(set(issued)) == 1000


def test_ulids_sort_in_time_order_as_the_clock_advances() -> None:
    clock = FakeClock()
    generator = ulid.UlidGenerator(clock, random.Random(3))
    issued = []
    for _ in range(100):
        issued.append(generator.new())
        clock.advance(0.001)
    assert issued == sorted(issued)
    times = [ulid.time_ms(value) for value in issued]
    assert times == sorted(times)
    assert times[-1] - times[0] in (98, 99, 100)


def test_a_clock_stepping_back_does_not_break_the_order() -> None:
    clock = FakeClock()
    generator = ulid.UlidGenerator(clock, random.Random(4))
    first = generator.new()
    clock.advance(-5.0)
    second = generator.new()
    assert second > first
    assert ulid.time_ms(second) == ulid.time_ms(first)


def test_randomness_overflow_moves_the_time_one_millisecond_ahead() -> None:
    class MaxRandom(random.Random):
        def getrandbits(self, k: int) -> int:
            return (1 << k) - 1

    clock = FakeClock()
    generator = ulid.UlidGenerator(clock, MaxRandom())
    values = [generator.new() for _ in range(3)]
    assert values == sorted(values)
    assert [ulid.time_ms(v) - ulid.time_ms(values[0]) for v in values] == [0, 1, 2]


def test_is_ulid_rejects_wrong_length_alphabet_and_overflowing_time() -> None:
    assert ulid.is_ulid("01JDZ3J9Q5V8K2M4N6P8R0T2W4")
    assert not ulid.is_ulid("01JDZ3J9Q5V8K2M4N6P8R0T2W")
    assert not ulid.is_ulid("01JDZ3J9Q5V8K2M4N6P8R0T2WU")
    assert not ulid.is_ulid("81JDZ3J9Q5V8K2M4N6P8R0T2W4")
    with pytest.raises(ValueError, match="not a ULID"):
        ulid.time_ms("nope")
