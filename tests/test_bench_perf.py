"""What the benchmark's performance fixes changed, held to the behaviour they replace."""

from __future__ import annotations

import itertools
import socket as sockets
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.protocol import Names
from app.system import build
from realtime.config import parse
from realtime.event import Outcome
from realtime.journal_store import JournalStore
from realtime.ledger import Claim, Ledger, LedgerKey, LedgerState
from realtime.sqlite_rows import MAX_ROWS_PER_STATEMENT, chunks
from tests.support.pipeline import kill_event


def _claimed(tmp_path: Path, *keys: str) -> Ledger:
    ledger = Ledger.open(tmp_path / "journal.sqlite3")
    ledger.claim_many([Claim("console", key, index, b"{}") for index, key in enumerate(keys)])
    return ledger


def _k(key: str) -> LedgerKey:
    return LedgerKey("console", key)


def _state(ledger: Ledger, key: str) -> LedgerState:
    entry = ledger.get(_k(key))
    assert entry is not None
    return entry.state


def test_mark_sent_many_marks_each_pending_entry_sent_in_one_go(tmp_path: Path) -> None:
    with _claimed(tmp_path, "a", "b", "c") as ledger:
        assert ledger.mark_sent_many([_k("a"), _k("c")]) == 2
        assert [_state(ledger, key) for key in "abc"] == [
            LedgerState.SENT,
            LedgerState.PENDING,
            LedgerState.SENT,
        ]
        statistics = ledger.statistics()
        assert (statistics.pending, statistics.sent) == (1, 2)


def test_mark_sent_many_leaves_entries_that_are_no_longer_pending(tmp_path: Path) -> None:
    with _claimed(tmp_path, "a", "b") as ledger:
        ledger.mark_failed(_k("a"), "gave up")
        assert ledger.mark_sent_many([_k("a"), _k("b")]) == 1
        assert _state(ledger, "a") is LedgerState.FAILED
        assert ledger.statistics().failed == 1


def test_mark_sent_many_of_a_key_never_claimed_marks_none(tmp_path: Path) -> None:
    with _claimed(tmp_path, "a") as ledger:
        with pytest.raises(KeyError):
            ledger.mark_sent_many([_k("a"), _k("never")])
        assert _state(ledger, "a") is LedgerState.PENDING
        assert ledger.statistics().pending == 1


def test_a_tree_with_metrics_disabled_has_no_metrics_actor(tmp_path: Path) -> None:
    table = {
        "app": {"data_dir": str(tmp_path)},
        "simulator": {"enabled": False},
        "sources": {"kills": {"enabled": False}},
    }
    enabled = build(parse(table, {}))
    disabled = build(parse(table | {"metrics": {"enabled": False}}, {}))
    assert Names.METRICS in [child.name for child in enabled.tree.spec.children]
    assert Names.METRICS not in [child.name for child in disabled.tree.spec.children]


def test_the_console_control_table_is_exactly_unicode_category_cc() -> None:
    from realtime.controls import CONTROL_CHARACTERS

    every_cc = [code for code in range(0x110000) if unicodedata.category(chr(code)) == "Cc"]
    assert sorted(CONTROL_CHARACTERS) == every_cc


@given(st.text())
def test_a_console_part_is_cleaned_as_by_the_per_character_rule(text: str) -> None:
    from realtime.controls import BIDI_CONTROLS
    from realtime.render.console import _CONSOLE_TEXT_LIMIT, _plain
    from realtime.render.limits import clean, truncate

    per_character = "".join(
        " " if unicodedata.category(ch) == "Cc" or ord(ch) in BIDI_CONTROLS else ch
        for ch in clean(text)
    )
    expected = truncate(" ".join(per_character.split()), _CONSOLE_TEXT_LIMIT)
    assert _plain(text) == expected


def _peek(socket: Any) -> bytes:
    """What the kernel holds for ``socket`` now, left in place (never waits)."""
    try:
        data: bytes = socket.sock.recv(4096, sockets.MSG_PEEK | sockets.MSG_DONTWAIT)
    except BlockingIOError:
        return b""
    return data


