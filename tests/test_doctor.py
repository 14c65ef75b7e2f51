"""``run.py doctor`` against the simulated outside world on loopback, each failure injected.

A real wanderer-kills server, a real Wanderer map and a Discord fake, reached
over real sockets with a configuration pointing at them (``[simulator]``
disabled, as a user's would be). Each test breaks one thing and reads the one
line that must say so, with its fix; nothing may be posted to Discord.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from app.doctor import Check, run_checks, secret_mask
from realtime.config import Config, parse
from simulator.discord_fake import DiscordFake
from simulator.kills_server import KillsServer
from simulator.map_server import MapCharacter, MapServer, MapSystem
from tests.support.process import run_cli
from tests.support.sockets import free_port

MAP_KEY = "map-key-0123456789"
CHANNEL = "100000000000000042"
SYSTEMS = (MapSystem(31000005, "J100005"), MapSystem(30000142, "Jita"))
CHARACTERS = (MapCharacter(2117000001, "Example Pilot"), MapCharacter(2117000002, "Other"))
TIMEOUT_S = 2.0


@dataclass
class World:
    kills: KillsServer
    map: MapServer
    discord: DiscordFake
    data_dir: Path

    def table(self, **overrides: Any) -> dict[str, Any]:
        """A user's configuration of this world (a TOML table), with ``overrides`` per table."""
        table: dict[str, Any] = {
            "app": {"data_dir": str(self.data_dir)},
            "simulator": {"enabled": False},
            "sources": {"kills": {"url": self.kills.url}},
            "maps": [{"slug": "demo", "base_url": self.map.base_url, "api_key": "env:MAP_KEY"}],
            "notify": {
                "sinks": ["console", "discord"],
                "discord": {
                    "mode": "bot",
                    "api_base": self.discord.base_url,
                    "bot_token": "env:BOT_TOKEN",
                    "channel_id": CHANNEL,
                },
            },
        }
        return table | overrides

    def environ(self) -> dict[str, str]:
        return {"MAP_KEY": MAP_KEY, "BOT_TOKEN": self.discord.bot_token}

    def config(self, **overrides: Any) -> Config:
        return parse(self.table(**overrides), self.environ())

    def check(self, name: str, config: Config | None = None) -> Check:
        checks = run_checks(config or self.config(), timeout_s=TIMEOUT_S, environ={})
        return next(check for check in checks if check.name == name)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    kills = KillsServer()
    kills.start()
    map_server = MapServer("demo", MAP_KEY, systems=SYSTEMS, characters=CHARACTERS)
    map_server.start()
    discord = DiscordFake().start()
    try:
        yield World(kills, map_server, discord, tmp_path / "data")
    finally:
        discord.stop()
        map_server.stop()
        kills.stop()


def discord_table(world: World, **settings: str) -> dict[str, Any]:
    discord = {"api_base": world.discord.base_url, "bot_token": "env:BOT_TOKEN"} | settings
    return {"sinks": ["discord"], "discord": discord}


def test_every_check_passes_against_a_healthy_world_and_nothing_is_posted(world: World) -> None:
    checks = run_checks(world.config(), timeout_s=TIMEOUT_S, environ={})
    failed = [check.line() for check in checks if not check.ok]
    assert not failed
    by_name = {check.name: check for check in checks}
    assert "2 systems, 2 tracked characters" in by_name["map:demo"].detail
    assert "subscribed 2 systems and 0 characters" in by_name["kills"].detail
    assert "subscribed 0 systems and 2 characters" in by_name["kills:characters"].detail
    assert f"channel {CHANNEL} is readable" in by_name["discord"].detail
    assert world.discord.statistics().messages == 0
    assert all(request.method == "GET" for request in world.discord.requests())


def test_a_kills_server_that_is_down_fails_the_kills_check(world: World) -> None:
    url = f"ws://127.0.0.1:{free_port()}/socket/websocket"
    check = world.check("kills", world.config(sources={"kills": {"url": url}}))
    assert not check.ok
    assert "cannot connect" in check.detail
    assert "[sources.kills] url" in check.fix


