"""Whether one connection to the server is alive: heartbeats, silence, the join's answer.

Heartbeats are measured from the *reply*: a heartbeat that is sent proves
nothing (the Elixir client counted those and never noticed a half-open
socket). Every duration runs on a *reading clock* that stands still while the
program chose not to read (:meth:`Liveness.reading_paused`): what arrives
meanwhile waits unread in the socket, so the peer owes nothing for that time.

One :class:`Liveness` lives as long as one connection; ``now`` is a monotonic
clock in seconds, the same for every call.
"""

from __future__ import annotations

from collections import deque
from typing import Final

_MAX_UNANSWERED: Final = 64  # heartbeats remembered while replies wait (a long pause)


class Liveness:
    """The heartbeat and silence rules of one connection (see the module docstring).

    Args:
        heartbeat_interval_s: seconds between heartbeats; a heartbeat still
            unanswered when the next is due means a dead connection (phoenix.js).
        heartbeat_timeout_s: no inbound frame at all for this long means a
            dead connection.
        push_timeout_s: a join unanswered for this long means a dead connection.
    """

    def __init__(
        self, heartbeat_interval_s: float, heartbeat_timeout_s: float, push_timeout_s: float
    ) -> None:
        self._heartbeat_interval_s = heartbeat_interval_s
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._push_timeout_s = push_timeout_s
        # The reading clock (see _reading): the real time minus the time the
        # program chose not to read this connection.
        self._paused_total_s = 0.0
        self._paused_at: float | None = None
        self._epoch: float | None = None
        self._epoch_r = 0.0
        self._join_sent_r = 0.0
        self._last_inbound_r: float | None = None
        self._heartbeat_sent_at: float | None = None
        self._unanswered: deque[tuple[str, float]] = deque(maxlen=_MAX_UNANSWERED)
        self._unanswered_since_r: float | None = None
        self._last_rtt_s: float | None = None

    @property
    def last_rtt_s(self) -> float | None:
        """The last heartbeat round trip, in seconds."""
        return self._last_rtt_s

    def observe(self, now: float) -> float:
        """The time this connection was first seen, which is ``now`` on the first call."""
        if self._epoch is None:
            self._epoch = now
            self._epoch_r = self._reading(now)
        return self._epoch

    def inbound(self, now: float) -> None:
        """A frame arrived (any frame, even one rejected): the connection is not silent."""
        self.observe(now)
        self._last_inbound_r = self._reading(now)

    def join_sent(self, now: float) -> None:
        """A join went out: its answer is due within ``push_timeout_s``."""
        self.observe(now)
        self._join_sent_r = self._reading(now)

    def heartbeat_due(self, now: float) -> bool:
        """Whether a heartbeat should be sent: ``heartbeat_interval_s`` after the
        last one, or after this connection was first seen.
        """
        since = self._heartbeat_sent_at
        if since is None:
            since = self.observe(now)
        return now >= since + self._heartbeat_interval_s

    def heartbeat_sent(self, ref: str, now: float) -> None:
        """A heartbeat with this ref went out; its reply is awaited."""
        self.observe(now)
        sent_r = self._reading(now)
        self._unanswered.append((ref, sent_r))
        if self._unanswered_since_r is None:
            self._unanswered_since_r = sent_r
        self._heartbeat_sent_at = now

    def heartbeat_reply(self, ref: str | None, now: float) -> float | None:
        """The round trip of the heartbeat this reply answers, or ``None`` if it
        answers none awaited. A reply answers its heartbeat and every one sent
        before it (the server answers in order).
        """
        unanswered = self._unanswered
        if ref is None or all(sent != ref for sent, _ in unanswered):
            return None
        while True:
            sent, sent_r = unanswered.popleft()
            if sent == ref:
                break
        self._unanswered_since_r = unanswered[0][1] if unanswered else None
        self._last_rtt_s = max(0.0, self._reading(now) - sent_r)
        return self._last_rtt_s

    def reading_paused(self, now: float) -> None:
        """The program stopped reading: the reading clock stands still from ``now``."""
        if self._paused_at is None:
            self._paused_at = now

    def reading_resumed(self, now: float) -> None:
        """Reading goes on; the reading clock runs again from where it stood."""
        paused_at, self._paused_at = self._paused_at, None
        if paused_at is not None:
            self._paused_total_s += max(0.0, now - paused_at)

    def is_dead(self, now: float, joining: str | None) -> str | None:
        """Why the connection should be considered dead, or ``None``.

        ``joining`` is the ref of the join awaiting its answer, if any. The
        reason starts with a code: ``heartbeat_timeout``, ``silent`` or
        ``join_timeout``. While reading is paused the connection is never dead.
        """
        if self._paused_at is not None:
            return None
        self.observe(now)
        reading = self._reading(now)
        since = self._unanswered_since_r
        if since is not None and reading - since >= self._heartbeat_interval_s:
            oldest = self._unanswered[0][0] if self._unanswered else "?"
            return (
                f"heartbeat_timeout: heartbeat {oldest} unanswered after "
                f"{reading - since:.1f} s (interval {self._heartbeat_interval_s:g} s)"
            )
        last = self._last_inbound_r if self._last_inbound_r is not None else self._epoch_r
        if reading - last >= self._heartbeat_timeout_s:
            return (
                f"silent: no frame received for {reading - last:.1f} s "
                f"(limit {self._heartbeat_timeout_s:g} s)"
            )
        if joining is not None and reading >= self._join_sent_r + self._push_timeout_s:
            return f"join_timeout: no reply to join {joining} within {self._push_timeout_s:g} s"
        return None

    def _reading(self, now: float) -> float:
        """The reading clock at ``now``: real time minus the time reading was paused."""
        paused_s = self._paused_total_s
        if self._paused_at is not None:
            paused_s += max(0.0, now - self._paused_at)
        return now - paused_s
