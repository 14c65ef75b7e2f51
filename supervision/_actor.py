"""The base class of every supervised actor.

pykka reports failures in three different ways. This class makes all of
them visible to the supervisor as one *exit* with a reason:

- an exception in a ``tell`` handler: pykka kills the actor -> abnormal exit;
- an exception in ``on_start``: pykka stops the actor silently -> abnormal
  exit (and the supervisor's start handshake fails);
- an exception in an ``ask`` handler: pykka returns it to the caller and keeps
  the actor running. **We choose OTP's rule instead**: the caller still gets the
  exception, and then the actor crashes (a crash in ``handle_call`` kills a
  gen_server), because a handler that raised may have left its state half
  updated. Handlers that expect a failure should return it as a value.
- ``stop()`` (by its supervisor or by itself): normal exit.

Relies on two pykka internals, ``_handle_failure`` and ``_stop``; the pykka
version is pinned to 4.x in setup.cfg for that reason.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback as traceback_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pykka
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from supervision._mailbox import BoundedMailbox, Control, MailboxSpec
from supervision._registry import Registry
from supervision._timers import TimerMessage, Timers

if TYPE_CHECKING:
    from supervision._tree import TreeNode

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExitReason:
    """Why an actor stopped.

    Attributes:
        normal: ``True`` for a stop, ``False`` for a crash or failed start.
        type: the exception's class name ("" for a normal exit).
        message: the exception's message, or what stopped it.
        at: wall-clock Unix seconds.
        during_start: the exception came from ``on_start``.
    """

    normal: bool
    type: str = ""
    message: str = ""
    at: float = field(default_factory=time.time)
    during_start: bool = False

    @classmethod
    def crash(cls, error: BaseException | None, *, during_start: bool = False) -> ExitReason:
        name = type(error).__name__ if error is not None else "UnknownError"
        return cls(False, name, str(error), during_start=during_start)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "at": self.at}


class Ping(Control):
    """Answered with ``True`` by every live actor: the start handshake and liveness probe."""

    __slots__ = ()


class GetStatus(Control):
    """Answered with the actor's :meth:`SupervisedActor.status` mapping."""

    __slots__ = ()


class Crash(Control):
    """Fault injection: the receiving actor raises :class:`InjectedCrashError` in its handler."""

    __slots__ = ()


class InjectedCrashError(RuntimeError):
    """Raised by an actor on :class:`Crash`, exactly as a bug in a handler would."""


class _CrashAfterAsk(Control):
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class CrashedAfterAskError(RuntimeError):
    """An exception escaped an ``ask`` handler; the actor exits with it as the cause."""


@dataclass(slots=True)
class ActorContext:
    """What a supervisor gives a child it starts.

    Attributes:
        name: the stable name (the child spec's id).
        registry: the tree's name registry; send to others by name through it.
        mailbox: the child's mailbox bound and policy.
        report_exit: called once, from the child's thread, when it exits.
        incarnation: 1 for the first start under this supervisor, then 2, 3...
            after each restart (an actor may act differently on a restart).
        exit_reason: the reason, once it exited (read by the start handshake).
        describe_children: set by a supervisor child, so that its parent can
            show the subtree without asking it (it may be busy).
    """

    name: str
    registry: Registry
    mailbox: MailboxSpec
    report_exit: Callable[[ExitReason], None]
    incarnation: int = 1
    exit_reason: ExitReason | None = None
    describe_children: Callable[[], tuple[TreeNode, ...]] | None = None
    _exit_lock: threading.Lock = field(default_factory=threading.Lock)
    _exited: threading.Event = field(default_factory=threading.Event)

    def exit(self, reason: ExitReason) -> None:
        """Record and report the exit; only the first call counts."""
        with self._exit_lock:
            if self.exit_reason is not None:
                return
            self.exit_reason = reason
        self._exited.set()
        self.report_exit(reason)

    def wait_exit(self, timeout_s: float) -> ExitReason | None:
        """The exit reason once the actor's thread has finished, or ``None`` on timeout."""
        self._exited.wait(timeout_s)
        return self.exit_reason


