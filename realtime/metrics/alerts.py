"""Alerts by key: severity, first/last seen, count, resolution, notification cooldown.

:class:`AlertManager` keeps bounded active and resolved lists and says what is
worth announcing (:class:`Notice`). Pure: every ``now`` is a parameter; a
``now`` earlier than one already seen is taken as the latest one seen.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: Final[Mapping[Severity, int]] = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, active or resolved.

    Attributes:
        key: what it is about, stable across occurrences (``connection:kills``).
        count: how many times it was raised, re-raises after a short
            resolution (within the cooldown) included.
        resolved_at: ``None`` while active.
        notified: its raise was announced (see :class:`AlertManager`).
    """

    key: str
    severity: Severity
    message: str
    first_seen: float
    last_seen: float
    count: int
    resolved_at: float | None = None
    notified: bool = False

    @property
    def active(self) -> bool:
        return self.resolved_at is None

    def to_dict(self, clock_offset: float = 0.0) -> dict[str, Any]:
        """As JSON; ``clock_offset`` is added to every time (monotonic to wall clock)."""
        return {
            "key": self.key,
            "severity": self.severity,
            "message": self.message,
            "first_seen": self.first_seen + clock_offset,
            "last_seen": self.last_seen + clock_offset,
            "count": self.count,
            "active": self.active,
            "resolved_at": None if self.resolved_at is None else self.resolved_at + clock_offset,
        }


