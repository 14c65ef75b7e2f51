"""OTP-style supervisors for :class:`~supervision.SupervisedActor` children.

Semantics follow Erlang/OTP's ``supervisor`` (see the reference notes, §3):

- children start in order, each confirmed by a handshake before the next; a
  child that fails to start during the supervisor's own start fails the
  supervisor's start (after the started ones are stopped in reverse order);
- ``permanent`` children are always restarted, ``transient`` ones only after an
  abnormal exit, ``temporary`` ones never (not even by a sibling's restart);
- ``one_for_one`` restarts the child alone, ``one_for_all`` stops the others
  (reverse order) and restarts all, ``rest_for_one`` stops and restarts the
  children started after it;
- more than ``max_restarts`` restarts within ``max_seconds`` makes the
  supervisor stop all its children (reverse order) and crash, so that its own
  supervisor decides (escalation). A failed restart attempt counts as a restart;
- unlike OTP, restarts wait for a backoff with jitter (Akka's BackoffSupervisor)
  so that a crash loop cannot spin; the delay grows with consecutive restarts
  and resets once the child has run for ``max_seconds`` without failing.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, Literal

import pykka

from supervision._actor import ActorContext, ExitReason, Ping, SupervisedActor
from supervision._backoff import Backoff
from supervision._mailbox import BoundedMailbox, Control, MailboxSpec
from supervision._tree import TreeNode

logger = logging.getLogger(__name__)


class Restart(enum.StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.StrEnum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


StartFunction = Callable[[ActorContext], pykka.ActorRef[Any]]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start, restart and stop one child.

    Attributes:
        name: the child's stable name, unique in the tree.
        start: builds and starts the actor from its context, e.g.
            ``lambda ctx: MyActor.start(ctx, settings)``.
        restart: see :class:`Restart`.
        shutdown_s: how long an ordered stop waits before abandoning the child.
        mailbox: the child's mailbox bound and overflow policy.
        kind: ``worker`` or ``supervisor`` (for the tree view).
        start_timeout_s: how long the start handshake waits for ``on_start``.
    """

    name: str
    start: StartFunction
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = 5.0
    mailbox: MailboxSpec = field(default_factory=lambda: MailboxSpec(1000))
    kind: Literal["worker", "supervisor"] = "worker"
    start_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """A supervisor: its children in start order, strategy and restart intensity."""

    name: str
    children: Sequence[ChildSpec]
    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = 3
    max_seconds: float = 5.0
    backoff: Backoff = field(default_factory=lambda: Backoff(0.01, 5.0))

    def __post_init__(self) -> None:
        names = [child.name for child in self.children]
        if len(names) != len(set(names)):
            msg = f"supervisor {self.name!r} has two children with the same name: {names}"
            raise ValueError(msg)
        if self.max_restarts < 0 or self.max_seconds <= 0:
            msg = f"supervisor {self.name!r}: need max_restarts >= 0 and max_seconds > 0"
            raise ValueError(msg)

    def as_child(self, restart: Restart = Restart.PERMANENT, shutdown_s: float = 60.0) -> ChildSpec:
        """A :class:`ChildSpec` that runs this supervisor under another one."""
        return ChildSpec(
            name=self.name,
            start=partial(_start_supervisor, self),
            restart=restart,
            shutdown_s=shutdown_s,
            mailbox=MailboxSpec(1000),
            kind="supervisor",
        )


def _start_supervisor(spec: SupervisorSpec, ctx: ActorContext) -> pykka.ActorRef[Any]:
    return Supervisor.start(ctx, spec)


class RestartIntensityError(RuntimeError):
    """A supervisor gave up: too many restarts in too short a time."""


class StartFailedError(RuntimeError):
    """A child could not be started."""


class _ChildExited(Control):
    __slots__ = ("incarnation", "name", "reason")

    def __init__(self, name: str, incarnation: int, reason: ExitReason) -> None:
        self.name = name
        self.incarnation = incarnation
        self.reason = reason


class _RestartDue(Control):
    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names


