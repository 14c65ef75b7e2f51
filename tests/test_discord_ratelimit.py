from __future__ import annotations

import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.ratelimit import RateLimits, Route, Wait, WaitCause

CHANNEL_A = Route("POST", "/channels/{channel_id}/messages", "111")
CHANNEL_B = Route("POST", "/channels/{channel_id}/messages", "222")
REACTIONS_A = Route("PUT", "/channels/{channel_id}/messages/{id}/reactions", "111")


def headers(
    remaining: int,
    reset_after: float,
    *,
    limit: int = 5,
    bucket: str | None = "abcd",
    reset: str = "1750000002.000",
) -> dict[str, str]:
    found = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": reset,
        "X-RateLimit-Reset-After": str(reset_after),
    }
    if bucket is not None:
        found["X-RateLimit-Bucket"] = bucket
    return found


def approx_wait(seconds: float, cause: WaitCause) -> object:
    """Equal to a :class:`Wait` of about ``seconds`` for ``cause``."""
    approx: object = pytest.approx(seconds)
    return Wait(typing.cast("float", approx), cause)


def test_an_unknown_route_may_send_at_once() -> None:
    limits = RateLimits()
    assert limits.check(CHANNEL_A, 0.0) is None
    assert limits.wait_s(CHANNEL_A, 0.0) == 0.0


def test_a_route_waits_until_reset_when_remaining_is_zero() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 10.0, 200, headers(0, 1.5))
    assert limits.check(CHANNEL_A, 10.0) == Wait(1.5, "bucket")
    assert limits.wait_s(CHANNEL_A, 11.0) == pytest.approx(0.5)
    assert limits.wait_s(CHANNEL_A, 11.5) == 0.0


def test_remaining_above_zero_does_not_wait() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 10.0, 200, headers(1, 1.5))
    assert limits.wait_s(CHANNEL_A, 10.0) == 0.0


def test_header_names_are_read_in_any_case() -> None:
    limits = RateLimits()
    lowered = {name.lower(): value for name, value in headers(0, 2.0).items()}
    limits.on_response(CHANNEL_A, 0.0, 200, lowered)
    assert limits.wait_s(CHANNEL_A, 0.0) == 2.0


def test_routes_sharing_a_bucket_hash_wait_together() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(3, 2.0, bucket="shared"))
    limits.on_response(REACTIONS_A, 0.0, 200, headers(0, 2.0, bucket="shared"))
    assert limits.wait_s(CHANNEL_A, 0.5) == pytest.approx(1.5)
    assert limits.statistics(0.5).routes_mapped == 2
    assert limits.statistics(0.5).buckets == 1


def test_what_was_learned_before_the_bucket_header_moves_to_the_bucket() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(0, 2.0, bucket=None))
    assert limits.wait_s(CHANNEL_A, 0.0) == 2.0
    limits.on_response(CHANNEL_A, 0.0, 429, {"X-RateLimit-Bucket": "named"}, body={})
    assert limits.statistics(0.0).buckets == 1
    assert limits.wait_s(CHANNEL_A, 0.5) == pytest.approx(1.5)


def test_buckets_are_per_major_parameter() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(0, 2.0))
    assert limits.wait_s(CHANNEL_A, 0.0) == 2.0
    assert limits.wait_s(CHANNEL_B, 0.0) == 0.0


def test_acquire_counts_down_so_concurrent_senders_stop_on_the_last_slot() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(2, 2.0))
    assert limits.acquire(CHANNEL_A, 0.1) is None
    assert limits.acquire(CHANNEL_A, 0.1) is None
    assert limits.acquire(CHANNEL_A, 0.1) == approx_wait(1.9, "bucket")
    assert limits.statistics(0.1).requests == 2


def test_acquire_after_the_reset_opens_a_fresh_window() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(0, 2.0))
    assert limits.acquire(CHANNEL_A, 2.0) is None
    assert limits.wait_s(CHANNEL_A, 2.0) == 0.0


def test_answers_of_one_window_arriving_out_of_order_never_raise_remaining() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(0, 2.0, reset="100.5"))
    limits.on_response(CHANNEL_A, 0.0, 200, headers(3, 2.0, reset="100.5"))
    assert limits.wait_s(CHANNEL_A, 0.1) == pytest.approx(1.9)


def test_an_answer_of_a_new_window_replaces_remaining() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(0, 2.0, reset="100.5"))
    limits.on_response(CHANNEL_A, 2.0, 200, headers(4, 2.0, reset="102.5"))
    assert limits.wait_s(CHANNEL_A, 2.0) == 0.0


