"""Notifications as console lines: the same facts as the cards, as readable text.

One line per notification: a label column (``LOSS``, ``OUR KILL``, ``KILL``,
``SYSTEM``...),
the title, then the facts ``|``-separated. Text from the network is stripped
of control and bidi characters (no terminal escapes, no line breaks) and each
part is bounded.
"""

from __future__ import annotations

import time

from realtime.controls import blank_controls
from realtime.notifications import (
    AlertDetails,
    AlertState,
    CharacterDetails,
    KillDetails,
    KillRole,
    Notification,
    NotificationKind,
    Pilot,
    RallyPointDetails,
    StatusDetails,
    StatusReason,
    SystemDetails,
)
from realtime.render.cards import kill_colour
from realtime.render.limits import clean, truncate
from realtime.render.text import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    PURPLE,
    RED,
    TEAL,
    YELLOW,
    band_colour,
    company_phrase,
    format_isk,
    hours_text,
    pilot_plain,
    tickers,
    victim_plain,
    with_article,
    zkillboard_url,
)
from realtime.static_info import system_label

_ANSI = {
    RED: "\x1b[31m",
    ORANGE: "\x1b[38;5;208m",
    YELLOW: "\x1b[33m",
    GREEN: "\x1b[32m",
    GREY: "\x1b[90m",
    BLUE: "\x1b[34m",
    PURPLE: "\x1b[35m",
    TEAL: "\x1b[36m",
}
_ANSI_RESET = "\x1b[0m"
_CONSOLE_TEXT_LIMIT = 200
_KILL_LABELS = {KillRole.LOSS: "LOSS", KillRole.KILL: "OUR KILL", KillRole.NEUTRAL: "KILL"}
"""A loss and a kill of our pilots stand out from the other kills in our systems."""


def _plain(text: str) -> str:
    """``text`` safe for one terminal line: no control or bidi characters, bounded."""
    cleaned = blank_controls(clean(text))
    return truncate(" ".join(cleaned.split()), _CONSOLE_TEXT_LIMIT)


def _utc(unix_seconds: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(unix_seconds))


def _attacker(pilot: Pilot) -> str:
    text = pilot_plain(pilot)
    return f"{text} ({pilot.ship_name})" if pilot.ship_name and not pilot.is_npc else text


def _kill_parts(notification: Notification, details: KillDetails) -> tuple[str, int, list[str]]:
    where = [part for part in (details.system_label, details.region_name) if part]
    title = notification.title + (f" ({', '.join(where)})" if where else "")
    victim = details.victim
    story = f"{victim_plain(victim)} lost {with_article(victim.ship_name or 'ship')}"
    if details.final_blow is not None:
        story += f" to {_attacker(details.final_blow)}{company_phrase(details)}"
    parts = [title, story]
    if details.top_damage is not None:
        parts.append(f"top damage {_attacker(details.top_damage)}")
    parts += [
        f"{format_isk(details.value_isk)} ISK",
        _utc(details.kill_time),
        zkillboard_url(details.killmail_id),
    ]
    return _KILL_LABELS[details.role], kill_colour(details), parts


def _system_parts(notification: Notification, details: SystemDetails) -> tuple[str, int, list[str]]:
    parts = [notification.title]
    info = details.static
    if info is None:
        return "SYSTEM", band_colour(None), parts
    parts.append(system_label(info))
    if info.effect_name:
        parts.append(info.effect_name)
    if info.statics:
        statics = []
        for static in info.statics:
            text = f"{static.name}\u2192{static.destination}" if static.destination else static.name
            if static.lifetime_h is not None:
                text += f" {hours_text(static.lifetime_h)}"
            statics.append(text)
        parts.append("statics " + ", ".join(statics))
    elif info.is_wormhole:
        parts.append("no statics")
    if info.region_name:
        parts.append(info.region_name)
    return "SYSTEM", band_colour(info.security_band), parts


def _character_parts(
    notification: Notification, details: CharacterDetails
) -> tuple[str, int, list[str]]:
    parts = [notification.title]
    badge = tickers(details.corporation_ticker, details.alliance_ticker)
    if badge:
        parts.append(badge)
    if details.system_name:
        parts.append(f"in {details.system_name}")
    added = notification.kind is NotificationKind.CHARACTER_ADDED
    return "CHARACTER", BLUE if added else GREY, parts


def _rally_parts(notification: Notification, details: RallyPointDetails) -> list[str]:
    parts = [notification.title]
    if details.character_name:
        parts.append(f"by {details.character_name}")
    if details.message:
        parts.append(details.message)
    return parts


def _console_parts(notification: Notification) -> tuple[str, int, list[str]]:
    details = notification.details
    if isinstance(details, KillDetails):
        return _kill_parts(notification, details)
    if isinstance(details, SystemDetails):
        return _system_parts(notification, details)
    if isinstance(details, CharacterDetails):
        return _character_parts(notification, details)
    if isinstance(details, RallyPointDetails):
        return "RALLY", PURPLE, _rally_parts(notification, details)
    if isinstance(details, AlertDetails):
        return _alert_parts(notification, details)
    return _status_parts(notification, details)


def _alert_parts(notification: Notification, details: AlertDetails) -> tuple[str, int, list[str]]:
    parts = [part for part in (notification.title, details.severity, details.message) if part]
    if details.state is AlertState.RESOLVED:
        return "ALERT", GREEN, parts
    return "ALERT", RED if details.severity == "critical" else ORANGE, parts


def _status_parts(notification: Notification, details: StatusDetails) -> tuple[str, int, list[str]]:
    parts = [notification.title]
    if details.detail:
        parts.append(details.detail)
    return "STATUS", BLUE if details.reason is StatusReason.STARTED else GREEN, parts


def console_line(notification: Notification, colour: bool) -> str:
    """One line for a terminal: label, title and the essentials, ``|``-separated.

    ANSI colour (the card's colour on the label) only when ``colour``.
    """
    plain, coloured = console_lines(notification)
    return coloured if colour else plain


def console_lines(notification: Notification) -> tuple[str, str]:
    """:func:`console_line` without and with colour, rendered once."""
    label, band, parts = _console_parts(notification)
    line = " | ".join(_plain(part) for part in parts)
    return f"{label:<9} {line}", f"{_ANSI[band]}{label:<9}{_ANSI_RESET} {line}"
