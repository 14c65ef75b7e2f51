"""An overload burst against the real program: priorities hold, memory stays flat.

The burst is what a reconnect storm looks like: thousands of low-priority
events (preload killmails, ``kill_count_update``) arriving at once (about
40,000 events a second here, over three times what the pipeline handles, and
150 low notifications, three seconds of Discord's global limit of 50 requests
a second), with a few critical events (kills of the tracked pilot, rally
points) and high ones (live kills in tracked systems) in its middle. Critical
and high notifications must all be delivered, the critical ones ahead of the
bulk of the low ones; and the process must not keep what it handled: more
bursts leave its resident memory where the first one did.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from actors.notifier import Delivery, SendQueue
from realtime.event import Priority
from realtime.ledger import LedgerKey, nonce_for
from tests.support.clocks import FakeClock
from tests.support.fault_world import (
    TRACKED_CHARACTER,
    TRACKED_SYSTEMS,
    UNTRACKED_SYSTEMS,
    FaultWorld,
    Identity,
    fault_world,
    identity,
    preload_frame,
)

FRAME_KILLS = 50
LOW_FRAMES = 3
"""Preload frames in tracked systems: notified, at low priority (3 s of Discord's
global limit, 50 requests a second)."""
SILENT_AHEAD, SILENT_BEHIND = 10, 70
"""Preload frames in an untracked system, sent before and after the critical
events: the pipeline decides every kill, nothing is posted."""
KILL_COUNTS = 1500
BURSTS, BURST_FRAMES = 8, 40
"""The memory test: eight bursts of 2,000 preload kills each."""
RSS_GROWTH_BOUND_KIB = 48 * 1024
"""What seven bursts after the first may add to the resident set: a generous bound
(they add ~10 MiB, the in-flight peak varying; they added ~215 MiB, ~15 KiB per
handled killmail kept for good, before the journal's tail dropped settled events)."""


def preloads(world: FaultWorld, systems: Sequence[int]) -> tuple[list[str], set[Identity]]:
    """One preload frame of :data:`FRAME_KILLS` kills per system in ``systems``, and the
    identities of the notifiable ones (recorded as expected: built ahead, sent at once)."""
    frames: list[str] = []
    notifiable: set[Identity] = set()
    for system_id in systems:
        kills = [world.killmail(system_id, age_s=600) for _ in range(FRAME_KILLS)]
        for kill in kills:
            world.expect_kill(kill)
            if system_id in TRACKED_SYSTEMS:
                notifiable.add(("kill", str(kill["killmail_id"])))
        frames.append(preload_frame(system_id, kills))
    return frames, notifiable


def send(world: FaultWorld, frames: Sequence[str]) -> None:
    """Preload frames to the channels joined with systems (the server never sends a
    preload to the characters-only channel)."""
    for frame in frames:
        world.kills.send_raw(frame, systems_joins_only=True)


def push_kill_counts(world: FaultWorld) -> None:
    for index in range(KILL_COUNTS):
        world.kills.push_kill_count(TRACKED_SYSTEMS[index % len(TRACKED_SYSTEMS)], index)


def test_an_overload_burst_delivers_critical_notifications_ahead_of_the_low_ones(
    tmp_path: Path,
) -> None:
    # heartbeats queue behind the burst on the server: give them time enough
    with fault_world(tmp_path, seed=71, heartbeat_s=2.0) as world:
        world.publish_mix(4)
        world.wait_delivered()
        tracked = [TRACKED_SYSTEMS[i % len(TRACKED_SYSTEMS)] for i in range(LOW_FRAMES)]
        ahead, low = preloads(world, tracked + [UNTRACKED_SYSTEMS[0]] * SILENT_AHEAD)
        behind, _ = preloads(world, [UNTRACKED_SYSTEMS[0]] * SILENT_BEHIND)
        critical_kills = [
            world.killmail(UNTRACKED_SYSTEMS[1], involving=TRACKED_CHARACTER) for _ in range(5)
        ]
        high_kills = [world.killmail() for _ in range(5)]

        # the burst, with the critical and high events in its middle
        send(world, ahead)
        critical = {("kill", str(world.publish_kill(k)["killmail_id"])) for k in critical_kills}
        for _ in range(3):
            world.rally_point()
        critical |= {key for key in world.expected if key[0] == "rally"}
        high = {
            ("kill", str(world.publish_kill(k, map_kill=True)["killmail_id"])) for k in high_kills
        }
        send(world, behind)
        push_kill_counts(world)
        world.wait_delivered(timeout_s=60)
        world.assert_exactly_once()

        order = [identity(message) for message in world.messages()]
        assert critical | high <= set(order)
        last_critical = max(order.index(key) for key in critical)
        low_after = sum(1 for key in order[last_critical:] if key in low)
        # the critical ones passed the low ones queued before them
        assert low_after >= len(low) // 2, (last_critical, low_after, len(order))


def test_repeated_overload_bursts_leave_the_resident_memory_flat(tmp_path: Path) -> None:
    with fault_world(tmp_path, seed=72, heartbeat_s=2.0) as world:
        program = world.program_running()
        world.publish_mix(7)
        sizes = []
        for _ in range(BURSTS):
            frames, _ = preloads(world, [UNTRACKED_SYSTEMS[0]] * BURST_FRAMES)
            send(world, frames)
            world.rally_point()
            world.wait_delivered(timeout_s=60)
            sizes.append(program.rss_kib())
        world.assert_exactly_once()
        # the first burst sets the high-water mark; the next ones must not add to it
        growth = [size - sizes[0] for size in sizes]
        assert growth[-1] < RSS_GROWTH_BOUND_KIB, f"RSS growth after each burst (KiB): {growth}"


def delivery(key: str, priority: Priority) -> Delivery:
    return Delivery(LedgerKey("discord", key), nonce_for("discord", key), {}, None, priority)


def test_the_send_queue_hands_out_the_most_urgent_due_delivery_first() -> None:
    clock = FakeClock(100.0)
    queue = SendQueue(10, clock)
    for index in range(3):
        queue.offer(delivery(f"low{index}", Priority.LOW))
    retry = queue.take()
    assert retry is not None
    queue.again(retry, 1.0)
    queue.offer(delivery("critical", Priority.CRITICAL))
    queue.offer(delivery("high", Priority.HIGH))
    taken = [queue.take() for _ in range(4)]
    assert [d.key.notification for d in taken if d] == ["critical", "high", "low1", "low2"]
    clock.now += 1.0
    again = queue.take()
    assert again is not None
    assert again.key.notification == "low0"
    assert queue.statistics().in_flight == 5
