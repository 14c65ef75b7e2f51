"""Specifications of ``[[routes]]``, ``[status]`` and the retired ``[alerts]`` key."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.config import (
    DEFAULT_ROUTE,
    ROUTE_KINDS,
    ConfigError,
    RouteConfig,
    Secret,
    parse,
)

WEBHOOK = "https://discord.com/api/webhooks/123/abc"


def routes(*tables: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"maps": [{"slug": "home"}, {"slug": "away"}], "routes": list(tables), **top}


def real_discord(mode: str = "bot", **discord: Any) -> dict[str, Any]:
    """Discord really in use (not the demo world), so destinations are checked."""
    return {
        "simulator": {"enabled": False},
        "notify": {
            "sinks": ["discord"],
            "discord": {"mode": mode, "bot_token": "t", **discord},
        },
    }


def parsed_with_keys(
    environ: dict[str, str] | None = None, **tables: Any
) -> tuple[RouteConfig, ...]:
    table = routes(*tables.pop("routes"), **tables)
    for map_table in table["maps"]:
        map_table["api_key"] = "k"
    return parse(table, environ or {}).routes


def test_a_full_route_is_read_with_every_option() -> None:
    (route,) = parsed_with_keys(
        routes=[
            {
                "name": "big-kills",
                "kinds": ["kill"],
                "channel_id": "42",
                "maps": ["home"],
                "involving": ["character"],
                "min_value_isk": 1e9,
                "wormhole_only": True,
                "mention": "<@&777>",
                "mention_min_value_isk": 5e9,
                "mention_cooldown_s": 60,
            }
        ]
    )
    assert route == RouteConfig(
        name="big-kills",
        kinds=("kill",),
        channel_id="42",
        maps=("home",),
        involving=("character",),
        min_value_isk=1e9,
        wormhole_only=True,
        mention="<@&777>",
        mention_min_value_isk=5e9,
        mention_cooldown_s=60.0,
    )


def test_without_routes_every_kind_goes_to_the_default_route() -> None:
    loaded = parse({}, {})
    assert loaded.routes == ()
    (route,) = loaded.effective_routes
    assert route.name == DEFAULT_ROUTE
    assert route.kinds == ROUTE_KINDS
    assert set(ROUTE_KINDS) >= {"kill", "alert", "status", "rally_point"}
    assert route.mention == ""


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"name": "Kills", "kinds": ["kill"]}, r"routes\[0\]\.name: 'Kills' is not a route name"),
        ({"name": "console", "kinds": ["kill"]}, r"routes\[0\]\.name: 'console' is reserved"),
        ({"name": "a", "kinds": []}, r"routes\[0\]\.kinds: empty"),
        ({"name": "a", "kinds": ["kill", "kill"]}, r"routes\[0\]\.kinds: 'kill' appears twice"),
        ({"name": "a", "kinds": ["kills"]}, r"routes\[0\]\.kinds\[0\]: 'kills' is not one of"),
        ({"name": "a"}, r"routes\[0\]\.kinds: required but missing"),
        ({"name": "a", "kinds": ["kill"], "channel_id": "#x"}, r"channel_id: '#x' is not"),
        ({"name": "a", "kinds": ["kill"], "maps": ["elsewhere"]}, r"maps\[0\]: 'elsewhere' is"),
        ({"name": "a", "kinds": ["kill"], "involving": []}, r"routes\[0\]\.involving: empty"),
        (
            {"name": "a", "kinds": ["kill"], "involving": ["victim"]},
            r"routes\[0\]\.involving\[0\]: 'victim' is not one of",
        ),
        (
            {"name": "a", "kinds": ["alert"], "min_value_isk": 5},
            r'routes\[0\]\.min_value_isk: filters kills, and this route has no kind "kill"',
        ),
        (
            {"name": "a", "kinds": ["status"], "wormhole_only": True},
            r"routes\[0\]\.wormhole_only: filters kills",
        ),
        ({"name": "a", "kinds": ["kill"], "min_value_isk": -1}, r"min_value_isk: must be a fin"),
        ({"name": "a", "kinds": ["kill"], "mention": "@role"}, r"routes\[0\]\.mention: '@role'"),
        ({"name": "a", "kinds": ["kill"], "mention": "<@123>"}, r"routes\[0\]\.mention: '<@123>'"),
        (
            {"name": "a", "kinds": ["kill"], "mention_min_value_isk": 1e9},
            r"routes\[0\]\.mention_min_value_isk: has no effect without a mention",
        ),
        (
            {"name": "a", "kinds": ["kill"], "mention_cooldown_s": -5},
            r"routes\[0\]\.mention_cooldown_s: must be",
        ),
        ({"name": "a", "kinds": ["kill"], "colour": "red"}, r"routes\[0\]\.colour: unknown key"),
    ],
)
def test_a_bad_route_is_an_error_naming_the_key(route: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(routes(route), {})


def test_route_names_are_unique() -> None:
    with pytest.raises(
        ConfigError, match=r"routes\[2\]\.name: 'a' appears twice \(also routes\[0\]\)"
    ):
        parse(
            routes(
                {"name": "a", "kinds": ["kill"]},
                {"name": "b", "kinds": ["kill"]},
                {"name": "a", "kinds": ["alert"]},
            ),
            {},
        )


@pytest.mark.parametrize("mention", ["", "@here", "@everyone", "<@&123456789012345678>"])
def test_the_four_mention_forms_are_accepted(mention: str) -> None:
    (route,) = parse(routes({"name": "a", "kinds": ["rally_point"], "mention": mention}), {}).routes
    assert route.mention == mention


def test_a_route_needs_a_channel_in_bot_mode_when_discord_is_used_for_real() -> None:
    table = routes({"name": "kills", "kinds": ["kill"]}, **real_discord())
    for map_table in table["maps"]:
        map_table["api_key"] = "k"
    with pytest.raises(ConfigError, match=r"routes\[0\]\.channel_id: bot mode needs a channel"):
        parse(table, {})
    table["notify"]["discord"]["channel_id"] = "99"
    assert parse(table, {}).routes[0].channel_id == ""  # the default channel serves it


def test_a_route_webhook_from_an_unset_variable_is_an_error_not_a_silent_fallback() -> None:
    table = routes(
        {"name": "kills", "kinds": ["kill"], "webhook_url": "env:KILLS_HOOK"},
        **real_discord("webhook", webhook_url=WEBHOOK),
    )
    for map_table in table["maps"]:
        map_table["api_key"] = "k"
    with pytest.raises(ConfigError, match=r"routes\[0\]\.webhook_url: env:KILLS_HOOK is empty"):
        parse(table, {})
    route = parse(table, {"KILLS_HOOK": WEBHOOK}).routes[0]
    assert route.webhook_url == Secret(WEBHOOK, "env:KILLS_HOOK")


def test_a_route_webhook_must_be_a_discord_webhook_url() -> None:
    table = routes(
        {"name": "kills", "kinds": ["kill"], "webhook_url": "https://example.com/hook"},
        **real_discord("webhook", webhook_url=WEBHOOK),
    )
    for map_table in table["maps"]:
        map_table["api_key"] = "k"
    with pytest.raises(ConfigError, match=r"routes\[0\]\.webhook_url: not a Discord webhook URL"):
        parse(table, {})


def test_the_retired_alerts_channel_is_an_error_that_says_what_to_write() -> None:
    with pytest.raises(ConfigError) as raised:
        parse({"alerts": {"discord_channel_id": "555"}}, {})
    message = str(raised.value)
    assert message.startswith('alerts.discord_channel_id: replaced by routes of kind "alert"')
    assert '[[routes]]\nname = "alerts"\nkinds = ["alert"]\nchannel_id = "555"' in message


def test_an_empty_retired_alerts_channel_is_let_pass_and_the_table_is_not_changed() -> None:
    table = {"alerts": {"discord_channel_id": "", "cooldown_s": 60}}
    assert parse(table, {}).alerts.cooldown_s == 60.0
    assert table == {"alerts": {"discord_channel_id": "", "cooldown_s": 60}}


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"catch_up_s": -1}, r"status\.catch_up_s: must be a number of seconds"),
        ({"heartbeat_s": 0}, r"status\.heartbeat_s: must be positive"),
    ],
)
def test_status_settings_are_checked(status: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse({"status": status}, {})
