"""Specifications of the OTP-style supervision library."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pykka
import pytest

from supervision import (
    ActorContext,
    ActorUnavailableError,
    Backoff,
    BoundedMailbox,
    ChildSpec,
    Crash,
    GetStatus,
    MailboxFullError,
    MailboxSpec,
    OverflowPolicy,
    Restart,
    Strategy,
    SupervisedActor,
    SupervisionTree,
    SupervisorSpec,
    Timers,
    TreeStartError,
    render_tree,
)
from tests.support.waiting import wait_for

FAST = Backoff(0.001, 0.01, jitter=0.0)


class Journal:
    """Records lifecycle events from every actor, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[str] = []
        self.gate = threading.Event()

    def add(self, entry: str) -> None:
        with self.lock:
            self.entries.append(entry)

    def count(self, entry: str) -> int:
        with self.lock:
            return self.entries.count(entry)

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.entries)


class Worker(SupervisedActor):
    def __init__(
        self, ctx: ActorContext, journal: Journal, fail_start: threading.Event | None = None
    ) -> None:
        super().__init__(ctx)
        self.journal = journal
        self.fail_start = fail_start

    def on_start(self) -> None:
        if self.fail_start is not None and self.fail_start.is_set():
            msg = f"{self.name} cannot start"
            raise RuntimeError(msg)
        self.journal.add(f"start:{self.name}")

    def on_stop(self) -> None:
        self.journal.add(f"stop:{self.name}")

    def on_receive(self, message: Any) -> Any:  # noqa: PLR0911 -- one dispatch table
        if message == "boom":
            msg = "a bug"
            raise ValueError(msg)
        if message == "quit":
            self.stop()
            return None
        if message == "block":
            self.journal.gate.wait(10)
            return None
        if message == "start_timers":
            self.timers.send_after(0.01, "once")
            return self.timers.send_interval(0.01, "tick")
        if message == "probe_later":
            return self.timers.send_after(0.05, "probe")
        if message == "arm":
            return self.timers.send_after(0.05, "once"), self.timers.send_interval(0.01, "tick")
        if message == "hang":
            self.journal.gate.wait(30)
            return None
        self.journal.add(f"{self.name}:{message}")
        return message

    def status(self) -> dict[str, Any]:
        return {"name": self.name}


def worker(
    name: str,
    journal: Journal,
    *,
    restart: Restart = Restart.PERMANENT,
    fail_start: threading.Event | None = None,
    mailbox: MailboxSpec | None = None,
    shutdown_s: float = 5.0,
) -> ChildSpec:
    return ChildSpec(
        name=name,
        start=lambda ctx: Worker.start(ctx, journal, fail_start),
        restart=restart,
        mailbox=mailbox or MailboxSpec(100),
        shutdown_s=shutdown_s,
    )


def tree_of(
    children: Sequence[ChildSpec],
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    max_restarts: int = 10,
    max_seconds: float = 5.0,
) -> SupervisionTree:
    return SupervisionTree(
        SupervisorSpec("root", children, strategy, max_restarts, max_seconds, backoff=FAST)
    )


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def trees() -> Iterator[list[SupervisionTree]]:
    started: list[SupervisionTree] = []
    yield started
    for tree in started:
        tree.stop(timeout_s=10)
    pykka.ActorRegistry.stop_all(timeout=5)


def run(trees: list[SupervisionTree], tree: SupervisionTree) -> SupervisionTree:
    trees.append(tree)
    return tree.start()


def restarts(tree: SupervisionTree, name: str) -> int:
    node = tree.snapshot().find(name)
    assert node is not None
    return node.restarts


def running(tree: SupervisionTree, name: str) -> bool:
    node = tree.snapshot().find(name)
    return node is not None and node.state == "running"


def test_children_start_in_order_and_stop_in_reverse(journal: Journal) -> None:
    tree = tree_of([worker("a", journal), worker("b", journal), worker("c", journal)])
    tree.start()
    tree.stop()
    assert journal.snapshot() == [
        "start:a",
        "start:b",
        "start:c",
        "stop:c",
        "stop:b",
        "stop:a",
    ]