def test_reset_epoch_is_read_only_without_reset_after_and_with_a_wall_clock() -> None:
    limits = RateLimits()
    only_reset = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000.75"}
    limits.on_response(CHANNEL_A, 50.0, 200, only_reset, wall=1000.0)
    assert limits.wait_s(CHANNEL_A, 50.0) == pytest.approx(0.75)
    limits.on_response(CHANNEL_B, 50.0, 200, only_reset)
    assert limits.wait_s(CHANNEL_B, 50.0) == 0.0


def test_a_429_closes_the_bucket_for_retry_after_from_the_body() -> None:
    limits = RateLimits()
    body = {"message": "You are being rate limited.", "retry_after": 0.25, "global": False}
    limits.on_response(CHANNEL_A, 5.0, 429, {"Retry-After": "1"}, body=body)
    assert limits.check(CHANNEL_A, 5.0) == Wait(0.25, "bucket")
    assert limits.wait_s(CHANNEL_B, 5.0) == 0.0
    assert limits.statistics(5.0).rate_limited == 1


def test_a_429_without_a_body_falls_back_to_the_retry_after_header() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 429, {"Retry-After": "3"})
    assert limits.wait_s(CHANNEL_A, 0.0) == 3.0


def test_a_global_429_blocks_every_route() -> None:
    limits = RateLimits()
    body = {"message": "You are being rate limited.", "retry_after": 0.5, "global": True}
    limits.on_response(CHANNEL_A, 0.0, 429, {"X-RateLimit-Global": "true"}, body=body)
    assert limits.check(CHANNEL_B, 0.0) == Wait(0.5, "global_429")
    assert limits.check(REACTIONS_A, 0.2) == approx_wait(0.3, "global_429")
    assert limits.wait_s(CHANNEL_B, 0.5) == 0.0
    assert limits.statistics(0.0).rate_limited_global == 1


def test_scope_global_alone_makes_a_429_global() -> None:
    limits = RateLimits()
    limits.on_response(
        CHANNEL_A, 0.0, 429, {"X-RateLimit-Scope": "global"}, body={"retry_after": 1}
    )
    assert limits.wait_s(CHANNEL_B, 0.0) == 1.0


def test_no_more_than_global_per_s_requests_in_any_second() -> None:
    limits = RateLimits(global_per_s=3)
    for at in (0.0, 0.1, 0.2):
        assert limits.acquire(CHANNEL_A if at else CHANNEL_B, at) is None
    assert limits.check(CHANNEL_A, 0.5) == approx_wait(0.5, "global")
    assert limits.acquire(CHANNEL_B, 1.0) is None
    assert limits.check(CHANNEL_A, 1.05) == approx_wait(0.05, "global")
    assert limits.statistics(1.05).requests_last_s == 3


def test_invalid_request_guard_refuses_near_the_limit_and_reopens_as_answers_age_out() -> None:
    limits = RateLimits(invalid_ceiling=3, invalid_limit=4, invalid_window_s=10.0)
    limits.on_response(CHANNEL_A, 0.2, 401, {})
    limits.on_response(CHANNEL_A, 5.0, 403, {})
    assert limits.wait_s(CHANNEL_B, 5.0) == 0.0
    limits.on_response(CHANNEL_A, 6.0, 429, {}, body={"retry_after": 0.1})
    wait = limits.check(CHANNEL_B, 6.5)
    assert wait is not None
    assert wait.cause == "invalid_guard"
    # The first was counted in second 0, so it leaves the window by 0 + 1 + 10.
    assert wait.seconds == pytest.approx(11.0 - 6.5)
    assert limits.acquire(CHANNEL_B, 10.9) is not None
    assert limits.acquire(CHANNEL_B, 11.0) is None
    stats = limits.statistics(11.0)
    assert (stats.invalid_in_window, stats.invalid_ceiling, stats.invalid_limit) == (2, 3, 4)


def test_shared_scope_429_is_not_an_invalid_request() -> None:
    limits = RateLimits(invalid_ceiling=1, invalid_limit=1)
    limits.on_response(
        CHANNEL_A, 0.0, 429, {"X-RateLimit-Scope": "shared"}, body={"retry_after": 1}
    )
    assert limits.statistics(0.0).invalid_in_window == 0
    assert limits.statistics(0.0).rate_limited_shared == 1
    assert limits.check(CHANNEL_B, 0.0) is None


def test_successes_and_other_errors_are_not_invalid_requests() -> None:
    limits = RateLimits()
    for status in (200, 204, 400, 404, 500):
        limits.on_response(CHANNEL_A, 0.0, status, {})
    assert limits.statistics(0.0).invalid_in_window == 0