NoticeKind = Literal["raised", "escalated", "resolved"]


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth announcing (e.g. posting to Discord)."""

    kind: NoticeKind
    alert: Alert


class _Record:
    """An active alert, updated in place on every refresh (cheaper than a frozen copy)."""

    __slots__ = ("count", "first_seen", "key", "last_seen", "message", "notified", "severity")

    def __init__(
        self,
        key: str,
        severity: Severity,
        message: str,
        first_seen: float,
        count: int,
        *,
        notified: bool,
    ) -> None:
        self.key = key
        self.severity: Severity = severity
        self.message = message
        self.first_seen = first_seen
        self.last_seen = first_seen
        self.count = count
        self.notified = notified

    def view(self, resolved_at: float | None = None) -> Alert:
        return Alert(
            self.key,
            self.severity,
            self.message,
            self.first_seen,
            self.last_seen,
            self.count,
            resolved_at,
            notified=self.notified,
        )


class AlertManager:
    """Active alerts by key, and a bounded list of recently resolved ones.

    Notices (what to announce) follow these rules, so that a flapping
    condition cannot flood a channel:

    - raising an inactive key announces ``raised``, unless the key was
      resolved less than ``cooldown_s`` ago: then the old alert is revived
      silently (same ``first_seen``, ``count + 1``) and its later resolution is
      silent too;
    - raising an active key with a higher severity announces ``escalated``;
      otherwise it only updates ``last_seen`` and the message;
    - resolving announces ``resolved`` only if the raise was announced.

    Bounds: at most ``max_active`` active alerts. A new key beyond that evicts
    the least severe, least recently seen active alert if the new one is more
    severe (the evicted one is resolved with ``evicted`` in its message);
    otherwise the new alert is dropped and counted in :attr:`dropped`. At most
    ``history`` resolved alerts are kept (the oldest go first), and the
    cooldown remembers at most ``history`` resolution times.

    Raises:
        ValueError: a bound below 1 or a negative cooldown.
    """

    def __init__(self, *, max_active: int, history: int, cooldown_s: float) -> None:
        if max_active < 1 or history < 1 or cooldown_s < 0:
            msg = "need max_active >= 1, history >= 1 and cooldown_s >= 0"
            raise ValueError(msg)
        self.max_active = max_active
        self.history = history
        self.cooldown_s = cooldown_s
        self._active: dict[str, _Record] = {}
        self._resolved: collections.deque[Alert] = collections.deque(maxlen=history)
        self._resolved_at: collections.OrderedDict[str, Alert] = collections.OrderedDict()
        self._latest = -math.inf
        self._by_rank = [0] * len(SEVERITY_RANK)
        self.dropped = 0
        self.evicted = 0

    def _clock(self, now: float) -> float:
        self._latest = max(self._latest, now)
        return self._latest

    def raise_alert(self, key: str, severity: Severity, message: str, now: float) -> Notice | None:
        """Raise (or refresh) ``key``; the notice to announce, if any."""
        now = self._clock(now)
        current = self._active.get(key)
        if current is not None:
            current.last_seen = now
            current.message = message
            old_rank, rank = SEVERITY_RANK[current.severity], SEVERITY_RANK[severity]
            self._by_rank[old_rank] -= 1
            self._by_rank[rank] += 1
            current.severity = severity
            if rank <= old_rank:
                return None
            current.count += 1
            current.notified = True
            return Notice("escalated", current.view())
        if len(self._active) >= self.max_active and not self._make_room(severity, now):
            self.dropped += 1
            return None
        previous = self._resolved_at.get(key)
        if (
            previous is not None
            and previous.resolved_at is not None
            and now - previous.resolved_at < self.cooldown_s
        ):
            revived = _Record(
                key, severity, message, previous.first_seen, previous.count + 1, notified=False
            )
            revived.last_seen = now
            self._active[key] = revived
            self._by_rank[SEVERITY_RANK[severity]] += 1
            return None
        record = _Record(key, severity, message, now, 1, notified=True)
        self._active[key] = record
        self._by_rank[SEVERITY_RANK[severity]] += 1
        return Notice("raised", record.view())

    def _make_room(self, severity: Severity, now: float) -> bool:
        rank = SEVERITY_RANK[severity]
        if not any(self._by_rank[:rank]):
            return False  # nothing active is less severe (and no scan on this flooded path)
        weakest = min(self._active.values(), key=lambda a: (SEVERITY_RANK[a.severity], a.last_seen))
        if rank <= SEVERITY_RANK[weakest.severity]:
            return False
        self.evicted += 1
        weakest.message = f"{weakest.message} (evicted: too many active alerts)"
        self._retire(weakest, now)
        return True

    def resolve(self, key: str, now: float) -> Notice | None:
        """Resolve ``key`` if it is active; the notice to announce, if any."""
        now = self._clock(now)
        current = self._active.get(key)
        if current is None:
            return None
        resolved = self._retire(current, now)
        return Notice("resolved", resolved) if resolved.notified else None

    def _retire(self, record: _Record, now: float) -> Alert:
        del self._active[record.key]
        self._by_rank[SEVERITY_RANK[record.severity]] -= 1
        resolved = record.view(resolved_at=now)
        self._resolved.append(resolved)
        resolutions = self._resolved_at
        resolutions[record.key] = resolved
        resolutions.move_to_end(record.key)
        if len(resolutions) > self.history:
            resolutions.popitem(last=False)
        return resolved

    def sync(
        self, prefix: str, conditions: Mapping[str, tuple[Severity, str]], now: float
    ) -> list[Notice]:
        """Make the active alerts whose key starts with ``prefix`` match ``conditions``.

        Every key in ``conditions`` (``key -> (severity, message)``, each key
        starting with ``prefix``) is raised; every active key with the prefix
        that is not in ``conditions`` is resolved.

        Raises:
            ValueError: a condition's key does not start with ``prefix``.
        """
        notices: list[Notice] = []
        for key, (severity, message) in conditions.items():
            if not key.startswith(prefix):
                msg = f"condition {key!r} does not start with {prefix!r}"
                raise ValueError(msg)
            notice = self.raise_alert(key, severity, message, now)
            if notice is not None:
                notices.append(notice)
        for key in [k for k in self._active if k.startswith(prefix) and k not in conditions]:
            notice = self.resolve(key, now)
            if notice is not None:
                notices.append(notice)
        return notices

    def active(self) -> list[Alert]:
        """Active alerts, most severe first, then oldest first."""
        records = sorted(
            self._active.values(), key=lambda a: (-SEVERITY_RANK[a.severity], a.first_seen, a.key)
        )
        return [record.view() for record in records]

    def resolved(self) -> list[Alert]:
        """Recently resolved alerts, newest first."""
        return list(reversed(self._resolved))

    def statistics(self) -> dict[str, int]:
        return {
            "active": len(self._active),
            "active_capacity": self.max_active,
            "resolved": len(self._resolved),
            "resolved_capacity": self.history,
            "cooldown_keys": len(self._resolved_at),
            "dropped": self.dropped,
            "evicted": self.evicted,
        }