class SupervisedActor(pykka.ThreadingActor):
    """A pykka thread actor that a :class:`~supervision.Supervisor` can manage.

    Subclasses take an :class:`ActorContext` as their first constructor argument
    and pass it up; they implement ``on_start``/``on_stop``/``on_receive`` as
    usual, and may override :meth:`status`. Every instance answers
    :class:`Ping`, :class:`GetStatus` and :class:`Crash` on its control lane, so
    probes are served even when its mailbox is full.

    Threads are daemons: a stuck actor cannot keep the interpreter alive after
    an ordered shutdown gave up on it (it is reported, not waited for).
    """

    use_daemon_thread = True

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.mailbox.configure(ctx.mailbox)
        self.timers = Timers(self.mailbox)
        self._starting = True
        # Registered before the thread starts: replies to what on_start sends
        # find this actor by name and wait in its mailbox.
        ctx.registry.register(ctx.name, self.actor_ref)
        self._exit: ExitReason | None = None

    @staticmethod
    def _create_actor_inbox() -> BoundedMailbox:
        return BoundedMailbox()

    @property
    def mailbox(self) -> BoundedMailbox:
        inbox = self.actor_inbox
        assert isinstance(inbox, BoundedMailbox)
        return inbox

    @property
    def name(self) -> str:
        return self.ctx.name

    @property
    def registry(self) -> Registry:
        return self.ctx.registry

    def status(self) -> Mapping[str, Any]:
        """What this actor reports in ``/api/status``; override to add figures."""
        return {}

    def on_stop(self) -> None:
        self.on_exit()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.on_exit()

    def on_exit(self) -> None:
        """Release what the actor holds (sockets, threads, files).

        Runs once in the actor's thread whichever way it ends: after a stop
        (pykka's ``on_stop``), a crash (``on_failure``) or a failed
        ``on_start`` (after which pykka runs neither). Override ``on_stop`` or
        ``on_failure`` instead only where the two must differ.
        """

    def _handle_receive(self, message: Any) -> Any:
        if self._starting:
            self._starting = False
        if isinstance(message, TimerMessage):
            message = message.take()
        if isinstance(message, Ping):
            return True
        if isinstance(message, GetStatus):
            return self.status()
        if isinstance(message, Crash):
            msg = f"fault injected into {self.name}"
            raise InjectedCrashError(msg)
        if isinstance(message, _CrashAfterAsk):
            msg = f"{type(message.error).__name__} escaped an ask handler: {message.error}"
            raise CrashedAfterAskError(msg) from message.error
        try:
            return super()._handle_receive(message)
        except Exception as error:
            # An ask handler's exception goes back to the caller and pykka keeps
            # the actor alive; queue a crash so that it exits as OTP would. For a
            # tell the actor dies now and this control message is discarded.
            self.mailbox.put(Envelope(_CrashAfterAsk(error)))
            raise

    def _actor_loop(self) -> None:
        # The exit is reported only once the thread has done all its cleanup
        # (on_stop, or on_failure which pykka runs after _handle_failure), so
        # that a restarted instance never races its predecessor for a resource
        # such as a listening port.
        try:
            super()._actor_loop()
        finally:
            self.ctx.exit(self._exit or ExitReason(True, message="stopped"))

    def _actor_loop_setup(self) -> None:
        super()._actor_loop_setup()
        if self.actor_stopped.is_set():
            # on_start failed: pykka runs neither on_stop nor on_failure.
            self.on_exit()

    def _actor_loop_teardown(self) -> None:
        # As pykka's teardown, except that queued tells are offered to
        # on_undelivered instead of vanishing (Akka's dead letters).
        while not self.actor_inbox.empty():
            envelope = self.actor_inbox.get()
            message = envelope.message
            if envelope.reply_to is not None:
                if isinstance(message, _ActorStop):
                    envelope.reply_to.set(None)
                else:
                    error = pykka.ActorDeadError(f"{self.name} stopped before handling the message")
                    envelope.reply_to.set_exception(exc_info=(pykka.ActorDeadError, error, None))
            elif not isinstance(message, Control | TimerMessage):
                self.on_undelivered(message)

    def on_undelivered(self, message: Any) -> None:
        """A message told to this actor was still queued when it exited.

        Runs in the actor's thread after ``on_stop``/``on_failure``. The default
        logs it; an actor whose queued messages must survive a crash hands
        them to its next incarnation here.
        """
        logger.debug("%s exited with %s undelivered", self.name, type(message).__name__)

    def _stop(self) -> None:
        self.timers.cancel_all()
        super()._stop()
        self.mailbox.close()

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.timers.cancel_all()
        logger.error(
            "%s crashed: %s",
            self.name,
            "".join(
                traceback_module.format_exception_only(exception_type, exception_value)
            ).strip(),
            exc_info=(exception_type, exception_value, traceback)  # type: ignore[arg-type]
            if exception_type is not None
            else None,
        )
        pykka.ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        self.mailbox.close()
        if self._exit is None:
            self._exit = ExitReason.crash(exception_value, during_start=self._starting)
