from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from simulator.discord_fake import ChannelAccess, DiscordFake, bucket_hash, form_errors
from tests.support.clocks import FakeClock

CHANNEL = "424242"


pytestmark = pytest.mark.discord_fake(fake_clock=True)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def post_bot(
    http: requests.Session, discord_fake: DiscordFake, body: dict[str, Any], **kwargs: Any
) -> requests.Response:
    return http.post(
        f"{discord_fake.base_url}/channels/{CHANNEL}/messages",
        json=body,
        headers={"Authorization": f"Bot {discord_fake.bot_token}"},
        timeout=kwargs.pop("timeout", 5.0),
        **kwargs,
    )


def test_a_bot_post_creates_a_message_with_a_snowflake_id(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    answer = post_bot(http, discord_fake, {"content": "hello", "embeds": [{"title": "t"}]})
    assert answer.status_code == 200
    message = answer.json()
    assert message["id"].isdigit()
    assert int(message["id"]) >> 22 > 0
    assert (message["channel_id"], message["content"]) == (CHANNEL, "hello")
    assert discord_fake.messages(CHANNEL) == [message]


def test_snowflakes_are_unique_and_increasing_within_one_millisecond(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    ids = [int(post_bot(http, discord_fake, {"content": str(n)}).json()["id"]) for n in range(3)]
    assert ids == sorted(set(ids))


def test_a_bot_post_without_the_token_is_401_and_creates_nothing(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    url = f"{discord_fake.base_url}/channels/{CHANNEL}/messages"
    assert http.post(url, json={"content": "x"}, timeout=5).status_code == 401
    wrong = {"Authorization": "Bot not-the-token"}
    assert http.post(url, json={"content": "x"}, headers=wrong, timeout=5).status_code == 401
    assert discord_fake.messages(CHANNEL) == []


def test_an_enforced_nonce_seen_again_returns_the_existing_message(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    body = {"content": "kill 1", "nonce": "kill-1", "enforce_nonce": True}
    first = post_bot(http, discord_fake, body)
    second = post_bot(http, discord_fake, body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["id"] == second.json()["id"]
    assert len(discord_fake.messages(CHANNEL)) == 1
    assert [r.fault for r in discord_fake.requests()] == ["", "nonce_hit"]


def test_a_nonce_without_enforce_nonce_creates_another_message(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    body = {"content": "kill 1", "nonce": "kill-1"}
    assert (
        post_bot(http, discord_fake, body).json()["id"]
        != post_bot(http, discord_fake, body).json()["id"]
    )
    assert len(discord_fake.messages(CHANNEL)) == 2


def test_an_enforced_nonce_is_forgotten_after_the_window(
    clock: FakeClock, http: requests.Session
) -> None:
    body = {"content": "kill 1", "nonce": "kill-1", "enforce_nonce": True}
    with DiscordFake(clock=clock, nonce_window_s=60.0) as discord_fake:
        first = post_bot(http, discord_fake, body).json()["id"]
        clock.advance(59.0)
        assert post_bot(http, discord_fake, body).json()["id"] == first
        clock.advance(1.0)
        assert post_bot(http, discord_fake, body).json()["id"] != first
        assert discord_fake.statistics().nonces == 1


def test_a_webhook_answers_the_message_with_wait_and_204_without(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    url = discord_fake.add_webhook(CHANNEL)
    with_wait = http.post(url, params={"wait": "true"}, json={"content": "a"}, timeout=5)
    without = http.post(url, json={"content": "b"}, timeout=5)
    assert with_wait.status_code == 200
    assert with_wait.json()["webhook_id"] == url.split("/")[-2]
    assert (without.status_code, without.content) == (204, b"")
    assert [m["content"] for m in discord_fake.messages(CHANNEL)] == ["a", "b"]
    assert discord_fake.messages(url.split("/")[-2]) == discord_fake.messages(CHANNEL)


def test_a_webhook_has_no_idempotency(discord_fake: DiscordFake, http: requests.Session) -> None:
    url = discord_fake.add_webhook(CHANNEL)
    body = {"content": "same", "nonce": "n", "enforce_nonce": True}
    for _ in range(2):
        http.post(url, params={"wait": "true"}, json=body, timeout=5)
    assert len(discord_fake.messages(CHANNEL)) == 2


def test_a_deleted_webhook_is_404_unknown_webhook(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    url = discord_fake.add_webhook(CHANNEL, webhook_id="9001")
    discord_fake.delete_webhook()
    answer = http.post(url, params={"wait": "true"}, json={"content": "x"}, timeout=5)
    assert answer.status_code == 404
    assert answer.json() == {"message": "Unknown Webhook", "code": 10015}
    assert discord_fake.messages(CHANNEL) == []


def test_a_webhook_with_a_wrong_token_is_401(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    url = discord_fake.add_webhook(CHANNEL, webhook_id="9001", token="right")
    answer = http.post(url.replace("right", "wrong"), json={"content": "x"}, timeout=5)
    assert (answer.status_code, answer.json()["code"]) == (401, 50027)


def test_webhooks_answer_under_the_versioned_prefix_too(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    url = discord_fake.add_webhook(CHANNEL, webhook_id="9001", token="tok")
    versioned = url.replace("/api/webhooks/", "/api/v10/webhooks/")
    assert http.post(versioned, json={"content": "x"}, timeout=5).status_code == 204


def text(length: int) -> str:
    return "x" * length


def embed_with(**parts: Any) -> dict[str, Any]:
    return {"content": "c", "embeds": [parts]}


OVER_LIMIT: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("content", {"content": text(2001)}, ("content",)),
    ("embeds", {"embeds": [{"title": "t"}] * 11}, ("embeds",)),
    ("title", embed_with(title=text(257)), ("embeds", "0", "title")),
    ("description", embed_with(description=text(4097)), ("embeds", "0", "description")),
    (
        "fields",
        embed_with(fields=[{"name": "n", "value": "v"}] * 26),
        ("embeds", "0", "fields"),
    ),
    (
        "field name",
        embed_with(fields=[{"name": text(257), "value": "v"}]),
        ("embeds", "0", "fields", "0", "name"),
    ),
    (
        "field value",
        embed_with(fields=[{"name": "n", "value": text(1025)}]),
        ("embeds", "0", "fields", "0", "value"),
    ),
    ("footer", embed_with(footer={"text": text(2049)}), ("embeds", "0", "footer", "text")),
    ("author", embed_with(author={"name": text(257)}), ("embeds", "0", "author", "name")),
    (
        "all embeds",
        {"embeds": [{"description": text(3000)}, {"description": text(3001)}]},
        ("embeds",),
    ),
    ("nonce", {"content": "c", "nonce": text(26)}, ("nonce",)),
]

AT_LIMIT: list[dict[str, Any]] = [
    {"content": text(2000)},
    {"embeds": [{"title": "t"}] * 10},
    embed_with(title=text(256), description=text(4096)),
    embed_with(fields=[{"name": text(256), "value": text(1024)}] * 1),
    embed_with(fields=[{"name": "n", "value": "v"}] * 25),
    embed_with(footer={"text": text(2048)}, author={"name": text(256)}),
    {"embeds": [{"description": text(3000)}, {"description": text(3000)}]},
    {"content": "c", "nonce": text(25)},
]


@pytest.mark.parametrize(
    ("body", "path"),
    [(body, path) for _, body, path in OVER_LIMIT],
    ids=[n for n, *_ in OVER_LIMIT],
)
def test_a_body_over_a_size_limit_is_invalid_form_body(
    discord_fake: DiscordFake, http: requests.Session, body: dict[str, Any], path: tuple[str, ...]
) -> None:
    answer = post_bot(http, discord_fake, body)
    assert answer.status_code == 400
    error = answer.json()
    assert (error["code"], error["message"]) == (50035, "Invalid Form Body")
    node = error["errors"]
    for part in path:
        node = node[part]
    assert node["_errors"][0]["code"] in {"BASE_TYPE_MAX_LENGTH", "MAX_EMBED_SIZE_EXCEEDED"}
    assert discord_fake.messages(CHANNEL) == []


@pytest.mark.parametrize("body", AT_LIMIT)
def test_a_body_exactly_at_the_limits_is_accepted(body: dict[str, Any]) -> None:
    assert form_errors(body) == {}


def test_the_size_check_answers_webhooks_too(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    url = discord_fake.add_webhook(CHANNEL)
    answer = http.post(url, json={"content": text(2001)}, timeout=5)
    assert (answer.status_code, answer.json()["code"]) == (400, 50035)


def test_an_empty_message_and_invalid_json_are_refused(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    assert post_bot(http, discord_fake, {"content": ""}).json()["code"] == 50006
    broken = http.post(
        f"{discord_fake.base_url}/channels/{CHANNEL}/messages",
        data=b"{not json",
        headers={"Authorization": f"Bot {discord_fake.bot_token}"},
        timeout=5,
    )
    assert (broken.status_code, broken.json()["code"]) == (400, 50109)


def test_every_answer_carries_the_buckets_headers_and_a_429_beyond_them(
    discord_fake: DiscordFake, http: requests.Session, clock: FakeClock
) -> None:
    answers = [post_bot(http, discord_fake, {"content": str(n)}) for n in range(5)]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0"]
    first = answers[0].headers
    assert first["X-RateLimit-Limit"] == "5"
    assert first["X-RateLimit-Bucket"] == bucket_hash("POST /channels/{channel_id}/messages")
    assert float(first["X-RateLimit-Reset"]) == pytest.approx(clock() + 2.0)
    assert float(first["X-RateLimit-Reset-After"]) == 2.0
    clock.advance(0.5)
    refused = post_bot(http, discord_fake, {"content": "sixth"})
    assert refused.status_code == 429
    assert refused.json() == {
        "message": "You are being rate limited.",
        "retry_after": 1.5,
        "global": False,
    }
    assert refused.headers["Retry-After"] == "2"
    assert refused.headers["X-RateLimit-Scope"] == "user"
    assert discord_fake.statistics().answered_429 == 1
    clock.advance(1.5)
    assert (
        post_bot(http, discord_fake, {"content": "next window"}).headers["X-RateLimit-Remaining"]
        == "4"
    )
    assert len(discord_fake.messages(CHANNEL)) == 6


def test_buckets_are_per_channel(discord_fake: DiscordFake, http: requests.Session) -> None:
    for n in range(5):
        post_bot(http, discord_fake, {"content": str(n)})
    other = http.post(
        f"{discord_fake.base_url}/channels/7/messages",
        json={"content": "x"},
        headers={"Authorization": f"Bot {discord_fake.bot_token}"},
        timeout=5,
    )
    assert other.status_code == 200


def test_beyond_the_global_limit_the_answer_is_a_global_429(
    clock: FakeClock, http: requests.Session
) -> None:
    with DiscordFake(clock=clock, global_per_s=3, bucket_limit=100) as discord_fake:
        statuses = [post_bot(http, discord_fake, {"content": "x"}).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = post_bot(http, discord_fake, {"content": "x"})
        assert refused.json()["global"] is True
        assert refused.headers["X-RateLimit-Global"] == "true"
        assert refused.headers["X-RateLimit-Scope"] == "global"


@pytest.mark.parametrize("global_", [False, True])
def test_a_429_storm_answers_the_next_posts_and_then_ends(
    discord_fake: DiscordFake, http: requests.Session, global_: bool
) -> None:
    discord_fake.storm_429(2, retry_after=0.125, global_=global_)
    first, second, third = (post_bot(http, discord_fake, {"content": "x"}) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.json() == {
        "message": "You are being rate limited.",
        "retry_after": 0.125,
        "global": global_,
    }
    assert first.headers["Retry-After"] == "1"
    assert first.headers["X-RateLimit-Scope"] == ("global" if global_ else "user")
    assert len(discord_fake.messages(CHANNEL)) == 1
    assert discord_fake.statistics().answered_429 == 2


def test_fail_5xx_answers_an_html_page_and_creates_nothing(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    discord_fake.fail_5xx(2, status=503)
    answers = [post_bot(http, discord_fake, {"content": "x"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["Content-Type"] == "text/html"
    assert len(discord_fake.messages(CHANNEL)) == 1


def test_a_reset_connection_gets_no_answer_and_creates_nothing(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    discord_fake.reset_connections(1)
    with pytest.raises(requests.ConnectionError):
        post_bot(http, discord_fake, {"content": "x"})
    assert discord_fake.messages(CHANNEL) == []
    assert discord_fake.requests()[-1].status == 0
    assert post_bot(http, discord_fake, {"content": "x"}).status_code == 200


def test_a_reset_after_create_loses_the_answer_but_not_the_message(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    discord_fake.reset_connections(1, after_create=True)
    with pytest.raises(requests.ConnectionError):
        post_bot(http, discord_fake, {"content": "x"})
    assert len(discord_fake.messages(CHANNEL)) == 1


def test_slow_after_create_answers_after_the_client_gave_up(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    discord_fake.slow_after_create(1, delay_s=30.0)
    with pytest.raises(requests.ReadTimeout):
        post_bot(http, discord_fake, {"content": "x"}, timeout=0.2)
    assert len(discord_fake.messages(CHANNEL)) == 1
    assert discord_fake.requests()[-1].fault == "slow_after_create"


def test_stop_is_prompt_with_a_held_answer_and_an_idle_kept_alive_connection(
    clock: FakeClock,
) -> None:
    discord_fake = DiscordFake(clock=clock).start()
    with requests.Session() as http:
        post_bot(http, discord_fake, {"content": "keeps the connection open"})
        discord_fake.slow_after_create(1, delay_s=60.0)
        with pytest.raises(requests.ReadTimeout):
            post_bot(http, discord_fake, {"content": "held"}, timeout=0.2)
        started = time.monotonic()
        discord_fake.stop()
        assert time.monotonic() - started < 2.0
    discord_fake.stop()


def test_unknown_paths_are_404_and_other_methods_405(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    assert http.post(f"{discord_fake.base_url}/nowhere", json={}, timeout=5).status_code == 404
    got = http.get(f"{discord_fake.base_url}/channels/{CHANNEL}/messages", timeout=5)
    assert got.status_code == 405


def test_the_request_log_masks_webhook_tokens(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    url = discord_fake.add_webhook(CHANNEL, webhook_id="9001", token="very-secret-token")
    http.post(url, json={"content": "x"}, timeout=5)
    logged = discord_fake.requests()[-1]
    assert (logged.path, logged.status) == ("/api/webhooks/9001/***", 204)
    assert "very-secret-token" not in repr(discord_fake.requests())


def test_stored_messages_and_the_log_are_bounded(clock: FakeClock, http: requests.Session) -> None:
    with DiscordFake(clock=clock, max_messages=2, max_log=3, bucket_limit=100) as discord_fake:
        for n in range(4):
            post_bot(http, discord_fake, {"content": str(n)})
        assert [m["content"] for m in discord_fake.messages(CHANNEL)] == ["2", "3"]
        stats = discord_fake.statistics()
        assert (stats.messages, stats.max_messages, stats.messages_dropped) == (2, 2, 2)
        assert (stats.log_size, stats.max_log, stats.requests) == (3, 3, 4)
        assert stats.by_status == {200: 4}


def test_base_url_needs_a_started_fake() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = DiscordFake().base_url


def test_a_channel_set_forbidden_or_missing_refuses_reading_and_posting(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    bot = {"Authorization": f"Bot {discord_fake.bot_token}"}
    channel = http.get(f"{discord_fake.base_url}/channels/{CHANNEL}", headers=bot, timeout=5)
    assert (channel.status_code, channel.json()["id"]) == (200, CHANNEL)
    assert http.get(f"{discord_fake.base_url}/channels/{CHANNEL}", timeout=5).status_code == 401
    cases: tuple[tuple[ChannelAccess, int, int], ...] = (
        ("forbidden", 403, 50001),
        ("missing", 404, 10003),
    )
    for access, status, code in cases:
        discord_fake.set_channel_access(CHANNEL, access)
        read = http.get(f"{discord_fake.base_url}/channels/{CHANNEL}", headers=bot, timeout=5)
        posted = post_bot(http, discord_fake, {"content": "hello"})
        assert (read.status_code, read.json()["code"]) == (status, code)
        assert (posted.status_code, posted.json()["code"]) == (status, code)
    assert discord_fake.messages(CHANNEL) == []


def test_a_webhook_can_be_read_until_it_is_deleted(
    discord_fake: DiscordFake, http: requests.Session
) -> None:
    url = discord_fake.add_webhook(CHANNEL)
    read = http.get(url, timeout=5)
    assert (read.status_code, read.json()["channel_id"]) == (200, CHANNEL)
    assert http.get(url + "x", timeout=5).status_code == 401
    discord_fake.delete_webhook()
    assert http.get(url, timeout=5).json()["code"] == 10015
