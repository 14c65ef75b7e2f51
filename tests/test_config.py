"""Specifications of configuration loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realtime import config as config_module
from realtime.config import ConfigError, load, parse
from tests.support.process import ROOT

SHIPPED = ROOT / "config.toml"


def test_shipped_config_is_valid_and_runs_the_demo_world() -> None:
    loaded = load(SHIPPED, environ={})
    assert loaded.simulator.enabled
    assert [m.slug for m in loaded.maps] == ["demo"]
    assert loaded.mailbox.flow_control == 2000


def test_unknown_key_is_an_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"sources\.kills\.urll: unknown key"):
        parse({"sources": {"kills": {"urll": "ws://x"}}}, {})


def test_wrong_type_is_an_error_naming_key_and_type() -> None:
    with pytest.raises(ConfigError, match=r"http\.port: expected an integer, got a string"):
        parse({"http": {"port": "8765"}}, {})
    with pytest.raises(ConfigError, match=r"maps\[0\]\.keepalive_timeout_s: expected a number"):
        parse({"maps": [{"slug": "a", "keepalive_timeout_s": True}]}, {})


def test_missing_required_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"maps\[0\]\.slug: required but missing"):
        parse({"maps": [{"base_url": "http://x"}]}, {})


def test_literal_values_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"notify\.discord\.mode: 'carrier pigeon' is not one"):
        parse({"notify": {"discord": {"mode": "carrier pigeon"}}}, {})


def test_env_secret_is_read_from_the_environment_and_never_printed() -> None:
    loaded = parse(
        {"maps": [{"slug": "a", "api_key": "env:MAP_KEY"}]}, {"MAP_KEY": "hunter2-secret"}
    )
    assert loaded.maps[0].api_key.value == "hunter2-secret"
    printed = json.dumps(config_module.masked(loaded)) + repr(loaded) + str(loaded)
    assert "hunter2" not in printed
    assert "env:MAP_KEY" in printed


def test_non_loopback_bind_without_token_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"http\.token: binding 0\.0\.0\.0"):
        parse({"http": {"bind": "0.0.0.0"}}, {})
    parse({"http": {"bind": "0.0.0.0", "token": "t"}}, {})


def test_an_http_token_from_an_unset_environment_variable_is_an_error_naming_it() -> None:
    # Even on loopback: an unset variable must not silently turn the token off.
    with pytest.raises(ConfigError, match=r"http\.token: WEB_TOKEN is not set"):
        parse({"http": {"token": "env:WEB_TOKEN"}}, {})
    with pytest.raises(ConfigError, match=r"http\.token: WEB_TOKEN is not set"):
        parse({"http": {"token": "env:WEB_TOKEN"}}, {"WEB_TOKEN": ""})
    assert parse({"http": {"token": "env:WEB_TOKEN"}}, {"WEB_TOKEN": "t"}).http.token.value == "t"
    assert not parse({"http": {"token": ""}}, {}).http.token  # no token, said so plainly


@pytest.mark.parametrize(
    ("http", "message"),
    [
        (
            {"allowed_hosts": ["dash.example.com:443"]},
            r"http\.allowed_hosts\[0\]: .* not a host name",
        ),
        ({"allowed_hosts": ["http://dash.example.com"]}, r"http\.allowed_hosts\[0\]"),
        ({"threads": 0}, r"http\.threads: must be at least 1"),
        ({"max_connections": 2, "threads": 4}, r"http\.threads: more threads than connections"),
        ({"request_timeout_s": 0}, r"http\.request_timeout_s: must be positive"),
        ({"max_body_bytes": 0}, r"http\.max_body_bytes: must be at least 1"),
    ],
)
def test_http_bounds_and_hosts_are_checked(http: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse({"http": http}, {})


def test_allowed_hosts_take_host_names() -> None:
    hosts = parse({"http": {"allowed_hosts": ["dash.example.com", "notifier"]}}, {}).http
    assert hosts.allowed_hosts == ("dash.example.com", "notifier")


def test_real_map_without_api_key_names_the_env_variable() -> None:
    table = {"simulator": {"enabled": False}, "maps": [{"slug": "a", "api_key": "env:NOPE"}]}
    with pytest.raises(ConfigError, match=r"maps\[0\]\.api_key: empty \(from env:NOPE\)"):
        parse(table, {})


def test_heartbeat_timeout_must_exceed_the_interval() -> None:
    table = {"sources": {"kills": {"heartbeat_interval_s": 30.0, "heartbeat_timeout_s": 20.0}}}
    with pytest.raises(ConfigError, match="heartbeat_timeout_s: must be longer"):
        parse(table, {})


def test_unreadable_and_invalid_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[app\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(broken)


def test_dedup_window_defaults_to_twice_the_max_kill_age() -> None:
    loaded = parse({"filters": {"max_kill_age_s": 7200}}, {})
    assert loaded.dedup_window_s == 14400


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"sources": {"max_json_depth": 255}}, "sources.max_json_depth: 255 is not within 1-254"),
        ({"sources": {"max_json_depth": 0}}, "sources.max_json_depth"),
        ({"sources": {"resend_min_s": 5.0, "resend_max_s": 1.0}}, "sources.resend_min_s"),
        ({"sources": {"journal_wait_max_s": 0.0}}, "sources.journal_wait_max_s"),
        ({"sources": {"kills": {"max_frame_bytes": 0}}}, "sources.kills.max_frame_bytes"),
        ({"sources": {"kills": {"max_systems": 0}}}, "sources.kills.max_systems"),
        ({"sources": {"kills": {"max_characters": 0}}}, "sources.kills.max_characters"),
        ({"sources": {"kills": {"push_timeout_s": 0}}}, "sources.kills.push_timeout_s"),
        ({"maps": [{"slug": "a", "max_rest_bytes": 0}]}, r"maps\[0\]\.max_rest_bytes"),
    ],
)
def test_source_bounds_out_of_range_are_errors_naming_the_key(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(table, {})


def test_source_bounds_have_their_defaults() -> None:
    config = parse({"maps": [{"slug": "a"}]}, {})
    assert config.sources.max_json_depth == 64
    assert config.sources.kills.max_frame_bytes == 1_048_576
    assert config.maps[0].max_rest_bytes == 16_777_216


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"alerts": {"down_grace_s": -1.0}}, "alerts.down_grace_s"),
        ({"alerts": {"shed_hold_s": -1.0}}, "alerts.shed_hold_s"),
        ({"alerts": {"silent_ticks": 0}}, "alerts.silent_ticks"),
    ],
)
def test_alert_rule_settings_out_of_range_are_errors_naming_the_key(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(table, {})
