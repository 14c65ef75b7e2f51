"""What one attempt to post gave (:data:`SendResult`) and what to do next
(:data:`Decision`), decided by the pure :class:`RetryPlan`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from realtime.config import DiscordConfig
from realtime.ratelimit import WaitCause
from supervision import Backoff


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
