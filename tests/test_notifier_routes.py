"""The notifier's routes against the loopback Discord fake and a real ledger.

Each notification is posted exactly once to every route it matches and never
to another; mentions ping as configured and no more; alerts and status
messages reach the routes of their kind.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from actors import notifier, tracking
from actors.protocol import Announce, Bootstrap, FeedRecovered, GetTracking, Names
from realtime.config import Config, RouteConfig, Secret, StatusConfig
from realtime.ledger import Ledger
from realtime.notifications import alert_notification
from simulator.discord_fake import DiscordFake
from supervision import ActorUnavailableError, ChildSpec, Crash, GetStatus, SupervisionTree
from tests.support.notifier import (
    CHANNEL,
    HOME,
    ROOMY_DISCORD,
    SLUG,
    app_config,
    bot_config,
    database,
    handle,
    kill_event,
    killmail,
    ledger_states,
    map_event,
    pipeline,
    running_tree,
    settled,
    webhook_config,
)
from tests.support.waiting import wait_for

BIG, OPS = "100200301", "100200302"


pytestmark = ROOMY_DISCORD


def with_routes(config: Config, *routes: RouteConfig) -> Config:
    return dataclasses.replace(config, routes=routes)


def worth(killmail_id: int, value: float, **changes: Any) -> dict[str, Any]:
    data = killmail(killmail_id, **changes)
    data["zkb"]["totalValue"] = value
    return data


def rally(seq: int, rally_id: str) -> Any:
    payload = {
        "rally_point_id": rally_id,
        "solar_system_id": HOME,
        "character_name": "Our FC",
        "message": f"form up {rally_id}",
    }
    return map_event("rally_point_added", payload, seq)


def kills_in(discord_fake: DiscordFake, channel: str) -> list[int]:
    """The killmail ids of the kill messages in ``channel``, in order."""
    ids = []
    for message in discord_fake.messages(channel):
        url = str(message["embeds"][0].get("url", ""))
        if "zkillboard.com/kill/" in url:
            ids.append(int(url.rstrip("/").rsplit("/", 1)[-1]))
    return ids


def route_status(tree: SupervisionTree) -> dict[str, Any]:
    """The notifier's status (``{}`` while it restarts)."""
    try:
        status: dict[str, Any] = tree.registry.ask(Names.NOTIFIER, GetStatus())
    except ActorUnavailableError:
        return {}
    return status


def restarts(tree: SupervisionTree) -> int:
    node = tree.snapshot().find(Names.NOTIFIER)
    return -1 if node is None else node.restarts


