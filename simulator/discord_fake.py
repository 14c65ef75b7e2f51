"""Discord on loopback: channel messages, webhooks, rate limits and faults.

A real HTTP/1.1 server (stdlib ``ThreadingHTTPServer`` in a thread it owns)
that answers the two ways to post a message the way Discord does
(docs/protocols.md, "Discord"):

- ``POST /api/v10/channels/{channel_id}/messages`` with ``Authorization: Bot
  TOKEN`` (401 otherwise). A ``nonce`` with ``"enforce_nonce": true`` seen
  again in the same channel within ``nonce_window_s`` answers the message it
  created the first time (200, same id) instead of creating another.
- ``POST /api/webhooks/{id}/{token}`` (also under ``/api/v10``): 200 with the
  message when ``?wait=true``, else 204. No idempotency. An unknown or deleted
  webhook is 404 ``Unknown Webhook`` (10015); a wrong token is 401 (50027).

Reading, as a setup check does without posting: ``GET /api/v10/channels/{id}``
(bot token; 403 ``Missing Access`` 50001 or 404 ``Unknown Channel`` 10003 for a
channel set so with :meth:`DiscordFake.set_channel_access`, which posting there
answers too) and ``GET`` of a webhook URL (its object; 404/401 as above).

Bodies are checked against Discord's size limits (400, code 50035 with the
nested ``errors`` object Discord gives; 50006 for an empty message). Every
answer past authentication carries rate-limit headers of a per-route,
per-channel (or per-webhook) bucket of ``bucket_limit`` requests per
``bucket_window_s``; a client beyond it, or beyond ``global_per_s`` requests in
a second, gets a 429 with ``retry_after``, ``global``, ``Retry-After`` and
``X-RateLimit-Scope``.

Faults are armed for the next N message posts, thread-safely: 429 storms, 5xx
answers, connections closed without an answer (before or after creating the
message) and answers held back after the message was created. Inspection:
:meth:`DiscordFake.messages` (what was really created, in order, with whom
it pinged: ``mention_everyone`` and ``mention_roles``, see :func:`pings`),
:meth:`DiscordFake.requests` and :meth:`DiscordFake.statistics`.

Time comes from ``clock`` (epoch seconds, default ``time.time``) so that tests
can drive the rate-limit windows; the held-back answers wait in real time.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
import secrets
import socket
import struct
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

import orjson

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER_TEXT = 2048
MAX_AUTHOR_NAME = 256
MAX_EMBEDS_TOTAL = 6000
MAX_NONCE = 25
MAX_BODY_BYTES = 8 * 1024 * 1024

DISCORD_EPOCH_MS = 1_420_070_400_000
CHANNEL_ROUTE = "POST /channels/{channel_id}/messages"
WEBHOOK_ROUTE = "POST /webhooks/{webhook_id}/{webhook_token}"

_CHANNEL_PATH = re.compile(r"^/api/v10/channels/(\d+)/messages$")
_CHANNEL_INFO_PATH = re.compile(r"^/api/v10/channels/(\d+)$")
_MISSING_ACCESS = {"message": "Missing Access", "code": 50001}
_UNKNOWN_CHANNEL = {"message": "Unknown Channel", "code": 10003}

ChannelAccess = Literal["ok", "forbidden", "missing"]
_WEBHOOK_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d+)/([^/]+)$")


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as the fake saw it.

    Attributes:
        at: the fake's clock when it arrived.
        method: the HTTP method.
        path: the path, a webhook token replaced by ``***``.
        status: the status answered; 0 when the connection was closed instead.
        nonce: the message nonce, if any.
        fault: the armed fault that shaped the answer ("" for none).
    """

    at: float
    method: str
    path: str
    status: int
    nonce: str | None
    fault: str


@dataclass(frozen=True, slots=True)
class DiscordFakeStatistics:
    """Counters and bounds of a :class:`DiscordFake`."""

    requests: int
    by_status: Mapping[int, int]
    answered_429: int
    messages: int
    max_messages: int
    messages_dropped: int
    nonces: int
    log_size: int
    max_log: int


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    delay_s: float = 0.0
    close_without_answer: bool = False


