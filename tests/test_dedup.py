from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.dedup import OTHER_SOURCE, DedupWindow, Verdict
from realtime.event import KILLS_SOURCE, map_source
from realtime.keys import event_key, killmail_key

MAP = map_source("demo")
HOUR = 3600.0


def kill_key(killmail_id: int) -> str:
    return killmail_key(killmail_id)


def test_first_sighting_is_unique_and_reports_itself_as_first() -> None:
    window = DedupWindow(HOUR, 100)

    verdict = window.check(kill_key(1), 10, KILLS_SOURCE, 0.0)

    assert verdict == Verdict(duplicate=False, first_seq=10, first_source=KILLS_SOURCE)
    assert len(window) == 1


def test_websocket_double_delivery_is_a_duplicate_of_the_first_seq() -> None:
    window = DedupWindow(HOUR, 100)
    window.check(kill_key(7), 10, KILLS_SOURCE, 0.0)

    verdict = window.check(kill_key(7), 11, KILLS_SOURCE, 0.01)

    assert verdict == Verdict(duplicate=True, first_seq=10, first_source=KILLS_SOURCE)


def test_map_kill_of_a_kill_from_the_feed_is_a_cross_source_duplicate() -> None:
    window = DedupWindow(HOUR, 100)
    killmail = {"killmail_id": 123456789, "system_id": 31000005}
    feed_key = event_key(KILLS_SOURCE, "killmail", "123456789", killmail, "hybrid")
    map_key = event_key(MAP, "map_kill", "01JDZ3J9Q5V8K2M4N6P8R0T2W4", killmail, "hybrid")
    window.check(feed_key, 1, KILLS_SOURCE, 0.0)

    verdict = window.check(map_key, 2, MAP, 2.0)

    assert verdict == Verdict(duplicate=True, first_seq=1, first_source=KILLS_SOURCE)
    assert window.statistics().duplicate_pairs == {(KILLS_SOURCE, MAP): 1}


def test_preload_replay_after_a_reconnect_is_a_duplicate() -> None:
    window = DedupWindow(HOUR, 100)
    for seq, killmail_id in enumerate(range(100, 105), start=1):
        window.check(kill_key(killmail_id), seq, KILLS_SOURCE, 0.0)

    replayed = [
        window.check(kill_key(killmail_id), seq, KILLS_SOURCE, 600.0)
        for seq, killmail_id in enumerate(range(100, 105), start=50)
    ]

    assert all(verdict.duplicate for verdict in replayed)
    assert [verdict.first_seq for verdict in replayed] == [1, 2, 3, 4, 5]


def test_redelivered_event_is_not_its_own_duplicate() -> None:
    window = DedupWindow(HOUR, 100)
    window.check(kill_key(7), 10, KILLS_SOURCE, 0.0)

    verdict = window.check(kill_key(7), 10, KILLS_SOURCE, 5.0)

    assert verdict == Verdict(duplicate=False, first_seq=10, first_source=KILLS_SOURCE)
    stats = window.statistics()
    assert (stats.unique, stats.redeliveries, stats.duplicates) == (1, 1, 0)


def test_redelivered_duplicate_is_still_a_duplicate_of_the_first_seq() -> None:
    window = DedupWindow(HOUR, 100)
    window.check(kill_key(7), 10, KILLS_SOURCE, 0.0)
    first = window.check(kill_key(7), 11, MAP, 1.0)

    again = window.check(kill_key(7), 11, MAP, 2.0)

    assert first == again == Verdict(duplicate=True, first_seq=10, first_source=KILLS_SOURCE)


def test_key_is_remembered_until_max_age_and_forgotten_within_the_resolution() -> None:
    window = DedupWindow(100.0, 100, resolution_s=1.0)
    window.check(kill_key(1), 1, KILLS_SOURCE, 0.0)

    assert window.check(kill_key(1), 2, MAP, 100.0).duplicate
    assert window.check(kill_key(1), 3, MAP, 100.999).duplicate
    forgotten = window.check(kill_key(1), 4, MAP, 101.0)

    assert forgotten == Verdict(duplicate=False, first_seq=4, first_source=MAP)
    assert window.statistics().evicted_by_age == 1


def test_duplicate_does_not_refresh_the_age_of_its_key() -> None:
    window = DedupWindow(100.0, 100, resolution_s=1.0)
    window.check(kill_key(1), 1, KILLS_SOURCE, 0.0)
    for step in range(1, 10):
        assert window.check(kill_key(1), 1 + step, MAP, step * 10.0).duplicate

    assert not window.check(kill_key(1), 99, MAP, 101.0).duplicate


