"""Garbage on both feeds (``send_raw``) while real events flow, against the real program.

Nothing undecodable is dropped silently (it goes to the journal's rejects
table), no connection is given up for it unless the protocol says so, and no
real event around it is lost or doubled.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import requests

from realtime.map_events import is_resume_point
from simulator import ulid
from tests.support.fault_world import TRACKED_SYSTEMS, FaultWorld, fault_world
from tests.support.waiting import wait_for

LOBBY = "killmails:lobby"


def frame(event: str, payload: object) -> str:
    return orjson.dumps({"topic": LOBBY, "event": event, "payload": payload, "ref": None}).decode()


KILLS_GARBAGE: tuple[str | bytes, ...] = (
    "this is not json",
    "[1, 2, 3]",
    '{"topic": "killmails:lobby"}',
    b"\x00\x01\x02 binary",
    frame("killmail_update", "not a table"),
    frame("killmail_update", {"system_id": TRACKED_SYSTEMS[0], "killmails": [{"no": "id"}]}),
    frame("killmail_update", {"system_id": TRACKED_SYSTEMS[1], "killmails": [7, None, "x"]}),
    frame("kill_count_update", {"system_id": "many", "count": -1}),
    frame("an_event_nobody_knows", {"x": 1}),
    frame("phx_error", {}),
    frame("phx_close", {}),
    '{"topic": "killmails:lobby", "event": "killmail_update", "payload": {"killmails": [{',
)

MAP_GARBAGE: tuple[bytes, ...] = (
    b"data: {this is not json\n\n",
    b"event: add_system\ndata: [1, 2]\n\n",
    b'event: add_system\ndata: {"type": "add_system"}\n\n',
    b"event: rally_point_added\ndata: \xff\xfe\xfd\n\n",
    b"\xef\xbb\xbfdata: a BOM in the middle of a stream\n\n",
    b"retry: soon\n\n",
    b": just a comment\n\n",
    b"id: \x00nul in an id\ndata: {}\n\n",
    b"event: map_kill\ndata: " + orjson.dumps({"type": "map_kill", "payload": {"x": 1}}) + b"\n\n",
    b"data: " + b"x" * 200_000 + b"\n\n",
)


def rejects(world: FaultWorld) -> dict[str, float]:
    """Rejected input counted per source, as ``GET /api/status`` reports it."""
    program = world.program_running()
    status = requests.get(f"{program.url}/api/status", timeout=5).json()
    by_source: dict[str, dict[str, float]] = status["rejects_by_source"]
    return {source: sum(reasons.values()) for source, reasons in by_source.items()}


def test_garbage_on_both_feeds_is_rejected_while_real_events_go_through(tmp_path: Path) -> None:
    with fault_world(tmp_path, seed=61) as world:
        for index, (kills_junk, map_junk) in enumerate(
            zip(KILLS_GARBAGE, MAP_GARBAGE * 2, strict=False)
        ):
            world.publish_recoverable(1, map_kill_every=3)
            world.map.send_raw(map_junk)
            assert world.kills.send_raw(kills_junk) >= 1
            world.publish_map_events(1, first_system=31001200 + index)
            world.wait_connected()
        world.publish_mix(7)
        world.wait_delivered()
        world.assert_exactly_once()
        counted = rejects(world)
        assert counted["kills"] >= 8, counted
        assert counted["map:faults"] >= 5, counted
        assert counted["journal"] >= 13, counted


def test_a_rejected_event_with_a_bogus_id_does_not_become_the_resume_point(
    tmp_path: Path,
) -> None:
    with fault_world(tmp_path, seed=62) as world:
        world.publish_map_events(3, first_system=31001300)
        world.publish_mix(4, cross_source_every=1)
        world.wait_delivered()
        world.map.send_raw(b"id: not-a-ulid\nevent: add_system\ndata: {broken\n\n")
        wait_for(lambda: rejects(world)["map:faults"] >= 1, timeout_s=5)
        attempts = world.map.statistics().connect_attempts_total
        world.map.fail_next(503, None)
        world.map.drop_all()
        world.wait_map_request(attempts)
        # emitted while the program is disconnected: only a correct resume point brings them
        world.publish_map_events(3, first_system=31001310)
        world.publish_mix(4, cross_source_every=1)
        world.map.clear_failures()
        world.wait_connected()
        world.wait_delivered()
        world.assert_exactly_once()


def test_only_a_ulid_can_be_a_map_streams_resume_point() -> None:
    issued = ulid.encode(1_764_000_000_000, 12345)
    assert is_resume_point(issued)
    assert is_resume_point(issued.lower())
    for garbage in ("", "not-a-ulid", "8" + issued[1:], issued[:-1] + "U", issued + "0"):
        assert not is_resume_point(garbage), garbage
