"""``run.py import-env``: a WandererNotifier ``.env`` becomes an equivalent ``config.toml``.

The ``.env`` files here use the Elixir notifier's own variable names (see the
docstring of ``app/import_env.py`` for the files of its repository they come
from). The round trip runs the real command and feeds its output to
``check-config``, as a user migrating would.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from app.elixir_env import convert
from app.import_env import EnvFileError, UnmappableError, parse_dotenv
from tests.support.process import run_cli

BOT_TOKEN = "MTEyMzQ1Njc4OTAxMjM0NTY3OA.Gx1y2z.bot-token-secret"
MAP_KEY = "map-api-key-secret"
DASHBOARD_TOKEN = "dashboard-token-secret"

REALISTIC_ENV = f"""\
# WandererNotifier production settings
DISCORD_BOT_TOKEN={BOT_TOKEN}
DISCORD_APPLICATION_ID=1122334455667788990
DISCORD_CHANNEL_ID=100000000000000001

# Separate channels for organisation
DISCORD_SYSTEM_KILL_CHANNEL_ID=100000000000000002
DISCORD_CHARACTER_KILL_CHANNEL_ID=100000000000000003
DISCORD_SYSTEM_CHANNEL_ID=100000000000000004
DISCORD_CHARACTER_CHANNEL_ID=
DISCORD_RALLY_CHANNEL_ID=100000000000000005
DISCORD_RALLY_GROUP_IDS=200000000000000001

MAP_URL=https://wanderer.example.com/
MAP_NAME=my-corp-map
MAP_API_KEY="{MAP_KEY}"

WEBSOCKET_URL=wss://kills.example.com  # the wanderer-kills feed
WANDERER_KILLS_URL=https://kills.example.com
LICENSE_KEY=0f0e0d0c-license
NOTIFIER_API_TOKEN='{DASHBOARD_TOKEN}'
PORT=4000