def test_bucket_memory_is_bounded_by_max_buckets() -> None:
    limits = RateLimits(max_buckets=2)
    for channel in ("1", "2", "3", "4"):
        route = Route("POST", "/channels/{channel_id}/messages", channel)
        limits.on_response(route, 0.0, 200, headers(0, 9.0))
    stats = limits.statistics(0.0)
    assert (stats.buckets, stats.max_buckets, stats.exhausted_buckets) == (2, 2, 2)
    assert limits.wait_s(Route("POST", "/channels/{channel_id}/messages", "1"), 0.0) == 0.0
    assert limits.wait_s(Route("POST", "/channels/{channel_id}/messages", "4"), 0.0) == 9.0


def test_malformed_headers_are_ignored() -> None:
    limits = RateLimits()
    junk = {"X-RateLimit-Remaining": "zero", "X-RateLimit-Reset-After": "nan"}
    limits.on_response(CHANNEL_A, 0.0, 200, junk)
    assert limits.wait_s(CHANNEL_A, 0.0) == 0.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid_ceiling"):
        RateLimits(invalid_ceiling=10_001)
    with pytest.raises(ValueError, match="max_buckets"):
        RateLimits(max_buckets=0)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=60))
def test_a_client_that_follows_the_limits_is_never_refused_by_the_server(
    gaps: list[float],
) -> None:
    limit, window_s = 3, 2.0
    limits = RateLimits()
    window_end, used, now = -1.0, 0, 0.0
    for gap in gaps:
        now += gap
        now += limits.wait_s(CHANNEL_A, now)
        assert limits.acquire(CHANNEL_A, now) is None
        if now >= window_end:
            window_end, used = now + window_s, 0
        used += 1
        assert used <= limit, "the server would answer 429"
        reset = f"{window_end:.3f}"
        limits.on_response(
            CHANNEL_A, now, 200, headers(limit - used, window_end - now, limit=limit, reset=reset)
        )


def test_past_the_reset_a_full_window_of_the_usual_length_is_assumed() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(0, 2.0, limit=2, reset="2.0"))
    assert limits.acquire(CHANNEL_A, 2.0) is None
    assert limits.acquire(CHANNEL_A, 2.0) is None
    assert limits.check(CHANNEL_A, 2.5) == approx_wait(1.5, "bucket")


def test_a_late_answer_of_a_window_already_over_is_ignored() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(1, 2.0, limit=2, reset="2.0"))
    assert limits.acquire(CHANNEL_A, 2.0) is None
    limits.on_response(CHANNEL_A, 2.0, 200, headers(0, 0.0, limit=2, reset="2.0"))
    assert limits.acquire(CHANNEL_A, 2.0) is None
    limits.on_response(CHANNEL_A, 2.1, 200, headers(1, 1.9, limit=2, reset="4.0"))
    limits.on_response(CHANNEL_A, 2.1, 200, headers(1, 1.0, limit=2, reset="3.0"))
    assert limits.check(CHANNEL_A, 2.1) == approx_wait(1.9, "bucket")


def test_the_first_answer_of_an_assumed_window_does_not_forget_requests_in_flight() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(0, 2.0, limit=3, reset="2.0"))
    for _ in range(3):
        assert limits.acquire(CHANNEL_A, 2.0) is None
    # The answer to the first of the three: the server had counted only it.
    limits.on_response(CHANNEL_A, 2.0, 200, headers(2, 2.0, limit=3, reset="4.0"))
    assert limits.check(CHANNEL_A, 2.0) == approx_wait(2.0, "bucket")


def test_a_first_answer_leaves_room_for_the_requests_still_in_flight() -> None:
    limits = RateLimits()
    assert limits.acquire(CHANNEL_A, 0.0) is None
    assert limits.acquire(CHANNEL_A, 0.0) is None
    limits.on_response(CHANNEL_A, 0.0, 200, headers(1, 2.0, limit=3))
    assert limits.statistics(0.0).in_flight == 1
    assert limits.check(CHANNEL_A, 0.0) == approx_wait(2.0, "bucket")


def test_a_request_without_an_answer_is_no_longer_in_flight() -> None:
    limits = RateLimits()
    limits.on_response(CHANNEL_A, 0.0, 200, headers(1, 2.0, limit=2))
    assert limits.acquire(CHANNEL_A, 2.0) is None
    assert limits.statistics(2.0).in_flight == 1
    limits.on_no_answer(CHANNEL_A)
    assert limits.statistics(2.0).in_flight == 0
