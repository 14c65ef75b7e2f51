from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from actors.discord_http import (
    Deferred,
    DiscordSender,
    Done,
    Fatal,
    GiveUp,
    Invalid,
    Retryable,
    RetryAfter,
    RetryPlan,
    RetryState,
    SendAgain,
    Sent,
    StopSink,
)
from realtime.config import DiscordConfig, Secret
from realtime.ratelimit import RateLimits
from simulator.discord_fake import DiscordFake
from supervision import Backoff
from tests.support.clocks import FakeClock
from tests.support.discord import deliver
from tests.support.sockets import free_port

CHANNEL = "424242"
BOT_TOKEN = "MTA5ODc2NTQzMjEw.Gsecret.bot-token-value"
WEBHOOK_ID = "987654321012345678"
WEBHOOK_TOKEN = "whsecret_Token-value_0123456789"
KILL = {"embeds": [{"title": "Rifter destroyed", "description": "in J123456"}]}
PLAN = RetryPlan(Backoff(0.01, 0.1), max_attempts=8)
# Long enough for any loopback answer, short against a held one (30 s).
SHORT_TIMEOUT_S = 0.5

SenderFactory = Callable[..., DiscordSender]


pytestmark = pytest.mark.discord_fake(fake_clock=True, bot_token=BOT_TOKEN)


@pytest.fixture(autouse=True)
def webhook_into_channel(discord_fake: DiscordFake) -> None:
    """Every test's Discord has the webhook ``WEBHOOK_ID`` posting into ``CHANNEL``."""
    discord_fake.add_webhook(CHANNEL, webhook_id=WEBHOOK_ID, token=WEBHOOK_TOKEN)


def webhook_url(discord_fake: DiscordFake) -> str:
    return f"{discord_fake.root_url}/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"


@pytest.fixture
def make_sender(discord_fake: DiscordFake, clock: FakeClock) -> Iterator[SenderFactory]:
    senders: list[DiscordSender] = []

    def make(
        mode: Literal["bot", "webhook"] = "bot",
        *,
        timeout_s: float = 5.0,
        limits: RateLimits | None = None,
        **overrides: Any,
    ) -> DiscordSender:
        settings: dict[str, Any] = {
            "mode": mode,
            "api_base": discord_fake.base_url,
            "bot_token": Secret(BOT_TOKEN, "env:DISCORD_BOT_TOKEN"),
            "channel_id": CHANNEL,
            "webhook_url": Secret(webhook_url(discord_fake), "env:DISCORD_WEBHOOK_URL"),
            "request_timeout_s": timeout_s,
        }
        config = DiscordConfig(**(settings | overrides))
        sender = DiscordSender(config, clock=clock, wall_clock=clock, limits=limits)
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        sender.close()


def test_bot_mode_posts_with_the_nonce_enforced(
    discord_fake: DiscordFake, make_sender: SenderFactory
) -> None:
    result = make_sender().send(KILL, "killmail:1")
    assert isinstance(result, Sent)
    [message] = discord_fake.messages(CHANNEL)
    assert (message["id"], message["nonce"]) == (result.message_id, "killmail:1")
    assert message["embeds"] == KILL["embeds"]


@pytest.mark.parametrize(
    ("arm", "expected"),
    [
        (lambda f: f.storm_429(3, retry_after=0.25), RetryAfter(0.25, global_=False)),
        (lambda f: f.storm_429(3, retry_after=0.5, global_=True), RetryAfter(0.5, global_=True)),
        (lambda f: f.fail_5xx(3), Retryable("HTTP 502")),
        (lambda f: f.fail_5xx(2, status=500), Retryable("HTTP 500")),
    ],
    ids=["bucket-429-storm", "global-429-storm", "502s", "500s"],
)
def test_bot_mode_is_exactly_once_through_refusals(
    discord_fake: DiscordFake,
    make_sender: SenderFactory,
    clock: FakeClock,
    arm: Callable[[DiscordFake], None],
    expected: Retryable | RetryAfter,
) -> None:
    arm(discord_fake)
    decision, state, results = deliver(make_sender(), PLAN, KILL, "killmail:2", clock)
    assert isinstance(decision, Done)
    assert results[0] == expected
    assert [m["id"] for m in discord_fake.messages(CHANNEL)] == [decision.message_id]
    assert state.attempts == len([r for r in results if not isinstance(r, Deferred)])


