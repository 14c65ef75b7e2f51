"""The dedup window: has this real-world fact been seen recently, and first where?

A :class:`DedupWindow` remembers, for each dedup key (computed at decode time by
the configured strategy, see :mod:`realtime.keys`), the journal sequence number
and the source of the *first* event that carried it. Checking an event answers:

- **unique**: the key is new; it is remembered with this ``seq``;
- **redelivery**: the key is known with this very ``seq``: the journal is
  delivering the same event again (after a restart or a resync). It is *not* a
  duplicate of itself, so a replay has the effect of one delivery;
- **duplicate**: the key is known with another ``seq``: another event (the
  WebSocket's second topic, a preload replay, the map's ``map_kill`` of a kill
  the kill feed already delivered) carries the same fact.

The window is bounded twice. By age: a key is forgotten ``max_age_s`` after it
was *first* seen (size it to at least ``[filters] max_kill_age_s``, see
``Config.dedup_window_s``: a repeat that arrives later is too old to be
notified anyway). By count: beyond ``max_entries`` keys, the oldest are
forgotten first, whatever their age (``evicted_by_count`` growing means the
window is too small for the traffic).

A duplicate does **not** refresh its key's age. A kill's window runs from the
moment it was first seen: refreshing would let a source that repeats a fact
forever (preload replays after every reconnect) keep its key alive forever, so
that memory would follow the repeat pattern instead of the bound, and a window
rebuilt from the journal's first sightings would differ from the live one.

How it stays O(1) and small: since entries never move, insertion order is age
order, so expiry and eviction both pop the oldest key (O(1) amortised per
check). Each entry is a key string in a dict whose value packs ``(seq, source
index)`` into one int, plus one slot in a deque of keys in age order. First
sightings are not stored per key but as *runs*: consecutive keys first seen
within ``resolution_s`` of a run's start share one timestamp, so a run expires
as a whole once its *last possible* member is ``max_age_s`` old. A key is
therefore forgotten between ``max_age_s`` and ``max_age_s + resolution_s``
after it was first seen, never earlier. About 146 bytes per entry for a
freshly filled window and 185 in steady churn (CPython's dict then keeps room
for three times its entries), ``killmail:{id}`` key strings included
(``python -m bench.dedup``).

Times are seconds on one clock for :meth:`DedupWindow.check` and
:meth:`DedupWindow.load`; use wall-clock time so that a window rebuilt from the
journal after a restart ages like the one before it. A clock that steps back
never makes the window forget early: the key joins the newest run.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

SOURCE_BITS = 10
"""Bits of a packed entry that hold the source index (the rest is the seq)."""

OTHER_SOURCE = "(other)"
"""The name recorded for the sources beyond ``max_sources``."""

MAX_RESOLUTION_S = 1.0
"""The coarsest default time resolution (see :class:`DedupWindow`)."""

_SOURCE_MASK = (1 << SOURCE_BITS) - 1
# Builds a Verdict from a tuple in half the time of calling the class, which
# goes through a Python-level __new__ (NamedTuple._make does the same).
_new_verdict = tuple.__new__
_KEY_SAMPLE = 16
_INFINITY = float("inf")


class Verdict(NamedTuple):
    """The answer for one checked event.

    Attributes:
        duplicate: another event (another seq) carried this key first.
        first_seq: the seq of the first event with this key (the checked
            event's own seq when it is unique or redelivered).
        first_source: the source of that first event (:data:`OTHER_SOURCE`
            when it was remembered from a source beyond ``max_sources``).
    """

    # A NamedTuple rather than a frozen dataclass, just as immutable: built with
    # tuple.__new__ it costs ~100 ns against ~360 ns for a frozen slotted
    # dataclass (CPython 3.11), and a check has a 1 µs budget.
    duplicate: bool
    first_seq: int
    first_source: str


@dataclass(frozen=True, slots=True)
class DedupStatistics:
    """A snapshot of a :class:`DedupWindow`.

    Attributes:
        checks: events checked (``unique + redeliveries + duplicates``).
        unique: checks that found a new key.
        redeliveries: checks that found their key with their own seq.
        duplicates: checks that found their key with another seq.
        duplicate_pairs: duplicates per ``(first source, repeating source)``;
            at most ``(max_sources + 1) ** 2`` pairs, since the sources beyond
            ``max_sources`` count as :data:`OTHER_SOURCE`.
        size: keys remembered now.
        capacity: ``max_entries``.
        max_age_s: the age bound.
        resolution_s: the time resolution of the age bound.
        loaded: keys remembered by :meth:`DedupWindow.load`.
        evicted_by_age: keys forgotten because they reached ``max_age_s``.
        evicted_by_count: keys forgotten young because the window was full.
        sources: distinct sources told apart (at most ``max_sources``).
        runs: timestamps held (one per run of keys first seen together).
        memory_bytes: an estimate of the memory the window holds: its
            containers, the runs and, per entry, the packed value and the key
            string (average size sampled from the oldest and newest keys).
    """

    checks: int
    unique: int
    redeliveries: int
    duplicates: int
    duplicate_pairs: Mapping[tuple[str, str], int]
    size: int
    capacity: int
    max_age_s: float
    resolution_s: float
    loaded: int
    evicted_by_age: int
    evicted_by_count: int
    sources: int
    runs: int
    memory_bytes: int


class DedupWindow:
    """Remembers the first ``(seq, source)`` of each key, bounded by age and count.

    Args:
        max_age_s: how long a key is remembered after it was first seen (> 0).
        max_entries: how many keys are remembered at most (>= 1).
        resolution_s: keys first seen within this long of each other share
            one timestamp, so a key may be remembered up to this much longer
            than ``max_age_s`` (0 < resolution_s <= max_age_s; default
            ``max_age_s / 1000``, at most :data:`MAX_RESOLUTION_S`). The
            number of timestamps held is at most ``max_age_s / resolution_s + 2``.
        max_sources: how many distinct sources are told apart (1 to 1023);
            further sources are remembered as :data:`OTHER_SOURCE`.

    Raises:
        ValueError: a bound is out of range.
    """

    def __init__(
        self,
        max_age_s: float,
        max_entries: int,
        *,
        resolution_s: float | None = None,
        max_sources: int = 64,
    ) -> None:
        if not max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0, not {max_age_s!r}")
        if resolution_s is None:
            resolution_s = min(max_age_s / 1000, MAX_RESOLUTION_S)
        if not 0 < resolution_s <= max_age_s:
            raise ValueError(f"resolution_s must be in (0, max_age_s], not {resolution_s!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, not {max_entries!r}")
        if not 1 <= max_sources <= _SOURCE_MASK:
            raise ValueError(f"max_sources must be in 1..{_SOURCE_MASK}, not {max_sources!r}")
        self._max_age_s = max_age_s
        self._resolution_s = resolution_s
        self._max_entries = max_entries
        self._max_sources = max_sources
        # key -> seq << SOURCE_BITS | source index; insertion order is age order.
        self._entries: dict[str, int] = {}
        self._keys: deque[str] = deque()
        # How many keys have ever left the front of _keys: positions below are
        # absolute (position of _keys[i] is _popped + i), so runs need no update
        # when keys leave.
        self._popped = 0
        # Runs, oldest first: when the first key of each was first seen, and
        # the absolute position of that key.
        self._run_starts: deque[float] = deque()
        self._run_firsts: deque[int] = deque()
        # A key first seen before this joins the newest run.
        self._run_end = -_INFINITY
        # When the oldest run expires: one comparison per check decides
        # whether anything has to be forgotten.
        self._expires_at = _INFINITY
        self._source_index: dict[str, int] = {}
        # Index 0 stands for the sources beyond max_sources.
        self._sources: list[str] = [OTHER_SOURCE]
        # Repeating source -> duplicates counted by the first source's index.
        self._repeats: dict[str, list[int]] = {}
        # The hot path counts as little as it can: unique, duplicates and
        # count evictions are derived from _popped, _repeats and these.
        self._redeliveries = 0
        self._loaded = 0
        self._evicted_by_age = 0

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, key: str, seq: int, source: str, now: float) -> Verdict:
        """Check one event and remember its key if it is new.

        Keys old enough are forgotten first. A key is a duplicate while it is
        remembered, whatever its age: only the bounds make the window forget.

        Args:
            key: the event's dedup key (``Event.key``).
            seq: its journal sequence number (>= 0).
            source: its source (``Event.source``).
            now: the current time, seconds.
        """
        if now >= self._expires_at:
            self._expire(now)
        entries = self._entries
        packed = entries.get(key)
        if packed is None:
            index = self._source_index.get(source)
            if index is None:
                index = self._add_source(source)
            entries[key] = seq << SOURCE_BITS | index
            # _append, inlined: a method call is a tenth of the budget.
            if now >= self._run_end:
                self._start_run(now)
            keys = self._keys
            keys.append(key)
            if len(keys) > self._max_entries:
                del entries[keys.popleft()]
                self._popped += 1
            return _new_verdict(Verdict, (False, seq, source))
        first_seq = packed >> SOURCE_BITS
        first_index = packed & _SOURCE_MASK
        first_source = self._sources[first_index]
        if first_seq == seq:
            self._redeliveries += 1
            return _new_verdict(Verdict, (False, seq, first_source))
        counts = self._repeats.get(source)
        if counts is None:
            counts = self._repeat_counts(source)
        counts[first_index] += 1
        return _new_verdict(Verdict, (True, first_seq, first_source))

    def load(self, entries: Iterable[tuple[str, int, str, float]]) -> int:
        """Remember ``(key, seq, source, first_seen)`` entries, e.g. at start from the journal.

        Give them in journal order (ascending seq): for a key that appears more
        than once, the first entry wins, exactly as :meth:`check` would have
        decided. Keys already remembered are kept as they are. Entries older
        than ``max_age_s`` are forgotten by the next :meth:`check`; beyond
        ``max_entries``, the oldest are evicted as usual.

        Returns:
            how many keys were newly remembered.
        """
        added = 0
        for key, seq, source, first_seen in entries:
            if key in self._entries:
                continue
            index = self._source_index.get(source)
            if index is None:
                index = self._add_source(source)
            self._entries[key] = seq << SOURCE_BITS | index
            self._append(key, first_seen)
            added += 1
        self._loaded += added
        return added

    def statistics(self) -> DedupStatistics:
        """A snapshot of the counters and bounds (O(1) in the window's size)."""
        sources = self._sources
        pairs = {
            (sources[first], repeat): count
            for repeat, counts in self._repeats.items()
            for first, count in enumerate(counts)
            if count
        }
        duplicates = sum(pairs.values())
        # Every key ever remembered either is still here or has been popped.
        unique = self._popped + len(self._keys) - self._loaded
        return DedupStatistics(
            checks=unique + self._redeliveries + duplicates,
            unique=unique,
            redeliveries=self._redeliveries,
            duplicates=duplicates,
            duplicate_pairs=pairs,
            size=len(self._entries),
            capacity=self._max_entries,
            max_age_s=self._max_age_s,
            resolution_s=self._resolution_s,
            loaded=self._loaded,
            evicted_by_age=self._evicted_by_age,
            evicted_by_count=self._popped - self._evicted_by_age,
            sources=len(sources) - 1,
            runs=len(self._run_starts),
            memory_bytes=self._memory_estimate(),
        )

    def _append(self, key: str, first_seen: float) -> None:
        """Put a key just stored in ``_entries`` last in age order; evict beyond the count."""
        if first_seen >= self._run_end:
            self._start_run(first_seen)
        keys = self._keys
        keys.append(key)
        if len(keys) > self._max_entries:
            del self._entries[keys.popleft()]
            self._popped += 1

    def _start_run(self, first_seen: float) -> None:
        self._run_starts.append(first_seen)
        self._run_firsts.append(self._popped + len(self._keys))
        self._run_end = first_seen + self._resolution_s
        if len(self._run_starts) == 1:
            self._expires_at = self._run_end + self._max_age_s

    def _expire(self, now: float) -> None:
        """Forget every run whose last possible member is ``max_age_s`` old at ``now``.

        Keys evicted by count leave their run in place (keeping the hot path
        short); the run goes when it expires, so the number of runs stays
        bounded by time, and only the keys still here are forgotten by age.
        """
        keys, entries = self._keys, self._entries
        starts, firsts = self._run_starts, self._run_firsts
        while now >= self._expires_at:
            starts.popleft()
            firsts.popleft()
            end = firsts[0] if firsts else self._popped + len(keys)
            while self._popped < end:
                del entries[keys.popleft()]
                self._popped += 1
                self._evicted_by_age += 1
            if starts:
                self._expires_at = starts[0] + self._resolution_s + self._max_age_s
            else:
                self._expires_at = _INFINITY
                self._run_end = -_INFINITY

    def _add_source(self, source: str) -> int:
        """The index of a source not seen before (0, :data:`OTHER_SOURCE`, beyond the bound)."""
        if len(self._sources) > self._max_sources:
            return 0
        self._source_index[source] = len(self._sources)
        self._sources.append(source)
        return len(self._sources) - 1

    def _repeat_counts(self, source: str) -> list[int]:
        """The duplicate counts of a source not yet counted (or beyond ``max_sources``)."""
        index = self._source_index.get(source)
        if index is None:
            index = self._add_source(source)
        name = source if index else OTHER_SOURCE
        return self._repeats.setdefault(name, [0] * (self._max_sources + 1))

    def _memory_estimate(self) -> int:
        keys = self._keys
        runs = len(self._run_starts)
        containers = sum(
            sys.getsizeof(container)
            for container in (self._entries, keys, self._run_starts, self._run_firsts)
        )
        # A run holds a float and an int; an entry a packed int and its key.
        run_bytes = runs * (sys.getsizeof(0.0) + sys.getsizeof(1 << 40))
        if not keys:
            return containers + run_bytes
        sample = min(len(keys), _KEY_SAMPLE)
        sampled = [keys[i] for i in range(sample)] + [keys[-1 - i] for i in range(sample)]
        key_bytes = sum(sys.getsizeof(key) for key in sampled) / len(sampled)
        per_entry = sys.getsizeof(1 << 40) + key_bytes
        return int(containers + run_bytes + len(keys) * per_entry)
