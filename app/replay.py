"""``run.py events`` and ``run.py replay``: reading the journal back.

Replay runs the selected events through the *same* actors as the live system
(journal -> dedup -> flow_control -> router -> handlers): they are copied
into a temporary journal, and a pipeline is started on it and stopped once
its checkpoint has reached the last event. So a replay makes exactly the
routing decisions the live run made. Notifications go to the console (with a
ledger of its own, so everything prints) unless ``--notify``, which uses the
configured sinks and the real ledger: what was sent is never sent again.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors import dedup, flow_control, journal, router
from actors.protocol import Names
from app.system import supervisor
from realtime.config import Config
from realtime.event import Event
from realtime.journal_store import JournalStore
from supervision import ChildSpec, GetStatus, SupervisionTree

logger = logging.getLogger(__name__)

PAGE = 5000


@dataclass(frozen=True, slots=True)
class Selection:
    """Which journal events to read (the filters of docs/cli.md)."""

    since_seq: int | None = None
    since_time: float | None = None
    until_seq: int | None = None
    until_time: float | None = None
    types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    limit: int | None = None


def read_journal(path: Path, selection: Selection) -> Iterator[Event]:
    """The selected events of the journal at ``path``, oldest first, read in pages.

    Opens the database read-only: a running instance may keep writing.
    """
    with JournalStore.open(path, read_only=True) as store:
        after = max(0, (selection.since_seq or 1) - 1)
        remaining = selection.limit
        while remaining is None or remaining > 0:
            page = store.read(
                after,
                PAGE if remaining is None else min(PAGE, remaining),
                until_seq=selection.until_seq,
                types=selection.types or None,
                sources=selection.sources or None,
                since_time=selection.since_time,
                until_time=selection.until_time,
            )
            if not page:
                return
            yield from page
            after = page[-1].committed_seq
            if remaining is not None:
                remaining -= len(page)


HandlerSpecs = Callable[[Config], Sequence[ChildSpec]]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    events: int
    decisions: dict[str, int]
    outcomes: dict[str, int]
    seconds: float


def replay(
    config: Config,
    events: Iterable[Event],
    handlers: HandlerSpecs,
    *,
    notify: bool = False,
    timeout_s: float = 3600.0,
) -> ReplayResult:
    """Run ``events`` through a fresh pipeline; returns its decisions.

    ``handlers`` builds the ``tracking`` and ``notifier`` child specs for the
    replay's configuration (whose ``data_dir`` is a temporary directory).
    """
    with tempfile.TemporaryDirectory(prefix="replay-") as scratch:
        replay_config = _replay_config(config, Path(scratch), notify=notify)
        count = _seed(journal.journal_path(replay_config), events)
        started = time.monotonic()
        stages = [
            dedup.child_spec(replay_config),
            flow_control.child_spec(replay_config),
            router.child_spec(replay_config),
            *handlers(replay_config),
        ]
        root = supervisor(
            replay_config,
            Names.ROOT,
            [
                journal.child_spec(replay_config),
                supervisor(replay_config, Names.PIPELINE, stages).as_child(),
            ],
        )
        tree = SupervisionTree(root).start()
        try:
            status = _wait_done(tree, count, timeout_s)
            decisions = dict(tree.registry.ask(Names.ROUTER, GetStatus(), 10)["decisions"])
        finally:
            tree.stop()
        return ReplayResult(
            events=count,
            decisions=decisions,
            outcomes=dict(status.get("outcomes", {})),
            seconds=time.monotonic() - started,
        )


def _replay_config(config: Config, scratch: Path, *, notify: bool) -> Config:
    replaced: dict[str, Any] = {"app": dataclasses.replace(config.app, data_dir=str(scratch))}
    if not notify:
        replaced["notify"] = dataclasses.replace(config.notify, sinks=("console",))
    return dataclasses.replace(config, **replaced)


def _seed(path: Path, events: Iterable[Event]) -> int:
    count = 0
    batch: list[Event] = []
    with JournalStore.open(path) as store:
        for event in events:
            batch.append(dataclasses.replace(event, seq=None))
            if len(batch) == PAGE:
                count += len(store.append(batch))
                batch.clear()
        if batch:
            count += len(store.append(batch))
    return count


def _wait_done(tree: SupervisionTree, count: int, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status: dict[str, Any] = dict(tree.registry.ask(Names.JOURNAL, GetStatus(), 10))
        # The checkpoint moves when the last event settles; its outcome is
        # counted once written, with the commit after it.
        if status.get("checkpoint", 0) >= count and not status.get("unwritten_outcomes"):
            return status
        if tree.failed.is_set() or time.monotonic() > deadline:
            msg = f"replay stopped at seq {status.get('checkpoint')} of {count}"
            raise RuntimeError(msg)
        time.sleep(0.05)
