"""``python run.py doctor``: the effective configuration against the real outside world.

Each check is one line, ``ok`` or ``FAIL`` with what was found and, for a
failure, what to fix:

- ``data_dir``: the journal's directory is writable (or can be created); in
  the container (``$WANDERER_DATA_DIR`` set) it must lie inside that volume,
  or the journal would be lost with the container;
- ``map:{slug}``: the map's REST API answers with its key (401, 403 and 404
  say which setting is wrong) and counts its systems and tracked characters;
  ``stream:{slug}``: its event stream opens;
- ``static-info:{slug}``: the map server's static-info endpoint answers for
  one of the map's systems (Jita when the map has none);
- ``kills``: the wanderer-kills URL connects and the channel joins with the
  maps' systems; ``kills:characters``: the characters-only join, when the maps
  track characters; each says how many ids the server took;
- ``discord:{route}`` for each ``[[routes]]`` (``discord`` without any): the
  bot token can read the route's channel (``GET /channels/{id}``), or the
  route's webhook exists (``GET`` of its URL). Nothing is ever posted.

Every network step is bounded by ``timeout_s`` (connect and read alike), so a
run takes at most a few timeouts per check. No secret is printed: every line
is masked with the configuration's secrets, and a webhook is shown by its id.
With ``[simulator] enabled`` the checks run against the demo world, started
for the purpose on free ports.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import requests
import websocket

from actors.discord_http import SecretMask
from actors.journal import journal_path
from realtime.config import Config, MapConfig, Secret
from realtime.map_events import (
    parse_systems,
    parse_tracked_characters,
    stream_headers,
    stream_url,
)
from realtime.phoenix import (
    ChannelClosed,
    ChannelErrored,
    Joined,
    JoinFailed,
    PhoenixClient,
    Preload,
)

DEFAULT_TIMEOUT_S: Final = 5.0
JITA: Final = 30000142
"""A system every static-info endpoint knows, for a map that tracks none yet."""
_NO_PRELOAD: Final = Preload(enabled=False)
_BODY_EXCERPT: Final = 200


@dataclass(frozen=True, slots=True)
class Check:
    """One check's outcome: ``detail`` says what was found, ``fix`` what to change."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        fix = f" -> fix: {self.fix}" if self.fix and not self.ok else ""
        return f"{status} {self.name}: {self.detail}{fix}"


@dataclass(frozen=True, slots=True)
class _Tracked:
    systems: frozenset[int] = frozenset()
    characters: frozenset[int] = frozenset()


def run_checks(
    config: Config, *, timeout_s: float = DEFAULT_TIMEOUT_S, environ: Mapping[str, str] = os.environ
) -> list[Check]:
    """Every check, in order, against the services ``config`` points at."""
    return list(_checks(config, timeout_s, environ))


def _checks(config: Config, timeout_s: float, environ: Mapping[str, str]) -> Iterator[Check]:
    """The checks one by one, as each ends (the maps first: the kills joins use their ids)."""
    yield check_data_dir(config, environ)
    tracked = _Tracked()
    with requests.Session() as session:
        for map_config in config.maps:
            found, map_checks = _check_map(session, map_config, timeout_s)
            yield from map_checks
            tracked = _Tracked(
                tracked.systems | found.systems, tracked.characters | found.characters
            )
        yield from _check_kills(config, tracked, timeout_s)
        yield from _check_discord(session, config, timeout_s)