def test_keys_first_seen_in_one_run_expire_together_never_early() -> None:
    window = DedupWindow(100.0, 100, resolution_s=1.0)
    window.check(kill_key(1), 1, KILLS_SOURCE, 0.0)
    window.check(kill_key(2), 2, KILLS_SOURCE, 0.5)

    assert window.check(kill_key(2), 3, MAP, 100.5).duplicate
    window.check(kill_key(3), 4, KILLS_SOURCE, 101.0)

    assert window.statistics().evicted_by_age == 2
    assert len(window) == 1


def test_a_clock_that_steps_back_never_makes_the_window_forget_early() -> None:
    window = DedupWindow(100.0, 100, resolution_s=1.0)
    window.check(kill_key(1), 1, KILLS_SOURCE, 50.0)
    window.check(kill_key(2), 2, KILLS_SOURCE, 10.0)

    assert window.check(kill_key(2), 3, MAP, 110.5).duplicate
    assert window.check(kill_key(1), 4, MAP, 150.5).duplicate
    assert not window.check(kill_key(2), 5, MAP, 151.0).duplicate


def test_oldest_keys_are_evicted_first_beyond_max_entries() -> None:
    window = DedupWindow(HOUR, 3)
    for killmail_id in range(1, 5):
        window.check(kill_key(killmail_id), killmail_id, KILLS_SOURCE, 0.0)

    assert len(window) == 3
    assert not window.check(kill_key(1), 10, MAP, 1.0).duplicate
    assert window.check(kill_key(4), 11, MAP, 1.0).duplicate
    stats = window.statistics()
    assert (stats.evicted_by_count, stats.evicted_by_age) == (2, 0)


def test_flood_of_a_million_keys_keeps_the_window_at_its_count_bound() -> None:
    window = DedupWindow(HOUR, 1000)
    check = window.check
    for index in range(1_000_000):
        check(f"flood:{index}", index, KILLS_SOURCE, index * 1e-6)
        if index % 100_000 == 0:
            assert len(window) <= 1000

    stats = window.statistics()
    assert stats.size == 1000
    assert stats.evicted_by_count == 999_000
    assert stats.runs <= HOUR / stats.resolution_s + 2


def test_flood_over_time_keeps_the_window_at_its_age_bound() -> None:
    window = DedupWindow(10.0, 1_000_000, resolution_s=0.1)
    for index in range(200_000):
        window.check(f"flood:{index}", index, KILLS_SOURCE, index * 0.001)

    stats = window.statistics()
    # 1,000 keys a second for a 10 s window, plus at most one resolution step.
    assert 10_000 <= stats.size <= 10_100
    assert stats.runs <= 10.0 / 0.1 + 2
    assert stats.evicted_by_count == 0


def test_load_rebuilds_the_window_from_the_journal() -> None:
    window = DedupWindow(HOUR, 100)
    added = window.load(
        [
            (kill_key(1), 1, KILLS_SOURCE, 1000.0),
            (kill_key(1), 2, KILLS_SOURCE, 1000.0),
            (kill_key(2), 3, MAP, 1001.0),
        ]
    )

    assert added == 2
    assert window.check(kill_key(1), 1, KILLS_SOURCE, 1100.0) == Verdict(False, 1, KILLS_SOURCE)
    assert window.check(kill_key(1), 2, KILLS_SOURCE, 1100.0) == Verdict(True, 1, KILLS_SOURCE)
    assert window.check(kill_key(2), 9, KILLS_SOURCE, 1100.0) == Verdict(True, 3, MAP)
    stats = window.statistics()
    assert (stats.loaded, stats.unique, stats.size) == (2, 0, 2)


def test_loaded_keys_older_than_max_age_are_forgotten_at_the_next_check() -> None:
    window = DedupWindow(100.0, 100, resolution_s=1.0)
    window.load([(kill_key(1), 1, KILLS_SOURCE, 0.0), (kill_key(2), 2, KILLS_SOURCE, 90.0)])

    window.check(kill_key(3), 3, KILLS_SOURCE, 150.0)

    assert not window.check(kill_key(1), 4, MAP, 150.0).duplicate
    assert window.check(kill_key(2), 5, MAP, 150.0).duplicate


def test_load_respects_the_count_bound() -> None:
    window = DedupWindow(HOUR, 10)

    window.load((kill_key(index), index, KILLS_SOURCE, 0.0) for index in range(25))

    assert len(window) == 10
    assert window.check(kill_key(24), 100, MAP, 1.0).duplicate
    assert not window.check(kill_key(0), 101, MAP, 1.0).duplicate


def test_duplicates_are_counted_per_first_and_repeating_source() -> None:
    window = DedupWindow(HOUR, 100)
    window.check(kill_key(1), 1, KILLS_SOURCE, 0.0)
    window.check(kill_key(1), 2, KILLS_SOURCE, 0.0)
    window.check(kill_key(1), 3, MAP, 0.0)
    window.check(kill_key(2), 4, MAP, 0.0)
    window.check(kill_key(2), 5, KILLS_SOURCE, 0.0)

    assert window.statistics().duplicate_pairs == {
        (KILLS_SOURCE, KILLS_SOURCE): 1,
        (KILLS_SOURCE, MAP): 1,
        (MAP, KILLS_SOURCE): 1,
    }