def test_a_global_429_holds_back_the_next_send(
    discord_fake: DiscordFake, make_sender: SenderFactory, clock: FakeClock
) -> None:
    sender = make_sender()
    discord_fake.storm_429(1, retry_after=0.5, global_=True)
    assert sender.send(KILL, "killmail:3") == RetryAfter(0.5, global_=True)
    assert sender.send(KILL, "killmail:3") == Deferred(0.5, "global_429")
    assert len(discord_fake.requests()) == 1
    clock.advance(0.5)
    assert isinstance(sender.send(KILL, "killmail:3"), Sent)


@pytest.mark.parametrize(
    "arm",
    [
        lambda f: f.reset_connections(2),
        lambda f: f.reset_connections(2, after_create=True),
        lambda f: f.slow_after_create(2, delay_s=30.0),
    ],
    ids=["reset-before-create", "reset-after-create", "slow-after-create"],
)
def test_bot_mode_is_exactly_once_when_answers_are_lost(
    discord_fake: DiscordFake,
    make_sender: SenderFactory,
    clock: FakeClock,
    arm: Callable[[DiscordFake], None],
) -> None:
    arm(discord_fake)
    sender = make_sender(timeout_s=SHORT_TIMEOUT_S)
    decision, _, results = deliver(sender, PLAN, KILL, "killmail:4", clock)
    assert [type(r) for r in results] == [Retryable, Retryable, Sent]
    assert isinstance(decision, Done)
    assert [m["id"] for m in discord_fake.messages(CHANNEL)] == [decision.message_id]


def test_webhook_mode_posts_with_wait_and_knows_the_message_id(
    discord_fake: DiscordFake, make_sender: SenderFactory
) -> None:
    result = make_sender("webhook").send(KILL, "ignored-in-webhook-mode")
    assert isinstance(result, Sent)
    [message] = discord_fake.messages(WEBHOOK_ID)
    assert message["id"] == result.message_id
    assert "nonce" not in message


def test_webhook_mode_duplicates_a_retry_after_a_lost_answer(
    discord_fake: DiscordFake, make_sender: SenderFactory, clock: FakeClock
) -> None:
    """The honest limit of webhooks: no nonce, so a retry after a timeout posts twice."""
    discord_fake.slow_after_create(1, delay_s=30.0)
    decision, _, results = deliver(
        make_sender("webhook", timeout_s=SHORT_TIMEOUT_S), PLAN, KILL, "k5", clock
    )
    assert [type(r) for r in results] == [Retryable, Sent]
    assert isinstance(decision, Done)
    assert len(discord_fake.messages(WEBHOOK_ID)) == 2


def test_webhook_mode_is_exactly_once_through_429s_and_5xx(
    discord_fake: DiscordFake, make_sender: SenderFactory, clock: FakeClock
) -> None:
    discord_fake.storm_429(2, retry_after=0.1)
    discord_fake.fail_5xx(2)
    decision, _, results = deliver(make_sender("webhook"), PLAN, KILL, "k6", clock)
    assert isinstance(decision, Done)
    assert len(results) == 5
    assert len(discord_fake.messages(WEBHOOK_ID)) == 1


def test_a_deleted_webhook_is_fatal_and_stops_the_sink(
    discord_fake: DiscordFake, make_sender: SenderFactory, clock: FakeClock
) -> None:
    discord_fake.delete_webhook()
    sender = make_sender("webhook")
    decision, state, results = deliver(sender, PLAN, KILL, "k7", clock)
    assert results == [Fatal("HTTP 404: Unknown Webhook (code 10015)", 404)]
    assert decision == StopSink("HTTP 404: Unknown Webhook (code 10015)", 404)
    assert state.attempts == 1


def test_a_wrong_bot_token_is_fatal(discord_fake: DiscordFake, make_sender: SenderFactory) -> None:
    sender = make_sender(bot_token=Secret("not-the-token", "inline"))
    result = sender.send(KILL, "k8")
    assert isinstance(result, Fatal)
    assert result.status == 401


