"""Loss and stall paths against the real program: a crash-looping notifier, a full disk,
a second instance on the same data dir."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.fault_world import FaultWorld, fault_world
from tests.support.process import run_cli
from tests.support.waiting import wait_for

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


DISK_KIB = 4096
LEFT_FREE_KIB = 192
"""Room left on the small disk when the backlog starts: a few hundred kills fill it."""


@contextlib.contextmanager
def small_disk(path: Path, size_kib: int) -> Iterator[None]:
    """A tmpfs of ``size_kib`` mounted at ``path`` (root only: skips the test otherwise)."""
    path.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True, check=False).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def fill(directory: Path, leave_kib: int) -> Path:
    """A file taking all the space of ``directory``'s file system but ``leave_kib``."""
    stats = os.statvfs(directory)
    filler = directory / "filler"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave_kib * 1024))
    return filler


def journal_status(world: FaultWorld) -> dict[str, object]:
    program = world.program_running()
    status: dict[str, object] = requests.get(f"{program.url}/api/status", timeout=5).json()
    journal = status["journal"]
    assert isinstance(journal, dict)
    return journal


def test_a_disk_that_fills_up_during_a_backlog_holds_everything_and_recovers_when_freed(
    tmp_path: Path,
) -> None:
    with (
        fault_world(tmp_path, seed=71, start=False) as world,
        small_disk(tmp_path / "data", DISK_KIB),
    ):
        with world.config_path.open("a", encoding="utf-8") as config:
            config.write("\n[journal]\nretry_min_s = 0.05\nretry_max_s = 0.3\n")
        world.start_program()
        world.wait_notified(world.publish_mix(7))
        filler = fill(tmp_path / "data", LEFT_FREE_KIB)
        published = 0
        while "full" not in str(journal_status(world).get("error")):
            world.publish_mix(20)
            published += 20
            assert published < 5000, "the disk never filled"
            time.sleep(0.05)
        world.publish_mix(50)  # more backlog while the disk is full
        assert world.program_running().alive()
        filler.unlink()
        world.wait_delivered(timeout_s=60)
        world.assert_exactly_once()
        wait_for(lambda: journal_status(world)["error"] is None)


def run_py(world: FaultWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--config", str(world.config_path))


def test_a_second_instance_on_the_same_data_dir_exits_2_at_once_and_nothing_is_doubled(
    tmp_path: Path,
) -> None:
    with fault_world(tmp_path, seed=81) as world:
        program = world.program_running()
        world.wait_notified(world.publish_mix(7))
        started = time.monotonic()
        second = run_py(world)
        assert second.returncode == 2
        assert time.monotonic() - started < 15
        assert f"in use by process {program.pid}" in second.stderr
        replay = run_py(world, "replay", "--notify")
        assert replay.returncode == 2
        assert f"in use by process {program.pid}" in replay.stderr
        listed = run_py(world, "events")  # read-only: works beside the live instance
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.count("\n") >= 7
        world.publish_mix(7)
        world.wait_delivered()
        world.assert_exactly_once()
        assert program.alive()
