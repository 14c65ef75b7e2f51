"""Journal throughput: ``python -m bench.journal``.

Measures, in one run and on the same disk:

- ingest: :meth:`JournalStore.append` of small events (~300 B payload) in
  batches of 500, against a baseline of plain ``executemany`` of the same
  rows (payloads packed beforehand) into an identical table, one transaction
  per batch. The ratio is the cost of what the store adds: packing each
  payload and returning a copy of each event carrying its seq.
- the latency of one ``append`` of 1,000 events (target: well under 20 ms).
- read-back and export: ``read`` in pages + ``write_msgpack`` to /dev/null,
  ``read`` + ``write_jsonl``, and ``read_msgpack`` of the export.

Targets: ingest and each read-back path at least 50,000 events/s.

Input events are built batch by batch outside the timed sections, so the
process never holds more events than a running service would: a heap of a
hundred thousand live events makes every cyclic-GC pass slower and would
charge that to whatever code happens to allocate.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack  # msgpack ships no type hints

from realtime.event import KILLS_SOURCE, Event, Priority
from realtime.export import read_msgpack, write_jsonl, write_msgpack
from realtime.journal_store import JournalStore

TARGET_EVENTS_PER_S = 50_000
BATCH = 500
PAGE = 1_000


def small_event(n: int) -> Event:
    """A killmail-like event with about 300 bytes of msgpack payload."""
    digest = hashlib.blake2b(str(n).encode(), digest_size=8).hexdigest()
    return Event(
        id=str(100_000_000 + n),
        source=KILLS_SOURCE,
        type="killmail",
        time=1_700_000_000.0 + n,
        received_at=time.monotonic_ns(),
        key=f"killmail:{100_000_000 + n}",
        priority=Priority.NORMAL,
        data={
            "killmail_id": 100_000_000 + n,
            "solar_system_id": 30_000_142,
            "victim": {"character_id": 90_000_000 + n, "ship_type_id": 587, "damage_taken": 1234},
            "attackers": [
                {"character_id": 91_000_000 + n + i, "ship_type_id": 603, "final_blow": i == 0}
                for i in range(3)
            ],
            "zkb": {"hash": digest, "totalValue": 12_345_678.9, "points": 5, "npc": False},
        },
    )


def batches(count: int, size: int) -> Iterator[list[Event]]:
    """``count`` events in batches of ``size``, each built only when asked for."""
    for start in range(0, count, size):
        yield [small_event(n) for n in range(start, min(start + size, count))]


def ingest_journal(path: Path, count: int) -> float:
    """Seconds spent in ``append`` for ``count`` events in batches of :data:`BATCH`."""
    total = 0.0
    with JournalStore.open(path) as store:
        for batch in batches(count, BATCH):
            start = time.perf_counter()
            store.append(batch)
            total += time.perf_counter() - start
    return total


def ingest_baseline(path: Path, count: int) -> float:
    """Seconds spent in plain ``executemany`` of the same rows (packed beforehand),
    one transaction per batch, into an identical table."""
    JournalStore.open(path).close()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    total = 0.0
    seq = 0
    try:
        for batch in batches(count, BATCH):
            now = time.time()
            rows = []
            for e in batch:
                seq += 1
                rows.append(
                    (
                        seq,
                        e.id,
                        e.source,
                        e.type,
                        e.time,
                        e.received_at,
                        now,
                        e.key,
                        int(e.priority),
                        e.schema,
                        msgpack.packb(dict(e.data)),
                    )
                )
            start = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                "INSERT INTO events (seq, id, source, type, time, received_at, ingested_at,"
                " key, priority, schema, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            connection.execute("COMMIT")
            total += time.perf_counter() - start
    finally:
        connection.close()
    return total


def append_latencies_ms(path: Path, rounds: int) -> list[float]:
    """Milliseconds of each of ``rounds`` appends of 1,000 events."""
    latencies = []
    with JournalStore.open(path) as store:
        for batch in batches(rounds * 1000, 1000):
            start = time.perf_counter()
            store.append(batch)
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def read_all(store: JournalStore) -> Iterator[Event]:
    after = 0
    while page := store.read(after, PAGE):
        yield from page
        after = page[-1].committed_seq


def export_msgpack(path: Path, out_path: str) -> tuple[float, int]:
    """Seconds to read the whole journal in pages and write it as msgpack; events written."""
    with JournalStore.open(path, read_only=True) as store, open(out_path, "wb") as out:
        start = time.perf_counter()
        written = write_msgpack(read_all(store), out)
        return time.perf_counter() - start, written


def export_jsonl(path: Path) -> tuple[float, int]:
    """Seconds to read the whole journal in pages and write JSON Lines to /dev/null."""
    with JournalStore.open(path, read_only=True) as store, open(os.devnull, "w") as out:
        start = time.perf_counter()
        written = write_jsonl(read_all(store), out)
        return time.perf_counter() - start, written


def read_back(export: bytes) -> tuple[float, int]:
    """Seconds to read every event of a msgpack export; events read."""
    start = time.perf_counter()
    count = sum(1 for _ in read_msgpack(io.BytesIO(export)))
    return time.perf_counter() - start, count


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)

    events = args.events
    payload_bytes = statistics.mean(len(msgpack.packb(small_event(n).data)) for n in range(1000))
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp:
        directory = Path(tmp)
        journal_s = baseline_s = float("inf")
        for run in range(args.repeat):
            journal_s = min(journal_s, ingest_journal(directory / f"journal{run}.db", events))
            baseline_s = min(baseline_s, ingest_baseline(directory / f"baseline{run}.db", events))
        latencies = sorted(append_latencies_ms(directory / "latency.db", rounds=50))
        source = directory / "journal0.db"
        export_path = str(directory / "export.msgpack")
        export_s, exported = min(export_msgpack(source, export_path) for _ in range(args.repeat))
        jsonl_s, jsonl_count = min(export_jsonl(source) for _ in range(args.repeat))
        export = Path(export_path).read_bytes()
        read_s, read_count = min(read_back(export) for _ in range(args.repeat))
        devnull_s, _ = min(export_msgpack(source, os.devnull) for _ in range(args.repeat))

    n = events
    print(f"journal bench: {n} events, ~{payload_bytes:.0f} B payload, batches of {BATCH}")
    print(f"{'measure':<44}{'events/s':>12}{'target':>10}")
    rows = [
        ("ingest: JournalStore.append", rate(n, journal_s)),
        ("ingest baseline: executemany, pre-packed", rate(n, baseline_s)),
        ("read pages + write_msgpack to /dev/null", rate(exported, devnull_s)),
        ("read pages + write_msgpack to a file", rate(exported, export_s)),
        ("read pages + write_jsonl to /dev/null", rate(jsonl_count, jsonl_s)),
        ("read_msgpack of the export", rate(read_count, read_s)),
    ]
    for name, value in rows:
        target = "" if "baseline" in name else ("ok" if value >= TARGET_EVENTS_PER_S else "BELOW")
        print(f"{name:<44}{value:>12,.0f}{target:>10}")
    print(f"ingest ratio journal / baseline: {baseline_s / journal_s:.2f}")
    median = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"append of 1,000 events: median {median:.2f} ms, p99 {p99:.2f} ms (target < 20 ms)")


if __name__ == "__main__":
    main()
