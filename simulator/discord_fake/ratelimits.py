"""The Discord fake's rate limits: a global requests-per-second bound and
per-route, per-channel (or per-webhook) buckets, with Discord's headers."""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass

from simulator.discord_fake.wire import Answer, Headers, too_many

_MAX_WINDOWS = 1024
"""Beyond this many bucket windows, the ended ones are forgotten."""


def bucket_hash(route: str) -> str:
    """A stable, opaque bucket id for a route, shaped like Discord's."""
    return hashlib.blake2b(route.encode(), digest_size=16).hexdigest()


@dataclass(slots=True)
class _Window:
    reset_at: float
    used: int


class RateLimits:
    """The windows of every bucket and of the global bound. Not thread-safe: the
    fake calls it under its lock.

    Args:
        bucket_limit: requests per bucket window, per channel or webhook.
        bucket_window_s: the bucket window.
        global_per_s: requests per second over all routes.
    """

    def __init__(self, bucket_limit: int, bucket_window_s: float, global_per_s: int) -> None:
        self._bucket_limit = bucket_limit
        self._bucket_window_s = bucket_window_s
        self._global_per_s = global_per_s
        self._windows: dict[tuple[str, str], _Window] = {}
        self._global_sent: deque[float] = deque(maxlen=global_per_s)

    def take_global(self, now: float) -> Answer | None:
        """Count a request against the global bound; a global 429 when past it."""
        sent = self._global_sent
        while sent and sent[0] <= now - 1.0:
            sent.popleft()
        if len(sent) >= self._global_per_s:
            return too_many(sent[0] + 1.0 - now, is_global=True, scope="global", headers=())
        sent.append(now)
        return None

    def take_bucket(self, now: float, route: str, major: str) -> tuple[Answer | None, Headers]:
        """Take a slot of ``route``'s bucket for ``major`` (a channel or webhook id):
        a 429 when it is used up, else ``None`` and the bucket headers of the slot."""
        self._prune(now)
        bucket_id = bucket_hash(route)
        window = self._windows.get((bucket_id, major))
        if window is None or now >= window.reset_at:
            window = _Window(now + self._bucket_window_s, 0)
            self._windows[(bucket_id, major)] = window
        if window.used >= self._bucket_limit:
            headers = self._headers(bucket_id, 0, window.reset_at, now)
            retry_after = window.reset_at - now
            return too_many(retry_after, is_global=False, scope="user", headers=headers), ()
        window.used += 1
        remaining = self._bucket_limit - window.used
        return None, self._headers(bucket_id, remaining, window.reset_at, now)

    def _headers(self, bucket_id: str, remaining: int, reset_at: float, now: float) -> Headers:
        return (
            ("X-RateLimit-Limit", str(self._bucket_limit)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", f"{reset_at:.3f}"),
            ("X-RateLimit-Reset-After", f"{max(0.0, reset_at - now):.3f}"),
            ("X-RateLimit-Bucket", bucket_id),
        )

    def _prune(self, now: float) -> None:
        # Windows end by themselves; forgetting ended ones bounds the table by
        # the routes used within one window.
        if len(self._windows) > _MAX_WINDOWS:
            ended = [key for key, window in self._windows.items() if window.reset_at <= now]
            for key in ended:
                del self._windows[key]
