"""Post one Discord message in one HTTP attempt, and decide what to do next.

:class:`DiscordSender` makes exactly one request per :meth:`DiscordSender.send`
and classifies the outcome as a frozen :data:`SendResult`; the caller (the
notifier, from its worker threads) owns retries and the ledger, guided by the
pure :class:`RetryPlan`.

One sender serves every route of ``[[routes]]`` (:class:`Destination`, one per
route; the implicit route ``discord`` without any): they share the bot token,
the connection pool and the rate limits (the global limit is the bot's, each
channel or webhook has its own bucket). Bot mode posts to
``{api_base}/channels/{channel_id}/messages`` (the route's channel, else
``[notify.discord] channel_id``) with the caller's ``nonce`` and
``"enforce_nonce": true``: Discord answers a repeat of
the nonce with the message it already created, so retrying a timeout or a
reset with the same nonce cannot post twice. Webhook mode posts to
``{webhook_url}?wait=true`` (the route's webhook, else ``[notify.discord]
webhook_url``; so success is known) and has no such guarantee: a
retry after a request that created the message but lost its answer posts it
again.

Rate limits are respected before sending (a send that would exceed them is not
made and returns :class:`Deferred`) and learned from every answer.

Secrets (the bot token, the webhook URL, its id and token) never appear in a
result, an exception message or a log line: they are masked as ``***``,
including in the lines urllib3 logs at DEBUG while a sender is open.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import orjson
import requests

from realtime.config import DEFAULT_ROUTE, MASK, DiscordConfig, RouteConfig, default_route
from realtime.ratelimit import (
    RateLimits,
    RateLimitStatistics,
    Route,
    WaitCause,
    is_global_429,
    retry_after_s,
)
from supervision import Backoff

logger = logging.getLogger(__name__)

USER_AGENT = "DiscordBot (https://github.com/wanderer-industries/wanderer-realtime, 0.1.0)"
MAX_NONCE = 25
MAX_ANSWER_BYTES = 1 << 20
MAX_REASON = 400
MAX_ERROR_DEPTH = 32
"""Levels of an answer's ``errors`` object read for the reason (Discord's are a few deep)."""
MAX_ERROR_NODES = 1000
"""Nodes of an answer's ``errors`` object read for the reason."""
_MAX_PROBLEMS = 5
# urllib3 logs request lines (with the URL path) and URLs in retries and warnings.
HTTP_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.response",
    "urllib3.poolmanager",
)

_WEBHOOK_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d+)/([^/]+)/?$")


# -- what one attempt gave ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """Discord created the message (``message_id`` is "" if the answer had none)."""

    message_id: str


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """Discord answered 429: nothing was posted; wait ``seconds`` (all routes if ``global_``)."""

    seconds: float
    global_: bool


@dataclass(frozen=True, slots=True)
class Retryable:
    """A timeout, a broken connection or a 5xx: the message may or may not exist."""

    reason: str


@dataclass(frozen=True, slots=True)
class Fatal:
    """The destination is unusable (401, 403, 404 such as a deleted webhook): stop and alert.

    ``status`` is 0 when no answer came (e.g. a malformed URL).
    """

    reason: str
    status: int


@dataclass(frozen=True, slots=True)
class Invalid:
    """Discord refused this message itself (400): sending it again cannot help."""

    reason: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not sent at all: the rate limits (or the invalid request guard) say wait."""

    seconds: float
    cause: WaitCause


SendResult = Sent | RetryAfter | Retryable | Fatal | Invalid | Deferred


# -- what to do next ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    """The notification is posted."""

    message_id: str


@dataclass(frozen=True, slots=True)
class SendAgain:
    """Send the same message (same nonce) again after ``after_s`` seconds (0: now)."""

    after_s: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Mark the notification failed: it is not known to be posted."""

    reason: str


@dataclass(frozen=True, slots=True)
class StopSink:
    """Stop using the sink and alert; the notification stays pending."""

    reason: str
    status: int


Decision = Done | SendAgain | GiveUp | StopSink


