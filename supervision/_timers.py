"""Timers: one-shot and periodic messages to an actor, cancelled when it stops.

One scheduler thread (a daemon: it holds no state worth a clean exit) serves
every timer in the process from a heap. A timer always reaches its actor and
never blocks that thread: its message goes to the mailbox's timer lane, which
ignores the bound and is served in order with the user messages (see
:mod:`supervision._mailbox`). A full mailbox delays a timer; it never loses one.

A periodic timer has at most one message in the mailbox: a tick that falls
due while the previous one is still queued is coalesced into it (and
counted), so an actor that is stuck or slow finds one tick when it comes
back, not a pile of them. A one-shot timer fires once, always.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pykka._envelope import Envelope

from supervision._mailbox import BoundedMailbox

logger = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class TimerHandle:
    """A scheduled message; :meth:`cancel` is idempotent and thread-safe."""

    message: Any
    interval_s: float | None
    mailbox: BoundedMailbox
    owner: Timers
    cancelled: bool = False
    fired: int = 0
    coalesced: int = 0
    queued: bool = False

    def cancel(self) -> None:
        self.cancelled = True
        self.owner.forget(self)


class TimerMessage:
    """What a timer puts in the mailbox: the actor unwraps it with :meth:`take`."""

    __slots__ = ("handle",)

    def __init__(self, handle: TimerHandle) -> None:
        self.handle = handle

    def take(self) -> Any:
        """The timer's message; the timer may queue its next tick from now on."""
        self.handle.queued = False
        return self.handle.message


@dataclass(order=True, slots=True)
class _Entry:
    due: float
    order: int
    handle: TimerHandle = field(compare=False)


class _Scheduler:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Entry] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, handle: TimerHandle, due: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, _Entry(due, next(self._order), handle))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="supervision-timers", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0].due > time.monotonic():
                    timeout = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                entry = heapq.heappop(self._heap)
            try:
                self._fire(entry)
            except Exception:
                # This thread serves every timer of the process: it must not end.
                # The failing timer is reported and dropped; the others go on.
                logger.exception("timers: a timer failed to fire (%r)", entry.handle.message)

    def _fire(self, entry: _Entry) -> None:
        handle = entry.handle
        if handle.cancelled:
            return
        if handle.queued and handle.interval_s is not None:
            handle.coalesced += 1
        else:
            # Marked before the put: the actor may take (and unmark) it at once.
            handle.queued = True
            if handle.mailbox.put_timer(Envelope(TimerMessage(handle))):
                handle.fired += 1
            else:
                handle.queued = False  # the actor stopped; its timers are cancelled
        if handle.interval_s is None:
            handle.owner.forget(handle)
            return
        # Fixed-rate ticks; a tick far in the past (a stalled process) is skipped.
        now = time.monotonic()
        due = entry.due + handle.interval_s
        if due < now:
            due = now + handle.interval_s
        self.schedule(handle, due)


_SCHEDULER = _Scheduler()


class Timers:
    """The timers of one actor. Owned by the actor; cancelled all at once when it stops."""

    def __init__(self, mailbox: BoundedMailbox) -> None:
        self._mailbox = mailbox
        self._lock = threading.Lock()
        self._active: set[TimerHandle] = set()
        self._closed = False

    def send_after(self, delay_s: float, message: Any) -> TimerHandle:
        """Deliver ``message`` to the actor once, after ``delay_s`` seconds."""
        return self._start(message, delay_s, None)

    def send_interval(self, interval_s: float, message: Any) -> TimerHandle:
        """Deliver ``message`` every ``interval_s`` seconds, first after one interval."""
        if interval_s <= 0:
            msg = f"timer interval must be positive, got {interval_s}"
            raise ValueError(msg)
        return self._start(message, interval_s, interval_s)

    def _start(self, message: Any, delay_s: float, interval_s: float | None) -> TimerHandle:
        handle = TimerHandle(message, interval_s, self._mailbox, self)
        with self._lock:
            if self._closed:
                handle.cancelled = True
                return handle
            self._active.add(handle)
        _SCHEDULER.schedule(handle, time.monotonic() + max(0.0, delay_s))
        return handle

    def forget(self, handle: TimerHandle) -> None:
        with self._lock:
            self._active.discard(handle)

    def cancel_all(self) -> None:
        with self._lock:
            self._closed = True
            handles = list(self._active)
            self._active.clear()
        for handle in handles:
            handle.cancelled = True

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)