def test_crashed_worker_is_restarted_under_its_stable_name(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    tree = run(trees, tree_of([worker("a", journal)]))
    first = tree.registry.require("a")
    tree.registry.tell("a", "boom")
    wait_for(lambda: restarts(tree, "a") == 1 and running(tree, "a"))
    assert tree.registry.require("a") is not first
    assert tree.registry.ask("a", "hello") == "hello"
    assert journal.count("a:hello") == 1


def test_restart_latency_is_within_100_ms_plus_backoff(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    tree = run(trees, tree_of([worker("a", journal)], max_restarts=100, max_seconds=1))
    for _ in range(5):
        before = tree.registry.require("a")
        crashed_at = time.monotonic()
        tree.registry.tell("a", Crash())
        wait_for(lambda: (r := tree.registry.lookup("a")) is not None and r is not before)  # noqa: B023
        tree.registry.ask("a", "ping")
        # FAST's largest backoff is 10 ms; the bound is generous to catch a hang only.
        assert time.monotonic() - crashed_at < 0.1 + 0.01 + 0.4


def test_message_sent_by_name_while_restarting_is_refused_not_lost_silently(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    slow = SupervisionTree(
        SupervisorSpec("root", [worker("a", journal)], backoff=Backoff(0.3, 0.3, jitter=0))
    )
    run(trees, slow)
    slow.registry.tell("a", "boom")
    wait_for(lambda: slow.registry.lookup("a") is None)
    with pytest.raises(ActorUnavailableError):
        slow.registry.tell("a", "lost?")
    wait_for(lambda: running(slow, "a"))


def test_exception_in_ask_goes_to_the_caller_and_then_restarts_the_actor(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    tree = run(trees, tree_of([worker("a", journal)]))
    with pytest.raises(ValueError, match="a bug"):
        tree.registry.ask("a", "boom")
    wait_for(lambda: restarts(tree, "a") == 1 and running(tree, "a"))
    node = tree.snapshot().find("a")
    assert node is not None
    assert node.last_failure is not None
    assert node.last_failure.type == "CrashedAfterAskError"


def test_one_for_one_restarts_only_the_failed_child(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    tree = run(trees, tree_of([worker("a", journal), worker("b", journal)]))
    tree.registry.tell("a", "boom")
    wait_for(lambda: restarts(tree, "a") == 1 and running(tree, "a"))
    assert restarts(tree, "b") == 0
    assert journal.count("start:b") == 1


def test_one_for_all_restarts_every_child(journal: Journal, trees: list[SupervisionTree]) -> None:
    children = [worker("a", journal), worker("b", journal), worker("c", journal)]
    tree = run(trees, tree_of(children, Strategy.ONE_FOR_ALL))
    tree.registry.tell("b", "boom")
    wait_for(lambda: all(running(tree, n) and restarts(tree, n) == 1 for n in "abc"))
    assert journal.count("stop:a") == journal.count("stop:c") == 1
    entries = journal.snapshot()
    # The survivors were stopped in reverse order, then all restarted in order.
    assert entries.index("stop:c") < entries.index("stop:a")
    assert entries[-3:] == ["start:a", "start:b", "start:c"]


def test_rest_for_one_restarts_the_child_and_those_started_after_it(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    children = [worker("a", journal), worker("b", journal), worker("c", journal)]
    tree = run(trees, tree_of(children, Strategy.REST_FOR_ONE))
    tree.registry.tell("b", "boom")
    wait_for(lambda: running(tree, "b") and running(tree, "c") and restarts(tree, "c") == 1)
    assert restarts(tree, "a") == 0
    assert journal.count("start:a") == 1
    assert journal.count("start:c") == 2


def test_permanent_child_is_restarted_after_a_normal_exit(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    tree = run(trees, tree_of([worker("a", journal, restart=Restart.PERMANENT)]))
    tree.registry.tell("a", "quit")
    wait_for(lambda: restarts(tree, "a") == 1 and running(tree, "a"))


def test_transient_child_is_restarted_only_after_an_abnormal_exit(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    tree = run(trees, tree_of([worker("a", journal, restart=Restart.TRANSIENT)]))
    tree.registry.tell("a", "boom")
    wait_for(lambda: restarts(tree, "a") == 1 and running(tree, "a"))
    tree.registry.tell("a", "quit")
    wait_for(lambda: (node := tree.snapshot().find("a")) is not None and node.state == "stopped")
    assert restarts(tree, "a") == 1


def test_temporary_child_is_never_restarted_not_even_by_one_for_all(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    children = [worker("a", journal, restart=Restart.TEMPORARY), worker("b", journal)]
    tree = run(trees, tree_of(children, Strategy.ONE_FOR_ALL))
    tree.registry.tell("b", "boom")
    wait_for(lambda: restarts(tree, "b") == 1 and running(tree, "b"))
    node = tree.snapshot().find("a")
    assert node is not None
    assert node.state == "stopped"
    assert journal.count("start:a") == 1


def test_exceeding_restart_intensity_makes_the_root_give_up(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    tree = run(trees, tree_of([worker("a", journal), worker("b", journal)], max_restarts=2))
    for crash in (1, 2):
        tree.registry.tell("a", "boom")
        wait_for(lambda: restarts(tree, "a") == crash and running(tree, "a"))  # noqa: B023
    tree.registry.tell("a", "boom")
    assert tree.failed.wait(5)
    assert tree.failure is not None
    assert tree.failure.type == "RestartIntensityError"
    # Giving up stops every child that still runs, in reverse order.
    assert journal.snapshot()[-1] == "stop:b"
    assert not tree.running


def test_nested_supervisor_escalates_to_its_parent_which_restarts_it(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    inner = SupervisorSpec(
        "inner", [worker("x", journal)], max_restarts=1, max_seconds=5, backoff=FAST
    )
    tree = run(trees, tree_of([worker("a", journal), inner.as_child()]))
    tree.registry.tell("x", "boom")
    wait_for(lambda: restarts(tree, "x") == 1 and running(tree, "x"))
    tree.registry.tell("x", "boom")  # the second restart within 5 s: inner gives up
    wait_for(lambda: restarts(tree, "inner") == 1 and running(tree, "inner"))
    wait_for(lambda: running(tree, "x"))
    node = tree.snapshot().find("inner")
    assert node is not None
    assert node.last_failure is not None
    assert node.last_failure.type == "RestartIntensityError"
    assert restarts(tree, "a") == 0
    assert tree.registry.ask("x", "after") == "after"


def test_failing_on_start_is_a_failed_start_not_a_silent_stop(journal: Journal) -> None:
    broken = threading.Event()
    broken.set()
    tree = tree_of([worker("a", journal), worker("b", journal, fail_start=broken)])
    with pytest.raises(TreeStartError, match="b cannot start"):
        tree.start()
    assert journal.snapshot() == ["start:a", "stop:a"]
    assert not tree.running


def test_on_start_failure_during_a_restart_counts_against_intensity(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    broken = threading.Event()
    tree = run(trees, tree_of([worker("a", journal, fail_start=broken)], max_restarts=3))
    broken.set()
    tree.registry.tell("a", "boom")
    assert tree.failed.wait(5)
    node = tree.snapshot().find("a")
    assert node is not None
    assert node.last_failure is not None
    assert node.last_failure.message == "a cannot start"


def test_restart_backoff_grows_for_a_crash_loop(trees: list[SupervisionTree]) -> None:
    journal = Journal()
    spec = SupervisorSpec(
        "root",
        [worker("a", journal)],
        max_restarts=10,
        max_seconds=5,
        backoff=Backoff(0.02, 1.0, jitter=0),
    )
    tree = run(trees, SupervisionTree(spec))
    gaps: list[float] = []
    for _ in range(4):
        wait_for(lambda: running(tree, "a"))
        crashed = time.monotonic()
        tree.registry.tell("a", "boom")
        wait_for(lambda: restarts(tree, "a") > len(gaps) and running(tree, "a"))
        gaps.append(time.monotonic() - crashed)
    # Ceilings 20, 40, 80, 160 ms: each restart waits at least its backoff.
    for gap, floor in zip(gaps, [0.02, 0.04, 0.08, 0.16], strict=True):
        assert gap >= floor


def test_full_bounded_mailbox_never_blocks_stop(journal: Journal) -> None:
    tree = tree_of([worker("a", journal, mailbox=MailboxSpec(2, OverflowPolicy.BLOCK))])
    tree.start()
    ref = tree.registry.require("a")
    ref.tell("block")  # the actor is now busy until the gate opens
    wait_for(lambda: ref.actor_inbox.statistics().size == 0)  # type: ignore[attr-defined]
    ref.tell(1)
    ref.tell(2)
    producer = threading.Thread(target=lambda: _tell_quietly(ref, 3), daemon=True)
    producer.start()  # blocks: the mailbox is full
    wait_for(lambda: ref.actor_inbox.statistics().blocked_puts == 1)  # type: ignore[attr-defined]
    stopping = threading.Thread(target=tree.stop, daemon=True)
    stopping.start()
    # stop() is queued on the control lane; it only needs the current handler to end.
    journal.gate.set()
    stopping.join(5)
    assert not stopping.is_alive()
    producer.join(5)
    assert not producer.is_alive()


def _tell_quietly(ref: pykka.ActorRef[Any], message: Any) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


@pytest.mark.parametrize(
    ("policy", "survivors"),
    [(OverflowPolicy.DROP_OLDEST, [2, 3]), (OverflowPolicy.DROP_NEWEST, [1, 2])],
)
def test_drop_policies_keep_the_bound_and_count_drops(
    journal: Journal, trees: list[SupervisionTree], policy: OverflowPolicy, survivors: list[int]
) -> None:
    tree = run(trees, tree_of([worker("a", journal, mailbox=MailboxSpec(2, policy))]))
    ref = tree.registry.require("a")
    ref.tell("block")
    wait_for(lambda: ref.actor_inbox.statistics().size == 0)  # type: ignore[attr-defined]
    for value in (1, 2, 3):
        ref.tell(value)
    stats = ref.actor_inbox.statistics()  # type: ignore[attr-defined]
    assert (stats.size, stats.dropped, stats.high_water) == (2, 1, 2)
    journal.gate.set()
    wait_for(lambda: len([e for e in journal.snapshot() if e.startswith("a:")]) == 2)
    assert [e for e in journal.snapshot() if e.startswith("a:")] == [f"a:{n}" for n in survivors]


def test_reject_policy_raises_in_the_sender_and_a_dropped_ask_fails_its_future(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    spec = MailboxSpec(1, OverflowPolicy.REJECT)
    tree = run(trees, tree_of([worker("a", journal, mailbox=spec)]))
    ref = tree.registry.require("a")
    ref.tell("block")
    wait_for(lambda: ref.actor_inbox.statistics().size == 0)  # type: ignore[attr-defined]
    ref.tell(1)
    with pytest.raises(MailboxFullError):
        ref.tell(2)
    assert ref.actor_inbox.statistics().rejected == 1  # type: ignore[attr-defined]
    # Status probes ride the control lane: answered although the mailbox is full.
    future = ref.ask(GetStatus(), block=False)
    journal.gate.set()
    assert future.get(timeout=5) == {"name": "a"}


def test_stuck_actor_is_reported_and_abandoned_on_shutdown(journal: Journal) -> None:
    tree = tree_of([worker("a", journal), worker("stuck", journal, shutdown_s=0.2)])
    tree.start()
    tree.registry.tell("stuck", "hang")
    inbox = tree.registry.require("stuck").actor_inbox
    wait_for(lambda: inbox.statistics().size == 0)  # type: ignore[attr-defined]
    started = time.monotonic()
    stuck = tree.stop(timeout_s=10)
    assert stuck == ["stuck"]
    assert time.monotonic() - started < 5
    assert journal.count("stop:a") == 1
    journal.gate.set()  # let the abandoned thread end


def test_timers_deliver_once_and_periodically_and_stop_with_the_actor(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    tree = run(trees, tree_of([worker("a", journal)]))
    handle = tree.registry.ask("a", "start_timers")
    wait_for(lambda: journal.count("a:once") == 1 and journal.count("a:tick") >= 3)
    tree.registry.tell("a", "boom")
    wait_for(lambda: running(tree, "a") and restarts(tree, "a") == 1)
    assert handle.cancelled
    ticks = journal.count("a:tick")
    # Five tick intervals later (measured by a fresh timer), no old tick arrived.
    tree.registry.ask("a", "probe_later")
    wait_for(lambda: journal.count("a:probe") == 1)
    assert journal.count("a:tick") == ticks


def test_a_timer_firing_into_a_full_mailbox_still_reaches_its_actor_after_what_was_queued(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    tree = run(
        trees, tree_of([worker("a", journal, mailbox=MailboxSpec(2, OverflowPolicy.REJECT))])
    )
    once, tick = tree.registry.ask("a", "arm")
    inbox = tree.registry.require("a").actor_inbox
    tree.registry.tell("a", "block")
    wait_for(lambda: inbox.statistics().size == 0)  # type: ignore[attr-defined]
    tree.registry.tell("a", "m1")
    tree.registry.tell("a", "m2")
    with pytest.raises(MailboxFullError):
        tree.registry.tell("a", "m3")
    # Stuck with a full mailbox: the one-shot is queued, the ticks coalesce into one.
    wait_for(lambda: once.fired == 1 and tick.coalesced >= 5)
    assert inbox.statistics().timers == 2  # type: ignore[attr-defined]
    assert inbox.statistics().size == 2  # type: ignore[attr-defined]
    journal.gate.set()
    wait_for(lambda: journal.count("a:once") == 1 and journal.count("a:tick") >= 2)
    entries = journal.snapshot()
    assert entries.index("a:m2") < entries.index("a:once")
    assert entries.count("a:m3") == 0


def test_snapshot_shows_state_restarts_failure_and_mailbox(
    journal: Journal, trees: list[SupervisionTree]
) -> None:
    inner = SupervisorSpec("inner", [worker("x", journal)], backoff=FAST)
    tree = run(trees, tree_of([worker("a", journal), inner.as_child()]))
    tree.registry.tell("x", "boom")
    wait_for(lambda: restarts(tree, "x") == 1 and running(tree, "x"))
    data = tree.snapshot().as_dict()
    assert [c["name"] for c in data["children"]] == ["a", "inner"]
    x = data["children"][1]["children"][0]
    assert x["name"] == "x"
    assert x["kind"] == "worker"
    assert x["restarts"] == 1
    assert x["last_failure"]["type"] == "ValueError"
    assert x["mailbox"]["capacity"] == 100
    text = render_tree(data)
    assert "└── inner" in text
    assert "restarts=1" in text
    assert "ValueError: a bug" in text


class _BrokenMailbox(BoundedMailbox):
    def put_timer(self, envelope: Any) -> bool:
        msg = "a broken mailbox"
        raise RuntimeError(msg)


def test_a_timer_that_fails_to_fire_does_not_stop_the_others() -> None:
    broken = Timers(_BrokenMailbox())
    working_mailbox = BoundedMailbox()
    working = Timers(working_mailbox)
    broken.send_after(0.0, "lost")
    handle = working.send_after(0.02, "kept")
    wait_for(lambda: handle.fired == 1)
    assert working_mailbox.statistics().timers == 1
    working.cancel_all()