def test_a_refused_join_fails_the_kills_check_with_the_servers_reason(world: World) -> None:
    world.kills.refuse_joins("Invalid system IDs")
    check = world.check("kills")
    assert not check.ok
    assert "join was refused: Invalid system IDs" in check.detail


def test_a_kills_server_that_never_answers_fails_within_the_timeout(world: World) -> None:
    world.kills.set_half_open(True)
    started = time.monotonic()
    check = world.check("kills")
    assert not check.ok
    assert time.monotonic() - started < 4 * TIMEOUT_S  # bounded, generously


def test_a_refused_map_key_is_explained_as_a_401(world: World) -> None:
    environ = world.environ() | {"MAP_KEY": "not-the-key"}
    check = world.check("map:demo", parse(world.table(), environ))
    assert not check.ok
    assert "answered 401" in check.detail
    assert "api_key" in check.fix
    assert "env:MAP_KEY" in check.fix


def test_an_unknown_map_is_explained_as_a_404(world: World) -> None:
    maps = [{"slug": "other", "base_url": world.map.base_url, "api_key": "env:MAP_KEY"}]
    check = world.check("map:other", world.config(maps=maps))
    assert not check.ok
    assert "answered 404" in check.detail
    assert "slug" in check.fix


def test_a_map_stream_refused_by_the_server_fails_the_stream_check(world: World) -> None:
    world.map.fail_next(403, count=None)
    check = world.check("stream:demo")
    assert not check.ok
    assert "answered 403" in check.detail
    assert "enable them in the map's settings" in check.fix


def test_a_static_info_endpoint_that_is_down_fails_its_check(world: World) -> None:
    world.map.fail_static_info(503)
    check = world.check("static-info:demo")
    assert not check.ok
    assert "answered 503" in check.detail
    assert "try again later" in check.fix


@pytest.mark.parametrize(
    ("access", "status", "fix"), [("forbidden", 403, "invite it"), ("missing", 404, "Channel ID")]
)
def test_a_channel_the_bot_cannot_read_is_explained_by_its_status(
    world: World, access: Literal["forbidden", "missing"], status: int, fix: str
) -> None:
    world.discord.set_channel_access(CHANNEL, access)
    check = world.check("discord")
    assert not check.ok
    assert f"answered {status}" in check.detail
    assert fix in check.fix


def test_a_refused_bot_token_is_explained_as_a_401(world: World) -> None:
    check = world.check("discord", parse(world.table(), world.environ() | {"BOT_TOKEN": "x"}))
    assert not check.ok
    assert "answered 401" in check.detail
    assert "bot_token" in check.fix


def test_an_existing_webhook_passes_and_a_deleted_one_fails(world: World) -> None:
    url = world.discord.add_webhook(CHANNEL)
    notify = discord_table(world, mode="webhook", webhook_url="env:WEBHOOK")
    config = parse(world.table(notify=notify), world.environ() | {"WEBHOOK": url})
    assert world.check("discord", config).ok
    world.discord.delete_webhook()
    check = world.check("discord", config)
    assert not check.ok
    assert "answered 404" in check.detail
    assert "was deleted" in check.fix
    assert world.discord.statistics().messages == 0


def test_no_secret_is_printed_even_in_a_failure_that_quotes_a_url(world: World) -> None:
    webhook = f"http://127.0.0.1:{free_port()}/api/webhooks/123/webhook-secret-token"
    notify = discord_table(world, mode="webhook", webhook_url="env:WEBHOOK")
    environ: Mapping[str, str] = world.environ() | {"WEBHOOK": webhook, "MAP_KEY": "wrong-key"}
    config = parse(world.table(notify=notify), environ)
    checks = run_checks(config, timeout_s=TIMEOUT_S, environ={})
    assert not all(check.ok for check in checks)
    mask = secret_mask(config)
    text = "\n".join(mask.mask(check.line()) for check in checks)
    assert "webhook-secret-token" not in text
    assert "wrong-key" not in text
    assert world.discord.bot_token not in text


