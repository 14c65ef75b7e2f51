"""The ``map:{slug}`` source actor against the loopback Wanderer map server, on real sockets."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from actors.map_source import child_spec
from actors.protocol import Ingest, Names
from realtime.config import Config, MapConfig, Secret, SourcesConfig
from realtime.event import Cursor
from realtime.map_events import DEFAULT_MAP_EVENTS
from simulator.map_server import Framing, MapCharacter, MapServer, MapSystem
from supervision import ChildSpec, GetStatus, SupervisionTree
from tests.support.source_neighbours import (
    JournalLog,
    TrackingLog,
    Trees,
    journal_spec,
    tracking_spec,
)
from tests.support.source_neighbours import trees as start_trees
from tests.support.waiting import wait_for

SLUG = "demo"
API_KEY = "demo-key"
SOURCE = f"map:{SLUG}"
KEEPALIVE_TIMEOUT_S = 0.5
SYSTEMS = (MapSystem(31000005, "J123450"), MapSystem(30000142, "Jita"))
CHARACTERS = (MapCharacter(2117000001, "Example Pilot"),)
CONFIG = Config(sources=SourcesConfig(resend_min_s=0.05, resend_max_s=0.2))


pytestmark = pytest.mark.map_server(
    slug=SLUG, api_key=API_KEY, keepalive_s=0.1, systems=SYSTEMS, characters=CHARACTERS, seed=3
)


@pytest.fixture
def trees() -> Iterator[Trees]:
    yield from start_trees()


def map_config(map_server: MapServer, **overrides: Any) -> MapConfig:
    settings = MapConfig(
        slug=SLUG,
        base_url=map_server.base_url,
        api_key=Secret(API_KEY, "inline"),
        keepalive_timeout_s=KEEPALIVE_TIMEOUT_S,
        connect_timeout_s=1.0,
        reconnect_min_s=0.02,
        reconnect_max_s=1.0,
        config_error_retry_s=0.3,
        backfill_window_s=600.0,
    )
    return dataclasses.replace(settings, **overrides)


def start(
    trees: Trees,
    map_server: MapServer,
    journal: JournalLog | None = None,
    tracking: TrackingLog | None = None,
    **overrides: Any,
) -> SupervisionTree:
    options = overrides.pop("options", {})
    options.setdefault("rand", random.Random(11).random)
    options.setdefault("circuit_failures", 100)
    spec: ChildSpec = child_spec(CONFIG, map_config(map_server, **overrides), **options)
    return trees.start(
        [journal_spec(journal or JournalLog()), tracking_spec(tracking or TrackingLog()), spec]
    )


def status(tree: SupervisionTree) -> dict[str, Any]:
    answer = tree.registry.ask(Names.map_source(SLUG), GetStatus())
    assert isinstance(answer, dict)
    return answer


def state(tree: SupervisionTree) -> str:
    return str(status(tree)["connection"]["state"])


def status_when(
    tree: SupervisionTree, condition: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    reports: list[dict[str, Any]] = []

    def met() -> bool:
        reports.append(status(tree))
        return condition(reports[-1])

    wait_for(met, what=what)
    return reports[-1]


def live(tree: SupervisionTree) -> None:
    """Wait for the ``connected`` event of a stream (health may still be ``degraded``)."""
    wait_for(lambda: status(tree)["sse"]["phase"] == "live", what="the stream is live")


def publish_systems(map_server: MapServer, first: int, count: int) -> list[str]:
    return [
        map_server.publish(
            "add_system",
            {"solar_system_id": first + n, "name": f"J{first + n} Ωmega é", "position_x": n},
        )
        for n in range(count)
    ]


def journaled_ids(journal: JournalLog) -> list[str]:
    return [event.id for event in journal.events]


def test_tracked_state_is_bootstrapped_over_rest_at_start(
    map_server: MapServer, trees: Trees
) -> None:
    tracking = TrackingLog()
    tree = start(trees, map_server, tracking=tracking)
    live(tree)
    wait_for(lambda: tracking.bootstraps, what="a bootstrap")
    (bootstrap,) = tracking.bootstraps
    assert bootstrap.slug == SLUG
    assert dict(bootstrap.systems) == {31000005: "J123450", 30000142: "Jita"}
    assert dict(bootstrap.characters) == {2117000001: "Example Pilot"}
    assert status(tree)["subscription"]["bootstraps_sent"] == 1


def test_requested_events_are_the_defaults_unless_configured(
    map_server: MapServer, trees: Trees
) -> None:
    tree = start(trees, map_server)
    live(tree)
    assert map_server.statistics().connect_attempts[0].events == ",".join(DEFAULT_MAP_EVENTS)
    trees.stop_all()
    tree = start(trees, map_server, events=("add_system", "map_kill"))
    live(tree)
    assert map_server.statistics().connect_attempts[-1].events == "add_system,map_kill"


@pytest.mark.parametrize("framing", ["lf", "crlf", "cr", "split", "coalesce"])
def test_every_framing_is_parsed_end_to_end(
    map_server: MapServer, trees: Trees, framing: Framing
) -> None:
    map_server.set_framing(framing)
    journal = JournalLog()
    tree = start(trees, map_server, journal)
    live(tree)
    published = publish_systems(map_server, 31000100, 20)
    wait_for(lambda: len(journal.events) == 20, what=f"20 events framed {framing}")
    assert journaled_ids(journal) == published
    assert journal.rejects == []
    event = journal.events[3]
    assert (event.source, event.type) == (SOURCE, "add_system")
    assert event.data["name"] == "J31000103 Ωmega é"
    assert event.key == f"{SOURCE}:{published[3]}"
    assert journal.ingests[-1].cursor is not None
    assert journal.cursor(SOURCE) == published[-1]


def test_resume_after_a_drop_gets_exactly_the_missed_events(
    map_server: MapServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start(trees, map_server, journal)
    live(tree)
    before = publish_systems(map_server, 31000200, 3)
    wait_for(lambda: journaled_ids(journal) == before, what="the first events")
    map_server.fail_next(503, count=None)
    assert map_server.drop_all() == 1
    wait_for(lambda: state(tree) != "connected", what="the drop noticed")
    missed = publish_systems(map_server, 31000300, 4)
    map_server.clear_failures()
    live(tree)
    wait_for(lambda: len(journal.events) == 7, what="the missed events")
    assert journaled_ids(journal) == before + missed
    resumed = map_server.statistics().connect_attempts[-1]
    assert (resumed.status, resumed.last_event_id, resumed.last_event_id_header) == (
        200,
        before[-1],
        before[-1],
    )


def test_a_drop_inside_an_event_loses_nothing_and_duplicates_nothing(
    map_server: MapServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start(trees, map_server, journal)
    live(tree)
    first = publish_systems(map_server, 31000400, 2)
    wait_for(lambda: len(journal.events) == 2, what="the first events")
    map_server.drop_all(mid_event=True)
    rest = publish_systems(map_server, 31000500, 3)
    wait_for(lambda: len(journal.events) == 5, what="every event once")
    assert journaled_ids(journal) == first + rest
    assert journal.rejects == []
    assert status(tree)["sse"]["parser"]["unterminated_events"] == 0  # a new parser per stream


def test_an_error_answering_server_is_retried_with_growing_delays(
    map_server: MapServer, trees: Trees
) -> None:
    map_server.fail_next(503, count=5)
    tree = start(trees, map_server)
    live(tree)
    attempts = map_server.statistics().connect_attempts
    assert [attempt.status for attempt in attempts] == [503] * 5 + [200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    # Each delay is at least the previous one's ceiling (equal jitter): they never shrink.
    for earlier, later in itertools.pairwise(gaps):
        assert later >= earlier - 0.01
    assert gaps[-1] >= 4 * gaps[0]
    report = status(tree)
    assert report["connection"]["errors"]["http_503"] == 5
    assert report["reconnect"]["failures"] == 5


def test_unauthorized_is_reported_as_failed_and_retried_slowly_never_in_a_loop(
    map_server: MapServer, trees: Trees, caplog: pytest.LogCaptureFixture
) -> None:
    map_server.fail_next(401, count=None)
    with caplog.at_level(logging.ERROR, logger="actors.map_source"):
        tree = start(trees, map_server)
        wait_for(lambda: state(tree) == "failed", what="failed on 401")
        status_when(tree, lambda r: r["sse"]["config_errors"] >= 3, "three slow attempts")
    attempts = map_server.statistics().connect_attempts
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert all(gap >= 0.3 - 0.01 for gap in gaps)  # config_error_retry_s
    assert any("api_key" in record.getMessage() for record in caplog.records)
    report = status(tree)
    assert report["sse"]["config_errors"] >= 3
    assert report["connection"]["quality"]["band"] == "critical"
    map_server.clear_failures()
    live(tree)


def test_a_wrong_api_key_fails_the_rest_bootstrap_and_says_what_to_fix(
    map_server: MapServer, trees: Trees, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="actors.map_source"):
        tree = start(trees, map_server, api_key=Secret("wrong", "env:MAP_API_KEY"))
        wait_for(lambda: state(tree) == "failed", what="failed on a wrong key")
    (record,) = [r for r in caplog.records if r.name == "actors.map_source"]
    assert "401" in record.getMessage()
    assert "api_key" in record.getMessage()
    assert map_server.statistics().connect_attempts_total == 0  # the stream was never tried


def test_keepalive_comments_keep_a_quiet_stream_and_silence_is_detected(
    map_server: MapServer, trees: Trees
) -> None:
    tree = start(trees, map_server)
    live(tree)
    wait_for(
        lambda: map_server.statistics().keepalives_written >= 8, what="a quiet stream kept alive"
    )
    assert map_server.statistics().connect_attempts_total == 1
    assert state(tree) == "connected"
    map_server.set_silent(True)
    went_silent = time.monotonic()
    report = status_when(
        tree,
        lambda r: r["connection"]["errors"].get("keepalive_timeout", 0) >= 1,
        "silence detected",
    )
    detected_after = time.monotonic() - went_silent
    assert KEEPALIVE_TIMEOUT_S - 0.15 <= detected_after <= KEEPALIVE_TIMEOUT_S + 0.5
    assert report["connection"]["state"] != "connected"
    map_server.set_silent(False)
    live(tree)


def test_a_200_stream_without_the_connected_event_never_resets_the_backoff(
    map_server: MapServer, trees: Trees
) -> None:
    map_server.set_silent(True)
    tree = start(trees, map_server, keepalive_timeout_s=0.2, options={"stable_s": 0.0})
    report = status_when(tree, lambda r: r["reconnect"]["attempt"] >= 3, "three silent streams")
    assert report["reconnect"]["resets"] == 0
    assert {attempt.status for attempt in map_server.statistics().connect_attempts} == {200}
    assert report["connection"]["errors"]["keepalive_timeout"] >= 3
    map_server.set_silent(False)
    live(tree)


def test_bootstrap_is_sent_again_only_after_a_gap_longer_than_the_backfill_window(
    map_server: MapServer, trees: Trees
) -> None:
    tracking = TrackingLog()
    tree = start(trees, map_server, tracking=tracking, backfill_window_s=0.3)
    live(tree)
    wait_for(lambda: len(tracking.bootstraps) == 1, what="the start bootstrap")
    map_server.drop_all()
    wait_for(lambda: map_server.statistics().connect_attempts_total == 2, what="a quick reconnect")
    live(tree)
    assert len(tracking.bootstraps) == 1
    map_server.fail_next(503, count=None)
    map_server.drop_all()
    map_server.add_system(31000999, "J999999")
    wait_for(lambda: len(tracking.bootstraps) >= 2, what="a resync during a long outage")
    assert 31000999 in tracking.bootstraps[-1].systems
    map_server.clear_failures()
    live(tree)


def sse(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One raw SSE block; ``event_id`` None leaves the id line out."""
    id_line = b"" if event_id is None else f"id: {event_id}\n".encode()
    return f"event: {event}\n".encode() + id_line + b"data: " + data + b"\n\n"


