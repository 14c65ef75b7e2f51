"""A notifier process for the SIGKILL test.

``python -m tests.support.notifier_sigkill_child DATA_DIR API_BASE BOT_TOKEN COUNT`` runs
tracking and the notifier (Discord bot mode against ``API_BASE``) on the
journal database in ``DATA_DIR``, asks the notifier to handle ``COUNT``
notifiable kills (the same ones on every run, as a journal redelivers them),
prints ``handled N`` (how many were newly claimed) and runs until it is killed.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from realtime.config import DiscordConfig, Secret
from tests.support.notifier import CHANNEL, app_config, handle, kill_event, killmail, pipeline

FIRST_KILL = 7_700_000


def main(argv: list[str]) -> None:
    data_dir, api_base, token, count = Path(argv[0]), argv[1], argv[2], int(argv[3])
    discord = DiscordConfig(
        mode="bot",
        api_base=api_base,
        bot_token=Secret(token, "inline"),
        channel_id=CHANNEL,
        request_timeout_s=60.0,
        retry_min_s=0.01,
        retry_max_s=0.05,
        concurrency=2,
    )
    config = app_config(data_dir, discord=discord)
    events = [kill_event(killmail(FIRST_KILL + n), n + 1) for n in range(count)]
    with pipeline(config) as tree:
        handled = handle(tree, events)
        sys.stdout.write(f"handled {handled}\n")
        sys.stdout.flush()
        threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
