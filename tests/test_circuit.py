"""CircuitBreaker and ReconnectPolicy, with an injected clock and jitter."""

from __future__ import annotations

import random

import pytest

from realtime.circuit import CircuitBreaker, CircuitState, ReconnectPolicy
from supervision import Backoff


def opened(threshold: int = 3, open_s: float = 60.0, *, at: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold, open_s)
    for _ in range(threshold):
        breaker.record_failure(at)
    assert breaker.state is CircuitState.OPEN
    return breaker


# -- CircuitBreaker ----------------------------------------------------------------------


@pytest.mark.parametrize(("threshold", "open_s"), [(0, 1.0), (1, -0.1)])
def test_breaker_settings_out_of_range_are_refused(threshold: int, open_s: float) -> None:
    with pytest.raises(ValueError, match=r"failure_threshold|open_s"):
        CircuitBreaker(threshold, open_s)


def test_a_closed_breaker_allows_attempts_until_the_threshold_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(3, 60.0)
    for at in (1.0, 2.0):
        breaker.record_failure(at)
        assert breaker.state is CircuitState.CLOSED
        assert breaker.allow(at)
        assert breaker.retry_in(at) == 0.0
    breaker.record_failure(3.0)
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow(3.0)


def test_a_success_restarts_the_count_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(3, 60.0)
    breaker.record_failure(1.0)
    breaker.record_failure(2.0)
    breaker.record_success()
    breaker.record_failure(3.0)
    breaker.record_failure(4.0)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.statistics().consecutive_failures == 2


def test_an_open_breaker_refuses_attempts_for_open_s_and_says_how_long_is_left() -> None:
    breaker = opened(open_s=60.0, at=100.0)
    assert not breaker.allow(159.9)
    assert breaker.retry_in(100.0) == 60.0
    assert breaker.retry_in(130.0) == 30.0
    assert breaker.retry_in(200.0) == 0.0


def test_after_open_s_exactly_one_probe_goes_through_half_open() -> None:
    breaker = opened(open_s=60.0, at=100.0)
    assert breaker.allow(160.0)
    assert breaker.state is CircuitState.HALF_OPEN
    assert not breaker.allow(160.0)
    assert not breaker.allow(500.0)
    assert breaker.retry_in(500.0) is None


def test_a_successful_probe_closes_the_breaker() -> None:
    breaker = opened(open_s=60.0)
    assert breaker.allow(60.0)
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.allow(60.0)
    assert breaker.statistics().consecutive_failures == 0


def test_a_failed_probe_opens_the_breaker_again_for_a_full_open_s() -> None:
    breaker = opened(open_s=60.0)
    assert breaker.allow(70.0)
    breaker.record_failure(75.0)
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow(134.9)
    assert breaker.allow(135.0)
    assert breaker.statistics().times_opened == 2


def test_a_failure_reported_while_open_extends_the_open_period() -> None:
    breaker = opened(open_s=60.0, at=0.0)
    breaker.record_failure(30.0)
    assert not breaker.allow(60.0)
    assert breaker.allow(90.0)


def test_breaker_statistics_describe_its_state() -> None:
    breaker = opened(threshold=2)
    stats = breaker.statistics()
    assert (stats.state, stats.consecutive_failures, stats.failure_threshold) == (
        CircuitState.OPEN,
        2,
        2,
    )
    assert stats.times_opened == 1


# -- ReconnectPolicy ---------------------------------------------------------------------

NO_JITTER_DRAW = 0.0  # full jitter: delay = ceiling * (1 - rand()), so 0.0 gives the ceiling


def policy(
    *, threshold: int = 100, open_s: float = 120.0, stable_s: float = 60.0
) -> ReconnectPolicy:
    return ReconnectPolicy(
        Backoff(min_s=0.5, max_s=30.0),
        CircuitBreaker(threshold, open_s),
        rand=lambda: NO_JITTER_DRAW,
        stable_s=stable_s,
    )


def test_delays_grow_exponentially_up_to_the_cap() -> None:
    reconnect = policy()
    delays = [reconnect.next_delay(float(n)) for n in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert reconnect.attempt == 9


def test_full_jitter_spreads_each_delay_below_its_ceiling() -> None:
    draws = random.Random(7)
    backoff = Backoff(min_s=0.5, max_s=30.0)
    reconnect = ReconnectPolicy(backoff, CircuitBreaker(100, 1.0), rand=draws.random)
    delays = [reconnect.next_delay(float(n)) for n in range(50)]
    assert all(0.0 <= d <= backoff.ceiling(n) for n, d in enumerate(delays))
    assert len(set(delays)) == len(delays)


def test_a_connect_that_never_joins_never_resets_the_backoff() -> None:
    # The Elixir SSE client reset its counter before checking the answer.
    reconnect = policy()
    delays = [reconnect.next_delay(float(n)) for n in range(5)]
    assert delays == sorted(delays)
    assert reconnect.attempt == 5


def test_a_joined_connection_that_stays_up_resets_the_backoff_when_it_ends() -> None:
    reconnect = policy(stable_s=60.0)
    for n in range(5):
        reconnect.next_delay(float(n))
    reconnect.connected_and_joined(100.0)
    assert reconnect.next_delay(160.0) == 0.5
    assert reconnect.attempt == 1
    assert reconnect.statistics().resets == 1


def test_a_joined_connection_that_drops_at_once_keeps_the_backoff_growing() -> None:
    # A server that accepts and drops every connection must not be hammered.
    reconnect = policy(stable_s=60.0)
    delays = []
    for n in range(6):
        reconnect.connected_and_joined(n * 100.0)
        delays.append(reconnect.next_delay(n * 100.0 + 1.0))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert reconnect.statistics().resets == 0


def test_with_stable_s_zero_every_join_resets_the_backoff() -> None:
    reconnect = policy(stable_s=0.0)
    reconnect.next_delay(0.0)
    reconnect.next_delay(1.0)
    reconnect.connected_and_joined(2.0)
    assert reconnect.next_delay(2.0) == 0.5


def test_the_open_breaker_stretches_the_delay_and_refuses_attempts() -> None:
    reconnect = policy(threshold=3, open_s=120.0)
    assert reconnect.next_delay(0.0) == 0.5
    assert reconnect.next_delay(1.0) == 1.0
    assert reconnect.next_delay(10.0) == 120.0
    assert reconnect.breaker.state is CircuitState.OPEN
    assert not reconnect.attempt_allowed(129.9)
    assert reconnect.attempt_allowed(130.0)
    assert reconnect.statistics().circuit.state is CircuitState.HALF_OPEN


def test_a_failed_probe_waits_a_full_open_period_again() -> None:
    reconnect = policy(threshold=1, open_s=120.0)
    reconnect.next_delay(0.0)
    assert reconnect.attempt_allowed(120.0)
    assert reconnect.next_delay(121.0) == 120.0
    assert not reconnect.attempt_allowed(240.9)


def test_joining_closes_the_breaker() -> None:
    reconnect = policy(threshold=1, open_s=120.0)
    reconnect.next_delay(0.0)
    assert reconnect.attempt_allowed(120.0)
    reconnect.connected_and_joined(121.0)
    assert reconnect.breaker.state is CircuitState.CLOSED
    stats = reconnect.statistics()
    assert (stats.failures, stats.circuit.state) == (1, CircuitState.CLOSED)


def test_stable_s_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="stable_s"):
        policy(stable_s=-1.0)
