"""Where each route posts (:class:`Destination`: its URL and rate-limit
route), and :class:`SecretMask`, which keeps the bot token and webhook URLs
out of every result, message and log line.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from realtime.config import DEFAULT_ROUTE, MASK, DiscordConfig, RouteConfig
from realtime.ratelimit import Route

_WEBHOOK_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d+)/([^/]+)/?$")


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one route posts: its URL and its rate-limit route (secrets inside: never print)."""

    url: str
    route: Route


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


def bot_destination(config: DiscordConfig, route: RouteConfig) -> Destination:
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


def webhook_destination(
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
