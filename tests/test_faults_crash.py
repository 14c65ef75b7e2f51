"""``POST /debug/crash/{actor}`` for every actor of the live tree while events flow.

Every worker and every supervisor (names read from ``GET /api/tree``) raises
inside its message handling, as a real bug would, one after the other, with
kills and map events published before, during and after each restart. The
root goes last: when it crashes the program exits non-zero, as an OTP node
does, for its service manager to start it again on the same data dir.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from tests.support.fault_world import UNTRACKED_SYSTEMS, FaultWorld, fault_world
from tests.support.process import Program
from tests.support.waiting import wait_for


def nodes(tree: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every node of the tree, parents before children."""
    yield tree
    for child in tree["children"]:
        yield from nodes(child)


def snapshot(program: Program) -> dict[str, Mapping[str, Any]] | None:
    """Each actor's node by name; ``None`` while the web actor is restarting."""
    try:
        return {node["name"]: node for node in nodes(program.tree())}
    except requests.RequestException:
        return None


def crash(world: FaultWorld, name: str) -> None:
    """Crash ``name`` and wait until its supervisor restarted it and everything runs again."""
    program = world.program_running()
    before = wait_for(lambda: snapshot(program), timeout_s=10, what="the tree")
    assert before is not None
    restarts = before[name]["restarts"]
    assert program.crash(name) == 202

    def restarted() -> bool:
        after = snapshot(program)
        return (
            after is not None
            and after[name]["restarts"] > restarts
            and all(node["state"] == "running" for node in after.values())
        )

    wait_for(restarted, timeout_s=15, interval_s=0.02, what=f"{name} restarted")
    after = snapshot(program)
    assert after is not None
    assert after[name]["last_failure"]["type"] == "InjectedCrashError"


def test_crashing_every_actor_in_turn_while_events_flow_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    with fault_world(tmp_path, seed=41) as world:
        program = world.program_running()
        names = [node["name"] for node in nodes(program.tree())]
        assert {"journal", "pipeline", "router", "notifier", "sources", "kills", "web"} <= set(
            names
        )
        assert names[0] == "root"
        for index, name in enumerate(names[1:]):
            # the pipeline is busy when the crash lands: a preload burst is on its way
            world.send_preload(UNTRACKED_SYSTEMS[0], 300)
            world.publish_recoverable(1)
            world.publish_map_events(1, first_system=31000900 + index)
            crash(world, name)
            world.publish_recoverable(1)
            world.wait_connected()
            world.wait_notified(world.publish_mix(7))
        world.publish_mix(4)
        world.wait_delivered()
        world.assert_exactly_once()

        world.publish_recoverable(1)
        world.publish_map_events(2, first_system=31000990)
        assert program.crash("root") == 202
        assert program.process.wait(20) != 0
        world.start_program()
        world.publish_mix(4)
        world.wait_delivered()
        world.assert_exactly_once()
