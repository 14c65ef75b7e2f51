"""Loss and stall paths against the real program: a crash-looping notifier, a full disk,
a second instance on the same data dir."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import requests

from tests.fault_world import fault_world

CRASH_FOR_S = 4.0
"""How long the notifier is crashed again and again: longer than the router's
five attempts used to take (0.2 + 0.4 + 0.8 + 1.6 s), after which it gave up."""


def test_a_notifier_crashed_again_and_again_while_kills_flow_notifies_each_kill_once(
    tmp_path: Path,
) -> None:
    with fault_world(tmp_path, seed=61) as world:
        program = world.program_running()
        crashes = 0
        deadline = time.monotonic() + CRASH_FOR_S
        while time.monotonic() < deadline:
            world.publish_mix(2)
            # the web actor may be busy: the next round crashes the notifier again
            with contextlib.suppress(requests.RequestException):
                crashes += program.crash("notifier") == 202
            time.sleep(0.05)
        assert crashes >= 10
        world.publish_mix(4)
        world.wait_delivered(timeout_s=40)
        world.assert_exactly_once()
        status = requests.get(f"{program.url}/api/status", timeout=5).json()
        stalled = status["statuses"]["router"]
        assert stalled["stalled"] is None
        assert stalled["handler_failures"] > 0