@dataclass(frozen=True, slots=True)
class RetryState:
    """Progress of one notification: HTTP attempts made, failures backed off."""

    attempts: int = 0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """What to do after each :data:`SendResult` of one notification.

    - :class:`Sent`: done. :class:`Invalid`: give up at once.
      :class:`Fatal`: stop the sink.
    - :class:`Deferred`: send again when the limits allow; no attempt was made,
      so none is counted.
    - :class:`RetryAfter`: send again after Discord's ``retry_after``.
    - :class:`Retryable`: send again after the backoff's delay for this failure.

    Every HTTP attempt counts; after ``max_attempts`` of them without success,
    give up.
    """

    backoff: Backoff
    max_attempts: int

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = f"max_attempts must be at least 1, got {self.max_attempts}"
            raise ValueError(msg)

    @classmethod
    def from_config(cls, config: DiscordConfig) -> RetryPlan:
        return cls(Backoff(config.retry_min_s, config.retry_max_s), config.max_attempts)

    def decide(
        self,
        state: RetryState,
        result: SendResult,
        rand: Callable[[], float] = random.random,
    ) -> tuple[Decision, RetryState]:
        """The next action and the notification's new state; ``rand`` feeds the jitter."""
        match result:
            case Sent(message_id):
                return Done(message_id), RetryState(state.attempts + 1, state.failures)
            case Deferred(seconds, _):
                return SendAgain(seconds), state
            case Invalid(reason):
                return GiveUp(f"refused by Discord: {reason}"), RetryState(
                    state.attempts + 1, state.failures
                )
            case Fatal(reason, status):
                return StopSink(reason, status), RetryState(state.attempts + 1, state.failures)
            case RetryAfter(seconds, global_):
                after = RetryState(state.attempts + 1, state.failures)
                scope = "globally " if global_ else ""
                return self._again(after, seconds, f"rate limited {scope}by Discord")
            case Retryable(reason):
                after = RetryState(state.attempts + 1, state.failures + 1)
                return self._again(after, self.backoff.delay(state.failures, rand), reason)

    def _again(self, state: RetryState, delay_s: float, reason: str) -> tuple[Decision, RetryState]:
        if state.attempts >= self.max_attempts:
            return GiveUp(f"{state.attempts} attempts, the last: {reason}"), state
        return SendAgain(delay_s), state


# -- the sender -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one route posts: its URL and its rate-limit route (secrets inside: never print)."""

    url: str
    route: Route


@dataclass(frozen=True, slots=True)
class SenderStatistics:
    """Counters of a :class:`DiscordSender` (outcome counts by result type name).

    ``destinations``: route name -> its rate-limit route, safe to print.
    """

    mode: str
    destinations: Mapping[str, str]
    requests: int
    outcomes: Mapping[str, int]
    idle_sessions: int
    max_idle_sessions: int
    limits: RateLimitStatistics
    answers_bounded: int


