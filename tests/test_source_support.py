"""What the source actors share: the rate-limited reject log."""

from __future__ import annotations

import logging

import pytest

from actors.source_support import RejectLog
from realtime.event import Reject
from tests.support.clocks import FakeClock

LOGGER = "tests.source_support"


def reject(reason: str) -> Reject:
    return Reject("wanderer-kills", reason, f"a {reason} frame", b"raw", 0)


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


def test_reject_log_writes_one_line_per_reason_per_minute_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(1000.0)
    log = RejectLog(logging.getLogger(LOGGER), "kills", clock=clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(5):
            log.note(reject("invalid_json"))
        log.note(reject("too_deep"))
        assert log.suppressed() == {"invalid_json": 4}
        clock.now += 59.9
        log.note(reject("invalid_json"))
        clock.now += 0.2
        log.note(reject("invalid_json"))
    written = lines(caplog)
    assert len(written) == 3
    assert "invalid_json" in written[0]
    assert "too_deep" in written[1]
    assert "(5 more of this reason not logged)" in written[2]
    assert log.suppressed() == {}


def test_reject_log_bounds_the_reasons_it_tracks(caplog: pytest.LogCaptureFixture) -> None:
    log = RejectLog(logging.getLogger(LOGGER), "kills", max_reasons=2, clock=FakeClock(1000.0))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for reason in ("a", "b", "c", "d", "e"):
            log.note(reject(reason))
    assert len(lines(caplog)) == 3  # "a", "b", then one line for all others
    assert log.suppressed() == {"other": 2}


def test_reject_log_escapes_what_came_from_outside(caplog: pytest.LogCaptureFixture) -> None:
    log = RejectLog(logging.getLogger(LOGGER), "map:demo", clock=FakeClock(1000.0))
    hostile = Reject("map:demo", "invalid_json", "add\x1b[2J\r\nFORGED LINE", b"raw", 0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        log.note(hostile)
    (line,) = lines(caplog)
    assert "add\\x1b[2J\\x0d\\x0aFORGED LINE" in line
    assert "\x1b" not in line
    assert "\n" not in line
