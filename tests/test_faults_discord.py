"""Discord misbehaving under the real program (bot mode): every notification posted once.

429 storms (a route's bucket, then the global limit), 5xx answers, connections
reset before and after the message was created, answers held back past the
request timeout, and Discord's own per-route rate limit. A retry after an
answer that was lost carries the message's nonce, so Discord returns the
message it already created instead of posting it again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from simulator.discord_fake import DiscordFake
from tests.support.fault_world import fault_world

Fault = Callable[[DiscordFake], None]

FAULTS: dict[str, tuple[Fault, str]] = {
    "bucket_429_storm": (lambda fake: fake.storm_429(8, 0.2), "storm"),
    "global_429_storm": (lambda fake: fake.storm_429(12, 0.2, global_=True), "storm"),
    "5xx": (lambda fake: fake.fail_5xx(12, 502), "502"),
    "reset_before_create": (lambda fake: fake.reset_connections(8), "reset"),
    "reset_after_create": (
        lambda fake: fake.reset_connections(8, after_create=True),
        "reset_after_create",
    ),
    "slow_after_create": (lambda fake: fake.slow_after_create(6, 1.0), "slow_after_create"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_discord_faults_never_lose_or_duplicate_a_notification(tmp_path: Path, fault: str) -> None:
    inject, label = FAULTS[fault]
    with fault_world(tmp_path, seed=51) as world:
        world.publish_mix(4)
        world.wait_delivered()
        inject(world.discord)
        world.publish_mix(14)
        world.publish_map_events(3, first_system=31001000)
        world.wait_delivered()
        world.assert_exactly_once()
        faulted = [request for request in world.discord.requests() if request.fault == label]
        assert faulted, f"the {fault} fault never applied"
        if fault in {"reset_after_create", "slow_after_create"}:
            # the lost answers' messages existed: the retries found them by nonce
            assert any(request.fault == "nonce_hit" for request in world.discord.requests())


def test_discord_rate_limits_slow_delivery_down_without_loss_or_duplicates(tmp_path: Path) -> None:
    options = {"bucket_limit": 5, "bucket_window_s": 0.5, "global_per_s": 50}
    with fault_world(tmp_path, seed=52, discord_options=options) as world:
        world.publish_mix(21)
        world.publish_map_events(3, first_system=31001100)
        world.wait_delivered()
        world.assert_exactly_once()
        statistics = world.discord.statistics()
        # learned from the headers: waits when a bucket is empty instead of hammering
        assert statistics.answered_429 <= statistics.messages // 2, statistics