def test_an_oversized_message_is_invalid_and_never_retried(
    discord_fake: DiscordFake, make_sender: SenderFactory, clock: FakeClock
) -> None:
    too_long = {"embeds": [{"title": "t" * 257}]}
    decision, _, results = deliver(make_sender(), PLAN, too_long, "k9", clock)
    [result] = results
    assert isinstance(result, Invalid)
    assert "code 50035" in result.reason
    assert "embeds.0.title: Must be 256 or fewer in length." in result.reason
    assert isinstance(decision, GiveUp)
    assert len(discord_fake.requests()) == 1


def test_the_sender_learns_the_bucket_and_waits_when_remaining_is_zero(
    discord_fake: DiscordFake, make_sender: SenderFactory, clock: FakeClock
) -> None:
    sender = make_sender()
    for n in range(5):
        assert isinstance(sender.send({"content": str(n)}, f"n{n}"), Sent)
    assert sender.wait_s() == pytest.approx(2.0)
    deferred = sender.send({"content": "6"}, "n6")
    assert isinstance(deferred, Deferred)
    assert deferred.seconds == pytest.approx(2.0)
    assert deferred.cause == "bucket"
    assert len(discord_fake.requests()) == 5
    stats = sender.statistics()
    assert (stats.limits.routes_mapped, stats.limits.exhausted_buckets) == (1, 1)
    assert stats.outcomes == {"Sent": 5, "Deferred": 1}
    clock.advance(2.0)
    assert sender.wait_s() == 0.0
    assert isinstance(sender.send({"content": "6"}, "n6"), Sent)
    assert discord_fake.statistics().answered_429 == 0


def test_the_invalid_request_guard_stops_a_sender_before_discord_would_ban(
    discord_fake: DiscordFake, make_sender: SenderFactory
) -> None:
    limits = RateLimits(invalid_ceiling=3, invalid_limit=10)
    sender = make_sender(bot_token=Secret("revoked-token", "inline"), limits=limits)
    results = [sender.send(KILL, f"k{n}") for n in range(5)]
    assert [type(r) for r in results] == [Fatal, Fatal, Fatal, Deferred, Deferred]
    guard = results[3]
    assert isinstance(guard, Deferred)
    assert guard.cause == "invalid_guard"
    assert guard.seconds > 590
    assert len(discord_fake.requests()) == 3


