"""Fault injection on a Wanderer map's event stream (SSE), against the real program."""

from __future__ import annotations

import collections
import functools
import itertools
from pathlib import Path

from tests.support.fault_world import SLUG, FaultWorld, fault_world
from tests.support.waiting import wait_for


def answered_at_least(world: FaultWorld, status: int, count: int) -> bool:
    """Whether ``count`` stream requests were answered ``status``."""
    attempts = world.map.statistics().connect_attempts
    return sum(1 for attempt in attempts if attempt.status == status) >= count


def test_sse_dropped_resumes_exactly_after_the_last_journaled_event(tmp_path: Path) -> None:
    with fault_world(tmp_path, seed=21) as world:
        published: list[str] = []
        for cycle in range(3):
            world.publish_mix(6)
            published += [world.rally_point(), world.add_system(31000600 + cycle)]
            attempts = world.map.statistics().connect_attempts_total
            # every reconnection is refused until the test says so: what follows is
            # emitted while the program is disconnected, and must come by backfill
            world.map.fail_next(503, None)
            assert world.map.drop_all(mid_event=cycle == 1) >= 1 or cycle == 1
            if cycle == 1:
                published.append(world.rally_point())  # written half, then the socket closes
            world.wait_map_request(attempts)
            published += [world.rally_point(), world.character_added(97_000_000 + cycle)]
            world.publish_mix(3)  # their map_kill copies are in the outage too
            world.map.clear_failures()
            world.wait_connected()
        world.wait_delivered()
        world.assert_exactly_once()
        journaled = collections.Counter(
            event["id"] for event in world.journal_events(f"map:{SLUG}")
        )
        # exact: every event once, none replayed by a resume from too far back
        assert set(published) <= set(journaled)
        assert max(journaled.values()) == 1
        resumed = [a for a in world.map.statistics().connect_attempts if a.status == 200][1:]
        assert resumed
        assert all(attempt.last_event_id for attempt in resumed)


def test_sse_answering_500_then_429_then_401_backs_off_and_recovers_without_loss(
    tmp_path: Path,
) -> None:
    with fault_world(tmp_path, seed=22) as world:
        world.publish_mix(6)
        world.publish_map_events(3, first_system=31000700)
        for status in (500, 429, 401):
            world.map.fail_next(status, None)
            if status == 500:
                world.map.drop_all()
            wait_for(
                functools.partial(answered_at_least, world, status, 3),
                timeout_s=10,
                what=f"three attempts answered {status}",
            )
            world.publish_map_events(3, first_system=31000710 + status)
            world.publish_mix(3)
        world.map.clear_failures()
        world.wait_connected()
        world.publish_mix(3)
        world.wait_delivered()
        world.assert_exactly_once()
        failing = [a for a in world.map.statistics().connect_attempts if a.status != 200]
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(failing)]
        # an answering-but-failing server is never hammered in a tight loop
        assert min(gaps) >= 0.04, gaps


def test_a_silent_sse_stream_is_given_up_by_its_watchdog_and_backfilled(tmp_path: Path) -> None:
    with fault_world(tmp_path, seed=23) as world:
        world.publish_mix(6)
        attempts = world.map.statistics().connect_attempts_total
        # connected, yet nothing comes, not even a keepalive: a half-open stream
        world.map.set_silent(True)
        world.publish_map_events(4, first_system=31000750)
        world.publish_mix(6, cross_source_every=1)
        world.wait_map_request(attempts)
        # the stream opened meanwhile is dead too: the watchdog must give it up as well
        world.map.set_silent(False)
        world.publish_map_events(2, first_system=31000760)
        world.wait_delivered()
        world.assert_exactly_once()
        assert world.map.statistics().connect_attempts_total >= attempts + 2