class SecretMask(logging.Filter):
    """Replaces secrets by ``***`` in text and in the log records it filters."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        variants = {form for secret in secrets if secret for form in (secret, quote(secret))}
        # Longest first, so that a secret containing another is masked whole.
        self._secrets = tuple(sorted(variants, key=len, reverse=True))

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


class DiscordSender:
    """Posts messages to Discord, one HTTP attempt per :meth:`send`. Thread-safe.

    Args:
        config: mode, endpoint, secrets and ``request_timeout_s``.
        routes: the routes to post to (none: the implicit route ``discord``
            to ``config``'s channel or webhook).
        session_factory: makes a ``requests.Session``; sessions are pooled, at
            most ``config.concurrency`` idle.
        clock: monotonic seconds, for the rate limits.
        wall_clock: epoch seconds, to read ``X-RateLimit-Reset`` when
            ``Reset-After`` is missing.
        limits: the rate-limit state, a new one by default; the sender guards
            it with its own lock, so it must not be shared with another sender.

    Raises:
        ValueError: the config lacks what its mode needs for a route, or a
            webhook URL is not a Discord webhook URL (the message names the
            route and never shows a secret).
    """

    def __init__(
        self,
        config: DiscordConfig,
        *,
        routes: Sequence[RouteConfig] = (),
        session_factory: Callable[[], requests.Session] = requests.Session,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        limits: RateLimits | None = None,
    ) -> None:
        self._mode = config.mode
        self._timeout_s = config.request_timeout_s
        self._session_factory = session_factory
        self._clock = clock
        self._wall_clock = wall_clock
        self._limits = RateLimits() if limits is None else limits
        self._lock = threading.Lock()
        self._idle: list[requests.Session] = []
        self._max_idle = max(1, config.concurrency)
        self._closed = False
        self._requests = 0
        self._answers_bounded = 0
        self._outcomes: Counter[str] = Counter()
        routes = tuple(routes) or (default_route(),)
        if config.mode == "bot":
            self._mask = SecretMask((config.bot_token.value,))
            self._headers = {"Authorization": f"Bot {config.bot_token.value}"}
            self._params: dict[str, str] = {}
            self._destinations = {route.name: _bot_destination(config, route) for route in routes}
        else:
            secrets: list[str] = []
            self._destinations = {
                route.name: _webhook_destination(config, route, secrets) for route in routes
            }
            self._mask = SecretMask(tuple(secrets))
            self._headers = {}
            self._params = {"wait": "true"}
        self._headers |= {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
        for name in HTTP_LOGGERS:
            logging.getLogger(name).addFilter(self._mask)

    @property
    def mode(self) -> str:
        return self._mode

    def routes(self) -> tuple[str, ...]:
        """The names of the routes this sender posts to."""
        return tuple(self._destinations)

    def rate_route(self, route: str = DEFAULT_ROUTE) -> Route:
        """The rate-limit route (bucket key) of ``route``'s destination."""
        return self._destination(route).route

    def _destination(self, route: str) -> Destination:
        destination = self._destinations.get(route)
        if destination is None:
            msg = f"no Discord route named {route!r}"
            raise KeyError(msg)
        return destination

    def send(
        self, payload: Mapping[str, Any], nonce: str, route: str = DEFAULT_ROUTE
    ) -> SendResult:
        """Post ``payload`` (a message body) once to ``route``, unless the rate limits say wait.

        ``nonce`` identifies the notification: the same one for every retry of
        it. Webhook mode cannot use it.

        Raises:
            ValueError: bot mode and ``nonce`` is empty or longer than 25 characters.
            KeyError: this sender has no such route.
            RuntimeError: the sender is closed.
        """
        destination = self._destination(route)
        body = self._encode(payload, nonce)
        with self._lock:
            if self._closed:
                msg = "the Discord sender is closed"
                raise RuntimeError(msg)
            wait = self._limits.acquire(destination.route, self._clock())
            if wait is None:
                self._requests += 1
        if wait is not None:
            result: SendResult = Deferred(wait.seconds, wait.cause)
        else:
            session = self._take_session()
            try:
                result = self._attempt(session, body, destination)
            finally:
                self._release(session)
        with self._lock:
            self._outcomes[type(result).__name__] += 1
        level = logging.WARNING if isinstance(result, Fatal) else logging.DEBUG
        logger.log(level, "discord %s (route %s): %s", destination.route, route, result)
        return result

    def wait_s(self, route: str = DEFAULT_ROUTE) -> float:
        """Seconds until a :meth:`send` to ``route`` would be made (0.0: now)."""
        destination = self._destination(route)
        with self._lock:
            return self._limits.wait_s(destination.route, self._clock())

    def statistics(self) -> SenderStatistics:
        with self._lock:
            return SenderStatistics(
                mode=self._mode,
                destinations=MappingProxyType(
                    {name: str(d.route) for name, d in self._destinations.items()}
                ),
                requests=self._requests,
                outcomes=MappingProxyType(dict(self._outcomes)),
                idle_sessions=len(self._idle),
                max_idle_sessions=self._max_idle,
                limits=self._limits.statistics(self._clock()),
                answers_bounded=self._answers_bounded,
            )

    def close(self) -> None:
        """Close the pooled sessions and stop masking urllib3's log lines."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()
        for name in HTTP_LOGGERS:
            logging.getLogger(name).removeFilter(self._mask)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _encode(self, payload: Mapping[str, Any], nonce: str) -> bytes:
        if self._mode == "webhook":
            return orjson.dumps(dict(payload))
        if not 0 < len(nonce) <= MAX_NONCE:
            msg = f"a Discord nonce has 1 to {MAX_NONCE} characters, got {len(nonce)}"
            raise ValueError(msg)
        return orjson.dumps({**payload, "nonce": nonce, "enforce_nonce": True})

    def _take_session(self) -> requests.Session:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._session_factory()

    def _release(self, session: requests.Session) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(session)
                return
        session.close()

    def _attempt(
        self, session: requests.Session, body: bytes, destination: Destination
    ) -> SendResult:
        exchange = self._exchange(session, body, destination.url)
        with self._lock:
            if not isinstance(exchange, tuple):
                self._limits.on_no_answer(destination.route)
                return exchange
            status, headers, answer = exchange
            self._limits.on_response(
                destination.route,
                self._clock(),
                status,
                headers,
                body=answer,
                wall=self._wall_clock(),
            )
        return self._classify(status, headers, answer)

    def _exchange(
        self, session: requests.Session, body: bytes, url: str
    ) -> tuple[int, Mapping[str, str], Mapping[str, Any] | None] | SendResult:
        """The answer's status, headers and JSON object, or what went wrong."""
        try:
            with session.post(
                url,
                data=body,
                headers=self._headers,
                params=self._params,
                timeout=self._timeout_s,
                allow_redirects=False,
                stream=True,
            ) as response:
                return response.status_code, response.headers, _json_object(_read_bounded(response))
        except requests.Timeout as exc:
            return Retryable(f"no answer within {self._timeout_s} s ({type(exc).__name__})")
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
        ) as exc:
            return Fatal(self._reason(exc), 0)
        except requests.RequestException as exc:
            return Retryable(self._reason(exc))

    def _classify(
        self, status: int, headers: Mapping[str, str], answer: Mapping[str, Any] | None
    ) -> SendResult:
        if 200 <= status < 300:
            message_id = (answer or {}).get("id")
            return Sent(message_id if isinstance(message_id, str) else "")
        if status == 429:
            return RetryAfter(retry_after_s(headers, answer), is_global_429(headers, answer))
        described, bounded = _describe(status, answer)
        if bounded:
            with self._lock:
                self._answers_bounded += 1
        reason = self._mask.mask(described)
        if status in {400, 413, 422}:
            return Invalid(reason)
        if status == 408 or status >= 500:
            return Retryable(reason)
        return Fatal(reason, status)

    def _reason(self, exc: BaseException) -> str:
        text = self._mask.mask(f"{type(exc).__name__}: {exc}")
        return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _bot_destination(config: DiscordConfig, route: RouteConfig) -> Destination:
    channel_id = route.channel_id or config.channel_id
    where = (
        "notify.discord"
        if route.name == DEFAULT_ROUTE and not route.channel_id
        else (f"route {route.name}")
    )
    if not config.bot_token or not channel_id.isdigit():
        msg = (
            f"{where}: bot mode needs bot_token and a numeric channel_id "
            f"(bot_token from {config.bot_token.origin})"
        )
        raise ValueError(msg)
    if not config.api_base.startswith(("http://", "https://")):
        msg = f"notify.discord.api_base: {config.api_base!r} is not an http(s) URL"
        raise ValueError(msg)
    url = f"{config.api_base.rstrip('/')}/channels/{channel_id}/messages"
    return Destination(url, Route("POST", "/channels/{channel_id}/messages", channel_id))