def test_the_kills_socket_reads_frames_that_arrived_together_in_one_read() -> None:
    from actors.bounded_websocket import BoundedWebSocket
    from simulator.kills_server import KillsServer
    from tests.support.waiting import wait_for

    with KillsServer() as server:
        socket = BoundedWebSocket(1 << 20, 1024)
        socket.connect(server.url, suppress_origin=True)  # type: ignore[no-untyped-call]
        try:
            wait_for(lambda: server.statistics().connections_current == 1, timeout_s=5)
            assert server.send_raw('{"first": 1}') == 1
            assert server.send_raw('{"second": 2}') == 1
            wait_for(lambda: b"second" in _peek(socket), timeout_s=5)
            first = socket.receive().data
            assert first == b'{"first": 1}'
            # The surplus of the read stays in the frame buffer: the kernel has nothing left.
            assert _peek(socket) == b"", "the second frame came with the first"
            assert socket.has_data()
            assert socket.receive().data == b'{"second": 2}'
            assert not socket.has_data()
        finally:
            socket.close()


@given(
    total=st.integers(min_value=0, max_value=3000),
    width=st.integers(min_value=1, max_value=12),
    limit=st.integers(min_value=1, max_value=40_000),
)
def test_statement_chunks_cover_every_row_once_within_the_bounds(
    total: int, width: int, limit: int
) -> None:
    pieces = list(chunks(total, width, limit))
    assert [start for start, _ in pieces] == list(
        itertools.accumulate([size for _, size in pieces[:-1]], initial=0)
    )[: len(pieces)]
    assert sum(size for _, size in pieces) == total
    for _, size in pieces:
        assert size & (size - 1) == 0, "a power of two"
        assert size <= MAX_ROWS_PER_STATEMENT
        assert size == 1 or size * width <= limit


def test_a_large_append_and_settle_go_through_in_few_statements(tmp_path: Path) -> None:
    with JournalStore.open(tmp_path / "journal.sqlite3") as store:
        events = [kill_event(1000 + n) for n in range(1300)]
        committed = store.append(events)
        assert [e.seq for e in committed] == list(range(1, 1301))
        assert [e.id for e in store.read(0, 2000)] == [e.id for e in events]
        seqs = [e.committed_seq for e in committed]
        assert store.settle([*seqs[:700], 5, 5], Outcome.DUPLICATE) == 700
        assert store.settle(seqs, Outcome.SHED) == 600
        assert store.outcomes_count()[Outcome.DUPLICATE] == 700
        assert len(store.read(0, 2000, include_settled=False)) == 0


def test_claims_repeated_or_already_held_are_refused_as_one_at_a_time_would(
    tmp_path: Path,
) -> None:
    with Ledger.open(tmp_path / "journal.sqlite3") as ledger:
        ledger.claim("console", "held", 1, b"{}")
        claims = [
            Claim("console", key, n, b"{}") for n, key in enumerate(["a", "b", "held", "a", "c"])
        ]
        entries = ledger.claim_many(claims)
        assert [entry is not None for entry in entries] == [True, True, False, False, True]
        assert ledger.statistics().pending == 4
        many = [Claim("discord", f"k{n}", n, b"{}") for n in range(1100)]
        assert all(entry is not None for entry in ledger.claim_many(many))
        assert ledger.mark_sent_many([claim.key for claim in many]) == 1100


def test_the_journal_keeps_no_delivered_event_in_memory(tmp_path: Path) -> None:
    from tests.support.pipeline import Handled, checkpoint_reaches, config_for, ingest, pipeline
    from tests.support.pipeline import journal_status as status
    from tests.support.waiting import wait_for

    config = config_for(tmp_path)
    with pipeline(config, Handled()) as tree:
        ingest(tree, *(kill_event(5000 + n) for n in range(50)))
        wait_for(checkpoint_reaches(tree, 50), what="every event settled")
        journal = status(tree)
        assert journal["tail"] == 0
        assert journal["tail_capacity"] > 0