def pinged(message: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whom the fake says ``message`` pinged: (everyone or here, roles)."""
    return message["mention_everyone"], message["mention_roles"]


def by_kill(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(messages, key=lambda m: str(m["embeds"][0].get("url", "")))


def test_each_notification_goes_once_to_every_route_it_matches_and_to_no_other(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = with_routes(
        app_config(tmp_path, discord=bot_config(discord_fake)),
        RouteConfig("kills", ("kill",)),  # the default channel
        RouteConfig("big", ("kill",), channel_id=BIG, min_value_isk=1e9),
        RouteConfig("rally", ("rally_point",), channel_id=BIG),
    )
    with pipeline(config) as tree:
        events = [
            kill_event(worth(9001, 125e6), 1),
            kill_event(worth(9002, 2e9), 2),
            rally(3, "rp-1"),
            map_event("add_system", {"solar_system_id": 31000777, "name": "J000777"}, 4),
        ]
        assert handle(tree, events) == 4  # one claim per route matched: 1 + 2 + 1 + 0
        settled(database(config), 4)
        status = wait_for(lambda: (s := route_status(tree))["routes"]["rally"]["sent"] == 1 and s)
    assert sorted(kills_in(discord_fake, CHANNEL)) == [9001, 9002]
    assert kills_in(discord_fake, BIG) == [9002]
    assert len(discord_fake.messages(BIG)) == 2  # the big kill and the rally point
    assert status["unrouted"] == {"system_added": 1}
    routes = status["routes"]
    assert routes["kills"] | {"last_ping_at": None} == {
        "kinds": ["kill"],
        "destination": f"channel {CHANNEL}",
        "mention": "",
        "state": "running",
        "error": None,
        "sent": 2,
        "pending": 0,
        "failed": 0,
        "last_ping_at": None,
    }
    assert (routes["big"]["sent"], routes["rally"]["sent"]) == (1, 1)


def test_every_route_posts_its_messages_exactly_once_through_a_crash_and_a_replay(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = with_routes(
        app_config(tmp_path, discord=bot_config(discord_fake, request_timeout_s=10.0)),
        RouteConfig("kills", ("kill",)),
        RouteConfig("big", ("kill",), channel_id=BIG),
    )
    kills = [kill_event(worth(9100 + n, 2e9), n + 1) for n in range(3)]
    # Discord creates the first messages but holds their answers: sends in flight
    discord_fake.slow_after_create(4, 3.0)
    with pipeline(config, stop_timeout_s=0.05) as tree:
        assert handle(tree, kills) == 6
        wait_for(lambda: len(discord_fake.requests()) >= 4, what="four sends in flight")
        tree.registry.tell(Names.NOTIFIER, Crash())
        # the journal redelivers the same events after the crash, with new seqs
        replayed = [dataclasses.replace(event, seq=10 + n) for n, event in enumerate(kills)]
        wait_for(lambda: restarts(tree) == 1 and route_status(tree), what="a new notifier")
        assert handle(tree, replayed) == 0
        settled(database(config), 6, timeout_s=8.0)
    assert sorted(kills_in(discord_fake, CHANNEL)) == [9100, 9101, 9102]
    assert sorted(kills_in(discord_fake, BIG)) == [9100, 9101, 9102]
    assert ledger_states(database(config)) == {"sent": 6}
    # the four created before the crash were sent again with their nonce, and found
    assert len([r for r in discord_fake.requests() if r.fault == "nonce_hit"]) == 4


def test_a_mention_pings_the_first_rally_and_not_again_within_the_cooldown_even_after_a_restart(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = with_routes(
        app_config(tmp_path, discord=bot_config(discord_fake)),
        RouteConfig("rally", ("rally_point",), mention="<@&4242>", mention_cooldown_s=300),
        RouteConfig("quiet", ("rally_point",), channel_id=BIG),
    )
    with pipeline(config) as tree:
        handle(tree, [rally(1, "rp-1")])
        handle(tree, [rally(2, "rp-2")])
        settled(database(config), 4)
        pinged_at = route_status(tree)["routes"]["rally"]["last_ping_at"]
    with pipeline(config) as tree:  # a restart: the cooldown is read back from the ledger
        handle(tree, [rally(3, "rp-3")])
        settled(database(config), 6)
    # workers send concurrently: find each rally by its id, not by its place in the channel
    first, second, third = sorted(
        discord_fake.messages(CHANNEL), key=lambda m: m["embeds"][0]["footer"]["text"]
    )
    assert first["content"] == "<@&4242>"
    assert pinged(first) == (False, ["4242"])
    for quiet in (second, third, *discord_fake.messages(BIG)):
        assert quiet["content"] == ""
        assert pinged(quiet) == (False, [])
    assert pinged_at is not None
    assert abs(pinged_at - time.time()) < 60


def test_an_everyone_mention_is_allowed_only_at_the_kill_value_threshold(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = with_routes(
        app_config(tmp_path, discord=bot_config(discord_fake)),
        RouteConfig(
            "kills", ("kill",), mention="@here", mention_min_value_isk=1e9, mention_cooldown_s=0
        ),
    )
    with pipeline(config) as tree:
        handle(tree, [kill_event(worth(9201, 5e8), 1), kill_event(worth(9202, 1e9), 2)])
        settled(database(config), 2)
    cheap, costly = by_kill(discord_fake.messages(CHANNEL))
    assert (cheap["content"], pinged(cheap)) == ("", (False, []))
    assert (costly["content"], pinged(costly)) == ("@here", (True, []))


def test_alerts_go_to_the_routes_of_kind_alert_only(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = with_routes(
        app_config(tmp_path, discord=bot_config(discord_fake)),
        RouteConfig("kills", ("kill",)),
        RouteConfig("ops", ("alert",), channel_id=OPS),
    )
    now = time.time()
    raised = alert_notification(
        "connection:kills", "critical", "raised", "kills: reconnecting for 31 s",
        first_seen=now, at=now,
    )  # fmt: skip
    with pipeline(config) as tree:
        tree.registry.tell(Names.NOTIFIER, Announce((raised,)))
        tree.registry.tell(Names.NOTIFIER, Announce((raised,)))  # told twice: posted once
        settled(database(config), 1)
    [message] = discord_fake.messages(OPS)
    assert message["embeds"][0]["title"] == "Alert raised: connection:kills"
    assert discord_fake.messages(CHANNEL) == []


@contextmanager
def announcing(config: Config, start: notifier.ProcessStart) -> Iterator[SupervisionTree]:
    """Tracking and a notifier that announces ``start``, with a short catch-up window."""
    settings = dataclasses.replace(
        notifier.NotifierSettings.from_config(config),
        tick_s=0.02,
        status=StatusConfig(catch_up_s=0.4, heartbeat_s=0.1),
    )
    spec = ChildSpec(
        name=Names.NOTIFIER,
        start=lambda ctx: notifier.NotifierActor.start(ctx, settings, start=start, seed=7),
        shutdown_s=10.0,
    )
    with running_tree([tracking.child_spec(config), spec]) as tree:
        tree.registry.tell(Names.TRACKING, Bootstrap(SLUG, {HOME: "J100005"}, {}))
        tree.registry.ask(Names.TRACKING, GetTracking())
        yield tree


def test_a_start_after_an_outage_says_how_long_it_was_away_and_how_many_kills_it_caught_up(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = with_routes(
        app_config(tmp_path, discord=bot_config(discord_fake)),
        RouteConfig("kills", ("kill",)),
        RouteConfig("ops", ("status",), channel_id=OPS),
    )
    now = time.time()
    database(config).parent.mkdir(parents=True, exist_ok=True)
    with Ledger.open(database(config)) as ledger:
        ledger.record_alive(now - 720)  # the previous run's last sign of life
    with announcing(config, notifier.ProcessStart(now)) as tree:
        # two kills from while the program was down (preload), one older than the outage
        handle(tree, [kill_event(killmail(9301, age_s=60), 1)])
        handle(tree, [kill_event(killmail(9302, age_s=600), 2)])
        handle(tree, [kill_event(killmail(9303, age_s=900), 3)])
        [back] = wait_for(lambda: discord_fake.messages(OPS), what="the status message")
        # a feed that comes back later is a recovery of its own
        tree.registry.tell(Names.NOTIFIER, FeedRecovered("kills", time.time() - 95, time.time()))
        handle(tree, [kill_event(killmail(9304, age_s=30), 4)])
        wait_for(lambda: len(discord_fake.messages(OPS)) == 2, what="the feed's status message")
    assert back["embeds"][0]["title"] == "Back after 12 min, 2 kills caught up"
    assert back["embeds"][0]["description"] == "the program was not running"
    feed = discord_fake.messages(OPS)[1]["embeds"][0]
    assert feed["title"] == "Back after 1 min, 1 kill caught up"
    assert feed["description"] == "the kills feed was not connected"
    with Ledger.open(database(config)) as ledger:
        alive = ledger.last_alive()
    assert alive is not None
    assert alive >= now


def test_a_first_start_says_started_and_a_notifier_restart_is_not_a_new_start(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    config = with_routes(
        app_config(tmp_path, discord=bot_config(discord_fake)), RouteConfig("ops", ("status",))
    )
    start = notifier.ProcessStart(time.time())
    with announcing(config, start) as tree:
        [started] = wait_for(lambda: discord_fake.messages(CHANNEL), what="the start message")
        tree.registry.tell(Names.NOTIFIER, Crash())
        wait_for(lambda: route_status(tree).get("status_messages") == {
            "catching_up": 0, "sent": 0, "waiting": 0
        })  # fmt: skip
    assert started["embeds"][0]["title"] == "Started"
    assert len(discord_fake.messages(CHANNEL)) == 1


def test_a_refused_route_stops_alone_while_the_other_routes_deliver(
    discord_fake: DiscordFake, tmp_path: Path
) -> None:
    kept, deleted = discord_fake.add_webhook(CHANNEL), discord_fake.add_webhook(BIG)
    discord_fake.delete_webhook(deleted.split("/")[-2])
    config = with_routes(
        app_config(tmp_path, discord=webhook_config(kept, concurrency=1)),
        RouteConfig("kills", ("kill",)),
        RouteConfig("gone", ("kill",), webhook_url=Secret(deleted, "inline")),
    )
    with pipeline(config) as tree:
        assert handle(tree, [kill_event(killmail(9400 + n), n) for n in range(3)]) == 6
        status = wait_for(
            lambda: (
                (s := route_status(tree))["routes"]["kills"]["sent"] == 3
                and s["routes"]["gone"]["state"] == "stopped"
                and s
            )
        )
    assert kills_in(discord_fake, CHANNEL) == [9400, 9401, 9402]
    assert status["routes"]["gone"]["pending"] == 3
    assert "404" in status["routes"]["gone"]["error"]
    assert deleted not in str(status)
    assert status["sinks"]["discord"]["state"] == "running"
