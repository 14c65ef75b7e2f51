"""What the Discord fake holds and how it answers a request.

:class:`DiscordApi` keeps the webhooks, channel access, created messages,
enforced nonces, armed faults, the request log and the counters, and turns
each request into an :class:`~simulator.discord_fake.wire.Answer`. The
control API (:class:`~simulator.discord_fake.DiscordFake`) changes it under
:attr:`DiscordApi.lock`; the HTTP handler threads call :meth:`DiscordApi.answer`.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from simulator.discord_fake.ratelimits import RateLimits
from simulator.discord_fake.wire import Answer, decode, invalid, json_answer, pings, too_many

DISCORD_EPOCH_MS = 1_420_070_400_000
CHANNEL_ROUTE = "POST /channels/{channel_id}/messages"
WEBHOOK_ROUTE = "POST /webhooks/{webhook_id}/{webhook_token}"

_CHANNEL_PATH = re.compile(r"^/api/v10/channels/(\d+)/messages$")
_CHANNEL_INFO_PATH = re.compile(r"^/api/v10/channels/(\d+)$")
_WEBHOOK_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d+)/([^/]+)$")
_MISSING_ACCESS = {"message": "Missing Access", "code": 50001}
_UNKNOWN_CHANNEL = {"message": "Unknown Channel", "code": 10003}
_UNKNOWN_WEBHOOK = {"message": "Unknown Webhook", "code": 10015}
_INVALID_WEBHOOK_TOKEN = {"message": "Invalid Webhook Token", "code": 50027}

ChannelAccess = Literal["ok", "forbidden", "missing"]


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


@dataclass(slots=True)
class Webhook:
    channel_id: str
    token: str
    deleted: bool = False


@dataclass(slots=True)
class Faults:
    """The faults armed for the next message posts (counts of posts left)."""

    storm: int = 0
    storm_retry_after: float = 1.0
    storm_global: bool = False
    fail: int = 0
    fail_status: int = 502
    reset_before: int = 0
    reset_after: int = 0
    slow: int = 0
    slow_delay_s: float = 0.0


class DiscordApi:
    """The fake's state and answers (see the module docstring); guarded by :attr:`lock`.

    Args:
        bot_token: the token ``Authorization: Bot ...`` must carry.
        rate_limits: the buckets and the global bound.
        nonce_window_s: how long an enforced nonce returns its message.
        max_messages: messages kept (the oldest are dropped and counted beyond).
        max_log: requests kept in the request log.
        clock: epoch seconds, for rate-limit windows, snowflakes and nonces.
    """

    def __init__(
        self,
        *,
        bot_token: str,
        rate_limits: RateLimits,
        nonce_window_s: float,
        max_messages: int,
        max_log: int,
        clock: Callable[[], float],
    ) -> None:
        self.lock = threading.Lock()
        self.bot_token = bot_token
        self.max_messages = max_messages
        self.clock = clock
        self._rate_limits = rate_limits
        self._nonce_window_s = nonce_window_s
        self.faults = Faults()
        self.webhooks: dict[str, Webhook] = {}
        self.channel_access: dict[str, ChannelAccess] = {}
        self.messages: deque[dict[str, Any]] = deque(maxlen=max_messages)
        self.dropped = 0
        self.nonces: OrderedDict[tuple[str, str], tuple[dict[str, Any], float]] = OrderedDict()
        self.log: deque[LoggedRequest] = deque(maxlen=max_log)
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self._last_snowflake = 0

    def answer(self, method: str, raw_path: str, authorization: str | None, body: bytes) -> Answer:
        """Answer one request, log it and count it (takes :attr:`lock`)."""
        split = urlsplit(raw_path)
        wait = parse_qs(split.query).get("wait", ["false"])[-1].lower() == "true"
        payload = decode(body)
        nonce = payload.get("nonce") if isinstance(payload, dict) else None
        with self.lock:
            now = self.clock()
            answer, fault, path = self._route(
                now, method, split.path, authorization=authorization, payload=payload, wait=wait
            )
            status = 0 if answer.close_without_answer else answer.status
            self.requests += 1
            self.by_status[status] += 1
            logged_nonce = None if nonce is None else str(nonce)
            self.log.append(LoggedRequest(now, method, path, status, logged_nonce, fault))
            return answer

    def next_snowflake(self) -> str:
        """A new id, increasing, shaped like Discord's (caller holds :attr:`lock`)."""
        millis = max(0, int(self.clock() * 1000) - DISCORD_EPOCH_MS)
        candidate = (millis << 22) | (1 << 17)
        self._last_snowflake = max(candidate, self._last_snowflake + 1)
        return str(self._last_snowflake)

    def _route(
        self,
        now: float,
        method: str,
        path: str,
        *,
        authorization: str | None,
        payload: Any,
        wait: bool,
    ) -> tuple[Answer, str, str]:
        """The answer, the fault that shaped it, and the path as it may be logged."""
        channel = _CHANNEL_PATH.match(path)
        webhook = _WEBHOOK_PATH.match(path)
        info = _CHANNEL_INFO_PATH.match(path)
        if webhook is not None:
            path = path.replace(webhook.group(2), "***")
        if channel is None and webhook is None and info is None:
            return json_answer(404, {"message": "404: Not Found", "code": 0}), "", path
        if method == "GET" and info is not None:
            return self._get_channel(info.group(1), authorization), "", path
        if method == "GET" and webhook is not None:
            return self._get_webhook(webhook.group(1), webhook.group(2)), "", path
        if method != "POST" or info is not None:
            return json_answer(405, {"message": "405: Method Not Allowed", "code": 0}), "", path
        fault, answer = self._before_fault()
        if answer is None and channel is not None:
            answer, fault = self._post_channel(now, channel.group(1), authorization, payload)
        elif answer is None and webhook is not None:
            webhook_id, token = webhook.group(1), webhook.group(2)
            answer, fault = self._post_webhook(now, webhook_id, token, payload, wait=wait)
        return (
            answer or json_answer(500, {"message": "500: Internal Server Error", "code": 0}),
            fault,
            path,
        )

    def _before_fault(self) -> tuple[str, Answer | None]:
        faults = self.faults
        if faults.reset_before > 0:
            faults.reset_before -= 1
            return "reset", Answer(0, close_without_answer=True)
        if faults.fail > 0:
            faults.fail -= 1
            status = faults.fail_status
            page = f"<html><body><h1>{status} Bad Gateway</h1></body></html>".encode()
            return f"{status}", Answer(status, page, content_type="text/html")
        return "", None

    def _post_channel(
        self,
        now: float,
        channel_id: str,
        authorization: str | None,
        payload: Any,
    ) -> tuple[Answer, str]:
        refusal = self._channel_refusal(channel_id, authorization)
        refused, limited, fault = self._admit(now, refusal, CHANNEL_ROUTE, channel_id, payload)
        if refused is not None:
            return refused, fault
        self._prune_nonces(now)
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce") is True:
            seen = self.nonces.get((channel_id, str(nonce)))
            if seen is not None:
                answer, fault = self._after_create(json_answer(200, seen[0], limited))
                return answer, fault or "nonce_hit"
        message = self._create(now, channel_id, payload, webhook_id=None)
        if nonce is not None and payload.get("enforce_nonce") is True:
            self.nonces[(channel_id, str(nonce))] = (message, now)
            if len(self.nonces) > self.max_messages:
                self.nonces.popitem(last=False)
        return self._after_create(json_answer(200, message, limited))

    def _admit(
        self, now: float, refusal: Answer | None, route: str, major: str, payload: Any
    ) -> tuple[Answer | None, tuple[tuple[str, str], ...], str]:
        """A post's refusal in the order Discord checks: no access (``refusal``),
        rate limited, an invalid body; else ``None``. With it, the bucket headers
        of the slot taken and the fault applied (as :meth:`_rate_limit`).
        """
        if refusal is not None:
            return refusal, (), ""
        refused, limited, fault = self._rate_limit(now, route, major)
        if refused is not None:
            return refused, limited, fault
        return invalid(payload, limited), limited, ""

    def _channel_refusal(self, channel_id: str, authorization: str | None) -> Answer | None:
        """401 for a wrong bot token, 403 or 404 for a channel set so, else ``None``."""
        expected = f"Bot {self.bot_token}"
        if authorization is None or not secrets.compare_digest(authorization, expected):
            return json_answer(401, {"message": "401: Unauthorized", "code": 0})
        access = self.channel_access.get(channel_id, "ok")
        if access == "forbidden":
            return json_answer(403, _MISSING_ACCESS)
        if access == "missing":
            return json_answer(404, _UNKNOWN_CHANNEL)
        return None

    def _get_channel(self, channel_id: str, authorization: str | None) -> Answer:
        refused = self._channel_refusal(channel_id, authorization)
        if refused is not None:
            return refused
        return json_answer(200, {"id": channel_id, "type": 0, "name": f"channel-{channel_id}"})

    def _webhook_refusal(self, webhook_id: str, token: str) -> Answer | None:
        """404 for an unknown or deleted webhook, 401 for a wrong token, else ``None``."""
        webhook = self.webhooks.get(webhook_id)
        if webhook is None or webhook.deleted:
            return json_answer(404, _UNKNOWN_WEBHOOK)
        if not secrets.compare_digest(webhook.token, token):
            return json_answer(401, _INVALID_WEBHOOK_TOKEN)
        return None

    def _get_webhook(self, webhook_id: str, token: str) -> Answer:
        refused = self._webhook_refusal(webhook_id, token)
        if refused is not None:
            return refused
        channel_id = self.webhooks[webhook_id].channel_id
        body = {"id": webhook_id, "type": 1, "channel_id": channel_id, "name": "wanderer"}
        return json_answer(200, body)

    def _post_webhook(
        self,
        now: float,
        webhook_id: str,
        token: str,
        payload: Any,
        *,
        wait: bool,
    ) -> tuple[Answer, str]:
        refusal = self._webhook_refusal(webhook_id, token)
        refused, limited, fault = self._admit(now, refusal, WEBHOOK_ROUTE, webhook_id, payload)
        if refused is not None:
            return refused, fault
        channel_id = self.webhooks[webhook_id].channel_id
        message = self._create(now, channel_id, payload, webhook_id=webhook_id)
        answer = json_answer(200, message, limited) if wait else Answer(204, headers=limited)
        return self._after_create(answer)

    def _after_create(self, answer: Answer) -> tuple[Answer, str]:
        faults = self.faults
        if faults.reset_after > 0:
            faults.reset_after -= 1
            return Answer(0, close_without_answer=True), "reset_after_create"
        if faults.slow > 0:
            faults.slow -= 1
            held = Answer(
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
    ) -> tuple[Answer | None, tuple[tuple[str, str], ...], str]:
        """A 429 answer or None, the bucket headers of the slot taken, the fault applied.

        The global bound first, then an armed 429 storm, then the route's bucket.
        """
        refused = self._rate_limits.take_global(now)
        if refused is not None:
            return refused, (), ""
        faults = self.faults
        if faults.storm > 0:
            faults.storm -= 1
            scope = "global" if faults.storm_global else "user"
            storm = too_many(
                faults.storm_retry_after, is_global=faults.storm_global, scope=scope, headers=()
            )
            return storm, (), "storm"
        refused, headers = self._rate_limits.take_bucket(now, route, major)
        return refused, headers, ""

    def _prune_nonces(self, now: float) -> None:
        while self.nonces:
            _, (_, created_at) = next(iter(self.nonces.items()))
            if created_at > now - self._nonce_window_s:
                return
            self.nonces.popitem(last=False)

    def _create(
        self, now: float, channel_id: str, payload: Mapping[str, Any], webhook_id: str | None
    ) -> dict[str, Any]:
        message_id = self.next_snowflake()
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
        if len(self.messages) == self.max_messages:
            self.dropped += 1
        self.messages.append(message)
        return message
