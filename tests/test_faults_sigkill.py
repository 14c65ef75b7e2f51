"""SIGKILL of the whole program at seeded random moments, restarted on the same data dir.

Each round publishes its kills once the program is joined, in tracked systems
and within the server's preload (a kill read from the socket but not yet
journaled when the process dies comes back only in the next join's preload),
plus map events (the SSE backfill brings them back from the journaled cursor),
and kills the program when Discord holds a seeded random number of the
round's messages: sometimes before anything was journaled, sometimes with
messages created whose answers never reached the ledger; the last round
kills it while Discord holds the answers of messages it created.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.support.fault_world import fault_world
from tests.support.waiting import wait_for

ROUNDS = 4


def test_sigkill_at_random_moments_then_restart_delivers_everything_exactly_once(
    tmp_path: Path,
) -> None:
    moments = random.Random(31)
    with fault_world(tmp_path, seed=31) as world:
        # a slow Discord keeps answers outstanding when the kill comes
        world.discord.slow_after_create(1000, 0.05)
        for cycle in range(ROUNDS):
            created, expected = len(world.messages()), len(world.expected)
            world.publish_recoverable(2)
            world.publish_map_events(3, first_system=31000800 + 10 * cycle)
            world.wait_messages(created + moments.randint(0, len(world.expected) - expected))
            program = world.program_running()
            program.sigkill()
            assert program.process.returncode == -9
            world.start_program()
        # last, a kill while Discord holds answers to messages it already created
        world.discord.slow_after_create(1000, 5.0)
        created = len(world.messages())
        world.publish_recoverable(1)
        world.wait_messages(created + 1)
        world.program_running().sigkill()
        world.start_program()
        # and a graceful stop (SIGTERM) with answers still held: exit 0, then resume
        created = len(world.messages())
        world.publish_recoverable(1)
        world.wait_messages(created + 1)
        assert world.program_running().terminate() == 0
        world.discord.slow_after_create(0, 0.0)
        world.start_program()
        world.publish_mix(7)
        world.wait_delivered()
        world.assert_exactly_once()
        assert world.runs == ROUNDS + 3
        # the message whose answer was lost was asked for again, with its nonce, and found
        assert any(request.fault == "nonce_hit" for request in world.discord.requests())


def test_a_program_killed_before_its_first_map_event_resumes_the_stream_where_it_began(
    tmp_path: Path,
) -> None:
    with fault_world(tmp_path, seed=32) as world:
        # a first start has no resume point: where the stream began is one
        wait_for(world.map_cursor, timeout_s=10, what="the stream's start committed")
        world.program_running().sigkill()
        world.publish_map_events(3, first_system=31000890)
        world.publish_mix(4, cross_source_every=1)
        world.start_program()
        world.wait_delivered()
        world.assert_exactly_once()