KILL_NOTIFICATIONS_ENABLED=true
SYSTEM_NOTIFICATIONS_ENABLED=true
CHARACTER_NOTIFICATIONS_ENABLED=false
RALLY_NOTIFICATIONS_ENABLED=true
STATUS_MESSAGES_ENABLED=true
WORMHOLE_ONLY_KILL_NOTIFICATIONS_ENABLED=true
MAX_KILLMAIL_AGE_SECONDS=1800
CHARACTER_EXCLUDE_LIST=2117000009,2117000010
SYSTEM_EXCLUDE_LIST=30000142
STARTUP_SUPPRESSION_SECONDS=30
export SOME_UNKNOWN_SETTING=unknown-value-secret
"""


def toml_of(env_text: str) -> dict[str, Any]:
    return tomllib.loads(convert(parse_dotenv(env_text)).toml)


# -- reading the .env file -------------------------------------------------------------


def test_dotenv_reads_quotes_exports_comments_and_escapes() -> None:
    text = (
        "# comment\n\nexport A=1\nB = two words  # a comment\nC='x # not a comment'\n"
        'D="line\\nnext \\"q\\""\nE="multi\nline"\nF=\nA=again\n'
    )
    assert parse_dotenv(text) == {
        "A": "again",
        "B": "two words",
        "C": "x # not a comment",
        "D": 'line\nnext "q"',
        "E": "multi\nline",
        "F": "",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [("A=1\nnot a variable\n", "line 2"), ('A="open\n', "never closed"), ("1A=x\n", "line 1")],
)
def test_dotenv_names_the_line_it_cannot_read(text: str, problem: str) -> None:
    with pytest.raises(EnvFileError, match=problem):
        parse_dotenv(text)


# -- what each variable becomes --------------------------------------------------------


def test_map_kills_feed_and_bot_are_imported_with_secrets_as_env_references() -> None:
    config = toml_of(REALISTIC_ENV)
    assert config["maps"] == [
        {
            "slug": "my-corp-map",
            "base_url": "https://wanderer.example.com",
            "api_key": "env:MAP_API_KEY",
        }
    ]
    assert config["sources"]["kills"]["url"] == "wss://kills.example.com/socket/websocket"
    discord = config["notify"]["discord"]
    assert discord["bot_token"] == "env:DISCORD_BOT_TOKEN"
    assert discord["channel_id"] == "100000000000000001"
    assert config["http"] == {"bind": "0.0.0.0", "token": "env:NOTIFIER_API_TOKEN", "port": 4000}
    assert config["simulator"]["enabled"] is False


def test_each_channel_becomes_a_route_of_its_kind_and_toggles_leave_routes_out() -> None:
    routes = {route["name"]: route for route in toml_of(REALISTIC_ENV)["routes"]}
    assert routes["system-kills"]["channel_id"] == "100000000000000002"
    assert routes["system-kills"]["involving"] == ["system"]
    assert routes["character-kills"]["channel_id"] == "100000000000000003"
    assert routes["character-kills"]["involving"] == ["character"]
    assert routes["systems"] == {
        "name": "systems",
        "kinds": ["system_added"],
        "channel_id": "100000000000000004",
    }
    assert "characters" not in routes  # CHARACTER_NOTIFICATIONS_ENABLED=false
    assert routes["rally"]["mention"] == "<@&200000000000000001>"
    assert routes["rally"]["channel_id"] == "100000000000000005"
    assert routes["status"]["kinds"] == ["status"]


def test_filters_and_toggles_are_imported() -> None:
    config = toml_of(REALISTIC_ENV)
    kills = config["notify"]["kills"]
    assert kills["wormhole_only"] is True
    assert kills["exclude_characters"] == [2117000009, 2117000010]
    assert kills["exclude_systems"] == [30000142]
    assert config["notify"]["map"]["character_added"] is False
    assert config["filters"]["max_kill_age_s"] == 1800


def test_kill_channels_that_are_one_make_one_kill_route() -> None:
    env = "MAP_URL=https://w.example\nMAP_NAME=m\nDISCORD_CHANNEL_ID=1\n"
    routes = toml_of(env)["routes"]
    kills = [route for route in routes if "kill" in route["kinds"]]
    assert kills == [{"name": "kills", "kinds": ["kill"], "channel_id": ""}]
    assert [route["name"] for route in routes] == ["kills", "systems", "characters", "rally"]


def test_disabled_notifications_leave_discord_out_of_the_sinks() -> None:
    env = "MAP_URL=https://w.example\nMAP_NAME=m\nNOTIFICATIONS_ENABLED=false\n"
    assert toml_of(env)["notify"]["sinks"] == ["console"]


@pytest.mark.parametrize(
    ("variables", "base_url", "slug"),
    [
        ("MAP_URL_WITH_NAME=https://w.example/maps/corp\n", "https://w.example/maps", "corp"),
        ("MAP_URL_WITH_NAME=https://w.example/?name=corp\n", "https://w.example", "corp"),
        ("MAP_URL=https://w.example/corp\n", "https://w.example", "corp"),
    ],
)
def test_the_older_map_url_with_its_name_is_understood(
    variables: str, base_url: str, slug: str
) -> None:
    (found,) = toml_of(variables + "MAP_TOKEN=x\n")["maps"]
    assert (found["base_url"], found["slug"], found["api_key"]) == (
        base_url,
        slug,
        "env:MAP_TOKEN",
    )


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("WEBSOCKET_URL=ws://kills:4004", "ws://kills:4004/socket/websocket"),
        ("WEBSOCKET_URL=ws://kills:4004/socket", "ws://kills:4004/socket/websocket"),
        ("WEBSOCKET_URL=wss://k.example/socket/websocket", "wss://k.example/socket/websocket"),
        ("WANDERER_KILLS_URL=https://k.example", "wss://k.example/socket/websocket"),
        ("", "ws://host.docker.internal:4004/socket/websocket"),
    ],
)
def test_the_kills_url_is_completed_as_the_elixir_client_did(given: str, url: str) -> None:
    config = toml_of(f"MAP_URL=https://w.example\nMAP_NAME=m\n{given}\n")
    assert config["sources"]["kills"]["url"] == url


def test_no_secret_or_unknown_value_is_printed_and_unknown_names_are_listed() -> None:
    conversion = convert(parse_dotenv(REALISTIC_ENV))
    for secret in (BOT_TOKEN, MAP_KEY, DASHBOARD_TOKEN, "0f0e0d0c-license", "unknown-value"):
        assert secret not in conversion.toml
    assert "#   SOME_UNKNOWN_SETTING\n" in conversion.toml
    assert "#   LICENSE_KEY: no licence" in conversion.toml
    assert "#   STARTUP_SUPPRESSION_SECONDS: not needed" in conversion.toml


@pytest.mark.parametrize(
    ("line", "variable"),
    [
        ("PRIORITY_SYSTEMS_ONLY_ENABLED=true", "PRIORITY_SYSTEMS_ONLY_ENABLED"),
        ("TRACK_KSPACE_ENABLED=false", "TRACK_KSPACE_ENABLED"),
        ("CORPORATION_KILL_FOCUS=98000001", "CORPORATION_KILL_FOCUS"),
        ("DISCORD_RALLY_GROUP_IDS=1,2", "DISCORD_RALLY_GROUP_IDS"),
        ("KILL_NOTIFICATIONS_ENABLED=maybe", "KILL_NOTIFICATIONS_ENABLED"),
        ("DISCORD_SYSTEM_CHANNEL_ID=#general", "DISCORD_SYSTEM_CHANNEL_ID"),
        ("MAX_KILLMAIL_AGE_SECONDS=an hour", "MAX_KILLMAIL_AGE_SECONDS"),
        ("PORT=http", "PORT"),
        ("MAP_NAME=my map", "MAP_NAME"),
        ("WEBSOCKET_URL=kills.example.com", "WEBSOCKET_URL"),
    ],
)
def test_a_value_that_cannot_be_carried_over_names_its_variable(line: str, variable: str) -> None:
    env = parse_dotenv(f"MAP_URL=https://w.example\nMAP_NAME=m\n{line}\n")
    with pytest.raises(UnmappableError) as raised:
        convert(env)
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")


def test_the_command_exits_2_naming_the_variable_or_the_unreadable_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("MAP_URL=https://w.example\nMAP_NAME=m\nTRACK_KSPACE_ENABLED=false\n", "utf-8")
    refused = run_cli("import-env", str(env))
    assert refused.returncode == 2
    assert "TRACK_KSPACE_ENABLED: false" in refused.stderr
    assert refused.stdout == ""
    missing = run_cli("import-env", str(tmp_path / "absent.env"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_a_realistic_env_round_trips_through_import_env_and_check_config(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(REALISTIC_ENV, encoding="utf-8")
    imported = run_cli("import-env", str(env))
    assert imported.returncode == 0, imported.stderr
    config = tmp_path / "config.toml"
    config.write_text(imported.stdout, encoding="utf-8")
    # The program then runs with the same variables in its environment (compose's env_file).
    checked = run_cli("check-config", "--config", str(config), env=parse_dotenv(REALISTIC_ENV))
    assert checked.returncode == 0, checked.stderr
    effective = json.loads(checked.stdout)
    assert effective["maps"][0]["slug"] == "my-corp-map"
    assert effective["maps"][0]["api_key"] == "*** (env:MAP_API_KEY)"
    assert effective["notify"]["discord"]["bot_token"] == "*** (env:DISCORD_BOT_TOKEN)"
    assert effective["sources"]["kills"]["url"] == "wss://kills.example.com/socket/websocket"
    assert effective["filters"]["max_kill_age_s"] == 1800.0
    names = [route["name"] for route in effective["routes"]]
    assert names == ["system-kills", "character-kills", "systems", "rally", "status"]
    assert BOT_TOKEN not in checked.stdout
