"""Bounded actor mailboxes with overflow policies and a control lane.

pykka's inbox is an unbounded ``queue.Queue`` shared by user messages and
``stop``. :class:`BoundedMailbox` replaces it: user messages are bounded by a
capacity with an overflow policy, while *control* messages (pykka's stop,
supervision, status, fault injection) travel in a separate unbounded lane that
is always served first. A full mailbox therefore never blocks ``stop()`` or a
supervisor, and a drop policy can never drop a stop request.

Timer messages (:meth:`BoundedMailbox.put_timer`) have a lane of their own:
never refused, never dropped, and served in order with the user messages (a
timer message waits for the user messages queued before it, no longer), so a
full mailbox delays a timer without losing it and a busy timer cannot starve
the user lane. Their number is bounded by the timers themselves (see
:mod:`supervision._timers`).
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
from pykka._envelope import Envelope
from pykka.messages import _ActorStop


class Control:
    """Base class of messages that bypass the bound and are served first."""

    __slots__ = ()


class OverflowPolicy(enum.StrEnum):
    """What ``put`` does when the user lane is at capacity.

    ``block`` waits for room (the sender is slowed: backpressure); ``drop_oldest``
    discards the oldest queued message; ``drop_newest`` discards the message
    being put; ``reject`` raises :class:`MailboxFullError` in the sender. A
    dropped ``ask`` fails its future with :class:`MailboxFullError`, so no caller
    waits forever.
    """

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    REJECT = "reject"


class MailboxFullError(Exception):
    """A message was refused or dropped because the mailbox was full."""


@dataclass(frozen=True, slots=True)
class MailboxSpec:
    """Capacity and overflow policy of one actor's mailbox.

    ``size_of`` says how much of the capacity a user message takes (at least
    1; by default every message takes 1): a mailbox of batches can be bounded
    by what the batches hold. A message larger than the whole capacity is
    taken when the user lane is empty, so that none is refused for ever.
    """

    capacity: int
    policy: OverflowPolicy = OverflowPolicy.BLOCK
    size_of: Callable[[Any], int] | None = None

    def __post_init__(self) -> None:
        if self.capacity < 1:
            msg = f"mailbox capacity must be at least 1, got {self.capacity}"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """A point-in-time view of a mailbox.

    Attributes:
        size: user messages queued now (the sum of their sizes, with a
            ``size_of``).
        capacity: the bound on ``size``.
        high_water: the largest ``size`` ever seen.
        control: control messages queued now.
        timers: timer messages queued now.
        dropped: messages discarded by a drop policy (or by a closed mailbox).
        rejected: ``put`` calls refused by the ``reject`` policy.
        blocked_puts: ``put`` calls that had to wait for room.
        blocked_s: total time senders spent waiting for room.
        policy: the overflow policy.
    """

    size: int
    capacity: int
    high_water: int
    control: int
    timers: int
    dropped: int
    rejected: int
    blocked_puts: int
    blocked_s: float
    policy: str


def is_control(message: object) -> bool:
    return isinstance(message, Control | _ActorStop)


class BoundedMailbox:
    """A pykka ``ActorInbox`` (``put``/``get``/``empty``) with a bound.

    Created unbounded by pykka's ``_create_actor_inbox`` and configured with
    :meth:`configure` before the actor starts. Thread-safe.

    A sender blocked by a full mailbox (policy ``block``) resumes once the
    mailbox has drained to :meth:`resume_size`, not at the first free slot:
    waking a sender for every message taken makes the two threads trade the
    GIL once per message, which under sustained overload costs more than the
    messages themselves.
    """

    _BLOCK_SLICE_S = 0.1

    def __init__(self, spec: MailboxSpec | None = None) -> None:
        lock = threading.Lock()
        # One lock, two conditions: the receiver waits for messages, blocked
        # senders wait for room, and neither wakes the other for nothing.
        self._cond = threading.Condition(lock)
        self._room = threading.Condition(lock)
        self._blocked = 0
        self._user: collections.deque[Envelope[Any]] = collections.deque()
        # The sizes of the user messages queued (their number, without size_of).
        self._load = 0
        self._control: collections.deque[Envelope[Any]] = collections.deque()
        # Each timer envelope with the count of user messages put before it: it
        # is served once that many have left the user lane (taken or dropped).
        self._timers: collections.deque[tuple[int, Envelope[Any]]] = collections.deque()
        self._user_added = 0
        self._user_removed = 0
        self._spec = spec or MailboxSpec(capacity=2**31 - 1)
        self._high_water = 0
        self._dropped = 0
        self._rejected = 0
        self._blocked_puts = 0
        self._blocked_s = 0.0
        self._closed = False

    def configure(self, spec: MailboxSpec) -> None:
        with self._cond:
            self._spec = spec
            self._load = sum(self._size(envelope) for envelope in self._user)
            self._room.notify_all()

    def resume_size(self) -> int:
        """The size at which blocked senders resume: a tenth of the capacity below it."""
        capacity = self._spec.capacity
        return capacity - max(1, capacity // 10)

    @property
    def spec(self) -> MailboxSpec:
        return self._spec

    def put(self, envelope: Envelope[Any], /) -> None:
        """Queue ``envelope`` under the overflow policy (control messages: always)."""
        with self._cond:
            if is_control(envelope.message):
                self._control.append(envelope)
                self._cond.notify_all()
                return
            if self._no_room_for(envelope) and not self._make_room(envelope):
                return
            self._append_user(envelope)
            self._cond.notify()

    def _size(self, envelope: Envelope[Any]) -> int:
        size_of = self._spec.size_of
        return 1 if size_of is None else max(1, size_of(envelope.message))

    def _no_room_for(self, envelope: Envelope[Any]) -> bool:
        return bool(self._user) and self._load + self._size(envelope) > self._spec.capacity

    def _append_user(self, envelope: Envelope[Any]) -> None:
        self._user.append(envelope)
        self._user_added += 1
        self._load += self._size(envelope)
        self._high_water = max(self._high_water, self._load)

    def _pop_user(self) -> Envelope[Any]:
        envelope = self._user.popleft()
        self._user_removed += 1
        self._load -= self._size(envelope)
        return envelope

    def put_timer(self, envelope: Envelope[Any]) -> bool:
        """Queue a timer's message behind the user messages queued now, whatever the bound.

        Returns ``False`` only when the owner has stopped.
        """
        with self._cond:
            if self._closed:
                return False
            self._timers.append((self._user_added, envelope))
            self._cond.notify()
            return True

    def offer(self, envelope: Envelope[Any]) -> bool:
        """Queue ``envelope`` only if there is room now; never blocks, never drops another."""
        with self._cond:
            if self._closed or (not is_control(envelope.message) and self._no_room_for(envelope)):
                return False
            if is_control(envelope.message):
                self._control.append(envelope)
            else:
                self._append_user(envelope)
            self._cond.notify()
            return True

    def _make_room(self, envelope: Envelope[Any]) -> bool:
        """Apply the policy to a full user lane; True when ``envelope`` may be appended."""
        policy = self._spec.policy
        if policy is OverflowPolicy.BLOCK:
            started = time.monotonic()
            self._blocked_puts += 1
            self._blocked += 1
            try:
                while self._user and self._load > self.resume_size() and not self._closed:
                    self._room.wait(self._BLOCK_SLICE_S)
            finally:
                self._blocked -= 1
            self._blocked_s += time.monotonic() - started
            if self._closed:
                self._refuse(envelope, "the actor stopped while the sender waited for room")
                raise pykka.ActorDeadError("actor stopped while a sender waited for room")
            return True
        if policy is OverflowPolicy.DROP_OLDEST:
            while self._no_room_for(envelope):
                self._refuse(self._pop_user(), "dropped as the oldest message of a full mailbox")
                self._dropped += 1
            return True
        if policy is OverflowPolicy.DROP_NEWEST:
            self._refuse(envelope, "dropped: the mailbox was full")
            self._dropped += 1
            return False
        self._rejected += 1
        unit = "messages" if self._spec.size_of is None else "in size"
        msg = f"mailbox full ({self._load} of {self._spec.capacity} {unit})"
        raise MailboxFullError(msg)

    @staticmethod
    def _refuse(envelope: Envelope[Any], why: str) -> None:
        if envelope.reply_to is not None:
            error = MailboxFullError(why)
            envelope.reply_to.set_exception(exc_info=(MailboxFullError, error, None))

    def get(self) -> Envelope[Any]:
        """The next envelope, control lane first, then user and timer messages in order.

        Blocks until there is one.
        """
        with self._cond:
            while not self._control and not self._user and not self._timers:
                self._cond.wait()
            if self._control:
                return self._control.popleft()
            if self._timers and self._timers[0][0] <= self._user_removed:
                return self._timers.popleft()[1]
            envelope = self._pop_user()
            if self._blocked and self._load <= self.resume_size():
                self._room.notify_all()
            return envelope

    def __len__(self) -> int:
        """User messages queued now (cheaper than :meth:`statistics`)."""
        return len(self._user)

    def drain(self) -> list[Any]:
        """Remove and return the queued user messages (not envelopes), oldest first.

        For an actor's own ``on_stop``, to finish work that was queued behind
        the stop request (which travels on the control lane, ahead of it).
        Queued asks are not returned: their callers get ``ActorDeadError``.
        """
        with self._cond:
            envelopes = list(self._user)
            self._user.clear()
            self._load = 0
            self._user_removed += len(envelopes)
            self._room.notify_all()
        messages = []
        for envelope in envelopes:
            if envelope.reply_to is None:
                messages.append(envelope.message)
            else:
                error = pykka.ActorDeadError("the actor stopped before handling the message")
                envelope.reply_to.set_exception(exc_info=(pykka.ActorDeadError, error, None))
        return messages

    def empty(self) -> bool:
        with self._cond:
            return not self._control and not self._user and not self._timers

    def close(self) -> None:
        """Mark the owner as stopped: blocked and future senders stop waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._room.notify_all()

    def statistics(self) -> MailboxStatistics:
        with self._cond:
            return MailboxStatistics(
                size=self._load,
                capacity=self._spec.capacity,
                high_water=self._high_water,
                control=len(self._control),
                timers=len(self._timers),
                dropped=self._dropped,
                rejected=self._rejected,
                blocked_puts=self._blocked_puts,
                blocked_s=self._blocked_s,
                policy=str(self._spec.policy),
            )
