"""The WandererNotifier variables and what each becomes here (see :mod:`app.import_env`).

:func:`convert` takes the variables of a ``.env`` file and writes the
``config.toml`` text: the tables in the order a reader expects, a comment
where the equivalence is not exact, and the variables it does not import
listed by name (never by value) at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, urlsplit, urlunsplit

from realtime.config import ENV_PREFIX

TRUE_WORDS: Final = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS: Final = frozenset({"false", "0", "no", "off"})
ELIXIR_DEFAULT_SOCKET: Final = "ws://host.docker.internal:4004"
"""``WEBSOCKET_URL``'s default in the Elixir notifier (its Docker setup)."""
SOCKET_PATH: Final = "/socket/websocket"
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

MAPPED: Final = frozenset(
    {
        "MAP_URL",
        "MAP_NAME",
        "MAP_URL_WITH_NAME",
        "MAP_API_KEY",
        "MAP_TOKEN",
        "WEBSOCKET_URL",
        "WANDERER_KILLS_URL",
        "DISCORD_BOT_TOKEN",
        "DISCORD_CHANNEL_ID",
        "DISCORD_SYSTEM_KILL_CHANNEL_ID",
        "DISCORD_CHARACTER_KILL_CHANNEL_ID",
        "DISCORD_SYSTEM_CHANNEL_ID",
        "DISCORD_CHARACTER_CHANNEL_ID",
        "DISCORD_RALLY_CHANNEL_ID",
        "DISCORD_RALLY_GROUP_IDS",
        "DISCORD_RALLY_GROUP_ID",
        "NOTIFICATIONS_ENABLED",
        "KILL_NOTIFICATIONS_ENABLED",
        "SYSTEM_NOTIFICATIONS_ENABLED",
        "CHARACTER_NOTIFICATIONS_ENABLED",
        "RALLY_NOTIFICATIONS_ENABLED",
        "STATUS_MESSAGES_ENABLED",
        "WORMHOLE_ONLY_KILL_NOTIFICATIONS_ENABLED",
        "WORMHOLE_ONLY_KILL_NOTIFICATIONS",
        "PRIORITY_SYSTEMS_ONLY_ENABLED",
        "PRIORITY_SYSTEMS_ONLY",
        "TRACK_KSPACE_ENABLED",
        "CORPORATION_KILL_FOCUS",
        "CHARACTER_EXCLUDE_LIST",
        "SYSTEM_EXCLUDE_LIST",
        "MAX_KILLMAIL_AGE_SECONDS",
        "NOTIFIER_API_TOKEN",
        "PORT",
    }
)
"""Every variable :func:`convert` reads (those it maps, and those it refuses when set)."""

NOT_NEEDED: Final = {
    "LICENSE_KEY": "no licence: every notification is a full embed",
    "LICENSE_MANAGER_API_KEY": "no licence",
    "LICENSE_MANAGER_URL": "no licence",
    "LICENSE_MANAGER_API_URL": "no licence",
    "BOT_API_TOKEN": "no licence",
    "DISCORD_APPLICATION_ID": "no slash commands",
    "DISCORD_GUILD_ID": "no slash commands or voice features",
    "VOICE_PARTICIPANT_NOTIFICATIONS_ENABLED": "no voice-channel pings (a route's mention pings)",
    "FALLBACK_TO_HERE_ENABLED": "no voice-channel pings (a route's mention pings)",
    "NOTABLE_ITEMS_ENABLED": "no notable-item pricing",
    "NOTABLE_ITEMS_THRESHOLD_ISK": "no notable-item pricing",
    "NOTABLE_ITEMS_LIMIT": "no notable-item pricing",
    "JANICE_API_TOKEN": "no notable-item pricing",
    "JANICE_API_URL": "no notable-item pricing",
    "STARTUP_SUPPRESSION_SECONDS": "not needed: the ledger never posts a notification twice",
    "DEDUPLICATION_TTL_SECONDS": "not needed: [dedup] window_s follows [filters] max_kill_age_s",
    "HOST": "the dashboard's address is [http] bind",
    "SCHEME": "the dashboard's address is [http] bind",
    "PUBLIC_URL": "the dashboard's address is [http] bind",
    "CACHE_DIR": "the journal lives in [app] data_dir",
    "MIX_ENV": "an Elixir setting",
    "SECRET_KEY_BASE": "an Elixir setting",
    "LIVE_VIEW_SIGNING_SALT": "an Elixir setting",
}
"""The Elixir program's own settings, with why they mean nothing here."""


