""":class:`DiscordSender`: one HTTP attempt per :meth:`~DiscordSender.send`,
within the rate limits, its outcome classified as a :data:`SendResult`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Self

import orjson
import requests

from actors.discord_http.answers import clip, describe, json_object, read_bounded
from actors.discord_http.destinations import (
    Destination,
    SecretMask,
    bot_destination,
    webhook_destination,
)
from actors.discord_http.retry import (
    Deferred,
    Fatal,
    Invalid,
    Retryable,
    RetryAfter,
    SendResult,
    Sent,
)
from realtime.config import DEFAULT_ROUTE, DiscordConfig, RouteConfig, default_route
from realtime.ratelimit import RateLimits, RateLimitStatistics, Route, is_global_429, retry_after_s

logger = logging.getLogger(__name__)


USER_AGENT = "DiscordBot (https://github.com/wanderer-industries/wanderer-realtime, 0.1.0)"


MAX_NONCE = 25


# urllib3 logs request lines (with the URL path) and URLs in retries and warnings.
HTTP_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.response",
    "urllib3.poolmanager",
)


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
            self._destinations = {route.name: bot_destination(config, route) for route in routes}
        else:
            secrets: list[str] = []
            self._destinations = {
                route.name: webhook_destination(config, route, secrets) for route in routes
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
                return response.status_code, response.headers, json_object(read_bounded(response))
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
        described, bounded = describe(status, answer)
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
        return clip(text)
