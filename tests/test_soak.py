"""The soak, one minute long: every fault on its schedule, nothing lost or posted twice.

``app.benchmark.soak`` scales a one-minute soak so that the reference for memory
growth is second 20 (minute 2 of a long soak) and every fault recurs within
the minute: the kills server and the map server drop every socket, Discord
answers bursts of 429s, the map churns.
"""

from __future__ import annotations

import http.server
import threading

import pytest
import requests

from app.benchmark.soak import MAX_RSS_GROWTH, read_status, run_soak


@pytest.mark.timeout(240)
def test_a_one_minute_soak_loses_no_kill_posts_none_twice_and_holds_its_memory() -> None:
    lines: list[str] = []
    report = run_soak(1.0, log=lines.append)
    summary = "\n".join(lines)
    assert report.faults.get("kills_drop_all", 0) >= 2, summary
    assert report.faults.get("map_drop_all", 0) >= 1, summary
    assert report.faults.get("discord_429_storm", 0) >= 3, summary
    assert report.discord_429 > 0, "the storms reached the notifier"
    assert report.published > 500, summary
    assert report.lost == [], f"kills never posted: {report.lost[:20]}"
    assert report.duplicated == [], f"kills posted twice: {report.duplicated[:20]}"
    assert report.rss_growth < MAX_RSS_GROWTH, summary
    last = report.samples[-1].structures
    assert last["journal_backlog"][0] == 0
    for name, (size, capacity) in last.items():
        assert size < capacity, f"{name} is full at the end: {size}/{capacity}"


def test_a_status_read_that_meets_a_reset_connection_is_asked_again() -> None:
    answers = iter([b"", b'{"journal": {"pending": 0}}'])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = next(answers)
            if not body:  # the connection closes with no answer, as a reset does
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            with requests.Session() as session:
                assert read_status(session, url) == {"journal": {"pending": 0}}
        finally:
            server.shutdown()
            thread.join(10)
