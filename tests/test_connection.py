"""SourceConnection and ReaderThread: the lifecycle every source shares, with a toy protocol.

The toy connection's reader "connects" without I/O, then either raises (as a
bug, or input a decoder did not catch, would) or waits until it is retired.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pykka
import pytest

from actors.connection import (
    ConnectionMessage,
    Ended,
    ReaderThread,
    SourceConnection,
)
from actors.source_support import IngestGate
from realtime.circuit import CircuitBreaker, ReconnectPolicy
from realtime.config import SourcesConfig
from realtime.health import ConnectionHealth
from supervision import ActorContext, Backoff, ChildSpec, GetStatus, MailboxSpec, SupervisionTree
from tests.support.source_neighbours import JournalLog, Trees, journal_spec
from tests.support.source_neighbours import trees as start_trees
from tests.support.waiting import wait_for

NAME = "toy"
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Up(ConnectionMessage):
    pass


class _ToyReader(ReaderThread):
    def __init__(
        self, owner: pykka.ActorRef[Any], generation: int, gate: IngestGate, crash: bool
    ) -> None:
        super().__init__(owner, generation, f"{NAME}-reader-{generation}", gate)
        self._crash = crash
        self._retired = threading.Event()

    def abort(self) -> None:
        super().abort()
        self._retired.set()

    def run(self) -> Ended:
        if self._crash:
            digits = "9" * 400
            float(int(digits))  # OverflowError, as a 400-digit coordinate once raised
        self.post(_Up(self.generation))
        self._retired.wait()
        return Ended("connection_lost", "retired")


class _Toy(SourceConnection):
    def __init__(self, ctx: ActorContext, crashes: int) -> None:
        rand = random.Random(3).random
        super().__init__(
            ctx,
            log=logger,
            health=ConnectionHealth(ctx.name, "sse", now=time.monotonic(), silence_timeout_s=60.0),
            policy=ReconnectPolicy(
                Backoff(0.05, 0.2, jitter=0.0), CircuitBreaker(100, 1.0), rand=rand
            ),
            target="nowhere",
            tick_s=0.05,
            sources=SourcesConfig(journal_wait_max_s=0.01, resend_min_s=0.05, resend_max_s=0.2),
            rand=rand,
        )
        self._crashes_left = crashes
        self.attempts_at: list[float] = []

    def _new_reader(self, generation: int) -> ReaderThread:
        self.attempts_at.append(time.monotonic())
        crash = self._crashes_left > 0
        self._crashes_left -= 1
        return _ToyReader(self.actor_ref, generation, self._journal.gate, crash)

    def _on_connection_message(self, message: ConnectionMessage) -> None:
        if isinstance(message, _Up):
            self._live(time.monotonic())

    def _protocol_status(self) -> dict[str, Any]:
        return {"attempts_at": list(self.attempts_at)}


@pytest.fixture
def trees() -> Iterator[Trees]:
    yield from start_trees()


def toy(crashes: int) -> ChildSpec:
    return ChildSpec(
        name=NAME, start=lambda ctx: _Toy.start(ctx, crashes), mailbox=MailboxSpec(100)
    )


def status(tree: SupervisionTree) -> dict[str, Any]:
    answer = tree.registry.ask(NAME, GetStatus())
    assert isinstance(answer, dict)
    return answer


def test_a_reader_thread_that_raises_reaches_its_actor_which_reconnects_with_backoff(
    trees: Trees, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger=__name__):
        tree = trees.start([journal_spec(JournalLog()), toy(crashes=3)])
        wait_for(
            lambda: status(tree)["connection"]["state"] == "connected",
            what="connected after the crashes",
        )
    report = status(tree)
    assert report["reconnect"]["reader_crashes"] == 3
    assert report["connection"]["errors"]["reader_crashed"] == 3
    attempts = report["attempts_at"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(attempts) == 4
    assert gaps[1] > gaps[0] >= 0.05  # the backoff grows
    crash_lines = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    assert len(crash_lines) == 3
    assert "OverflowError" in crash_lines[0]
    assert "Traceback" in crash_lines[0]
    assert not [t for t in threading.enumerate() if t.name.startswith(f"{NAME}-reader-1")]
