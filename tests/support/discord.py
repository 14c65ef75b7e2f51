"""Helpers shared by the Discord tests: the notifier's retry loop on a fake clock."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from actors.discord_http import (
    Decision,
    DiscordSender,
    RetryPlan,
    RetryState,
    SendAgain,
    SendResult,
)
from tests.support.clocks import FakeClock


def deliver(
    sender: DiscordSender,
    plan: RetryPlan,
    payload: Mapping[str, Any],
    nonce: str,
    clock: FakeClock,
    *,
    seed: int = 7,
    max_steps: int = 200,
) -> tuple[Decision, RetryState, list[SendResult]]:
    """Send until the plan decides, letting the clock run instead of sleeping."""
    rand = random.Random(seed).random
    state = RetryState()
    results: list[SendResult] = []
    for _ in range(max_steps):
        result = sender.send(payload, nonce)
        results.append(result)
        decision, state = plan.decide(state, result, rand)
        if not isinstance(decision, SendAgain):
            return decision, state, results
        clock.advance(max(0.0, decision.after_s, sender.wait_s()))
    msg = f"no decision after {max_steps} sends: {results[-5:]}"
    raise AssertionError(msg)