def test_pair_statistics_are_bounded_by_max_sources() -> None:
    window = DedupWindow(HOUR, 10_000, max_sources=3)
    for index in range(500):
        window.check(kill_key(index), index, f"map:m{index}", 0.0)
        window.check(kill_key(index), 1000 + index, f"map:r{index}", 0.0)

    stats = window.statistics()
    assert stats.sources == 3
    assert len(stats.duplicate_pairs) <= (3 + 1) ** 2
    assert sum(stats.duplicate_pairs.values()) == stats.duplicates == 500
    assert stats.duplicate_pairs[OTHER_SOURCE, OTHER_SOURCE] > 0
    assert window.check(kill_key(499), 5000, MAP, 0.0).first_source == OTHER_SOURCE


def test_statistics_report_bounds_and_a_plausible_memory_estimate() -> None:
    window = DedupWindow(HOUR, 5000)
    empty = window.statistics().memory_bytes
    for index in range(1000):
        window.check(kill_key(index), index, KILLS_SOURCE, 0.0)

    stats = window.statistics()
    assert (stats.capacity, stats.max_age_s, stats.size, stats.checks) == (5000, HOUR, 1000, 1000)
    assert 100 * 1000 < stats.memory_bytes - empty < 400 * 1000


@pytest.mark.parametrize(
    ("max_age_s", "max_entries", "options"),
    [
        (0.0, 10, {}),
        (-1.0, 10, {}),
        (float("nan"), 10, {}),
        (10.0, 0, {}),
        (10.0, 10, {"resolution_s": 0.0}),
        (10.0, 10, {"resolution_s": 11.0}),
        (10.0, 10, {"max_sources": 0}),
        (10.0, 10, {"max_sources": 1024}),
    ],
)
def test_out_of_range_bounds_are_refused(
    max_age_s: float, max_entries: int, options: dict[str, float]
) -> None:
    with pytest.raises(ValueError, match="must be"):
        DedupWindow(max_age_s, max_entries, **options)  # type: ignore[arg-type]


steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=12),  # key
        st.booleans(),  # redeliver the key's last seq instead of a new event
        st.integers(min_value=0, max_value=40),  # seconds since the previous step
        st.sampled_from([KILLS_SOURCE, MAP, "map:other"]),
    ),
    max_size=200,
)


class ReferenceWindow:
    """The specification, naively: every key with its first seq, source and time."""

    def __init__(self, max_age_s: int, max_entries: int) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self.entries: OrderedDict[str, tuple[int, str, int]] = OrderedDict()

    def check(self, key: str, seq: int, source: str, now: int) -> Verdict:
        for old_key, (_, _, first_seen) in list(self.entries.items()):
            if now - first_seen > self.max_age_s:
                del self.entries[old_key]
        if key in self.entries:
            first_seq, first_source, _ = self.entries[key]
            return Verdict(first_seq != seq, first_seq, first_source)
        self.entries[key] = (seq, source, now)
        if len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
        return Verdict(False, seq, source)


@settings(max_examples=200, deadline=None)
@given(steps=steps, max_entries=st.integers(min_value=1, max_value=8))
def test_window_decides_exactly_like_the_reference_on_whole_second_clocks(
    steps: list[tuple[int, bool, int, str]], max_entries: int
) -> None:
    # With whole-second times and a resolution below a second, each second is
    # its own run, so the window must agree with the naive specification.
    window = DedupWindow(60.0, max_entries, resolution_s=0.5)
    reference = ReferenceWindow(60, max_entries)
    now = 0
    last_seq: dict[str, int] = {}
    for seq, (key_index, redeliver, elapsed, source) in enumerate(steps):
        key = kill_key(key_index)
        now += elapsed
        event_seq = last_seq[key] if redeliver and key in last_seq else seq
        last_seq[key] = event_seq
        assert window.check(key, event_seq, source, now) == reference.check(
            key, event_seq, source, now
        )
        assert len(window) == len(reference.entries) <= max_entries


@settings(max_examples=100, deadline=None)
@given(steps=steps)
def test_replaying_the_same_events_gives_the_same_verdicts(
    steps: list[tuple[int, bool, int, str]],
) -> None:
    window = DedupWindow(HOUR, 1000)
    events = [(kill_key(key), seq, source) for seq, (key, _, _, source) in enumerate(steps)]

    first = [window.check(key, seq, source, 0.0) for key, seq, source in events]
    replay = [window.check(key, seq, source, 1.0) for key, seq, source in events]

    assert first == replay
    stats = window.statistics()
    assert stats.checks == stats.unique + stats.redeliveries + stats.duplicates == 2 * len(events)
    assert stats.size == stats.unique == len({key for key, _, _ in events})