@dataclass(slots=True)
class _Webhook:
    channel_id: str
    token: str
    deleted: bool = False


@dataclass(slots=True)
class _Window:
    reset_at: float
    used: int


@dataclass(slots=True)
class _Faults:
    storm: int = 0
    storm_retry_after: float = 1.0
    storm_global: bool = False
    fail: int = 0
    fail_status: int = 502
    reset_before: int = 0
    reset_after: int = 0
    slow: int = 0
    slow_delay_s: float = 0.0


def form_errors(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Discord's nested ``errors`` object for a message body ({} when valid).

    Checks the documented limits: content 2000; 10 embeds; title 256,
    description 4096, 25 fields, field name 256 and value 1024, footer text
    2048, author name 256; 6000 characters over all embeds together; a nonce
    of at most 25 characters.
    """
    errors: dict[str, Any] = {}
    content = payload.get("content")
    if content is not None:
        _check_text(errors, ("content",), content, MAX_CONTENT)
    nonce = payload.get("nonce")
    if nonce is not None and not (isinstance(nonce, int) and not isinstance(nonce, bool)):
        _check_text(errors, ("nonce",), nonce, MAX_NONCE)
    embeds = payload.get("embeds")
    if embeds is None:
        return errors
    if not isinstance(embeds, list):
        _add_error(errors, ("embeds",), "BASE_TYPE_ARRAY_TYPE", "Must be an array.")
        return errors
    if len(embeds) > MAX_EMBEDS:
        _add_error(errors, ("embeds",), *_max_length(MAX_EMBEDS))
    total = 0
    for index, embed in enumerate(embeds):
        total += _check_embed(errors, ("embeds", str(index)), embed)
    if total > MAX_EMBEDS_TOTAL:
        message = f"Embed size exceeds maximum size of {MAX_EMBEDS_TOTAL}"
        _add_error(errors, ("embeds",), "MAX_EMBED_SIZE_EXCEEDED", message)
    return errors


def _check_embed(errors: dict[str, Any], path: tuple[str, ...], embed: Any) -> int:
    """Record the embed's errors; return the characters it counts toward 6000."""
    if not isinstance(embed, Mapping):
        _add_error(errors, path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a Model.")
        return 0
    total = 0
    for name, limit in (("title", MAX_TITLE), ("description", MAX_DESCRIPTION)):
        if embed.get(name) is not None:
            total += _check_text(errors, (*path, name), embed[name], limit)
    for part, name, limit in (
        ("footer", "text", MAX_FOOTER_TEXT),
        ("author", "name", MAX_AUTHOR_NAME),
    ):
        value = embed.get(part)
        if isinstance(value, Mapping) and value.get(name) is not None:
            total += _check_text(errors, (*path, part, name), value[name], limit)
    fields = embed.get("fields")
    if fields is not None:
        total += _check_fields(errors, (*path, "fields"), fields)
    return total


def _check_fields(errors: dict[str, Any], path: tuple[str, ...], fields: Any) -> int:
    if not isinstance(fields, list):
        _add_error(errors, path, "BASE_TYPE_ARRAY_TYPE", "Must be an array.")
        return 0
    total = 0
    if len(fields) > MAX_FIELDS:
        _add_error(errors, path, *_max_length(MAX_FIELDS))
    for index, field in enumerate(fields):
        where = (*path, str(index))
        if not isinstance(field, Mapping):
            _add_error(
                errors, where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a Model."
            )
            continue
        for name, limit in (("name", MAX_FIELD_NAME), ("value", MAX_FIELD_VALUE)):
            if field.get(name) is None:
                _add_error(errors, (*where, name), "BASE_TYPE_REQUIRED", "This field is required")
            else:
                total += _check_text(errors, (*where, name), field[name], limit)
    return total


def _check_text(errors: dict[str, Any], path: tuple[str, ...], value: Any, limit: int) -> int:
    if not isinstance(value, str):
        _add_error(errors, path, "BASE_TYPE_STRING", "Could not interpret the value as string.")
        return 0
    if len(value) > limit:
        _add_error(errors, path, *_max_length(limit))
    return len(value)


def _max_length(limit: int) -> tuple[str, str]:
    return "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."


def _add_error(errors: dict[str, Any], path: tuple[str, ...], code: str, message: str) -> None:
    node = errors
    for part in path:
        node = node.setdefault(part, {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


def bucket_hash(route: str) -> str:
    """A stable, opaque bucket id for a route, shaped like Discord's."""
    return hashlib.blake2b(route.encode(), digest_size=16).hexdigest()


class DiscordFake:
    """A loopback Discord API (see the module docstring).

    Args:
        bot_token: the token that ``Authorization: Bot ...`` must carry (default:
            a random one, read it from :attr:`bot_token`).
        port: the TCP port on 127.0.0.1 (0: any free port).
        bucket_limit: requests per bucket window, per channel or webhook.
        bucket_window_s: the bucket window.
        global_per_s: requests per second over all routes before a global 429.
        nonce_window_s: how long an enforced nonce returns its message.
        max_messages: messages kept (the oldest are dropped and counted beyond).
        max_log: requests kept in the request log.
        clock: epoch seconds, for rate-limit windows, snowflakes and nonces.
    """

    def __init__(
        self,
        *,
        bot_token: str | None = None,
        port: int = 0,
        bucket_limit: int = 5,
        bucket_window_s: float = 2.0,
        global_per_s: int = 50,
        nonce_window_s: float = 300.0,
        max_messages: int = 100_000,
        max_log: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bot_token = bot_token or secrets.token_urlsafe(24)
        self._port = port
        self._bucket_limit = bucket_limit
        self._bucket_window_s = bucket_window_s
        self._global_per_s = global_per_s
        self._nonce_window_s = nonce_window_s
        self._max_messages = max_messages
        self._max_log = max_log
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._faults = _Faults()
        self._webhooks: dict[str, _Webhook] = {}
        self._channel_access: dict[str, ChannelAccess] = {}
        self._messages: deque[dict[str, Any]] = deque(maxlen=max_messages)
        self._dropped = 0
        self._nonces: OrderedDict[tuple[str, str], tuple[dict[str, Any], float]] = OrderedDict()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._global_sent: deque[float] = deque(maxlen=global_per_s)
        self._log: deque[LoggedRequest] = deque(maxlen=max_log)
        self._requests = 0
        self._by_status: Counter[int] = Counter()
        self._last_snowflake = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a thread of its own; returns ``self``."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="discord-fake",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection, wake held answers, join threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            msg = "the Discord fake is not started"
            raise RuntimeError(msg)
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What ``[notify.discord] api_base`` should be, e.g. ``http://127.0.0.1:P/api/v10``."""
        return f"{self.root_url}/api/v10"

    @property
    def bot_token(self) -> str:
        return self._bot_token

    # -- webhooks ----------------------------------------------------------

    def add_webhook(
        self, channel_id: str, *, webhook_id: str | None = None, token: str | None = None
    ) -> str:
        """Create a webhook posting into ``channel_id``; returns its URL."""
        with self._lock:
            webhook_id = webhook_id or self._next_snowflake()
            token = token or secrets.token_urlsafe(48)
            self._webhooks[webhook_id] = _Webhook(channel_id, token)
        return f"{self.root_url}/api/webhooks/{webhook_id}/{token}"

    def delete_webhook(self, webhook_id: str | None = None) -> None:
        """Delete one webhook, or every webhook when ``webhook_id`` is None."""
        with self._lock:
            for key, webhook in self._webhooks.items():
                if webhook_id is None or key == webhook_id:
                    webhook.deleted = True

    def set_channel_access(self, channel_id: str, access: ChannelAccess) -> None:
        """What the bot may do in a channel: everything (``ok``, every channel's
        default), nothing (``forbidden``: 403 Missing Access), or the channel is
        gone (``missing``: 404 Unknown Channel)."""
        with self._lock:
            self._channel_access[channel_id] = access

    # -- faults ------------------------------------------------------------

    def storm_429(self, count: int, retry_after: float, global_: bool = False) -> None:
        """Answer the next ``count`` message posts with a 429 of ``retry_after`` seconds."""
        with self._lock:
            self._faults.storm = count
            self._faults.storm_retry_after = retry_after
            self._faults.storm_global = global_

    def fail_5xx(self, count: int, status: int = 502) -> None:
        """Answer the next ``count`` message posts with ``status`` and an HTML page."""
        with self._lock:
            self._faults.fail = count
            self._faults.fail_status = status

    def reset_connections(self, count: int, *, after_create: bool = False) -> None:
        """Close the connection of the next ``count`` message posts without answering.

        With ``after_create`` this applies to the next successful posts instead:
        the message exists (created, or found by its nonce) but its answer is
        lost, as when a connection breaks while the answer is on its way.
        """
        with self._lock:
            if after_create:
                self._faults.reset_after = count
            else:
                self._faults.reset_before = count

    def slow_after_create(self, count: int, delay_s: float) -> None:
        """Hold the answers of the next ``count`` successful posts ``delay_s`` (real time).

        The message exists before the answer leaves (created, or found by its
        nonce), as when Discord is slow to answer what it already did.
        """
        with self._lock:
            self._faults.slow = count
            self._faults.slow_delay_s = delay_s

    # -- inspection --------------------------------------------------------

    def messages(self, channel_or_webhook: str) -> list[dict[str, Any]]:
        """Messages created in a channel (all) or through a webhook (its own), oldest first."""
        with self._lock:
            return [
                copy.deepcopy(message)
                for message in self._messages
                if channel_or_webhook in (message["channel_id"], message.get("webhook_id"))
            ]

    def requests(self) -> list[LoggedRequest]:
        """The request log, oldest first (the last ``max_log``)."""
        with self._lock:
            return list(self._log)

    def statistics(self) -> DiscordFakeStatistics:
        with self._lock:
            return DiscordFakeStatistics(
                requests=self._requests,
                by_status=MappingProxyType(dict(self._by_status)),
                answered_429=self._by_status[429],
                messages=len(self._messages),
                max_messages=self._max_messages,
                messages_dropped=self._dropped,
                nonces=len(self._nonces),
                log_size=len(self._log),
                max_log=self._max_log,
            )

    # -- serving (handler threads) -----------------------------------------

    def _hold(self, delay_s: float) -> None:
        self._stopping.wait(delay_s)

    def _answer(
        self, method: str, raw_path: str, authorization: str | None, body: bytes
    ) -> _Answer:
        split = urlsplit(raw_path)
        wait = parse_qs(split.query).get("wait", ["false"])[-1].lower() == "true"
        payload = _decode(body)
        nonce = payload.get("nonce") if isinstance(payload, dict) else None
        with self._lock:
            now = self._clock()
            answer, fault, path = self._route(
                now, method, split.path, authorization=authorization, payload=payload, wait=wait
            )
            status = 0 if answer.close_without_answer else answer.status
            self._requests += 1
            self._by_status[status] += 1
            logged_nonce = None if nonce is None else str(nonce)
            self._log.append(LoggedRequest(now, method, path, status, logged_nonce, fault))
            return answer

    def _route(
        self,
        now: float,
        method: str,
        path: str,
        *,
        authorization: str | None,
        payload: Any,
        wait: bool,
    ) -> tuple[_Answer, str, str]:
        """The answer, the fault that shaped it, and the path as it may be logged."""
        channel = _CHANNEL_PATH.match(path)
        webhook = _WEBHOOK_PATH.match(path)
        info = _CHANNEL_INFO_PATH.match(path)
        if webhook is not None:
            path = path.replace(webhook.group(2), "***")
        if channel is None and webhook is None and info is None:
            return _json(404, {"message": "404: Not Found", "code": 0}), "", path
        if method == "GET" and info is not None:
            return self._get_channel(info.group(1), authorization), "", path
        if method == "GET" and webhook is not None:
            return self._get_webhook(webhook.group(1), webhook.group(2)), "", path
        if method != "POST" or info is not None:
            return _json(405, {"message": "405: Method Not Allowed", "code": 0}), "", path
        fault, answer = self._before_fault()
        if answer is None and channel is not None:
            answer, fault = self._post_channel(now, channel.group(1), authorization, payload)
        elif answer is None and webhook is not None:
            webhook_id, token = webhook.group(1), webhook.group(2)
            answer, fault = self._post_webhook(now, webhook_id, token, payload, wait=wait)
        return (
            answer or _json(500, {"message": "500: Internal Server Error", "code": 0}),
            fault,
            path,
        )

    def _before_fault(self) -> tuple[str, _Answer | None]:
        faults = self._faults
        if faults.reset_before > 0:
            faults.reset_before -= 1
            return "reset", _Answer(0, close_without_answer=True)
        if faults.fail > 0:
            faults.fail -= 1
            status = faults.fail_status
            page = f"<html><body><h1>{status} Bad Gateway</h1></body></html>".encode()
            return f"{status}", _Answer(status, page, content_type="text/html")
        return "", None

    def _post_channel(
        self,
        now: float,
        channel_id: str,
        authorization: str | None,
        payload: Any,
    ) -> tuple[_Answer, str]:
        refused_access = self._channel_refusal(channel_id, authorization)
        if refused_access is not None:
            return refused_access, ""
        refused, limited, storm = self._rate_limit(now, CHANNEL_ROUTE, channel_id)
        if refused is not None:
            return refused, storm
        invalid = _invalid(payload, limited)
        if invalid is not None:
            return invalid, ""
        self._prune_nonces(now)
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce") is True:
            seen = self._nonces.get((channel_id, str(nonce)))
            if seen is not None:
                answer, fault = self._after_create(_json(200, seen[0], limited))
                return answer, fault or "nonce_hit"
        message = self._create(now, channel_id, payload, webhook_id=None)
        if nonce is not None and payload.get("enforce_nonce") is True:
            self._nonces[(channel_id, str(nonce))] = (message, now)
            if len(self._nonces) > self._max_messages:
                self._nonces.popitem(last=False)
        return self._after_create(_json(200, message, limited))

    def _channel_refusal(self, channel_id: str, authorization: str | None) -> _Answer | None:
        """401 for a wrong bot token, 403 or 404 for a channel set so, else ``None``."""
        expected = f"Bot {self._bot_token}"
        if authorization is None or not secrets.compare_digest(authorization, expected):
            return _json(401, {"message": "401: Unauthorized", "code": 0})
        access = self._channel_access.get(channel_id, "ok")
        if access == "forbidden":
            return _json(403, _MISSING_ACCESS)
        if access == "missing":
            return _json(404, _UNKNOWN_CHANNEL)
        return None

    def _get_channel(self, channel_id: str, authorization: str | None) -> _Answer:
        refused = self._channel_refusal(channel_id, authorization)
        if refused is not None:
            return refused
        return _json(200, {"id": channel_id, "type": 0, "name": f"channel-{channel_id}"})

    def _get_webhook(self, webhook_id: str, token: str) -> _Answer:
        webhook = self._webhooks.get(webhook_id)
        if webhook is None or webhook.deleted:
            return _json(404, {"message": "Unknown Webhook", "code": 10015})
        if not secrets.compare_digest(webhook.token, token):
            return _json(401, {"message": "Invalid Webhook Token", "code": 50027})
        body = {"id": webhook_id, "type": 1, "channel_id": webhook.channel_id, "name": "wanderer"}
        return _json(200, body)

    def _post_webhook(
        self,
        now: float,
        webhook_id: str,
        token: str,
        payload: Any,
        *,
        wait: bool,
    ) -> tuple[_Answer, str]:
        webhook = self._webhooks.get(webhook_id)
        if webhook is None or webhook.deleted:
            return _json(404, {"message": "Unknown Webhook", "code": 10015}), ""
        if not secrets.compare_digest(webhook.token, token):
            return _json(401, {"message": "Invalid Webhook Token", "code": 50027}), ""
        refused, limited, storm = self._rate_limit(now, WEBHOOK_ROUTE, webhook_id)
        if refused is not None:
            return refused, storm
        invalid = _invalid(payload, limited)
        if invalid is not None:
            return invalid, ""
        message = self._create(now, webhook.channel_id, payload, webhook_id=webhook_id)
        answer = _json(200, message, limited) if wait else _Answer(204, headers=limited)
        return self._after_create(answer)

    def _after_create(self, answer: _Answer) -> tuple[_Answer, str]:
        faults = self._faults
        if faults.reset_after > 0:
            faults.reset_after -= 1
            return _Answer(0, close_without_answer=True), "reset_after_create"
        if faults.slow > 0:
            faults.slow -= 1
            held = _Answer(
                answer.status,
                answer.body,
                answer.headers,
                answer.content_type,
                delay_s=faults.slow_delay_s,
            )
            return held, "slow_after_create"
        return answer, ""

    def _rate_limit(
        self, now: float, route: str, major: str
    ) -> tuple[_Answer | None, tuple[tuple[str, str], ...], str]:
        """A 429 answer or None, the bucket headers of the slot taken, the fault applied."""
        while self._global_sent and self._global_sent[0] <= now - 1.0:
            self._global_sent.popleft()
        if len(self._global_sent) >= self._global_per_s:
            retry_after = self._global_sent[0] + 1.0 - now
            return _too_many(retry_after, is_global=True, scope="global", headers=()), (), ""
        self._global_sent.append(now)
        faults = self._faults
        if faults.storm > 0:
            faults.storm -= 1
            retry_after = faults.storm_retry_after
            if faults.storm_global:
                storm = _too_many(retry_after, is_global=True, scope="global", headers=())
                return storm, (), "storm"
            storm = _too_many(retry_after, is_global=False, scope="user", headers=())
            return storm, (), "storm"
        self._prune_windows(now)
        bucket_id = bucket_hash(route)
        window = self._windows.get((bucket_id, major))
        if window is None or now >= window.reset_at:
            window = _Window(now + self._bucket_window_s, 0)
            self._windows[(bucket_id, major)] = window
        if window.used >= self._bucket_limit:
            headers = self._bucket_headers(bucket_id, 0, window.reset_at, now)
            retry_after = window.reset_at - now
            return _too_many(retry_after, is_global=False, scope="user", headers=headers), (), ""
        window.used += 1
        remaining = self._bucket_limit - window.used
        return None, self._bucket_headers(bucket_id, remaining, window.reset_at, now), ""

    def _bucket_headers(
        self, bucket_id: str, remaining: int, reset_at: float, now: float
    ) -> tuple[tuple[str, str], ...]:
        return (
            ("X-RateLimit-Limit", str(self._bucket_limit)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", f"{reset_at:.3f}"),
            ("X-RateLimit-Reset-After", f"{max(0.0, reset_at - now):.3f}"),
            ("X-RateLimit-Bucket", bucket_id),
        )

    def _prune_windows(self, now: float) -> None:
        # Windows end by themselves; forgetting ended ones bounds the table by
        # the routes used within one window.
        if len(self._windows) > 1024:
            ended = [key for key, window in self._windows.items() if window.reset_at <= now]
            for key in ended:
                del self._windows[key]

    def _prune_nonces(self, now: float) -> None:
        while self._nonces:
            _, (_, created_at) = next(iter(self._nonces.items()))
            if created_at > now - self._nonce_window_s:
                return
            self._nonces.popitem(last=False)

    def _create(
        self, now: float, channel_id: str, payload: Mapping[str, Any], webhook_id: str | None
    ) -> dict[str, Any]:
        message_id = self._next_snowflake()
        author = (
            {"id": webhook_id, "username": "Wanderer", "bot": True}
            if webhook_id is not None
            else {"id": "1", "username": "wanderer-notifier", "bot": True}
        )
        message: dict[str, Any] = {
            "id": message_id,
            "type": 0,
            "channel_id": channel_id,
            "content": payload.get("content", ""),
            "embeds": copy.deepcopy(payload.get("embeds", [])),
            "timestamp": datetime.fromtimestamp(now, UTC).isoformat(),
            "author": author,
            **pings(payload),
        }
        if payload.get("nonce") is not None:
            message["nonce"] = payload["nonce"]
        if webhook_id is not None:
            message["webhook_id"] = webhook_id
        if len(self._messages) == self._max_messages:
            self._dropped += 1
        self._messages.append(message)
        return message

    def _next_snowflake(self) -> str:
        millis = max(0, int(self._clock() * 1000) - DISCORD_EPOCH_MS)
        candidate = (millis << 22) | (1 << 17)
        self._last_snowflake = max(candidate, self._last_snowflake + 1)
        return str(self._last_snowflake)


_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def pings(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Who a message pings, as Discord decides it: ``mention_everyone`` and ``mention_roles``.

    Only the content pings (never embeds). Without ``allowed_mentions`` every
    mention in the content pings; with it, ``@everyone``/``@here`` ping only if
    its ``parse`` has ``everyone``, and a role only if ``parse`` has ``roles``
    or its ``roles`` list names it.
    """
    content = payload.get("content")
    text = content if isinstance(content, str) else ""
    allowed = payload.get("allowed_mentions")
    parse = allowed.get("parse", []) if isinstance(allowed, Mapping) else None
    listed = allowed.get("roles", []) if isinstance(allowed, Mapping) else []
    everyone = "@everyone" in text or "@here" in text
    roles = [
        role
        for role in dict.fromkeys(_ROLE_MENTION.findall(text))
        if parse is None or "roles" in parse or role in listed
    ]
    return {
        "mention_everyone": everyone and (parse is None or "everyone" in parse),
        "mention_roles": roles,
    }


def _decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _invalid(payload: Any, headers: tuple[tuple[str, str], ...]) -> _Answer | None:
    if not isinstance(payload, dict):
        return _json(
            400, {"message": "The request body contains invalid JSON.", "code": 50109}, headers
        )
    errors = form_errors(payload)
    if errors:
        body = {"code": 50035, "message": "Invalid Form Body", "errors": errors}
        return _json(400, body, headers)
    if not payload.get("content") and not payload.get("embeds"):
        return _json(400, {"message": "Cannot send an empty message", "code": 50006}, headers)
    return None


def _json(
    status: int, body: Mapping[str, Any], headers: tuple[tuple[str, str], ...] = ()
) -> _Answer:
    return _Answer(status, orjson.dumps(body), headers)


def _too_many(
    retry_after: float, *, is_global: bool, scope: str, headers: tuple[tuple[str, str], ...]
) -> _Answer:
    retry_after = max(0.0, round(retry_after, 3))
    extra = [("Retry-After", str(math.ceil(retry_after))), ("X-RateLimit-Scope", scope)]
    if is_global:
        extra.append(("X-RateLimit-Global", "true"))
    body = {
        "message": "You are being rate limited.",
        "retry_after": retry_after,
        "global": is_global,
    }
    return _json(429, body, (*headers, *extra))


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], fake: DiscordFake) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self._open_lock:
            self._open.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler blocked reading a kept-alive connection."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the
    # second waits for the client's delayed ACK (about 40 ms per answer).
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the fake keeps its own request log."""

    def _serve(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.send_error(400, "bad Content-Length")
            return
        body = self.rfile.read(length) if length else b""
        fake = self.server.fake
        answer = fake._answer(method, self.path, self.headers.get("Authorization"), body)
        if answer.delay_s > 0:
            fake._hold(answer.delay_s)
        if answer.close_without_answer:
            # SO_LINGER 0: closing sends a reset, as a dying proxy would.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            if answer.status != 204:
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.status != 204:
                self.wfile.write(answer.body)
        except OSError:
            # The client gave up (its timeout passed while the answer was held).
            self.close_connection = True
