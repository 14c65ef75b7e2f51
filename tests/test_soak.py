"""The soak, one minute long: every fault on its schedule, nothing lost or posted twice.

``app.benchmark.soak`` scales a one-minute soak so that the reference for memory
growth is second 20 (minute 2 of a long soak) and every fault recurs within
the minute: the kills server and the map server drop every socket, Discord
answers bursts of 429s, the map churns.
"""

from __future__ import annotations

import pytest

from app.benchmark.soak import MAX_RSS_GROWTH, run_soak


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