def run_cli(config: Config, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """Print every check's line; 0 when all passed, 1 otherwise.

    With ``[simulator] enabled`` the demo world is started on free ports for the
    checks, and stopped after them.
    """
    from simulator.world import World

    world = None
    if config.simulator.enabled:
        print("[simulator] enabled: checking the demo world (set it false to check real services)")
        settings = dataclasses.replace(config.simulator, kills_port=0, map_port=0, discord_port=0)
        world = World(settings, [m.slug for m in config.maps]).start()
        config = world.apply(config)
    mask = secret_mask(config)
    passed = True
    try:
        for check in _checks(config, timeout_s, os.environ):
            print(mask.mask(check.line()), flush=True)
            passed = passed and check.ok
    finally:
        if world is not None:
            world.stop()
    return 0 if passed else 1


def secret_mask(config: Config) -> SecretMask:
    """Masks every secret value of ``config`` in a text."""
    return SecretMask(tuple(secret.value for secret in _secrets(config)))


def _secrets(value: Any) -> Iterator[Secret]:
    if isinstance(value, Secret):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _secrets(getattr(value, field.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _secrets(item)


# -- the data directory ----------------------------------------------------------------


def check_data_dir(config: Config, environ: Mapping[str, str]) -> Check:
    """The journal's directory: writable, or creatable; inside the volume in a container."""
    path = config.data_path.resolve()
    volume = environ.get("WANDERER_DATA_DIR", "")
    if volume and not path.is_relative_to(Path(volume).resolve()):
        return Check(
            "data_dir",
            False,
            f"{path} is outside {volume}, the data volume: the journal would be lost "
            "with the container",
            '[app] data_dir: use a relative path (the default "data") or one under ' + volume,
        )
    if not path.exists():
        parent = next(p for p in path.parents if p.exists())
        if not os.access(parent, os.W_OK | os.X_OK):
            return Check(
                "data_dir",
                False,
                f"{path} does not exist and {parent} is not writable to create it",
                f"create {path} writable to this user, or change [app] data_dir",
            )
        return Check("data_dir", True, f"{path} will be created at the first start")
    if not path.is_dir():
        return Check("data_dir", False, f"{path} is not a directory", "change [app] data_dir")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        return Check(
            "data_dir",
            False,
            f"{path} is not writable: {error.strerror or error}",
            f"make {path} writable to this user (uid {os.getuid()}), or change [app] data_dir",
        )
    journal = journal_path(config)
    held = (
        f"; journal {journal.stat().st_size / 1e6:.1f} MB"
        if journal.exists()
        else "; no journal yet"
    )
    return Check("data_dir", True, f"{path} is writable{held}")


# -- a Wanderer map --------------------------------------------------------------------

_MAP_FIXES: Final = {
    401: "the API key was refused: set [[maps]] api_key to this map's API key "
    "(from {origin}: is it set in this environment?)",
    403: "the key may not read this map: use the map's own API key "
    "(the map's settings, API access)",
    404: "no such map on this server: check [[maps]] slug (the map's name in its URL) and base_url",
}
_STREAM_FIXES: Final = {
    **_MAP_FIXES,
    403: "server-sent events are disabled for this map: enable them in the map's settings",
    429: "too many streams for this key (10 per key, 50 per map): stop the other clients "
    "using it, then start again",
    503: "server-sent events are disabled on this server: ask its operator",
}


def _check_map(
    session: requests.Session, map_config: MapConfig, timeout_s: float
) -> tuple[_Tracked, list[Check]]:
    name = f"map:{map_config.slug}"
    base = f"{map_config.base_url.rstrip('/')}/api/maps/{map_config.slug}"
    headers = {**stream_headers(map_config.api_key.value, None), "Accept": "application/json"}
    documents: list[object] = []
    for endpoint in ("systems", "tracked-characters"):
        answer = _get(session, f"{base}/{endpoint}", headers, timeout_s)
        if isinstance(answer, Check):
            return _Tracked(), [dataclasses.replace(answer, name=name)]
        if answer.status_code != 200:
            failed = _http_failure(name, f"GET {endpoint}", answer, _MAP_FIXES, map_config)
            return _Tracked(), [failed]
        try:
            documents.append(answer.json())
        except ValueError:
            return _Tracked(), [Check(name, False, f"GET {endpoint}: the answer is not JSON")]
    try:
        systems = parse_systems(documents[0])
        characters = [c for c in parse_tracked_characters(documents[1]) if c.tracked]
    except ValueError as error:
        return _Tracked(), [Check(name, False, f"the REST answer is malformed: {error}")]
    tracked = _Tracked(
        frozenset(s.solar_system_id for s in systems), frozenset(c.eve_id for c in characters)
    )
    checks = [
        Check(
            name,
            True,
            f"REST answers with its key: {len(tracked.systems)} systems, "
            f"{len(tracked.characters)} tracked characters",
        ),
        _check_stream(session, map_config, timeout_s),
        _check_static_info(session, map_config, min(tracked.systems, default=JITA), timeout_s),
    ]
    return tracked, checks


def _check_stream(session: requests.Session, map_config: MapConfig, timeout_s: float) -> Check:
    name = f"stream:{map_config.slug}"
    url = stream_url(map_config.base_url, map_config.slug, (), None)
    try:
        with session.get(
            url,
            headers=stream_headers(map_config.api_key.value, None),
            timeout=(timeout_s, timeout_s),
            stream=True,
        ) as answer:
            if answer.status_code != 200:
                return _http_failure(name, "the event stream", answer, _STREAM_FIXES, map_config)
            kind = answer.headers.get("Content-Type", "")
    except requests.RequestException as error:
        return _unreachable(name, map_config.base_url, error)
    if not kind.startswith("text/event-stream"):
        return Check(
            name,
            False,
            f"the event stream answered 200 with {kind or 'no content type'}",
            "[[maps]] base_url must be the Wanderer server itself, not a page in front of it",
        )
    return Check(name, True, "the event stream opens")


def _check_static_info(
    session: requests.Session, map_config: MapConfig, system_id: int, timeout_s: float
) -> Check:
    name = f"static-info:{map_config.slug}"
    url = f"{map_config.base_url.rstrip('/')}/api/common/system-static-info?id={system_id}"
    headers = {**stream_headers(map_config.api_key.value, None), "Accept": "application/json"}
    answer = _get(session, url, headers, timeout_s)
    if isinstance(answer, Check):
        return dataclasses.replace(answer, name=name)
    if answer.status_code != 200:
        unknown = "System not found" in answer.text
        fixes = {
            404: f"the server does not know system {system_id}: see its logs"
            if unknown
            else "the server has no static-info endpoint (an old Wanderer?): upgrade it, or "
            "notifications lack the system's class, effect and statics"
        }
        return _http_failure(name, f"static info of {system_id}", answer, fixes, map_config)
    try:
        data = answer.json()["data"]
        system_name = str(data["solar_system_name"])
    except (ValueError, KeyError, TypeError):
        return Check(name, False, f"static info of {system_id}: not the expected answer")
    return Check(name, True, f"answers (system {system_id} is {system_name})")


def _get(
    session: requests.Session, url: str, headers: Mapping[str, str], timeout_s: float
) -> requests.Response | Check:
    try:
        return session.get(url, headers=headers, timeout=(timeout_s, timeout_s))
    except requests.RequestException as error:
        return _unreachable("", url, error)


_NETWORK_REASONS: Final = (
    "Connection refused",
    "Name or service not known",
    "Temporary failure in name resolution",
    "No route to host",
    "Network is unreachable",
    "certificate verify failed",
    "timed out",
)


def _unreachable(name: str, url: str, error: BaseException) -> Check:
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}"
    text = str(error)
    reason = next((r for r in _NETWORK_REASONS if r in text), type(error).__name__)
    return Check(
        name,
        False,
        f"cannot reach {where}: {reason}",
        "check the URL in the config, and that this host can reach it (DNS, firewall, proxy)",
    )


def _http_failure(
    name: str,
    what: str,
    answer: requests.Response,
    fixes: Mapping[int, str],
    map_config: MapConfig | None = None,
) -> Check:
    status = answer.status_code
    origin = map_config.api_key.origin if map_config is not None else ""
    fix = fixes.get(status, "").format(origin=origin)
    if not fix and (status == 429 or status >= 500):
        fix = "the server is overloaded or down: try again later"
    excerpt = answer.text[:_BODY_EXCERPT].strip().replace("\n", " ")
    return Check(
        name, False, f"{what} answered {status}" + (f": {excerpt}" if excerpt else ""), fix
    )


# -- wanderer-kills --------------------------------------------------------------------


def _check_kills(config: Config, tracked: _Tracked, timeout_s: float) -> list[Check]:
    kills = config.sources.kills
    if not kills.enabled:
        return [Check("kills", True, "[sources.kills] is disabled: nothing to check")]
    checks = [_join("kills", kills.url, tracked.systems, (), timeout_s)]
    if tracked.characters:
        checks.append(_join("kills:characters", kills.url, (), tracked.characters, timeout_s))
    return checks


def _join(
    name: str,
    url: str,
    systems: frozenset[int] | tuple[()],
    characters: frozenset[int] | tuple[()],
    timeout_s: float,
) -> Check:
    """Connect, join ``killmails:lobby`` with these ids (no preload asked), leave."""
    try:
        socket_url = PhoenixClient.connect_url(url)
    except ValueError as error:
        return Check(name, False, str(error), "[sources.kills] url: ws(s)://HOST/socket/websocket")
    client = PhoenixClient(heartbeat_interval_s=30.0, heartbeat_timeout_s=60.0)
    deadline = time.monotonic() + timeout_s
    try:
        connection = websocket.create_connection(socket_url, timeout=timeout_s)
    except (OSError, websocket.WebSocketException) as error:
        return Check(
            name,
            False,
            f"cannot connect to {socket_url}: {type(error).__name__}: {error}",
            "check [sources.kills] url and that the wanderer-kills server is up and reachable",
        )
    try:
        connection.send(
            client.join_frame(systems, characters, time.monotonic(), preload=_NO_PRELOAD)
        )
        while (remaining := deadline - time.monotonic()) > 0:
            connection.settimeout(remaining)
            frame = connection.recv()
            control = client.receive(frame, time.monotonic_ns(), time.monotonic()).control
            if isinstance(control, Joined):
                taken = control.subscription
                return Check(
                    name,
                    True,
                    f"connected to {socket_url} and joined: subscribed "
                    f"{len(taken.systems)} systems and {len(taken.characters)} characters",
                )
            if isinstance(control, JoinFailed | ChannelClosed | ChannelErrored):
                reason = control.reason if isinstance(control, JoinFailed) else "channel closed"
                return Check(
                    name,
                    False,
                    f"connected, but the join was refused: {reason}",
                    "the server refused the subscription: check that it is a wanderer-kills "
                    "server and see its logs",
                )
    except (OSError, websocket.WebSocketException) as error:
        return Check(
            name, False, f"connected, then lost the connection: {type(error).__name__}: {error}"
        )
    finally:
        connection.close(timeout=1)
    return Check(
        name,
        False,
        f"connected, but no answer to the join within {timeout_s:g} s",
        "check that [sources.kills] url is a wanderer-kills server",
    )


# -- Discord ---------------------------------------------------------------------------


def _check_discord(session: requests.Session, config: Config, timeout_s: float) -> list[Check]:
    """One line per route (``discord:{route}``; just ``discord`` without ``[[routes]]``).

    A channel or webhook that several routes share is asked once.
    """
    if "discord" not in config.notify.sinks:
        return [Check("discord", True, "not in [notify] sinks: nothing to check")]
    discord = config.notify.discord
    asked: dict[str, Check] = {}
    checks: list[Check] = []
    for route in config.effective_routes:
        name = f"discord:{route.name}" if config.routes else "discord"
        if discord.mode == "webhook":
            webhook = route.webhook_url or discord.webhook_url
            destination = webhook.value
            if destination not in asked:
                asked[destination] = _check_webhook(session, name, webhook, timeout_s)
        else:
            destination = route.channel_id or discord.channel_id
            if destination not in asked:
                asked[destination] = _check_channel(session, config, name, destination, timeout_s)
        checks.append(dataclasses.replace(asked[destination], name=name))
    return checks


def _check_channel(
    session: requests.Session, config: Config, name: str, channel_id: str, timeout_s: float
) -> Check:
    discord = config.notify.discord
    url = f"{discord.api_base.rstrip('/')}/channels/{channel_id}"
    headers = {"Authorization": f"Bot {discord.bot_token.value}"}
    answer = _get(session, url, headers, timeout_s)
    if isinstance(answer, Check):
        return dataclasses.replace(answer, name=name)
    fixes = {
        401: "the bot token was refused: set [notify.discord] bot_token to the bot's token "
        f"(from {discord.bot_token.origin}: is it set in this environment?)",
        403: f"the bot cannot see channel {channel_id}: invite it to the server and let it "
        "view the channel, send messages and embed links there",
        404: f"there is no channel {channel_id}: copy the channel's id again (Discord "
        "developer mode, right-click the channel, Copy Channel ID)",
    }
    if answer.status_code != 200:
        return _http_failure(name, f"channel {channel_id}", answer, fixes)
    return Check(
        name, True, f"channel {channel_id} is readable with the bot token (nothing posted)"
    )


def _check_webhook(
    session: requests.Session, name: str, webhook: Secret, timeout_s: float
) -> Check:
    segments = urlsplit(webhook.value).path.rstrip("/").split("/")
    if "webhooks" not in segments[:-2] or not webhook.value.startswith(("http://", "https://")):
        return Check(
            name,
            False,
            f"the webhook URL (from {webhook.origin}) is not a Discord webhook URL",
            "set it to the whole URL Discord shows: https://discord.com/api/webhooks/ID/TOKEN",
        )
    webhook_id = segments[segments.index("webhooks") + 1]
    answer = _get(session, webhook.value, {}, timeout_s)
    if isinstance(answer, Check):
        return dataclasses.replace(answer, name=name)
    fixes = {
        401: f"webhook {webhook_id}'s token is wrong: copy the whole webhook URL again",
        404: f"webhook {webhook_id} was deleted: create one (channel settings, Integrations, "
        f"Webhooks) and set its URL (from {webhook.origin})",
    }
    if answer.status_code != 200:
        return _http_failure(name, f"webhook {webhook_id}", answer, fixes)
    return Check(name, True, f"webhook {webhook_id} exists (nothing posted)")
