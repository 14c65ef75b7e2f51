"""Export formats: JSON Lines and msgpack, the msgpack reader, and --since parsing."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack  # msgpack ships no type hints
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.event import SCHEMA_VERSION, Event, Priority, parse_time
from realtime.export import (
    ExportFormatError,
    parse_since,
    read_msgpack,
    write_jsonl,
    write_msgpack,
)
from realtime.journal_store import JournalStore, decode_payload


def event(n: int, **data: Any) -> Event:
    return Event(
        id=str(n),
        source="map:demo" if n % 2 else "wanderer-kills",
        type="killmail",
        time=1_700_000_000.25 + n,
        received_at=123_456_789 + n,
        key=f"killmail:{n}",
        priority=Priority(n % len(Priority)),
        data={"killmail_id": n, **data},
    )


VARIED = [
    event(1),
    event(2, victim={"ship": "Rifter", "hp": 12.5}, attackers=[{"id": 1}, {"id": 2}]),
    event(3, name="Ωmega ✓", empty={}, nothing=None, flag=True, big=2**63 - 1, small=-(2**63)),
    event(4, blob=b"\x00\xff", nested=[[1, [2, [3]]]], ratio=1e-300),
    Event("5", "map:demo", "add_system", 0.0, 0, "map:demo:5", Priority.LOW, {}, schema=9),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JournalStore]:
    with JournalStore.open(tmp_path / "journal.db") as opened:
        yield opened


def msgpack_export(events: list[Event]) -> bytes:
    out = io.BytesIO()
    assert write_msgpack(events, out) == len(events)
    return out.getvalue()


def test_journal_to_msgpack_and_back_gives_equal_events(store: JournalStore) -> None:
    committed = store.append(VARIED)
    exported = msgpack_export(store.read(0, 100))
    assert list(read_msgpack(io.BytesIO(exported))) == committed


def test_the_msgpack_export_carries_each_stored_payload_as_its_data(
    store: JournalStore,
) -> None:
    store.append(VARIED)
    exported = msgpack_export(store.read(0, 100))
    connection = sqlite3.connect(store.path)
    try:
        payloads = [row[0] for row in connection.execute("SELECT payload FROM events ORDER BY seq")]
    finally:
        connection.close()
    unpacker = msgpack.Unpacker(io.BytesIO(exported), raw=False, strict_map_key=False)
    records = list(unpacker)
    assert [record["data"] for record in records] == [decode_payload(p) for p in payloads]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def test_any_json_like_payload_round_trips_byte_for_byte(store: JournalStore) -> None:
    @settings(max_examples=60, deadline=None)
    @given(data=st.dictionaries(st.text(max_size=8), json_values, max_size=6))
    def check(data: dict[str, Any]) -> None:
        (committed,) = store.append(
            [Event("1", "wanderer-kills", "killmail", 1.5, 1, "k", Priority.HIGH, data)]
        )
        exported = msgpack_export(store.read(committed.committed_seq - 1, 1))
        assert msgpack.packb(data) in exported
        assert list(read_msgpack(io.BytesIO(exported))) == [committed]

    check()


def test_msgpack_records_carry_the_contract_fields(store: JournalStore) -> None:
    store.append([event(2)])
    (record,) = msgpack.Unpacker(io.BytesIO(msgpack_export(store.read(0, 1))), raw=False)
    assert record == {
        "seq": 1,
        "id": "2",
        "source": "wanderer-kills",
        "type": "killmail",
        "time": 1_700_000_002.25,
        "received_at": 123_456_791,
        "key": "killmail:2",
        "priority": "normal",
        "schema": SCHEMA_VERSION,
        "data": {"killmail_id": 2},
    }


def test_jsonl_has_one_object_a_line_with_iso_time_and_priority_name() -> None:
    out = io.StringIO()
    events = [event(2).with_seq(7), event(3, nested={"a": [1, 2]}).with_seq(8)]
    assert write_jsonl(events, out) == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (orjson.loads(line) for line in lines)
    assert first == {
        "seq": 7,
        "id": "2",
        "source": "wanderer-kills",
        "type": "killmail",
        "time": "2023-11-14T22:13:22.250000Z",
        "received_at": 123_456_791,
        "key": "killmail:2",
        "priority": "normal",
        "schema": SCHEMA_VERSION,
        "data": {"killmail_id": 2},
    }
    assert parse_time(first["time"]) == events[0].time
    assert second["priority"] == "low"
    assert second["data"] == {"killmail_id": 3, "nested": {"a": [1, 2]}}


def test_jsonl_refuses_data_json_cannot_hold_naming_the_event() -> None:
    with pytest.raises(ValueError, match="event seq 4"):
        write_jsonl([event(4, blob=b"\x00").with_seq(4)], io.StringIO())


def test_a_truncated_tail_raises_naming_the_record_after_the_complete_ones() -> None:
    exported = msgpack_export([e.with_seq(i) for i, e in enumerate(VARIED[:3], 1)])
    reader = read_msgpack(io.BytesIO(exported[:-5]))
    assert [e.seq for e in (next(reader), next(reader))] == [1, 2]
    with pytest.raises(ExportFormatError, match=r"record 3: truncated"):
        next(reader)


def test_an_empty_input_has_no_events() -> None:
    assert list(read_msgpack(io.BytesIO(b""))) == []


def test_records_spanning_read_chunks_are_reassembled() -> None:
    events = [event(n, padding="p" * 5000).with_seq(n) for n in range(1, 60)]
    assert list(read_msgpack(io.BytesIO(msgpack_export(events)))) == events


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda good: 42, r"record 2: expected a map, got int"),
        (
            lambda good: {"id": "x"},
            r"record 2: missing source, type, time, received_at, key, priority, data",
        ),
        (lambda good: {**good, "priority": "urgent"}, r"record 2: priority must be one of"),
        (lambda good: {**good, "time": "yesterday"}, r"record 2: time must be Unix seconds"),
        (lambda good: {**good, "received_at": 1.5}, r"record 2: received_at must be an integer"),
        (lambda good: {**good, "seq": True}, r"record 2: seq must be an integer"),
        (lambda good: {**good, "id": 5}, r"record 2: id must be a string"),
        (lambda good: {**good, "data": [1, 2]}, r"record 2: data must be a map, got list"),
    ],
)
def test_a_record_of_the_wrong_shape_raises_naming_it(
    spoil: Callable[[dict[str, Any]], object], message: str
) -> None:
    (good,) = msgpack.Unpacker(io.BytesIO(msgpack_export([event(1).with_seq(1)])), raw=False)
    reader = read_msgpack(io.BytesIO(msgpack.packb(good) + msgpack.packb(spoil(good))))
    assert next(reader).seq == 1
    with pytest.raises(ExportFormatError, match=message):
        next(reader)


def test_bytes_that_are_not_msgpack_raise_naming_the_record() -> None:
    stream = msgpack_export([event(1).with_seq(1)]) + b"\xc1"
    with pytest.raises(ExportFormatError, match=r"record 2: not valid msgpack"):
        list(read_msgpack(io.BytesIO(stream)))


def test_a_record_above_the_size_bound_is_refused() -> None:
    stream = msgpack_export([event(1, padding="p" * 10_000).with_seq(1)])
    with pytest.raises(ExportFormatError, match=r"record 1: larger than 4096 bytes"):
        list(read_msgpack(io.BytesIO(stream), max_record_bytes=4096))


def test_a_record_without_seq_or_schema_reads_as_uncommitted_current_schema() -> None:
    (record,) = msgpack.Unpacker(io.BytesIO(msgpack_export([event(1).with_seq(1)])), raw=False)
    del record["seq"], record["schema"]
    (read,) = read_msgpack(io.BytesIO(msgpack.packb(record)))
    assert read == event(1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", (0, None)),
        ("1234", (1234, None)),
        (" 42 ", (42, None)),
        ("2024-06-11T12:00:00Z", (None, 1_718_107_200.0)),
        ("2024-06-11T14:00:00+02:00", (None, 1_718_107_200.0)),
        ("2024-06-11T12:00:00", (None, 1_718_107_200.0)),
        ("2024-06-11", (None, 1_718_064_000.0)),
    ],
)
def test_since_is_a_seq_when_all_digits_else_an_iso_time(
    text: str, expected: tuple[int | None, float | None]
) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "-5", "yesterday", "12a", "١٢"])
def test_since_that_is_neither_raises_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="neither a sequence number nor an ISO 8601 time"):
        parse_since(text)