class UnmappableError(ValueError):
    """A variable's value has no equivalent here; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Conversion:
    """The ``config.toml`` text, and what the user should know (to print apart)."""

    toml: str
    warnings: tuple[str, ...] = ()


@dataclass
class _Document:
    """TOML text being written: tables of ``key = value`` lines, with comments."""

    lines: list[str] = field(default_factory=list)

    def table(self, header: str, *comments: str) -> None:
        self.lines.append("")
        self.lines += [f"# {comment}" for comment in comments]
        self.lines.append(header)

    def set(self, key: str, value: object, comment: str = "") -> None:
        self.lines.append(f"{key} = {json.dumps(value)}" + (f"  # {comment}" if comment else ""))

    def comment(self, text: str) -> None:
        self.lines.append(f"# {text}")


def convert(env: Mapping[str, str], *, source: str = ".env") -> Conversion:
    """The ``config.toml`` equivalent to ``env`` (a WandererNotifier ``.env``'s variables).

    Empty values count as unset, as the Elixir program reads them.

    Raises:
        UnmappableError: a value that cannot be carried over (named).
    """
    values = {name: value.strip() for name, value in env.items() if value.strip()}
    _refuse_filters_without_equivalent(values)
    warnings: list[str] = []
    document = _Document(
        [
            f"# config.toml from the WandererNotifier settings in {source}",
            "# (python run.py import-env). Secrets are read from the environment",
            '# ("env:NAME"): give the program the same variables, e.g. compose\'s env_file.',
            "# Then: python run.py check-config, python run.py doctor.",
        ]
    )
    document.table("[app]")
    document.set("data_dir", "data", "relative: in the container's /data, the service's state dir")
    _http(document, values)
    document.table("[simulator]")
    document.set("enabled", False)
    document.table("[sources.kills]")
    document.set("url", _socket_url(values, warnings))
    _map(document, values, warnings)
    _notify(document, values, warnings)
    _routes(document, values)
    _leftovers(document, env)
    return Conversion("\n".join(document.lines).lstrip("\n") + "\n", tuple(warnings))


def _flag(values: Mapping[str, str], *names: str, default: bool) -> bool:
    """The first of ``names`` that is set, as a boolean."""
    for name in names:
        if name in values:
            word = values[name].lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise UnmappableError(name, f"{values[name]!r} is not true or false")
    return default


def _ids(values: Mapping[str, str], name: str) -> list[int]:
    """A comma-separated list of numeric ids."""
    found: list[int] = []
    for item in (part.strip() for part in values.get(name, "").split(",")):
        if not item:
            continue
        if not item.isdigit():
            raise UnmappableError(name, f"{item!r} is not a numeric id")
        found.append(int(item))
    return list(dict.fromkeys(found))


def _channel(values: Mapping[str, str], name: str) -> str:
    channel = values.get(name, "")
    if channel and not channel.isdigit():
        raise UnmappableError(name, f"{channel!r} is not a Discord channel id (digits)")
    return channel


def _refuse_filters_without_equivalent(values: Mapping[str, str]) -> None:
    if _flag(values, "PRIORITY_SYSTEMS_ONLY_ENABLED", "PRIORITY_SYSTEMS_ONLY", default=False):
        name = next(
            n for n in ("PRIORITY_SYSTEMS_ONLY_ENABLED", "PRIORITY_SYSTEMS_ONLY") if n in values
        )
        raise UnmappableError(
            name, "true: there are no priority systems here; remove it (or set it false) to import"
        )
    if not _flag(values, "TRACK_KSPACE_ENABLED", default=True):
        raise UnmappableError(
            "TRACK_KSPACE_ENABLED",
            "false: every system on the map is tracked here; to notify only wormhole kills set "
            "WORMHOLE_ONLY_KILL_NOTIFICATIONS_ENABLED=true instead, then import again",
        )
    if _ids(values, "CORPORATION_KILL_FOCUS"):
        raise UnmappableError(
            "CORPORATION_KILL_FOCUS",
            "routing kills by corporation has no equivalent here (routes choose kills by tracked "
            "system or character); remove it to import",
        )


def _http(document: _Document, values: Mapping[str, str]) -> None:
    document.table("[http]", "The dashboard and /livez, /readyz, /api/*, /metrics.")
    if "NOTIFIER_API_TOKEN" in values:
        # As the Elixir dashboard was: reachable from outside, its API behind the token.
        document.set("bind", "0.0.0.0", "the token protects /api/* and /debug/*")  # noqa: S104
        document.set("token", ENV_PREFIX + "NOTIFIER_API_TOKEN")
    else:
        document.set("bind", "127.0.0.1", 'outside access needs bind = "0.0.0.0" and a token')
    if "PORT" in values:
        port = values["PORT"]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UnmappableError("PORT", f"{port!r} is not a TCP port")
        document.set("port", int(port))


def _socket_url(values: Mapping[str, str], warnings: list[str]) -> str:
    """``WEBSOCKET_URL`` as the Elixir client completed it (``/socket/websocket`` added)."""
    name = "WEBSOCKET_URL" if "WEBSOCKET_URL" in values else "WANDERER_KILLS_URL"
    url = values.get(name)
    if url is None:
        warnings.append(
            f"neither WEBSOCKET_URL nor WANDERER_KILLS_URL is set: [sources.kills] url is the "
            f"Elixir default {ELIXIR_DEFAULT_SOCKET}; point it at your wanderer-kills server"
        )
        url = ELIXIR_DEFAULT_SOCKET
    parts = urlsplit(url)
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    if parts.scheme not in schemes or not parts.netloc:
        raise UnmappableError(name, f"{url!r} is not a ws(s):// or http(s):// URL")
    path = parts.path.rstrip("/")
    if path.endswith("/socket"):
        path += "/websocket"
    elif not path.endswith(SOCKET_PATH):
        path += SOCKET_PATH
    return urlunsplit((schemes[parts.scheme], parts.netloc, path, parts.query, ""))


def _map(document: _Document, values: Mapping[str, str], warnings: list[str]) -> None:
    base_url, slug, name = _map_location(values)
    if not _SLUG.match(slug):
        raise UnmappableError(name, f"{slug!r} is not a map slug (letters, digits, - and _)")
    key_name = (
        "MAP_API_KEY" if "MAP_API_KEY" in values or "MAP_TOKEN" not in values else "MAP_TOKEN"
    )
    if key_name not in values:
        warnings.append("MAP_API_KEY is not in the file: the program needs it in its environment")
    document.table("[[maps]]")
    document.set("slug", slug)
    document.set("base_url", base_url)
    document.set("api_key", ENV_PREFIX + key_name)


def _map_location(values: Mapping[str, str]) -> tuple[str, str, str]:
    """The map's base URL, its slug, and the variable they came from."""
    if "MAP_URL" in values and "MAP_NAME" in values:
        parts = urlsplit(values["MAP_URL"])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UnmappableError("MAP_URL", f"{values['MAP_URL']!r} is not an http(s) URL")
        base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        return base, values["MAP_NAME"], "MAP_NAME"
    # The older single URL with the map's name: https://host/name or https://host/?name=name
    name = "MAP_URL_WITH_NAME" if "MAP_URL_WITH_NAME" in values else "MAP_URL"
    if name not in values:
        raise UnmappableError("MAP_URL", "not set (nor MAP_URL_WITH_NAME): which map to follow?")
    parts = urlsplit(values[name])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UnmappableError(name, f"{values[name]!r} is not an http(s) URL")
    slug = parse_qs(parts.query).get("name", [""])[0]
    path = parts.path.rstrip("/")
    if not slug:
        path, _, slug = path.rpartition("/")
    if not slug:
        raise UnmappableError(name, f"{values[name]!r} names no map (and MAP_NAME is not set)")
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), slug, name


