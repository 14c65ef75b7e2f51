"""The console sink (the default): one line per notification, marked sent at once."""

from __future__ import annotations

import io
import time
from pathlib import Path

from actors import notifier
from actors.protocol import Names
from realtime.config import KillNotifyConfig
from realtime.ledger import Ledger
from realtime.notifications import Notification, kill_notification
from realtime.render import console_line
from realtime.tracking import TrackedSnapshot
from supervision import GetStatus
from tests.support.notifier import (
    HOME,
    KSPACE,
    app_config,
    database,
    handle,
    kill_event,
    killmail,
    ledger_states,
    map_event,
    pipeline,
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_each_notification_is_one_plain_line_marked_sent_at_once(tmp_path: Path) -> None:
    config = app_config(tmp_path, sinks=("console",))
    stream = io.StringIO()
    with pipeline(config, stdout=stream) as tree:
        events = [kill_event(killmail(3001), 1), kill_event(killmail(3002), 2)]
        assert handle(tree, events) == 2
        assert handle(tree, events) == 0
        status = tree.registry.ask(Names.NOTIFIER, GetStatus())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("KILL      Rifter destroyed in J100005 | Victim Pilot lost a Rifter")
    assert "https://zkillboard.com/kill/3001/" in lines[0]
    assert "\x1b[" not in stream.getvalue()
    assert status["sent"] == 2
    assert status["sinks"]["console"] == {"state": "running", "colour": False}
    assert ledger_states(database(config)) == {"sent": 2}


def test_a_terminal_gets_colour(tmp_path: Path) -> None:
    config = app_config(tmp_path, sinks=("console",))
    stream = Terminal()
    with pipeline(config, stdout=stream) as tree:
        handle(tree, [kill_event(killmail(3003), 1)])
    assert stream.getvalue().startswith("\x1b[")


def test_a_line_claimed_but_not_printed_before_a_crash_is_printed_at_the_next_start(
    tmp_path: Path,
) -> None:
    config = app_config(tmp_path, sinks=("console",))
    stream = io.StringIO()
    with pipeline(config, stdout=stream) as tree:
        handle(tree, [kill_event(killmail(3004), 1)])
    # what a crash between the claim and the print leaves behind
    view = TrackedSnapshot.of({HOME: "J100005"}, {})
    lost = kill_notification(
        kill_event(killmail(3005), 2), view, KillNotifyConfig(), 3600.0, time.time()
    )
    assert isinstance(lost, Notification)
    with Ledger.open(database(config)) as ledger:
        ledger.claim("console", "kill:3005", 2, notifier.ConsoleSink.payload(lost))
    stream = io.StringIO()
    with pipeline(config, stdout=stream) as tree:
        # the journal redelivers both after the crash: neither is claimed again
        handle(tree, [kill_event(killmail(3004), 1), kill_event(killmail(3005), 2)])
    assert stream.getvalue() == console_line(lost, colour=False) + "\n"
    assert ledger_states(database(config)) == {"sent": 2}


def test_a_kill_is_decided_with_what_tracking_applied_before_answering(tmp_path: Path) -> None:
    config = app_config(tmp_path, sinks=("console",))
    stream = io.StringIO()
    added = map_event("add_system", {"solar_system_id": KSPACE, "name": "Jita"}, 1)
    kill = kill_event(killmail(3006, system_id=KSPACE), 2)
    with pipeline(config, stdout=stream) as tree:
        # as the router does: tracking first, then the notifier, with no pause
        handle(tree, [added], name=Names.TRACKING)
        assert handle(tree, [added, kill]) == 2
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("SYSTEM    New system Jita on home")
    assert lines[1].startswith("KILL      Rifter destroyed in Jita")
