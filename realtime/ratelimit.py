"""Discord rate limits as pure state: learn from answers, say how long to wait.

Discord limits requests per *bucket*: a bucket is named by the
``X-RateLimit-Bucket`` header and applies per major parameter (the channel or
webhook), so two routes can share one bucket and one route has a bucket per
channel. A :class:`Route` carries its major parameter; once an answer names the
route's bucket, the route maps to it. Until then the route is its own bucket.

Answers teach ``Limit``, ``Remaining`` and ``Reset-After`` (seconds from now,
immune to clock skew; ``Reset``, epoch seconds, is used only when
``Reset-After`` is missing and the caller gives its wall clock). When
``Remaining`` is 0 the bucket is closed until its reset. Every request sent
counts ``Remaining`` down at once, so concurrent senders stop at the last slot;
answers, which may arrive out of order, only lower it within a window (named by
its ``Reset`` value), and a late answer of a window already over is ignored.
Past the reset a new window is assumed (as long as the longest ``Reset-After``
heard, and full but for the requests still in flight, which may land in it)
until its first answer arrives. The owner reports every request taken with
:meth:`RateLimits.acquire` as answered (:meth:`RateLimits.on_response`) or not
(:meth:`RateLimits.on_no_answer`).

A 429 closes the bucket for its ``retry_after`` (body, float seconds; else the
``Retry-After`` header) or, when ``global`` is true (body, ``X-RateLimit-Global``
or ``X-RateLimit-Scope: global``), every route. Beyond what Discord says, two
guards of our own: at most ``global_per_s`` requests in any second (Discord's
global limit is 50), and an *invalid request guard*: 401, 403 and 429 answers
(except 429s of scope ``shared``, which Discord does not count) are counted in a
sliding window of ``invalid_window_s``; Discord bans the IP at 10,000 in 10
minutes, and from ``invalid_ceiling`` on nothing is sent until old ones age out.

Time is ``now``: monotonic seconds given by the caller. Not thread-safe: the
owner serialises calls.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

DISCORD_GLOBAL_PER_S = 50
DISCORD_INVALID_LIMIT = 10_000
DISCORD_INVALID_WINDOW_S = 600.0
INVALID_STATUSES = frozenset({401, 403, 429})

WaitCause = Literal["bucket", "global", "global_429", "invalid_guard"]


@dataclass(frozen=True, slots=True)
class Route:
    """One rate-limited endpoint.

    Attributes:
        method: the HTTP method, e.g. ``POST``.
        template: the path with placeholders, e.g. ``/channels/{channel_id}/messages``.
        major: the value of the major parameter (a channel id, or a stand-in
            for a webhook that reveals nothing secret); buckets are per major.
    """

    method: str
    template: str
    major: str

    def __str__(self) -> str:
        return f"{self.method} {self.template} [{self.major}]"


@dataclass(frozen=True, slots=True)
class Wait:
    """Do not send for ``seconds``, because of ``cause``."""

    seconds: float
    cause: WaitCause


MAX_WAIT_S = 3600.0
"""The longest wait an answer can impose (``retry_after``, ``Reset-After``): Discord's
own waits are seconds (an hour for the harshest bans); a larger, broken or
hostile value is cut to this, and counted (``waits_capped``)."""


@dataclass(frozen=True, slots=True)
class RateLimitStatistics:
    """A snapshot of :class:`RateLimits` (counts since creation unless noted)."""

    buckets: int
    max_buckets: int
    routes_mapped: int
    exhausted_buckets: int
    in_flight: int
    requests_last_s: int
    global_per_s: int
    global_blocked_s: float
    invalid_in_window: int
    invalid_ceiling: int
    invalid_limit: int
    requests: int
    rate_limited: int
    rate_limited_global: int
    rate_limited_shared: int
    waits_capped: int


@dataclass(slots=True)
class _Bucket:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    # The X-RateLimit-Reset of the latest window heard of: it names the window.
    window: float | None = None
    # The longest Reset-After heard: about the length of a window.
    period: float | None = None
    # True from a locally assumed new window until an answer of it arrives.
    assumed: bool = False
    # Requests acquired and not answered yet.
    in_flight: int = 0


_BucketKey = tuple[str, str]
_PROVISIONAL = "route:"


class RateLimits:
    """What Discord allows, learned from its answers.

    Args:
        max_buckets: how many buckets (and route-to-bucket mappings) to remember;
            the least recently used is forgotten beyond it.
        global_per_s: requests allowed in any one-second window.
        invalid_ceiling: invalid answers in the window from which sending stops.
        invalid_limit: Discord's own ban threshold (reported, never approached).
        invalid_window_s: the sliding window of the invalid request count.
    """

    def __init__(
        self,
        *,
        max_buckets: int = 256,
        global_per_s: int = DISCORD_GLOBAL_PER_S,
        invalid_ceiling: int = 9_000,
        invalid_limit: int = DISCORD_INVALID_LIMIT,
        invalid_window_s: float = DISCORD_INVALID_WINDOW_S,
    ) -> None:
        if max_buckets < 1 or global_per_s < 1:
            msg = f"need max_buckets >= 1 and global_per_s >= 1, got {max_buckets}, {global_per_s}"
            raise ValueError(msg)
        if not 0 < invalid_ceiling <= invalid_limit:
            msg = (
                f"need 0 < invalid_ceiling <= invalid_limit, got {invalid_ceiling}, {invalid_limit}"
            )
            raise ValueError(msg)
        if invalid_window_s <= 0:
            msg = f"invalid_window_s must be positive, got {invalid_window_s}"
            raise ValueError(msg)
        self._max_buckets = max_buckets
        self._global_per_s = global_per_s
        self._invalid_ceiling = invalid_ceiling
        self._invalid_limit = invalid_limit
        self._invalid_window_s = invalid_window_s
        self._route_bucket: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._buckets: OrderedDict[_BucketKey, _Bucket] = OrderedDict()
        # The send times of the last global_per_s requests: the oldest tells
        # whether a new one would make global_per_s + 1 within one second.
        self._sent: deque[float] = deque(maxlen=global_per_s)
        self._global_until = -math.inf
        # Invalid answers per whole second, oldest first: at most one entry per
        # second of the window, however many answers.
        self._invalid: deque[list[int]] = deque()
        self._invalid_count = 0
        self._requests = 0
        self._rate_limited = 0
        self._rate_limited_global = 0
        self._rate_limited_shared = 0
        self._waits_capped = 0

    def check(self, route: Route, now: float) -> Wait | None:
        """Why and how long to wait before sending on ``route``; ``None``: send now."""
        self._expire_invalid(now)
        if self._invalid_count >= self._invalid_ceiling:
            return Wait(self._invalid_guard_wait(now), "invalid_guard")
        if now < self._global_until:
            return Wait(self._global_until - now, "global_429")
        if len(self._sent) == self._global_per_s and now < self._sent[0] + 1.0:
            return Wait(self._sent[0] + 1.0 - now, "global")
        bucket = self._buckets.get(self._bucket_key(route))
        if (
            bucket is not None
            and bucket.remaining is not None
            and bucket.remaining <= 0
            and bucket.reset_at is not None
            and now < bucket.reset_at
        ):
            return Wait(bucket.reset_at - now, "bucket")
        return None

    def wait_s(self, route: Route, now: float) -> float:
        """Seconds to wait before sending on ``route`` (0.0: send now)."""
        wait = self.check(route, now)
        return 0.0 if wait is None else wait.seconds

    def acquire(self, route: Route, now: float) -> Wait | None:
        """Take a slot to send on ``route`` now, or say how long to wait.

        On ``None`` the request is counted (globally, and against the bucket's
        ``Remaining``, so that concurrent senders do not all pass on the last
        slot) and the caller must send it.
        """
        wait = self.check(route, now)
        if wait is not None:
            return wait
        self._sent.append(now)
        self._requests += 1
        bucket = self._bucket(route)
        if bucket.reset_at is not None and now >= bucket.reset_at and bucket.limit is not None:
            # A new window begins; until an answer tells its figures, assume it
            # as long as usual and full but for the requests still in flight,
            # which may land in it.
            bucket.remaining = max(0, bucket.limit - bucket.in_flight)
            bucket.reset_at = None if bucket.period is None else now + bucket.period
            bucket.assumed = True
        if bucket.remaining is not None:
            bucket.remaining = max(0, bucket.remaining - 1)
        bucket.in_flight += 1
        return None

    def on_no_answer(self, route: Route) -> None:
        """A request taken with :meth:`acquire` got no answer (timeout, broken connection)."""
        self._answered(route)

    def on_response(
        self,
        route: Route,
        now: float,
        status: int,
        headers: Mapping[str, str],
        *,
        body: Mapping[str, Any] | None = None,
        wall: float | None = None,
    ) -> None:
        """Learn from an answer on ``route``.

        Args:
            status: the HTTP status.
            headers: the answer's headers (any case).
            body: the decoded JSON body when it is an object (a 429's
                ``retry_after`` and ``global`` are read from it).
            wall: the caller's epoch clock, used only to read ``X-RateLimit-Reset``
                when ``X-RateLimit-Reset-After`` is missing.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        bucket_id = lowered.get("x-ratelimit-bucket")
        if bucket_id:
            self._map_route(route, bucket_id)
        self._answered(route)
        self._learn_bucket(route, now, lowered, wall)
        scope = lowered.get("x-ratelimit-scope", "").lower()
        if status == 429:
            self._on_429(route, now, lowered, body or {}, scope)
        if status in INVALID_STATUSES and not (status == 429 and scope == "shared"):
            self._count_invalid(now)

    def statistics(self, now: float) -> RateLimitStatistics:
        """Sizes, bounds and counters, as of ``now``."""
        self._expire_invalid(now)
        exhausted = sum(
            1
            for b in self._buckets.values()
            if b.remaining == 0 and b.reset_at is not None and now < b.reset_at
        )
        return RateLimitStatistics(
            buckets=len(self._buckets),
            max_buckets=self._max_buckets,
            routes_mapped=len(self._route_bucket),
            exhausted_buckets=exhausted,
            in_flight=sum(b.in_flight for b in self._buckets.values()),
            requests_last_s=sum(1 for t in self._sent if t > now - 1.0),
            global_per_s=self._global_per_s,
            global_blocked_s=max(0.0, self._global_until - now),
            invalid_in_window=self._invalid_count,
            invalid_ceiling=self._invalid_ceiling,
            invalid_limit=self._invalid_limit,
            requests=self._requests,
            rate_limited=self._rate_limited,
            rate_limited_global=self._rate_limited_global,
            rate_limited_shared=self._rate_limited_shared,
            waits_capped=self._waits_capped,
        )

    def _answered(self, route: Route) -> None:
        bucket = self._buckets.get(self._bucket_key(route))
        if bucket is not None and bucket.in_flight > 0:
            bucket.in_flight -= 1

    def _bucket_key(self, route: Route) -> _BucketKey:
        bucket_id = self._route_bucket.get((route.method, route.template))
        if bucket_id is None:
            return (f"{_PROVISIONAL}{route.method} {route.template}", route.major)
        return (bucket_id, route.major)

    def _map_route(self, route: Route, bucket_id: str) -> None:
        route_key = (route.method, route.template)
        if self._route_bucket.get(route_key) == bucket_id:
            self._route_bucket.move_to_end(route_key)
            return
        before = self._bucket_key(route)
        self._route_bucket[route_key] = bucket_id
        self._route_bucket.move_to_end(route_key)
        if len(self._route_bucket) > self._max_buckets:
            self._route_bucket.popitem(last=False)
        if not before[0].startswith(_PROVISIONAL):
            return
        # What was learned under the route's provisional key now belongs to the
        # named bucket, unless that bucket is already known.
        learned = self._buckets.pop(before, None)
        after = self._bucket_key(route)
        if learned is not None and after not in self._buckets:
            self._store(after, learned)

    def _bucket(self, route: Route) -> _Bucket:
        key = self._bucket_key(route)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket()
            self._store(key, bucket)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def _store(self, key: _BucketKey, bucket: _Bucket) -> None:
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)

    def _learn_bucket(
        self, route: Route, now: float, headers: Mapping[str, str], wall: float | None
    ) -> None:
        limit = _int(headers.get("x-ratelimit-limit"))
        remaining = _int(headers.get("x-ratelimit-remaining"))
        reset_after = _float(headers.get("x-ratelimit-reset-after"))
        window = _float(headers.get("x-ratelimit-reset"))
        if limit is None and remaining is None and reset_after is None and window is None:
            return
        bucket = self._bucket(route)
        if (
            window is not None
            and bucket.window is not None
            and (window < bucket.window or (window == bucket.window and bucket.assumed))
        ):
            # A late answer of a window already over: it would undo what the
            # requests sent since then have counted.
            return
        # The local count includes requests still in flight, the answer does
        # not: when both count the same window, the lower is the truth.
        same_window = window is not None and (window == bucket.window or bucket.assumed)
        if limit is not None:
            bucket.limit = limit
        if remaining is not None:
            if same_window and bucket.remaining is not None:
                bucket.remaining = min(bucket.remaining, remaining)
            else:
                # A window counted afresh: requests still in flight may land in it.
                bucket.remaining = max(0, remaining - bucket.in_flight)
        if window is not None:
            bucket.window = window
            bucket.assumed = False
        if reset_after is not None:
            if reset_after > MAX_WAIT_S:
                self._waits_capped += 1
                reset_after = MAX_WAIT_S
            bucket.reset_at = now + max(0.0, reset_after)
            bucket.period = max(bucket.period or 0.0, reset_after)
        elif window is not None and wall is not None:
            bucket.reset_at = now + max(0.0, window - wall)

    def _on_429(
        self,
        route: Route,
        now: float,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        scope: str,
    ) -> None:
        self._rate_limited += 1
        retry_after = retry_after_s(headers, body)
        if retry_after >= MAX_WAIT_S:
            self._waits_capped += 1
        if is_global_429(headers, body):
            self._rate_limited_global += 1
            self._global_until = max(self._global_until, now + retry_after)
            return
        if scope == "shared":
            self._rate_limited_shared += 1
        bucket = self._bucket(route)
        bucket.remaining = 0
        until = now + retry_after
        bucket.reset_at = until if bucket.reset_at is None else max(bucket.reset_at, until)

    def _count_invalid(self, now: float) -> None:
        second = math.floor(now)
        if self._invalid and self._invalid[-1][0] == second:
            self._invalid[-1][1] += 1
        else:
            self._invalid.append([second, 1])
        self._invalid_count += 1

    def _expire_invalid(self, now: float) -> None:
        # An answer counted in second s may have come at s + 0.999: it is kept
        # until s + 1 + window so that the count never undercounts.
        while self._invalid and self._invalid[0][0] + 1 + self._invalid_window_s <= now:
            self._invalid_count -= self._invalid.popleft()[1]

    def _invalid_guard_wait(self, now: float) -> float:
        excess = self._invalid_count - self._invalid_ceiling + 1
        for second, count in self._invalid:
            excess -= count
            if excess <= 0:
                return max(0.0, second + 1 + self._invalid_window_s - now)
        return 0.0


def retry_after_s(headers: Mapping[str, str], body: Mapping[str, Any] | None) -> float:
    """A 429's wait: the body's ``retry_after`` (float seconds), else the
    ``Retry-After`` header (whole seconds), else ``X-RateLimit-Reset-After``,
    else one second; within ``[0, MAX_WAIT_S]``. ``headers`` have lower-case names.
    """
    value = (body or {}).get("retry_after")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return min(MAX_WAIT_S, max(0.0, float(value)))
    for name in ("retry-after", "x-ratelimit-reset-after"):
        parsed = _float(headers.get(name))
        if parsed is not None:
            return min(MAX_WAIT_S, max(0.0, parsed))
    return 1.0


def is_global_429(headers: Mapping[str, str], body: Mapping[str, Any] | None) -> bool:
    """Whether a 429 limits every route (``headers`` have lower-case names)."""
    return (
        (body or {}).get("global") is True
        or headers.get("x-ratelimit-global", "").lower() == "true"
        or headers.get("x-ratelimit-scope", "").lower() == "global"
    )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = float(value.strip())
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) else None
