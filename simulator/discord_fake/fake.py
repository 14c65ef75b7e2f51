"""The Discord fake's control API: :class:`DiscordFake`, what tests and the demo drive."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Self

from simulator.discord_fake.api import ChannelAccess, DiscordApi, LoggedRequest, Webhook
from simulator.discord_fake.http import HttpServer
from simulator.discord_fake.ratelimits import RateLimits


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


class DiscordFake:
    """A loopback Discord API (see :mod:`simulator.discord_fake`).

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
        self._port = port
        self._max_log = max_log
        self._api = DiscordApi(
            bot_token=bot_token or secrets.token_urlsafe(24),
            rate_limits=RateLimits(bucket_limit, bucket_window_s, global_per_s),
            nonce_window_s=nonce_window_s,
            max_messages=max_messages,
            max_log=max_log,
            clock=clock,
        )
        self._stopping = threading.Event()
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a thread of its own; returns ``self``."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = HttpServer(("127.0.0.1", self._port), self._api.answer, self._stopping.wait)
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
        return self._api.bot_token

    # -- webhooks ----------------------------------------------------------

    def add_webhook(
        self, channel_id: str, *, webhook_id: str | None = None, token: str | None = None
    ) -> str:
        """Create a webhook posting into ``channel_id``; returns its URL."""
        api = self._api
        with api.lock:
            webhook_id = webhook_id or api.next_snowflake()
            token = token or secrets.token_urlsafe(48)
            api.webhooks[webhook_id] = Webhook(channel_id, token)
        return f"{self.root_url}/api/webhooks/{webhook_id}/{token}"

    def delete_webhook(self, webhook_id: str | None = None) -> None:
        """Delete one webhook, or every webhook when ``webhook_id`` is None."""
        with self._api.lock:
            for key, webhook in self._api.webhooks.items():
                if webhook_id is None or key == webhook_id:
                    webhook.deleted = True

    def set_channel_access(self, channel_id: str, access: ChannelAccess) -> None:
        """What the bot may do in a channel: everything (``ok``, every channel's
        default), nothing (``forbidden``: 403 Missing Access), or the channel is
        gone (``missing``: 404 Unknown Channel)."""
        with self._api.lock:
            self._api.channel_access[channel_id] = access

    # -- faults ------------------------------------------------------------

    def storm_429(self, count: int, retry_after: float, global_: bool = False) -> None:
        """Answer the next ``count`` message posts with a 429 of ``retry_after`` seconds."""
        with self._api.lock:
            faults = self._api.faults
            faults.storm = count
            faults.storm_retry_after = retry_after
            faults.storm_global = global_

    def fail_5xx(self, count: int, status: int = 502) -> None:
        """Answer the next ``count`` message posts with ``status`` and an HTML page."""
        with self._api.lock:
            self._api.faults.fail = count
            self._api.faults.fail_status = status

    def reset_connections(self, count: int, *, after_create: bool = False) -> None:
        """Close the connection of the next ``count`` message posts without answering.

        With ``after_create`` this applies to the next successful posts instead:
        the message exists (created, or found by its nonce) but its answer is
        lost, as when a connection breaks while the answer is on its way.
        """
        with self._api.lock:
            if after_create:
                self._api.faults.reset_after = count
            else:
                self._api.faults.reset_before = count

    def slow_after_create(self, count: int, delay_s: float) -> None:
        """Hold the answers of the next ``count`` successful posts ``delay_s`` (real time).

        The message exists before the answer leaves (created, or found by its
        nonce), as when Discord is slow to answer what it already did.
        """
        with self._api.lock:
            self._api.faults.slow = count
            self._api.faults.slow_delay_s = delay_s

    # -- inspection --------------------------------------------------------

    def messages(self, channel_or_webhook: str) -> list[dict[str, Any]]:
        """Messages created in a channel (all) or through a webhook (its own), oldest first."""
        with self._api.lock:
            return [
                copy.deepcopy(message)
                for message in self._api.messages
                if channel_or_webhook in (message["channel_id"], message.get("webhook_id"))
            ]

    def requests(self) -> list[LoggedRequest]:
        """The request log, oldest first (the last ``max_log``)."""
        with self._api.lock:
            return list(self._api.log)

    def statistics(self) -> DiscordFakeStatistics:
        api = self._api
        with api.lock:
            return DiscordFakeStatistics(
                requests=api.requests,
                by_status=MappingProxyType(dict(api.by_status)),
                answered_429=api.by_status[429],
                messages=len(api.messages),
                max_messages=api.max_messages,
                messages_dropped=api.dropped,
                nonces=len(api.nonces),
                log_size=len(api.log),
                max_log=self._max_log,
            )