def _notify(document: _Document, values: Mapping[str, str], warnings: list[str]) -> None:
    discord_on = _flag(values, "NOTIFICATIONS_ENABLED", default=True)
    document.table("[notify]")
    document.set(
        "sinks",
        ["console", "discord"] if discord_on else ["console"],
        "" if discord_on else "NOTIFICATIONS_ENABLED=false",
    )
    if "DISCORD_BOT_TOKEN" not in values:
        warnings.append("DISCORD_BOT_TOKEN is not in the file: the program needs it to post")
    if "DISCORD_CHANNEL_ID" not in values:
        warnings.append(
            "DISCORD_CHANNEL_ID is not in the file: [notify.discord] channel_id is empty"
        )
    document.table("[notify.discord]")
    document.set("mode", "bot")
    document.set("bot_token", ENV_PREFIX + "DISCORD_BOT_TOKEN")
    document.set("channel_id", _channel(values, "DISCORD_CHANNEL_ID"), "every route's fallback")

    document.table("[notify.kills]")
    document.set("enabled", _flag(values, "KILL_NOTIFICATIONS_ENABLED", default=True))
    wormhole_only = _flag(
        values,
        "WORMHOLE_ONLY_KILL_NOTIFICATIONS_ENABLED",
        "WORMHOLE_ONLY_KILL_NOTIFICATIONS",
        default=False,
    )
    document.set("wormhole_only", wormhole_only, "every kill outside J-space is dropped")
    excluded_systems = _ids(values, "SYSTEM_EXCLUDE_LIST")
    if excluded_systems:
        document.comment(
            "SYSTEM_EXCLUDE_LIST: their kills are never notified here, even with a tracked"
        )
        document.comment(
            "pilot involved (the Elixir notifier still posted those as character kills)"
        )
    document.set("exclude_systems", excluded_systems)
    document.set("exclude_characters", _ids(values, "CHARACTER_EXCLUDE_LIST"))

    document.table("[notify.map]")
    document.set("system_added", _flag(values, "SYSTEM_NOTIFICATIONS_ENABLED", default=True))
    document.set("character_added", _flag(values, "CHARACTER_NOTIFICATIONS_ENABLED", default=True))
    document.set("character_removed", False, "the Elixir notifier did not notify removals")
    document.set("rally_point_added", _flag(values, "RALLY_NOTIFICATIONS_ENABLED", default=True))

    document.table("[filters]")
    age = values.get("MAX_KILLMAIL_AGE_SECONDS", "3600")
    if not age.isdigit() or int(age) == 0:
        raise UnmappableError("MAX_KILLMAIL_AGE_SECONDS", f"{age!r} is not a positive number")
    document.set("max_kill_age_s", int(age))


