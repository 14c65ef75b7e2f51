"""Bot mode under Discord's faults: every notification is posted exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from actors.protocol import Names
from realtime.config import DiscordConfig
from simulator.discord_fake import DiscordFake
from supervision import GetStatus
from tests.support.notifier import (
    ROOMY_DISCORD,
    app_config,
    bot_config,
    database,
    handle,
    kill_event,
    killmail,
    pipeline,
    posted_kills,
    settled,
)

KILLS = 12


pytestmark = ROOMY_DISCORD


def deliver_all(
    discord_fake: DiscordFake, tmp_path: Path, discord: DiscordConfig
) -> dict[str, object]:
    """Handle ``KILLS`` notifiable kills, wait until all are sent; the notifier's status."""
    config = app_config(tmp_path, discord=discord)
    with pipeline(config) as tree:
        assert handle(tree, [kill_event(killmail(9000 + n), n) for n in range(KILLS)]) == KILLS
        settled(database(config), KILLS, timeout_s=10.0)
        status: dict[str, object] = tree.registry.ask(Names.NOTIFIER, GetStatus())
    posted = posted_kills(discord_fake)
    assert sorted(posted) == [9000 + n for n in range(KILLS)], Counter(posted)
    return status


def outcomes(status: dict[str, object]) -> dict[str, int]:
    sinks = status["sinks"]
    assert isinstance(sinks, dict)
    result: dict[str, int] = sinks["discord"]["outcomes"]
    return result


def test_bucket_429s_are_waited_out_and_every_kill_is_posted_once(tmp_path: Path) -> None:
    with DiscordFake(bucket_limit=3, bucket_window_s=0.2) as discord_fake:
        discord_fake.storm_429(4, 0.05)
        status = deliver_all(discord_fake, tmp_path, bot_config(discord_fake))
        answered_429 = discord_fake.statistics().answered_429
    assert outcomes(status)["RetryAfter"] == answered_429 >= 4
    # the bucket's Remaining is respected before sending: beyond the storm, few 429s
    assert answered_429 <= 4 + 4
    assert outcomes(status)["Deferred"] > 0


def test_a_global_429_is_honoured_and_every_kill_is_posted_once(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    discord_fake.storm_429(2, 0.1, global_=True)
    status = deliver_all(discord_fake, tmp_path, bot_config(discord_fake))
    assert outcomes(status)["RetryAfter"] == discord_fake.statistics().answered_429 >= 2


def test_5xx_answers_are_retried_and_every_kill_is_posted_once(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    discord_fake.fail_5xx(8, status=502)
    status = deliver_all(discord_fake, tmp_path, bot_config(discord_fake))
    assert outcomes(status)["Retryable"] == 8
    assert status["failed"] == 0


def test_resets_before_and_after_creation_post_every_kill_once(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    discord_fake.reset_connections(3)
    discord_fake.reset_connections(6, after_create=True)
    status = deliver_all(discord_fake, tmp_path, bot_config(discord_fake))
    assert outcomes(status)["Retryable"] == 9
    nonce_hits = [r for r in discord_fake.requests() if r.fault == "nonce_hit"]
    assert len(nonce_hits) == 6


def test_answers_held_past_the_timeout_post_every_kill_once(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    discord_fake.slow_after_create(KILLS, 0.6)
    status = deliver_all(discord_fake, tmp_path, bot_config(discord_fake, request_timeout_s=0.3))
    assert outcomes(status)["Retryable"] >= KILLS
    assert status["failed"] == 0
