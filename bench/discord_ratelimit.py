"""Posting through Discord's rate limits: the learned limits against hammering.

Concurrent workers post messages to the loopback Discord fake (a bucket of 5
requests per 0.1 s, so at most 50 messages/s) in two ways:

- ``limits``: :class:`actors.discord_http.DiscordSender` with its
  :class:`realtime.ratelimit.RateLimits`, waiting as the plan says.
- ``baseline``: the same requests posted as fast as possible, waiting only
  the ``retry_after`` of each 429 (what a client that ignores the headers does).

Printed: messages/s, its ratio to the bucket's ceiling, and the 429s each drew
(each one counts toward Discord's 10,000 invalid requests per 10 minutes).
Run: ``python -m bench.discord_ratelimit``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from actors.discord_http import DiscordSender, RetryPlan, RetryState, SendAgain
from realtime.config import DiscordConfig, Secret
from simulator.discord_fake import DiscordFake
from supervision import Backoff

CHANNEL = "424242"
MESSAGES = 200
WORKERS = 4
LIMIT = 5
WINDOW_S = 0.1


def run_workers(send_one: Callable[[int], None]) -> float:
    """Post every message over ``WORKERS`` threads; the elapsed seconds."""

    def worker(first: int) -> None:
        for n in range(first, MESSAGES, WORKERS):
            send_one(n)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def with_limits(fake: DiscordFake) -> float:
    config = DiscordConfig(
        api_base=fake.base_url,
        bot_token=Secret(fake.bot_token, "inline"),
        channel_id=CHANNEL,
        concurrency=WORKERS,
    )
    plan = RetryPlan(Backoff(0.01, 0.5), max_attempts=100)
    with DiscordSender(config) as sender:

        def send_one(n: int) -> None:
            state = RetryState()
            while True:
                result = sender.send({"content": f"kill {n}"}, f"killmail:{n}")
                decision, state = plan.decide(state, result)
                if not isinstance(decision, SendAgain):
                    return
                time.sleep(max(decision.after_s, sender.wait_s()))

        return run_workers(send_one)


def hammering(fake: DiscordFake) -> float:
    local = threading.local()
    url = f"{fake.base_url}/channels/{CHANNEL}/messages"
    headers = {"Authorization": f"Bot {fake.bot_token}"}
    sessions: list[requests.Session] = []

    def send_one(n: int) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            sessions.append(local.session)
        body = {"content": f"kill {n}", "nonce": f"killmail:{n}", "enforce_nonce": True}
        while True:
            answer = local.session.post(url, json=body, headers=headers, timeout=10)
            if answer.status_code != 429:
                return
            time.sleep(float(answer.json()["retry_after"]))

    elapsed = run_workers(send_one)
    for session in sessions:
        session.close()
    return elapsed


def measure(name: str, way: Callable[[DiscordFake], float]) -> tuple[float, int]:
    with DiscordFake(bucket_limit=LIMIT, bucket_window_s=WINDOW_S) as fake:
        elapsed = way(fake)
        stats = fake.statistics()
        assert len(fake.messages(CHANNEL)) == MESSAGES
    rate = MESSAGES / elapsed
    ceiling = LIMIT / WINDOW_S
    print(
        f"{name:9} {rate:6.1f} messages/s ({rate / ceiling:4.0%} of the {ceiling:.0f}/s bucket), "
        f"{stats.answered_429:4d} answers 429 for {MESSAGES} messages"
    )
    return rate, stats.answered_429


def main() -> None:
    print(f"{MESSAGES} messages, {WORKERS} workers, bucket {LIMIT} per {WINDOW_S} s")
    base_rate, base_429 = measure("baseline", hammering)
    rate, drew_429 = measure("limits", with_limits)
    print(f"limits/baseline: throughput x{rate / base_rate:.2f}, 429s {drew_429} vs {base_429}")


if __name__ == "__main__":
    main()
