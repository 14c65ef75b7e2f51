"""A broken or hostile Discord answer is bounded and counted, never a crash of the notifier."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from actors.discord_http import MAX_ERROR_DEPTH, DiscordSender, Invalid, RetryAfter
from realtime.config import DiscordConfig, Secret
from realtime.ratelimit import MAX_WAIT_S
from tests.support.clocks import FakeClock

Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def answering() -> Iterator[Callable[[Answer], DiscordSender]]:
    """A loopback HTTP server that gives every POST one fixed answer, and a sender to it."""
    servers: list[ThreadingHTTPServer] = []
    senders: list[DiscordSender] = []

    def start(answer: Answer) -> DiscordSender:
        status, headers, body = answer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        config = DiscordConfig(
            mode="bot",
            api_base=f"http://127.0.0.1:{server.server_address[1]}/api/v10",
            bot_token=Secret("bot-token", "env:DISCORD_BOT_TOKEN"),
            channel_id="424242",
        )
        clock = FakeClock()
        sender = DiscordSender(config, clock=clock, wall_clock=clock)
        senders.append(sender)
        return sender

    yield start
    for sender in senders:
        sender.close()
    for server in servers:
        server.shutdown()
        server.server_close()


def nested_errors(depth: int) -> bytes:
    inner = '{"_errors": [{"code": "BASE_TYPE", "message": "too deep to read"}]}'
    return (
        b'{"message": "Invalid Form Body", "code": 50035, "errors": '
        + ('{"embeds": ' * depth + inner + "}" * depth).encode()
        + b"}"
    )


def test_an_errors_object_nested_a_thousand_deep_is_read_within_a_bound_and_counted(
    answering: Callable[[Answer], DiscordSender],
) -> None:
    sender = answering((400, {}, nested_errors(1000)))
    result = sender.send({"content": "hello"}, "nonce-1")
    assert isinstance(result, Invalid)
    assert result.reason.startswith("HTTP 400: Invalid Form Body (code 50035)")
    assert sender.statistics().answers_bounded == 1


def test_an_errors_object_within_the_bound_still_names_the_field(
    answering: Callable[[Answer], DiscordSender],
) -> None:
    sender = answering((400, {}, nested_errors(MAX_ERROR_DEPTH - 1)))
    result = sender.send({"content": "hello"}, "nonce-1")
    assert isinstance(result, Invalid)
    assert "too deep to read" in result.reason
    assert sender.statistics().answers_bounded == 0


@pytest.mark.parametrize(
    "answer",
    [
        (429, {}, b'{"message": "You are being rate limited.", "retry_after": 1e300}'),
        (429, {"Retry-After": "86400000"}, b"{}"),
    ],
)
def test_a_retry_after_beyond_any_real_wait_is_cut_to_the_bound_and_counted(
    answering: Callable[[Answer], DiscordSender], answer: Answer
) -> None:
    sender = answering(answer)
    result = sender.send({"content": "hello"}, "nonce-1")
    assert isinstance(result, RetryAfter)
    assert result.seconds == MAX_WAIT_S
    assert sender.wait_s() <= MAX_WAIT_S
    assert sender.statistics().limits.waits_capped == 1