class _State(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    state: _State = _State.STOPPED
    ref: pykka.ActorRef[Any] | None = None
    ctx: ActorContext | None = None
    incarnation: int = 0
    restarts: int = 0
    consecutive: int = 0
    started_at: float = 0.0
    last_failure: ExitReason | None = None
    failed_at: float | None = None
    restart_latency_s: float | None = None
    stuck: bool = False

    @property
    def mailbox(self) -> BoundedMailbox | None:
        if self.ref is None:
            return None
        inbox = self.ref.actor_inbox
        return inbox if isinstance(inbox, BoundedMailbox) else None


class Supervisor(SupervisedActor):
    """A supervisor actor. Start it through :class:`~supervision.SupervisionTree`
    (the root) or as a child via :meth:`SupervisorSpec.as_child`."""

    def __init__(self, ctx: ActorContext, spec: SupervisorSpec) -> None:
        super().__init__(ctx)
        self.spec = spec
        self._lock = threading.Lock()
        self._children = [_Child(child) for child in spec.children]
        self._by_name = {child.spec.name: child for child in self._children}
        self._restart_times: collections.deque[float] = collections.deque()
        ctx.describe_children = self.describe_children

    def describe_children(self) -> tuple[TreeNode, ...]:
        """Snapshots of the children, safe to call from any thread, never blocking on them."""
        with self._lock:
            records = [
                (c.spec, c.state, c.restarts, c.last_failure, c.mailbox, c.ctx, c)
                for c in self._children
            ]
        nodes = []
        for spec, state, restarts, failure, mailbox, ctx, child in records:
            grandchildren: tuple[TreeNode, ...] = ()
            view = ctx.describe_children if ctx is not None else None
            if view is not None:
                grandchildren = view()
            nodes.append(
                TreeNode(
                    name=spec.name,
                    kind=spec.kind,
                    state=str(state),
                    restarts=restarts,
                    last_failure=failure,
                    mailbox=mailbox.statistics() if mailbox is not None else None,
                    children=grandchildren,
                    restart_latency_s=child.restart_latency_s,
                    stuck=child.stuck,
                )
            )
        return tuple(nodes)

    # -- lifecycle -----------------------------------------------------------

    def on_start(self) -> None:
        for index, child in enumerate(self._children):
            reason = self._start_child(child)
            if reason is not None:
                for started in reversed(self._children[:index]):
                    self._stop_child(started)
                msg = f"{self.name}: child {child.spec.name!r} failed to start: {reason.message}"
                raise StartFailedError(msg)

    def on_stop(self) -> None:
        self._stop_all()

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Children are not linked to their supervisor as in OTP: a crashing
        # supervisor takes its children down itself, so that its restart
        # starts them afresh and nothing runs unsupervised.
        self._stop_all()
        super()._handle_failure(exception_type, exception_value, traceback)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _ChildExited):
            self._on_child_exit(message)
        elif isinstance(message, _RestartDue):
            self._restart(message.names)
        else:
            return super().on_receive(message)
        return None

    # -- starting and stopping children --------------------------------------

    def _start_child(self, child: _Child) -> ExitReason | None:
        """Start one child and wait for its handshake; the reason if it failed."""
        spec = child.spec
        with self._lock:
            child.incarnation += 1
            child.state = _State.STARTING
            child.stuck = False
            incarnation = child.incarnation
        ctx = ActorContext(
            name=spec.name,
            registry=self.registry,
            mailbox=spec.mailbox,
            report_exit=partial(self._report_exit, spec.name, incarnation),
            incarnation=incarnation,
        )
        try:
            ref = spec.start(ctx)
        except Exception as error:
            logger.exception("%s: constructing %s failed", self.name, spec.name)
            return self._start_failed(child, ExitReason.crash(error, during_start=True))
        with self._lock:
            child.ref, child.ctx = ref, ctx
        try:
            ref.ask(Ping(), timeout=spec.start_timeout_s)
        except pykka.ActorDeadError:
            reason = ctx.wait_exit(spec.shutdown_s) or ExitReason(
                False, "StartError", "died during start"
            )
            return self._start_failed(child, reason)
        except pykka.Timeout:
            ref.stop(block=False)
            reason = ExitReason(
                False, "StartTimeout", f"on_start did not finish in {spec.start_timeout_s}s"
            )
            return self._start_failed(child, reason)
        with self._lock:
            child.state = _State.RUNNING
            child.started_at = time.monotonic()
            if child.failed_at is not None:
                child.restart_latency_s = time.time() - child.failed_at
                child.failed_at = None
        return None

    def _start_failed(self, child: _Child, reason: ExitReason) -> ExitReason:
        self.registry.unregister(child.spec.name, child.ref)
        with self._lock:
            child.state = _State.FAILED
            child.last_failure = reason
            child.ref = None
        logger.error("%s: %s failed to start: %s", self.name, child.spec.name, reason.message)
        return reason

    def _stop_child(self, child: _Child) -> None:
        with self._lock:
            if child.state in (_State.STOPPED, _State.FAILED) and child.ref is None:
                return
            child.state = _State.STOPPING
            ref = child.ref
        if ref is not None and ref.is_alive():
            try:
                ref.stop(block=True, timeout=child.spec.shutdown_s)
            except pykka.Timeout:
                logger.error(
                    "%s: %s did not stop within %.1fs; abandoned (its thread is a daemon)",
                    self.name,
                    child.spec.name,
                    child.spec.shutdown_s,
                )
                with self._lock:
                    child.stuck = True
        if ref is not None:
            self.registry.unregister(child.spec.name, ref)
        with self._lock:
            child.state = _State.STOPPED
            child.ref = None

    def _stop_all(self) -> None:
        for child in reversed(self._children):
            self._stop_child(child)

    def _report_exit(self, name: str, incarnation: int, reason: ExitReason) -> None:
        """Runs in the child's thread; never blocks (control lane)."""
        try:
            self.actor_ref.tell(_ChildExited(name, incarnation, reason))
        except pykka.ActorDeadError:
            logger.debug("%s exited after its supervisor %s stopped", name, self.name)

    # -- restarts ------------------------------------------------------------

    def _on_child_exit(self, message: _ChildExited) -> None:
        child = self._by_name[message.name]
        if message.incarnation != child.incarnation or child.state is not _State.RUNNING:
            return  # we stopped it ourselves, or this incarnation is already handled
        reason = message.reason
        self.registry.unregister(child.spec.name, child.ref)
        with self._lock:
            child.ref = None
            if not reason.normal:
                child.last_failure = reason
        restart = child.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and reason.normal):
            with self._lock:
                child.state = _State.STOPPED
            return
        if not reason.normal:
            logger.warning(
                "%s: %s exited (%s: %s); restarting",
                self.name,
                child.spec.name,
                reason.type,
                reason.message,
            )
        span = self._strategy_span(child)
        group = [
            c
            for c in span
            if c is child
            or (
                c.spec.restart is not Restart.TEMPORARY
                and (c.ref is not None or c.state is _State.RESTARTING)
            )
        ]
        for sibling in reversed(span):
            if sibling is not child:
                self._stop_child(sibling)
        self._schedule_restart(child, group)

    def _strategy_span(self, child: _Child) -> list[_Child]:
        """The children that ``child``'s exit takes down with it, in start order.

        Temporary ones among them are stopped and not restarted (OTP).
        """
        strategy = self.spec.strategy
        if strategy is Strategy.ONE_FOR_ONE:
            return [child]
        if strategy is Strategy.ONE_FOR_ALL:
            return list(self._children)
        return self._children[self._children.index(child) :]

    def _schedule_restart(self, child: _Child, group: list[_Child]) -> None:
        self._count_restart()
        now = time.monotonic()
        with self._lock:
            if now - child.started_at >= self.spec.max_seconds:
                child.consecutive = 0
            delay = self.spec.backoff.delay(child.consecutive)
            child.consecutive += 1
            child.failed_at = time.time()
            for member in group:
                member.state = _State.RESTARTING
                member.restarts += 1
        self.timers.send_after(delay, _RestartDue(tuple(c.spec.name for c in group)))

    def _count_restart(self) -> None:
        """Record a restart; give up (crash) when the intensity is exceeded."""
        now = time.monotonic()
        self._restart_times.append(now)
        while self._restart_times and now - self._restart_times[0] > self.spec.max_seconds:
            self._restart_times.popleft()
        if len(self._restart_times) > self.spec.max_restarts:
            self._stop_all()
            msg = (
                f"{self.name}: more than {self.spec.max_restarts} restarts in "
                f"{self.spec.max_seconds:g}s; giving up"
            )
            raise RestartIntensityError(msg)

    def _restart(self, names: tuple[str, ...]) -> None:
        pending = [self._by_name[name] for name in names]
        for index, child in enumerate(pending):
            if child.state is not _State.RESTARTING:
                continue
            reason = self._start_child(child)
            if reason is not None:
                rest = [c for c in pending[index:] if c.state is not _State.RUNNING]
                self._schedule_restart(child, rest)
                return
