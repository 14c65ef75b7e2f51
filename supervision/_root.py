"""The root of a supervision tree: starts it, snapshots it, stops it."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pykka

from supervision._actor import ActorContext, ExitReason, Ping
from supervision._mailbox import MailboxSpec
from supervision._registry import Registry
from supervision._supervisor import Supervisor, SupervisorSpec
from supervision._tree import TreeNode

logger = logging.getLogger(__name__)


class TreeStartError(RuntimeError):
    """The root supervisor (and so the tree) could not start."""


class SupervisionTree:
    """A running tree under one root supervisor.

    When the root gives up (restart intensity exceeded at the top, or the root
    itself crashed), :attr:`failure` is set and :attr:`failed` fires; the
    program should then exit non-zero, as an OTP node would.
    """

    def __init__(self, spec: SupervisorSpec, registry: Registry | None = None) -> None:
        self.spec = spec
        self.registry = registry or Registry()
        self.failed = threading.Event()
        self.failure: ExitReason | None = None
        self._ctx: ActorContext | None = None
        self._ref: pykka.ActorRef[Any] | None = None

    def start(self, timeout_s: float = 60.0) -> SupervisionTree:
        """Start the root and, in order, every child; returns once all are running.

        Raises:
            TreeStartError: a child failed to start; what did start was stopped.
        """
        self._ctx = ActorContext(
            name=self.spec.name,
            registry=self.registry,
            mailbox=MailboxSpec(1000),
            report_exit=self._root_exited,
        )
        self._ref = Supervisor.start(self._ctx, self.spec)
        try:
            self._ref.ask(Ping(), timeout=timeout_s)
        except pykka.ActorDeadError as error:
            reason = self._ctx.wait_exit(10.0)
            detail = reason.message if reason else "the root supervisor died during start"
            raise TreeStartError(detail) from error
        return self

    def _root_exited(self, reason: ExitReason) -> None:
        if reason.normal:
            return
        self.failure = reason
        logger.critical(
            "supervision tree %r gave up: %s: %s", self.spec.name, reason.type, reason.message
        )
        self.failed.set()

    @property
    def running(self) -> bool:
        return self._ref is not None and self._ref.is_alive()

    def snapshot(self) -> TreeNode:
        """The whole tree now; never blocks on a busy actor."""
        ctx = self._ctx
        children = ctx.describe_children() if ctx and ctx.describe_children else ()
        mailbox = None
        if self._ref is not None:
            inbox = self._ref.actor_inbox
            statistics = getattr(inbox, "statistics", None)
            mailbox = statistics() if statistics else None
        state = "running" if self.running else "stopped"
        if self.failure is not None:
            state = "failed"
        return TreeNode(
            name=self.spec.name,
            kind="supervisor",
            state=state,
            restarts=0,
            last_failure=self.failure,
            mailbox=mailbox,
            children=children,
        )

    def stop(self, timeout_s: float = 60.0) -> list[str]:
        """Stop everything in reverse start order; the names of actors left stuck."""
        ref = self._ref
        if ref is not None and ref.is_alive():
            try:
                ref.stop(block=True, timeout=timeout_s)
            except pykka.Timeout:
                logger.error("the root supervisor did not stop within %.1fs", timeout_s)
        self.registry.unregister(self.spec.name, ref)
        return [node.name for node in self.snapshot().walk() if node.stuck]

    def __enter__(self) -> SupervisionTree:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