def test_concurrent_workers_post_every_notification_exactly_once_under_faults(
    discord_fake: DiscordFake, make_sender: SenderFactory, clock: FakeClock
) -> None:
    sender = make_sender(timeout_s=SHORT_TIMEOUT_S)
    discord_fake.storm_429(3, retry_after=0.2)
    discord_fake.fail_5xx(3)
    discord_fake.reset_connections(3, after_create=True)
    discord_fake.slow_after_create(2, delay_s=30.0)
    # One unlucky notification may meet every armed fault: the budget here is
    # not what is tested.
    patient = RetryPlan(Backoff(0.01, 0.1), max_attempts=40)
    decisions: list[Any] = []
    lock = threading.Lock()

    def worker(first: int) -> None:
        for n in range(first, 24, 4):
            decision, _, _ = deliver(
                sender, patient, {"content": f"kill {n}"}, f"killmail:{n}", clock
            )
            with lock:
                decisions.append(decision)

    threads = [threading.Thread(target=worker, args=(first,)) for first in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert [d for d in decisions if not isinstance(d, Done)] == []
    assert len(decisions) == 24
    contents = sorted(m["content"] for m in discord_fake.messages(CHANNEL))
    assert contents == sorted(f"kill {n}" for n in range(24))
    assert sender.statistics().idle_sessions <= sender.statistics().max_idle_sessions


def test_a_nonce_must_fit_discords_25_characters(make_sender: SenderFactory) -> None:
    with pytest.raises(ValueError, match="1 to 25"):
        make_sender().send(KILL, "n" * 26)


def test_a_closed_sender_refuses_to_send(make_sender: SenderFactory) -> None:
    sender = make_sender()
    sender.close()
    with pytest.raises(RuntimeError, match="closed"):
        sender.send(KILL, "k")


def test_nothing_answering_is_retryable(make_sender: SenderFactory) -> None:
    sender = make_sender(api_base=f"http://127.0.0.1:{free_port()}/api/v10")
    result = sender.send(KILL, "k")
    assert isinstance(result, Retryable)
    assert "ConnectionError" in result.reason


def test_no_secret_appears_in_logs_results_or_errors(
    discord_fake: DiscordFake,
    make_sender: SenderFactory,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = f"http://127.0.0.1:{free_port()}"
    reasons: list[str] = []
    senders = [
        make_sender(),
        make_sender(bot_token=Secret(BOT_TOKEN + "x", "inline")),
        make_sender(api_base=f"{dead}/api/v10"),
        make_sender("webhook"),
        make_sender(
            "webhook",
            webhook_url=Secret(f"{dead}/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}", "inline"),
        ),
    ]
    for sender in senders:
        _, _, results = deliver(sender, RetryPlan(Backoff(0, 0), 2), KILL, "k", clock)
        reasons += [repr(r) for r in results]
        reasons.append(repr(sender.statistics()))
    discord_fake.slow_after_create(1, delay_s=30.0)
    reasons.append(repr(make_sender("webhook", timeout_s=SHORT_TIMEOUT_S).send(KILL, "k")))
    discord_fake.delete_webhook()
    reasons.append(repr(senders[3].send(KILL, "k")))
    for broken in ("https://discord.com/api/webhooks/123", f"{WEBHOOK_TOKEN}/{WEBHOOK_ID}"):
        with pytest.raises(ValueError, match="webhook_url") as raised:
            make_sender("webhook", webhook_url=Secret(broken, "env:DISCORD_WEBHOOK_URL"))
        reasons.append(str(raised.value))
    with pytest.raises(ValueError, match="bot mode") as raised:
        make_sender(channel_id="")
    reasons.append(str(raised.value))
    text = caplog.text + "\n".join(reasons)
    assert "urllib3" in caplog.text
    assert "***" in caplog.text
    for secret in (BOT_TOKEN, WEBHOOK_ID, WEBHOOK_TOKEN):
        assert secret not in text


def test_masking_urllib3_ends_when_the_sender_closes(make_sender: SenderFactory) -> None:
    sender = make_sender("webhook")
    pool_logger = logging.getLogger("urllib3.connectionpool")
    assert len(pool_logger.filters) >= 1
    before = len(pool_logger.filters)
    sender.close()
    assert len(pool_logger.filters) == before - 1


def test_the_plan_gives_up_after_max_attempts() -> None:
    plan = RetryPlan(Backoff(1.0, 8.0, jitter=0.0), max_attempts=3)
    state = RetryState()
    delays = []
    for _ in range(2):
        decision, state = plan.decide(state, Retryable("HTTP 502"))
        assert isinstance(decision, SendAgain)
        delays.append(decision.after_s)
    decision, state = plan.decide(state, Retryable("HTTP 502"))
    assert delays == [1.0, 2.0]
    assert decision == GiveUp("3 attempts, the last: HTTP 502")
    assert state == RetryState(attempts=3, failures=3)


def test_the_plan_waits_what_discord_says_after_a_429() -> None:
    decision, state = PLAN.decide(RetryState(), RetryAfter(2.5, global_=True))
    assert decision == SendAgain(2.5)
    assert state == RetryState(attempts=1, failures=0)


def test_a_deferred_send_is_not_an_attempt() -> None:
    state = RetryState(attempts=7, failures=2)
    assert PLAN.decide(state, Deferred(1.25, "bucket")) == (SendAgain(1.25), state)


def test_the_plan_ends_on_success_invalid_and_fatal() -> None:
    assert PLAN.decide(RetryState(), Sent("1"))[0] == Done("1")
    assert PLAN.decide(RetryState(), Invalid("too long"))[0] == GiveUp(
        "refused by Discord: too long"
    )
    assert PLAN.decide(RetryState(), Fatal("gone", 404))[0] == StopSink("gone", 404)


def test_the_plan_jitters_with_the_given_randomness() -> None:
    plan = RetryPlan(Backoff(1.0, 1.0, jitter=1.0), max_attempts=5)
    first = plan.decide(RetryState(), Retryable("x"), random.Random(1).random)[0]
    again = plan.decide(RetryState(), Retryable("x"), random.Random(1).random)[0]
    assert first == again
    assert isinstance(first, SendAgain)
    assert 0.0 <= first.after_s <= 1.0


def test_the_plan_reads_the_config() -> None:
    plan = RetryPlan.from_config(DiscordConfig(max_attempts=3, retry_min_s=0.1, retry_max_s=2.0))
    assert plan == RetryPlan(Backoff(0.1, 2.0), 3)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPlan(Backoff(0, 0), 0)
