"""Reading ``config.toml`` into a :class:`~realtime.config.Config`.

The loader walks the dataclass fields, so a new setting is one field with a
default. Anything the file says that no field expects is an error naming the
key, as is a value of the wrong type or a missing required value; then the
whole configuration is validated (:mod:`realtime.config.validation`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from realtime.config.root import Config
from realtime.config.secret import ENV_PREFIX, MASK, ConfigError, Secret
from realtime.config.validation import validate


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file.

    Raises:
        ConfigError: the file is missing, is not TOML, or fails validation.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse(table, os.environ if environ is None else environ)


def parse(table: Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """Build a :class:`Config` from a parsed TOML table and validate it."""
    config: Config = _build(Config, _without_retired_keys(table), "", environ)
    validate(config)
    return config


def masked(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked."""
    return typing.cast("dict[str, Any]", _plain(config))


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return f"{MASK} ({value.origin})" if value.value else f"(unset, {value.origin})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _build(cls: type[Any], table: Any, prefix: str, environ: Mapping[str, str]) -> Any:
    where = prefix or "the top level"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table, got {_type_name(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in table:
        if name not in fields:
            raise ConfigError(f"{_key(prefix, name)}: unknown key")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        key = _key(prefix, name)
        if name in table:
            values[name] = _convert(hints[name], table[name], key, environ)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required but missing")
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, environ: Mapping[str, str]) -> Any:  # noqa: PLR0911, PLR0912
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Secret:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_type_name(value)}")
        if value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            return Secret(environ.get(name, ""), value)
        return Secret(value, "inline")
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast("type[Any]", hint), value, key, environ)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{key}: {value!r} is not one of {allowed}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {_type_name(value)}")
        return tuple(_convert(args[0], v, f"{key}[{i}]", environ) for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table, got {_type_name(value)}")
        return types.MappingProxyType(
            {k: _convert(args[1], v, f"{key}.{k}", environ) for k, v in value.items()}
        )
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_type_name(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_type_name(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {_type_name(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_type_name(value)}")
        return value
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _without_retired_keys(table: Mapping[str, Any]) -> Mapping[str, Any]:
    """``table`` without keys that once existed and mean nothing now (the input is not changed).

    Raises:
        ConfigError: ``[alerts] discord_channel_id`` is set: routes of kind
            ``alert`` replaced it, and the message says what to write instead.
            (Empty, it never did anything, and is let pass.)
    """
    alerts = table.get("alerts")
    if not isinstance(alerts, Mapping) or "discord_channel_id" not in alerts:
        return table
    channel = alerts["discord_channel_id"]
    if channel != "":
        raise ConfigError(
            'alerts.discord_channel_id: replaced by routes of kind "alert"; remove it and add\n'
            '[[routes]]\nname = "alerts"\nkinds = ["alert"]\n'
            f"channel_id = {json.dumps(str(channel))}"
        )
    kept = {key: value for key, value in alerts.items() if key != "discord_channel_id"}
    return {**table, "alerts": kept}
