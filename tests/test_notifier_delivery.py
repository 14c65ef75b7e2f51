"""The notifier against the loopback Discord fake (bot mode): what is posted, and how often."""

from __future__ import annotations

from pathlib import Path
from random import Random

import pytest

from actors import notifier
from actors.protocol import Names
from realtime.ledger import LedgerKey, nonce_for
from simulator.discord_fake import DiscordFake
from supervision import Crash, GetStatus
from tests.support.notifier import (
    CHANNEL,
    HOME,
    KSPACE,
    ROOMY_DISCORD,
    SHOOTER,
    SLUG,
    STRANGER,
    app_config,
    bot_config,
    database,
    handle,
    kill_event,
    killmail,
    ledger_states,
    pipeline,
    posted_kills,
    settled,
)
from tests.support.waiting import wait_for

pytestmark = ROOMY_DISCORD


def test_a_kill_handled_four_times_with_new_seqs_is_posted_once(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake))
    data = killmail(5001)
    with pipeline(config) as tree:
        # twice over the WebSocket, in a preload after a reconnect, as a map_kill
        assert handle(tree, [kill_event(data, 1)]) == 1
        assert handle(tree, [kill_event(data, 2)]) == 0
        assert handle(tree, [kill_event(killmail(5001, preload=True), 3)]) == 0
        assert handle(tree, [kill_event(data, 4, kind="map_kill", source=f"map:{SLUG}")]) == 0
        settled(database(config), 1)
    assert posted_kills(discord_fake) == [5001]
    assert ledger_states(database(config)) == {"sent": 1}
    [message] = discord_fake.messages(CHANNEL)
    assert message["nonce"] == nonce_for("discord", "kill:5001")


def test_a_kill_in_an_untracked_system_without_tracked_characters_is_not_posted(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake))
    with pipeline(config) as tree:
        assert handle(tree, [kill_event(killmail(5002, system_id=KSPACE), 1)]) == 0
        status = tree.registry.ask(Names.NOTIFIER, GetStatus())
    assert status["pending"] == status["sent"] == 0
    assert discord_fake.statistics().requests == 0


def test_a_tracked_attacker_in_an_untracked_system_is_posted(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake))
    data = killmail(5003, system_id=KSPACE, attackers=(STRANGER, SHOOTER))
    with pipeline(config) as tree:
        assert handle(tree, [kill_event(data, 1)]) == 1
        settled(database(config), 1)
    [message] = discord_fake.messages(CHANNEL)
    assert message["embeds"][0]["author"]["name"] == "Kill \u2022 Attacker 1"


def test_one_slow_answer_does_not_hold_up_the_others(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake, request_timeout_s=5.0))
    discord_fake.slow_after_create(1, 1.5)
    with pipeline(config) as tree:
        handle(tree, [kill_event(killmail(6000 + n), n) for n in range(1, 6)])
        # the first answer is held for 1.5 s; the four others are confirmed meanwhile
        counts = settled(database(config), 4, timeout_s=1.2)
        assert counts == {"sent": 4, "pending": 1}
        settled(database(config), 5, timeout_s=5.0)
    assert sorted(posted_kills(discord_fake)) == [6001, 6002, 6003, 6004, 6005]


def test_a_full_send_queue_leaves_entries_in_the_ledger_and_posts_them_in_order(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake, send_queue=2, concurrency=1))
    kills = [kill_event(killmail(7000 + n), n) for n in range(1, 21)]
    with pipeline(config) as tree:
        assert handle(tree, kills[:10]) == 10
        status = tree.registry.ask(Names.NOTIFIER, GetStatus())
        assert status["queue"]["capacity"] == 2
        assert status["queue"]["waiting"] + status["queue"]["in_flight"] <= 2
        assert handle(tree, kills[10:]) == 10
        settled(database(config), 20)
        status = tree.registry.ask(Names.NOTIFIER, GetStatus())
    assert posted_kills(discord_fake) == [7000 + n for n in range(1, 21)]
    assert status["queue"]["high_water"] <= 2
    assert status["sent"] == 20
    assert status["pending"] == 0


def test_map_events_routed_to_the_notifier_are_posted_once(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    from tests.support.notifier import map_event

    config = app_config(tmp_path, discord=bot_config(discord_fake))
    rally = map_event(
        "rally_point_added",
        {"rally_point_id": "r1", "solar_system_id": HOME, "message": "form up"},
        1,
    )
    added = map_event("add_system", {"solar_system_id": KSPACE, "name": "Jita"}, 2)
    with pipeline(config) as tree:
        assert handle(tree, [rally, added]) == 2
        assert handle(tree, [rally, added]) == 0
        settled(database(config), 2)
    # concurrent workers: the channel's order is not the claim order
    titles = sorted(message["embeds"][0]["title"] for message in discord_fake.messages(CHANNEL))
    assert titles == ["New system: Jita", "Rally point in J100005"]


def test_status_reports_the_ledger_the_queue_and_the_sinks(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake))
    with pipeline(config) as tree:
        handle(tree, [kill_event(killmail(8001), 1)])
        settled(database(config), 1)
        status = wait_for(
            lambda: (s := tree.registry.ask(Names.NOTIFIER, GetStatus()))["sent"] == 1 and s
        )
    assert status["error"] is None
    assert status["sinks"]["discord"]["state"] == "running"
    assert status["sinks"]["discord"]["mode"] == "bot"
    assert status["sinks"]["discord"]["requests"] == 1
    assert status["queue"]["capacity"] == 100


def test_a_crashed_notifier_resumes_its_unconfirmed_sends_with_the_same_nonces(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake, request_timeout_s=10.0))
    discord_fake.slow_after_create(4, 3.0)
    with pipeline(config, stop_timeout_s=0.05) as tree:
        handle(tree, [kill_event(killmail(8100 + n), n) for n in range(4)])
        wait_for(lambda: len(discord_fake.messages(CHANNEL)) == 4, what="four sends in flight")
        tree.registry.tell(Names.NOTIFIER, Crash())
        # the restarted notifier resends them before the held answers come back
        settled(database(config), 4, timeout_s=2.5)
        node = tree.snapshot().find(Names.NOTIFIER)
    assert node is not None
    assert node.restarts == 1
    assert sorted(posted_kills(discord_fake)) == [8100, 8101, 8102, 8103]
    assert len([r for r in discord_fake.requests() if r.fault == "nonce_hit"]) == 4


def test_a_failing_worker_crashes_the_notifier_whose_restart_delivers_the_entry(
    discord_fake: DiscordFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake))
    attempt = notifier.DiscordSink._attempt
    calls: list[LedgerKey] = []

    def bug_once(sink: notifier.DiscordSink, delivery: notifier.Delivery, rand: Random) -> None:
        calls.append(delivery.key)
        if len(calls) == 1:
            msg = "a bug in a worker"
            raise RuntimeError(msg)
        attempt(sink, delivery, rand)

    monkeypatch.setattr(notifier.DiscordSink, "_attempt", bug_once)
    with pipeline(config) as tree:
        handle(tree, [kill_event(killmail(8200), 1)])
        settled(database(config), 1)
        node = tree.snapshot().find(Names.NOTIFIER)
    assert node is not None
    assert node.restarts == 1
    assert node.last_failure is not None
    assert node.last_failure.message == "a Discord worker failed"
    assert posted_kills(discord_fake) == [8200]
