"""A notifier process killed while its sends are in flight posts each notification once."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simulator.discord_fake import DiscordFake
from tests.support.notifier import CHANNEL, ledger_states, posted_kills, settled
from tests.support.notifier_sigkill_child import FIRST_KILL
from tests.support.process import ROOT
from tests.support.waiting import wait_for

KILLS = 6


@contextmanager
def child(data_dir: Path, fake: DiscordFake, log: Path) -> Iterator[subprocess.Popen[str]]:
    with log.open("a", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.notifier_sigkill_child",
                str(data_dir),
                fake.base_url,
                fake.bot_token,
                str(KILLS),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def handled(process: subprocess.Popen[str], log: Path) -> int:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("handled "), f"{line!r}\n{log.read_text(encoding='utf-8')}"
    return int(line.split()[1])


def test_a_notifier_killed_mid_send_posts_each_notification_exactly_once(
    tmp_path: Path,
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "child.log"
    database = data_dir / "journal.sqlite3"
    with DiscordFake(bucket_limit=1000) as fake:
        # Discord creates the messages but holds every answer: sends stay in flight
        fake.slow_after_create(KILLS, 30.0)
        with child(data_dir, fake, log) as first:
            assert handled(first, log) == KILLS
            wait_for(lambda: len(fake.messages(CHANNEL)) == 2, what="two sends in flight")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        assert ledger_states(database) == {"pending": KILLS}
        fake.slow_after_create(0, 0.0)
        with child(data_dir, fake, log) as second:
            # the journal redelivers the same kills: none is claimed again
            assert handled(second, log) == 0
            settled(database, KILLS, timeout_s=10.0)
        posted = posted_kills(fake)
        nonce_hits = [request for request in fake.requests() if request.fault == "nonce_hit"]
    assert sorted(posted) == [FIRST_KILL + n for n in range(KILLS)]
    # the two created before the kill were resent with their nonce and found
    assert len(nonce_hits) == 2
    assert ledger_states(database) == {"sent": KILLS}
