"""``python run.py import-env FILE``: a WandererNotifier ``.env`` as an equivalent ``config.toml``.

The Elixir notifier (guarzo/wanderer-notifier) is configured by environment
variables, usually from a ``.env`` file. The names read here, and what the
Elixir program did with them, come from these files of that repository:

- ``config/runtime.exs``: ``DISCORD_BOT_TOKEN``, ``DISCORD_CHANNEL_ID``, the
  per-kind ``DISCORD_SYSTEM_KILL_CHANNEL_ID``, ``DISCORD_CHARACTER_KILL_CHANNEL_ID``,
  ``DISCORD_SYSTEM_CHANNEL_ID``, ``DISCORD_CHARACTER_CHANNEL_ID``,
  ``DISCORD_RALLY_CHANNEL_ID``, ``DISCORD_RALLY_GROUP_IDS`` (or
  ``DISCORD_RALLY_GROUP_ID``), ``MAP_URL``, ``MAP_NAME``, ``MAP_API_KEY``,
  ``WEBSOCKET_URL``, ``WANDERER_KILLS_URL``, ``NOTIFIER_API_TOKEN``, ``PORT``,
  the ``*_NOTIFICATIONS_ENABLED`` toggles, ``STATUS_MESSAGES_ENABLED``,
  ``WORMHOLE_ONLY_KILL_NOTIFICATIONS_ENABLED``, ``PRIORITY_SYSTEMS_ONLY_ENABLED``,
  ``CHARACTER_EXCLUDE_LIST``, ``SYSTEM_EXCLUDE_LIST``, ``CORPORATION_KILL_FOCUS``;
- ``CONFIGURATION.md``: their meanings and defaults, ``TRACK_KSPACE_ENABLED``,
  ``MAX_KILLMAIL_AGE_SECONDS``, ``STARTUP_SUPPRESSION_SECONDS``, the voice options;
- ``lib/wanderer_notifier/shared/config.ex``: ``WORMHOLE_ONLY_KILL_NOTIFICATIONS``
  and ``PRIORITY_SYSTEMS_ONLY`` (the names without ``_ENABLED``),
  ``MAX_KILLMAIL_AGE_SECONDS``, ``DEDUPLICATION_TTL_SECONDS``;
- ``lib/wanderer_notifier/domains/notifications/discord_notifier.ex``: the
  wormhole-only switch drops every kill outside J-space; a kill goes to the
  system kill channel when its system is tracked, else to a character
  channel; a rally point pings every rally group;
- ``lib/wanderer_notifier/domains/killmail/websocket_client.ex``: how
  ``WEBSOCKET_URL`` becomes the socket URL (``/socket/websocket`` added);
- ``.env.example``: the older ``MAP_URL_WITH_NAME`` and ``MAP_TOKEN``.

What becomes what:

- the map (``MAP_URL`` and ``MAP_NAME``, or ``MAP_URL_WITH_NAME``) is a
  ``[[maps]]`` table whose ``api_key`` is ``env:MAP_API_KEY`` (or ``env:MAP_TOKEN``);
- ``WEBSOCKET_URL`` (else ``WANDERER_KILLS_URL``) is ``[sources.kills] url``;
- ``DISCORD_BOT_TOKEN`` is ``[notify.discord] bot_token = "env:DISCORD_BOT_TOKEN"``
  and ``DISCORD_CHANNEL_ID`` its ``channel_id``, every other route's fallback;
- each ``DISCORD_*_CHANNEL_ID`` is a ``[[routes]]`` of the matching kind; the
  ``*_NOTIFICATIONS_ENABLED`` toggles leave a kind's route out (and turn the
  kind off in ``[notify.kills]``/``[notify.map]``); ``DISCORD_RALLY_GROUP_IDS``
  is the rally route's ``mention``;
- the wormhole-only switch is ``[notify.kills] wormhole_only``, the exclusion
  lists ``exclude_systems``/``exclude_characters``, the maximum kill age
  ``[filters] max_kill_age_s``; ``NOTIFIER_API_TOKEN`` and ``PORT`` the ``[http]``
  token and port.

Secrets are written ``env:NAME`` (the same ``.env`` then serves as the
environment, e.g. compose's ``env_file``) and no value of a secret, or of a
variable this module does not know, is ever printed: unknown variables are
listed by name as comments, and so are the Elixir program's own settings that
mean nothing here. A value that cannot be carried over exits 2 naming its
variable: a malformed value, or a filter this program does not have
(``PRIORITY_SYSTEMS_ONLY_ENABLED=true``, ``CORPORATION_KILL_FOCUS``,
``TRACK_KSPACE_ENABLED=false``, several rally groups).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from app.elixir_env import Conversion, UnmappableError, convert

__all__ = ["EnvFileError", "UnmappableError", "convert", "parse_dotenv", "run_cli"]

EXIT_OK, EXIT_BAD_INPUT = 0, 2

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class EnvFileError(ValueError):
    """A line of the ``.env`` file is not ``NAME=value``; the message names the line."""


def parse_dotenv(text: str) -> dict[str, str]:
    """The variables of a ``.env`` file, in order (a later line wins over an earlier one).

    Accepted, as dotenv readers do: blank lines and ``#`` comments, an optional
    ``export`` prefix, unquoted values (trimmed; `` #`` starts a comment),
    single-quoted values (literal) and double-quoted values (``\\n``, ``\\t``,
    ``\\"``, ``\\\\`` escapes; they may span lines).

    Raises:
        EnvFileError: a line that is none of these, or an unclosed quote.
    """
    variables: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line.removeprefix("export ").lstrip()
        name, separator, rest = line.partition("=")
        name = name.strip()
        if not separator or not _NAME.fullmatch(name):
            msg = f"line {number}: not NAME=value: {name[:40]!r}"
            raise EnvFileError(msg)
        rest = rest.lstrip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            body = rest[1:]
            while not _closes(body, quote):
                if index >= len(lines):
                    msg = f"line {number}: {name}: the {quote} quote is never closed"
                    raise EnvFileError(msg)
                body += "\n" + lines[index]
                index += 1
            variables[name] = _unquote(body, quote)
        else:
            variables[name] = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
    return variables


def _closes(body: str, quote: str) -> bool:
    escaped = False
    for character in body:
        if escaped:
            escaped = False
        elif character == "\\" and quote == '"':
            escaped = True
        elif character == quote:
            return True
    return False


def _unquote(body: str, quote: str) -> str:
    if quote == "'":
        return body[: body.index("'")]
    value: list[str] = []
    characters = iter(body)
    for character in characters:
        if character == '"':
            break
        if character == "\\":
            following = next(characters, "")
            value.append(_ESCAPES.get(following, "\\" + following))
        else:
            value.append(character)
    return "".join(value)


def run_cli(path: str) -> int:
    """Print the ``config.toml`` for the ``.env`` at ``path``; 0, or 2 with the reason."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        print(f"import-env: cannot read {path}: {reason or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        conversion: Conversion = convert(parse_dotenv(text), source=Path(path).name)
    except (EnvFileError, UnmappableError) as error:
        print(f"import-env: {path}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(conversion.toml)
    for warning in conversion.warnings:
        print(f"import-env: {warning}", file=sys.stderr)
    return EXIT_OK