def _routes(document: _Document, values: Mapping[str, str]) -> None:
    """One route per Elixir channel; an empty channel_id falls back to DISCORD_CHANNEL_ID."""
    document.lines.append("")
    document.comment("Routes: each DISCORD_*_CHANNEL_ID of the Elixir notifier (empty channel_id =")
    document.comment("[notify.discord] channel_id, as DISCORD_CHANNEL_ID was its fallback).")
    if _flag(values, "KILL_NOTIFICATIONS_ENABLED", default=True):
        _kill_routes(document, values)
    if _flag(values, "SYSTEM_NOTIFICATIONS_ENABLED", default=True):
        _route(document, "systems", ["system_added"], _channel(values, "DISCORD_SYSTEM_CHANNEL_ID"))
    if _flag(values, "CHARACTER_NOTIFICATIONS_ENABLED", default=True):
        channel = _channel(values, "DISCORD_CHARACTER_CHANNEL_ID")
        _route(document, "characters", ["character_added"], channel)
    if _flag(values, "RALLY_NOTIFICATIONS_ENABLED", default=True):
        channel = _channel(values, "DISCORD_RALLY_CHANNEL_ID")
        _route(document, "rally", ["rally_point"], channel, mention=_rally_mention(values))
    if _flag(values, "STATUS_MESSAGES_ENABLED", default=False):
        _route(document, "status", ["status"], "")
    document.lines.append("")
    document.comment("This program's own alerts (a feed down, Discord refusing...) reach Discord")
    document.comment("through a route of kind alert, which the Elixir notifier had no need of:")
    document.comment("[[routes]]")
    document.comment('name = "alerts"')
    document.comment('kinds = ["alert"]')


def _kill_routes(document: _Document, values: Mapping[str, str]) -> None:
    system_channel = _channel(values, "DISCORD_SYSTEM_KILL_CHANNEL_ID")
    character_channel = _channel(values, "DISCORD_CHARACTER_KILL_CHANNEL_ID")
    if system_channel == character_channel:
        _route(document, "kills", ["kill"], system_channel)
        return
    _route(document, "system-kills", ["kill"], system_channel, involving=["system"])
    _route(
        document,
        "character-kills",
        ["kill"],
        character_channel,
        involving=["character"],
        comments=(
            "A kill in a tracked system with a tracked pilot goes to both kill routes here",
            "(the Elixir notifier posted it in the system kill channel only).",
        ),
    )


def _rally_mention(values: Mapping[str, str]) -> str:
    name = (
        "DISCORD_RALLY_GROUP_IDS"
        if "DISCORD_RALLY_GROUP_IDS" in values
        else "DISCORD_RALLY_GROUP_ID"
    )
    groups = _ids(values, name)
    if len(groups) > 1:
        raise UnmappableError(
            name,
            f"{len(groups)} role ids: a route pings one role here; keep the one to ping "
            "(or one role for every rally) and import again",
        )
    return f"<@&{groups[0]}>" if groups else ""


def _route(
    document: _Document,
    name: str,
    kinds: Sequence[str],
    channel_id: str,
    *,
    involving: Sequence[str] = (),
    mention: str = "",
    comments: Sequence[str] = (),
) -> None:
    document.table("[[routes]]", *comments)
    document.set("name", name)
    document.set("kinds", list(kinds))
    document.set("channel_id", channel_id)
    if involving:
        document.set("involving", list(involving))
    if mention:
        document.set("mention", mention)


def _leftovers(document: _Document, env: Mapping[str, str]) -> None:
    """The variables not imported, by name only (a value may be a secret)."""
    not_needed = [name for name in env if name in NOT_NEEDED]
    unknown = [name for name in env if name not in MAPPED and name not in NOT_NEEDED]
    if not_needed:
        document.lines.append("")
        document.comment("Not imported: settings of the Elixir program that mean nothing here.")
        document.lines += [f"#   {name}: {NOT_NEEDED[name]}" for name in not_needed]
    if unknown:
        document.lines.append("")
        document.comment("Not imported: variables import-env does not know (values not shown).")
        document.lines += [f"#   {name}" for name in unknown]