def envelope(event_id: str, **fields: object) -> bytes:
    return orjson.dumps({"id": event_id, **fields})


STAMP = "2026-01-01T00:00:00Z"
GARBAGE: list[tuple[bytes, str]] = [
    (sse("add_system", b"{nope", "01K0000000000000000000000A"), "invalid_json"),
    (sse("add_system", b"[1]", "01K0000000000000000000000B"), "not_an_object"),
    (sse("add_system", envelope("x", timestamp=STAMP, payload={})), "mismatched_event_id"),
    (
        sse(
            "add_system",
            envelope("01K0000000000000000000000C", payload={}),
            "01K0000000000000000000000C",
        ),
        "missing_timestamp",
    ),
    (
        sse(
            "add_system",
            envelope("01K0000000000000000000000D", timestamp=STAMP),
            "01K0000000000000000000000D",
        ),
        "missing_payload",
    ),
    (
        sse(
            "map_kill",
            envelope("01K0000000000000000000000E", timestamp=STAMP, payload={"victim": {}}),
            "01K0000000000000000000000E",
        ),
        "missing_killmail_id",
    ),
    (sse("add_system", b"\xff\xfe{", "01K0000000000000000000000F"), "invalid_json"),
]


def test_garbage_events_are_rejected_with_reasons_and_the_stream_goes_on(
    map_server: MapServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start(trees, map_server, journal, max_line_bytes=4096)
    live(tree)
    for data, _reason in GARBAGE:
        assert map_server.send_raw(data) == 1
    assert map_server.send_raw(b"data: " + b"x" * 10_000 + b"\n\n") == 1
    expected = {reason for _data, reason in GARBAGE}
    wait_for(lambda: journal.reject_reasons() == expected, what="every garbage event rejected")
    (published,) = publish_systems(map_server, 31000600, 1)
    wait_for(lambda: journaled_ids(journal) == [published], what="an event after the garbage")
    report = status(tree)
    assert sum(report["rejects"].values()) == len(GARBAGE)
    assert report["sse"]["parser"]["oversize_lines"] == 1
    assert map_server.statistics().connect_attempts_total == 1
    assert journal.cursor(SOURCE) == published


def test_a_refusing_journal_pauses_the_stream_without_closing_it_and_loses_nothing(
    map_server: MapServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start(trees, map_server, journal)
    live(tree)
    first = publish_systems(map_server, 31000700, 1)
    wait_for(lambda: journaled_ids(journal) == first, what="a first event")
    journal.refusing.set()
    refused = publish_systems(map_server, 31000800, 5)
    status_when(tree, lambda r: r["journal"]["gate"]["open"] is False, "the gate closed")
    journal.refusing.clear()
    wait_for(lambda: len(journal.events) == 6, what="everything journaled")
    assert journaled_ids(journal) == first + refused
    assert journal.cursor(SOURCE) == refused[-1]
    assert map_server.statistics().connect_attempts_total == 1


def test_a_journal_that_falls_behind_pauses_the_stream_past_the_keepalive_timeout(
    map_server: MapServer, trees: Trees
) -> None:
    journal = JournalLog()
    spec = child_spec(
        CONFIG, map_config(map_server), rand=random.Random(11).random, circuit_failures=100
    )
    tree = trees.start([journal_spec(journal, capacity=2), tracking_spec(TrackingLog()), spec])
    live(tree)
    journal.flowing.clear()
    try:
        published = publish_systems(map_server, 31002000, 200)
        status_when(
            tree,
            lambda r: r["journal"]["reading_paused_s"] > 2 * KEEPALIVE_TIMEOUT_S,
            "the reader paused for longer than the keepalive timeout",
        )
        assert status(tree)["sse"]["phase"] == "live"
    finally:
        journal.flowing.set()
    wait_for(lambda: len(journal.events) >= len(published), what="every event journaled")
    assert journaled_ids(journal) == published
    assert journal.cursor(SOURCE) == published[-1]
    assert map_server.statistics().connect_attempts_total == 1
    assert status(tree)["reconnect"]["failures"] == 0


def test_an_unanswered_cursor_ask_is_retried_and_the_committed_cursor_resumes_the_stream(
    map_server: MapServer, trees: Trees
) -> None:
    committed = publish_systems(map_server, 31000900, 2)
    missed = publish_systems(map_server, 31000950, 2)
    journal = JournalLog()
    journal.record(Ingest(SOURCE, cursor=Cursor(SOURCE, committed[-1])))
    journal.cursor_unavailable.set()
    tree = start(trees, map_server, journal, options={"journal_retry_s": 0.2})
    status_when(
        tree,
        lambda r: r["connection"]["errors"].get("journal_unavailable", 0) >= 2,
        "the cursor asked again",
    )
    assert map_server.statistics().connect_attempts_total == 0
    journal.cursor_unavailable.clear()
    live(tree)
    wait_for(lambda: journaled_ids(journal) == missed, what="exactly the events after the cursor")
    attempt = map_server.statistics().connect_attempts[-1]
    assert (attempt.last_event_id, attempt.last_event_id_header) == (committed[-1], committed[-1])


def test_the_servers_retry_field_lengthens_the_reconnection_delay(
    map_server: MapServer, trees: Trees
) -> None:
    journal = JournalLog()
    tree = start(trees, map_server, journal)
    live(tree)
    map_server.send_raw(b"retry: 400\n\n")
    (marker,) = publish_systems(map_server, 31001000, 1)
    wait_for(lambda: journaled_ids(journal) == [marker], what="the retry field parsed")
    dropped_at = time.monotonic()
    map_server.drop_all()
    wait_for(lambda: map_server.statistics().connect_attempts_total == 2, what="the reconnection")
    assert map_server.statistics().connect_attempts[-1].at - dropped_at >= 0.4
    assert status(tree)["sse"]["server_retry_s"] == 0.4


def test_stopping_closes_the_stream_and_ends_the_reader_thread(
    map_server: MapServer, trees: Trees
) -> None:
    tree = start(trees, map_server)
    live(tree)
    tree.stop()
    wait_for(
        lambda: map_server.statistics().open_streams == 0, what="the server sees the stream end"
    )
    assert not [t for t in threading.enumerate() if t.name.startswith("map-reader")]
