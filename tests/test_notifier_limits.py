"""What Discord accepts (size limits) and what stops the sink (a deleted webhook)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from actors.protocol import Names, StatsReport
from simulator.discord_fake import DiscordFake
from supervision import GetStatus
from tests.support.notifier import (
    CHANNEL,
    HOME,
    ROOMY_DISCORD,
    STRANGER,
    Recorded,
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
    webhook_config,
)
from tests.support.waiting import wait_for

LONG = "Ünïcødé 🚀 " * 900  # far beyond every limit, with astral characters


pytestmark = ROOMY_DISCORD


def test_a_kill_with_every_text_beyond_the_limits_is_accepted_by_discord(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake))
    data = killmail(4001, name=LONG, attackers=(STRANGER + 1,))
    data["victim"]["corporation_name"] = LONG
    data["victim"]["ship_name"] = LONG
    data["attackers"][0]["character_name"] = LONG
    data["attackers"][0]["ship_name"] = LONG
    with pipeline(config, systems={HOME: LONG}) as tree:
        assert handle(tree, [kill_event(data, 1)]) == 1
        settled(database(config), 1)
    assert posted_kills(discord_fake) == [4001]
    assert 400 not in discord_fake.statistics().by_status


def test_a_kill_with_200_tracked_attackers_still_fits(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = app_config(tmp_path, discord=bot_config(discord_fake))
    attackers = [2118000000 + n for n in range(200)]
    tracked = {character: f"Pilot {n:03d} " + "x" * 300 for n, character in enumerate(attackers)}
    data = killmail(4002, attackers=attackers)
    with pipeline(config, characters=tracked) as tree:
        assert handle(tree, [kill_event(data, 1)]) == 1
        settled(database(config), 1)
    [message] = discord_fake.messages(CHANNEL)
    fields = {field["name"]: field["value"] for field in message["embeds"][0]["fields"]}
    assert "and 199 others." in message["embeds"][0]["description"]
    assert fields["Our pilots"].endswith("more")
    assert 400 not in discord_fake.statistics().by_status


def test_webhook_mode_posts_with_wait_and_records_the_message_id(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    url = discord_fake.add_webhook(CHANNEL)
    config = app_config(tmp_path, discord=webhook_config(url))
    with pipeline(config) as tree:
        assert handle(tree, [kill_event(killmail(4003), 1)]) == 1
        settled(database(config), 1)
    [message] = discord_fake.messages(CHANNEL)
    connection = sqlite3.connect(database(config))
    try:
        (stored,) = connection.execute("SELECT discord_message_id FROM notifications").fetchone()
    finally:
        connection.close()
    assert stored == message["id"]
    assert "nonce" not in message


def test_a_deleted_webhook_stops_its_route_and_raises_an_alert(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    url = discord_fake.add_webhook(CHANNEL)
    discord_fake.delete_webhook()
    config = app_config(tmp_path, discord=webhook_config(url, concurrency=1))
    recorded = Recorded()
    recorded.spec(Names.METRICS)
    with pipeline(config, recorded=recorded) as tree:
        assert handle(tree, [kill_event(killmail(4100 + n), n) for n in range(3)]) == 3
        status = wait_for(
            lambda: (s := tree.registry.ask(Names.NOTIFIER, GetStatus()))["error"] and s,
            what="the route stopped",
        )
        assert handle(tree, [kill_event(killmail(4200), 10)]) == 1
        reports = wait_for(
            lambda: [r for r in recorded.of(Names.METRICS, StatsReport) if r.actor == "notifier"],
            what="a report from the notifier",
        )
        last = tree.registry.ask(Names.NOTIFIER, GetStatus())
    assert "404" in status["error"]
    assert status["error"].startswith("route discord: ")
    assert url not in status["error"]
    assert status["routes"]["discord"]["state"] == "stopped"
    assert status["routes"]["discord"]["destination"] == "webhook ([notify.discord])"
    assert sum(report.counters.get("route_stopped", 0) for report in reports) == 1
    assert reports[-1].gauges["routes_stopped"] == 1.0
    # one request, then nothing: the unsent entries wait in the ledger
    assert discord_fake.statistics().requests == 1
    assert last["pending"] == 4
    assert ledger_states(database(config)) == {"pending": 4}