def test_data_dir_outside_the_container_volume_fails(world: World, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    checks = run_checks(
        world.config(), timeout_s=TIMEOUT_S, environ={"WANDERER_DATA_DIR": str(volume)}
    )
    check = next(check for check in checks if check.name == "data_dir")
    assert not check.ok
    assert "would be lost with the container" in check.detail


def test_a_data_dir_that_cannot_be_written_fails(world: World) -> None:
    # /proc/self is a directory no one can create files in, root included.
    check = world.check("data_dir", world.config(app={"data_dir": "/proc/self"}))
    assert not check.ok
    assert "not writable" in check.detail


def test_the_command_exits_1_on_a_failed_check_and_2_on_a_bad_config(
    world: World, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[app]\ndata_dir = "{world.data_dir}"\n[simulator]\nenabled = false\n'
        f'[sources.kills]\nurl = "{world.kills.url}"\n'
        f'[[maps]]\nslug = "demo"\nbase_url = "{world.map.base_url}"\napi_key = "env:MAP_KEY"\n',
        encoding="utf-8",
    )
    good = run_cli("doctor", "--config", str(config), "--timeout", "2", env={"MAP_KEY": MAP_KEY})
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.splitlines()[0].startswith("ok   data_dir:")
    refused = run_cli(
        "doctor", "--config", str(config), "--timeout", "2", env={"MAP_KEY": "wrong-key-secret"}
    )
    assert refused.returncode == 1
    assert any(line.startswith("FAIL map:demo:") for line in refused.stdout.splitlines())
    assert "wrong-key-secret" not in refused.stdout
    config.write_text("[app]\nunknown = 1\n", encoding="utf-8")
    bad = run_cli("doctor", "--config", str(config))
    assert bad.returncode == 2
    assert "app.unknown: unknown key" in bad.stderr


def test_each_route_is_checked_at_its_own_channel_and_a_shared_one_is_asked_once(
    world: World,
) -> None:
    other = "100000000000000043"
    routes = [
        {"name": "kills", "kinds": ["kill"]},
        {"name": "rally", "kinds": ["rally_point"], "channel_id": other},
        {"name": "ops", "kinds": ["alert", "status"], "channel_id": CHANNEL},
    ]
    world.discord.set_channel_access(other, "forbidden")
    checks = run_checks(world.config(routes=routes), timeout_s=TIMEOUT_S, environ={})
    by_name = {check.name: check for check in checks if check.name.startswith("discord")}
    assert sorted(by_name) == ["discord:kills", "discord:ops", "discord:rally"]
    assert by_name["discord:kills"].ok
    assert by_name["discord:ops"].ok
    assert not by_name["discord:rally"].ok
    assert f"channel {other} answered 403" in by_name["discord:rally"].detail
    reads = [r for r in world.discord.requests() if r.path.endswith(CHANNEL)]
    assert len(reads) == 1


def test_each_routes_webhook_is_checked(world: World) -> None:
    kept = world.discord.add_webhook(CHANNEL)
    deleted = world.discord.add_webhook(CHANNEL, webhook_id="900000000000000001")
    world.discord.delete_webhook("900000000000000001")
    routes = [
        {"name": "kills", "kinds": ["kill"], "webhook_url": "env:KEPT"},
        {"name": "rally", "kinds": ["rally_point"], "webhook_url": "env:DELETED"},
    ]
    notify = discord_table(world, mode="webhook")
    environ = world.environ() | {"KEPT": kept, "DELETED": deleted}
    checks = run_checks(parse(world.table(notify=notify, routes=routes), environ), environ={})
    by_name = {check.name: check for check in checks if check.name.startswith("discord")}
    assert by_name["discord:kills"].ok
    assert not by_name["discord:rally"].ok
    assert "webhook 900000000000000001 was deleted" in by_name["discord:rally"].fix