def _webhook_destination(
    config: DiscordConfig, route: RouteConfig, secrets: list[str]
) -> Destination:
    """``route``'s webhook; its URL, id and token are added to ``secrets`` (to mask)."""
    webhook = route.webhook_url or config.webhook_url
    split = urlsplit(webhook.value)
    match = _WEBHOOK_PATH.match(split.path)
    if split.scheme not in {"http", "https"} or match is None:
        where = "notify.discord" if webhook is config.webhook_url else f"route {route.name}"
        msg = (
            f"{where}: webhook_url is not a Discord webhook URL "
            f"(https://.../api/webhooks/ID/TOKEN; from {webhook.origin})"
        )
        raise ValueError(msg)
    webhook_id, token = match.group(1), match.group(2)
    secrets += (webhook.value, webhook_id, token)
    digest = hashlib.blake2b(webhook_id.encode(), digest_size=4).hexdigest()
    return Destination(
        webhook.value, Route("POST", "/webhooks/{webhook_id}/{webhook_token}", f"webhook-{digest}")
    )


def _read_bounded(response: requests.Response) -> bytes:
    """The answer's body, or its first ``MAX_ANSWER_BYTES + 1`` bytes when longer."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)


def _json_object(content: bytes) -> Mapping[str, Any] | None:
    if not content or len(content) > MAX_ANSWER_BYTES:
        return None
    try:
        decoded = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _describe(status: int, answer: Mapping[str, Any] | None) -> tuple[str, bool]:
    """``HTTP 400: Invalid Form Body (code 50035); embeds.0.title: Must be ...``.

    Returns the text and whether the ``errors`` tree was cut short (deeper
    than :data:`MAX_ERROR_DEPTH` or wider than :data:`MAX_ERROR_NODES`).
    """
    if answer is None:
        return f"HTTP {status}", False
    text = f"HTTP {status}: {answer.get('message', '')} (code {answer.get('code', '?')})"
    problems, bounded = _problems(answer.get("errors"))
    if problems:
        text += "; " + "; ".join(problems)
    return (text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."), bounded


def _problems(errors: Any) -> tuple[list[str], bool]:
    """Up to five ``path: message`` of Discord's nested ``errors`` object, depth first.

    Walked with an explicit stack (a hostile answer nested thousands deep
    cannot exhaust Python's) and within :data:`MAX_ERROR_DEPTH` levels and
    :data:`MAX_ERROR_NODES` nodes; also returns whether a bound cut it short.
    """
    found: list[str] = []
    bounded = False
    stack: list[tuple[Any, tuple[str, ...]]] = [(errors, ())]
    visited = 0
    while stack and len(found) < _MAX_PROBLEMS:
        node, path = stack.pop()
        visited += 1
        if visited > MAX_ERROR_NODES:
            return found, True
        if not isinstance(node, Mapping):
            continue
        if len(path) >= MAX_ERROR_DEPTH:
            bounded = True
            continue
        children = []
        for key, value in node.items():
            if key == "_errors" and isinstance(value, list):
                where = ".".join(path) or "body"
                found += [
                    f"{where}: {e.get('message', '')}" for e in value if isinstance(e, Mapping)
                ]
            else:
                children.append((value, (*path, str(key))))
        stack.extend(reversed(children))
    return found[:_MAX_PROBLEMS], bounded
