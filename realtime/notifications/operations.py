"""Notifications about the program itself: alerts, and start or recovery.

They come from no journal event (``seq`` is ``None``); their keys are made of
what they report and when, so the same report made twice (a retry of the code
that raises it) is the same notification, and a later one is another.
"""

from __future__ import annotations

from realtime.event import Priority
from realtime.notifications.model import (
    AlertDetails,
    AlertState,
    Notification,
    NotificationKind,
    StatusDetails,
    StatusReason,
)

_SEVERITY_PRIORITY = {"critical": Priority.HIGH, "warning": Priority.NORMAL}


def _ms(at: float) -> int:
    return round(at * 1000)


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``: the two largest units, rounded down."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def alert_notification(
    key: str,
    severity: str,
    state: AlertState | str,
    message: str,
    *,
    first_seen: float,
    at: float,
    count: int = 1,
) -> Notification:
    """An alert raised, escalated or resolved at ``at`` (Unix seconds).

    The key is ``alert:{key}:{state}:{at in ms}``; a critical alert is
    :attr:`Priority.HIGH`, a warning normal, anything else low.

    Raises:
        ValueError: ``state`` is not one of ``raised``, ``escalated``, ``resolved``.
    """
    alert_state = AlertState(state)
    verb = {
        AlertState.RAISED: "raised",
        AlertState.ESCALATED: "escalated",
        AlertState.RESOLVED: "resolved",
    }[alert_state]
    return Notification(
        key=f"alert:{key}:{alert_state}:{_ms(at)}",
        kind=NotificationKind.ALERT,
        seq=None,
        time=at,
        title=f"Alert {verb}: {key}",
        details=AlertDetails(
            key=key,
            severity=severity,
            state=alert_state,
            message=message,
            first_seen=first_seen,
            count=count,
        ),
        priority=(
            Priority.LOW
            if alert_state is AlertState.RESOLVED
            else _SEVERITY_PRIORITY.get(severity, Priority.LOW)
        ),
    )


def status_notification(
    reason: StatusReason | str,
    at: float,
    *,
    away_s: float | None = None,
    kills_caught_up: int = 0,
    detail: str = "",
) -> Notification:
    """The program started, or recovered from an outage, at ``at`` (Unix seconds).

    The title says it in one line: ``Started``, or ``Back after 12 min, 3
    kills caught up``. The key is ``status:{reason}:{at in ms}``.

    Raises:
        ValueError: ``reason`` is not ``started`` or ``recovered``.
    """
    status_reason = StatusReason(reason)
    if status_reason is StatusReason.STARTED:
        title = "Started"
    else:
        title = "Back" if away_s is None else f"Back after {format_duration(away_s)}"
        plural = "" if kills_caught_up == 1 else "s"
        title += f", {kills_caught_up} kill{plural} caught up"
    return Notification(
        key=f"status:{status_reason}:{_ms(at)}",
        kind=NotificationKind.STATUS,
        seq=None,
        time=at,
        title=title,
        details=StatusDetails(
            reason=status_reason,
            away_s=away_s,
            kills_caught_up=max(0, kills_caught_up),
            detail=detail,
        ),
        priority=Priority.NORMAL,
    )
