"""Rendering notifications: Discord message bodies and console lines.

:func:`message_payload` builds the JSON body of a Discord message (without the
``nonce``: the sender adds it) and always passes it through
:func:`fit_to_limits`, which makes any payload fit Discord's size limits
(PROTOCOLS.md section 4) so that no message is ever refused with error 50035,
however long the names in a killmail are or however many pilots it lists.

Lengths are counted in UTF-16 code units, which is never less than the count
of code points, so a payload that fits by this measure fits whichever way
Discord counts. Truncation cuts on grapheme cluster boundaries (a base
character stays with its combining marks, an emoji ZWJ sequence, a flag's two
regional indicators, a Hangul syllable's jamo, CR LF stay whole) and ends
with an ellipsis; lone surrogates, which cannot be encoded as JSON text,
become U+FFFD.

Every message disables mention parsing (``allowed_mentions``): names and
rally point messages come from other people, and must not ping ``@everyone``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from realtime.controls import blank_controls
from realtime.event import format_time
from realtime.notifications import (
    CharacterDetails,
    KillDetails,
    Notification,
    Pilot,
    RallyPointDetails,
    SystemDetails,
)

CONTENT_LIMIT = 2000
EMBEDS_LIMIT = 10
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_NAME_LIMIT = 256
EMBEDS_TOTAL_LIMIT = 6000

ELLIPSIS = "\u2026"
_ZWJ = "\u200d"
EMPTY_FIELD = "\u200b"
"""A zero-width space: Discord refuses empty field names and values."""

RED = 0xED4245
ORANGE = 0xE67E22
YELLOW = 0xFEE75C
GREEN = 0x57F287
GREY = 0x95A5A6
BLUE = 0x3498DB
PURPLE = 0x9B59B6
TEAL = 0x1ABC9C

_VALUE_BANDS = ((5e9, RED), (1e9, ORANGE), (1e8, YELLOW), (1e7, GREEN))
_ISK_UNITS = ((1e3, "K", 1), (1e6, "M", 1), (1e9, "B", 2))

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

_MARKDOWN_SPECIAL = re.compile(r"([\\*_~`|>\[\]<@#])")


# -- Numbers and links -------------------------------------------------------


def format_isk(value: float) -> str:
    """An ISK amount for people: ``1.25B``, ``340.5M``, ``12.0K``, ``950``.

    Rounding never shows 1000 of a unit (999,960,000 is ``1.00B``). Negative,
    NaN and infinite amounts show as ``0``.
    """
    amount = value if math.isfinite(value) and value > 0 else 0.0
    number, unit = f"{amount:.0f}", ""
    for divisor, suffix, digits in _ISK_UNITS:
        if float(number) < 1000:
            break
        number, unit = f"{amount / divisor:.{digits}f}", suffix
    return number + unit


def value_colour(value: float) -> int:
    """The embed colour of a kill worth ``value`` ISK.

    At least 5B red, 1B orange, 100M yellow, 10M green, else grey.
    """
    for threshold, colour in _VALUE_BANDS:
        if value >= threshold:
            return colour
    return GREY


def zkillboard_url(killmail_id: int) -> str:
    return f"https://zkillboard.com/kill/{killmail_id}/"


def ship_render_url(ship_type_id: int) -> str:
    return f"https://images.evetech.net/types/{ship_type_id}/render?size=64"


def portrait_url(character_id: int) -> str:
    return f"https://images.evetech.net/characters/{character_id}/portrait?size=64"


# -- Text measurement and grapheme-safe truncation ----------------------------


def _clean(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def discord_length(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (an upper bound of Discord's count)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _extends(char: str) -> bool:
    """Whether ``char`` continues the grapheme cluster before it (UAX #29, conservatively)."""
    code = ord(char)
    return (
        unicodedata.category(char) in {"Mn", "Me", "Mc"}
        or char == _ZWJ
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences
        or 0x1160 <= code <= 0x11FF  # Hangul medial vowels and final consonants
        or 0xD7B0 <= code <= 0xD7FF
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _is_hangul_leading(char: str) -> bool:
    code = ord(char)
    return 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97C


def _is_boundary(text: str, index: int) -> bool:
    """Whether a grapheme cluster may end between ``text[index - 1]`` and ``text[index]``."""
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if unicodedata.category(before) == "Cc" or unicodedata.category(after) == "Cc":
        return True
    if before == _ZWJ or _extends(after):
        return False
    if _is_hangul_leading(before) and (_is_hangul_leading(after) or 0xAC00 <= ord(after) <= 0xD7A3):
        return False
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        while run < index and _is_regional_indicator(text[index - 1 - run]):
            run += 1
        return run % 2 == 0
    return True


def truncate(text: str, limit: int) -> str:
    """``text`` cleaned and, if longer than ``limit`` UTF-16 units, cut to fit with an ellipsis.

    The cut falls on a grapheme cluster boundary, before trailing whitespace;
    the result, ellipsis included, is at most ``limit`` units long ("" for a
    limit of 0).
    """
    text = _clean(text)
    if discord_length(text) <= limit:
        return text
    if limit <= 0:
        return ""
    budget = limit - discord_length(ELLIPSIS)
    cut, used = 0, 0
    for char in text[:budget]:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            break
        cut += 1
    while cut > 0 and not _is_boundary(text, cut):
        cut -= 1
    # whitespace and a dangling joiner before the ellipsis would only look broken
    while cut > 0 and (text[cut - 1].isspace() or text[cut - 1] == _ZWJ):
        cut -= 1
    return text[:cut] + ELLIPSIS


# -- Fitting a payload to Discord's limits -------------------------------------


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _fit_slot(holder: dict[str, Any], name: str, limit: int) -> None:
    """Cut ``holder[name]`` to ``limit``; remove it if it is ``None`` or empty."""
    text = truncate(_as_text(holder.get(name)) or "", limit)
    if text:
        holder[name] = text
    else:
        holder.pop(name, None)


def _fit_named(embed: dict[str, Any], part: str, key: str, limit: int) -> None:
    """Fit a sub-object's text (``footer.text``, ``author.name``); drop it if it has none."""
    value = embed.get(part)
    if value is None:
        embed.pop(part, None)
        return
    holder = dict(value) if isinstance(value, Mapping) else {key: value}
    _fit_slot(holder, key, limit)
    if holder.get(key):
        embed[part] = holder
    else:
        embed.pop(part)


def _is_table(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(value, Mapping)


def _fit_field(field: Mapping[str, Any]) -> dict[str, Any]:
    fitted = dict(field)
    for key, limit in (("name", FIELD_NAME_LIMIT), ("value", FIELD_VALUE_LIMIT)):
        text = truncate(_as_text(fitted.get(key)) or "", limit)
        fitted[key] = text or EMPTY_FIELD
    return fitted


def _fit_embed(embed: Mapping[str, Any]) -> dict[str, Any]:
    fitted = dict(embed)
    for key, limit in (("title", TITLE_LIMIT), ("description", DESCRIPTION_LIMIT)):
        if key in fitted:
            _fit_slot(fitted, key, limit)
    if "footer" in fitted:
        _fit_named(fitted, "footer", "text", FOOTER_LIMIT)
    if "author" in fitted:
        _fit_named(fitted, "author", "name", AUTHOR_NAME_LIMIT)
    if "fields" in fitted:
        raw_fields = fitted["fields"]
        fields = [f for f in (raw_fields if isinstance(raw_fields, list) else ()) if _is_table(f)]
        fitted["fields"] = [_fit_field(field) for field in fields[:FIELDS_LIMIT]]
    return fitted


def _embed_length(embed: Mapping[str, Any]) -> int:
    """The characters of ``embed`` that count towards the 6000 limit."""
    total = discord_length(embed.get("title", "")) + discord_length(embed.get("description", ""))
    total += discord_length(embed.get("footer", {}).get("text", ""))
    total += discord_length(embed.get("author", {}).get("name", ""))
    for field in embed.get("fields", ()):
        total += discord_length(field["name"]) + discord_length(field["value"])
    return total


def _shrink(holder: dict[str, Any], key: str, excess: int) -> bool:
    """Shorten ``holder[key]`` by at least ``excess`` units; remove it if emptied.

    Returns whether any text is left.
    """
    text = holder[key]
    shorter = truncate(text, max(discord_length(text) - excess, 0))
    if shorter:
        holder[key] = shorter
        return True
    del holder[key]
    return False


def _fit_total(embeds: list[dict[str, Any]]) -> None:
    """Shorten the embeds, least important text first, until they fit 6000 in all.

    Per embed from the last: the description, then field values and whole
    fields from the last, then footer, author and title.
    """

    def excess() -> int:
        return sum(_embed_length(embed) for embed in embeds) - EMBEDS_TOTAL_LIMIT

    for embed in reversed(embeds):
        if excess() > 0 and "description" in embed:
            _shrink(embed, "description", excess())
        fields: list[dict[str, Any]] = embed.get("fields", [])
        while excess() > 0 and fields:
            value_length = discord_length(fields[-1]["value"])
            if value_length - excess() >= 2:
                _shrink(fields[-1], "value", excess())
            else:
                fields.pop()
        for part, key in (("footer", "text"), ("author", "name")):
            # Discord refuses a footer or author without its text
            if excess() > 0 and part in embed and not _shrink(embed[part], key, excess()):
                del embed[part]
        if excess() > 0 and "title" in embed:
            _shrink(embed, "title", excess())
        if excess() <= 0:
            return


def fit_to_limits(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a message body that fits every Discord size limit.

    ``content`` is cut to 2000; only the first 10 embeds are kept; in each
    embed title, description, footer text, author name, field names and
    values are cut to their limits (empty field names and values become a
    zero-width space, as Discord refuses empty ones), only the first 25 fields
    are kept; then, if the embeds' text exceeds 6000 in all, the least
    important text is shortened (see ``_fit_total``). Text values that are not
    strings are converted with ``str``; ``None`` or empty text removes the
    entry (a footer or author without text goes whole). Embeds and fields that
    are not tables are dropped; other keys are kept as they are. The input is
    not modified.
    """
    fitted = dict(payload)
    if "content" in fitted:
        _fit_slot(fitted, "content", CONTENT_LIMIT)
    if "embeds" in fitted:
        raw_embeds = fitted["embeds"]
        tables = [e for e in (raw_embeds if isinstance(raw_embeds, list) else ()) if _is_table(e)]
        embeds = [_fit_embed(embed) for embed in tables[:EMBEDS_LIMIT]]
        _fit_total(embeds)
        fitted["embeds"] = embeds
    return fitted


# -- Embeds ---------------------------------------------------------------------


def _md(text: str) -> str:
    """``text`` with Discord markdown and mention syntax escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _pilot_label(pilot: Pilot) -> str:
    name = pilot.name or "Unknown pilot"
    organisation = pilot.corporation_name or pilot.alliance_name
    return f"{name} ({organisation})" if organisation else name


def _name_list(names: list[str]) -> str:
    """``names`` comma-separated, as many as fit a field value, then "and N more".

    Each name accepted leaves room for the "and N more" of the names after it;
    a first name too long for that room is truncated.
    """
    shown: list[str] = []
    used = 0
    for index, name in enumerate(names):
        rest = len(names) - index - 1
        more = f" and {rest} more" if rest else ""
        separator = 2 if shown else 0
        room = FIELD_VALUE_LIMIT - used - separator - len(more)
        if discord_length(name) > room:
            if shown:
                return ", ".join(shown) + f" and {rest + 1} more"
            return truncate(name, room) + more
        shown.append(name)
        used += separator + discord_length(name)
    return ", ".join(shown)


def _field(name: str, value: str, *, inline: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "inline": inline}


def kill_embed(notification: Notification) -> dict[str, Any]:
    """The embed of a kill notification, like the Elixir notifier's.

    Victim (name, corporation, ship) as author and description, final blow,
    attacker count, system, value (colour by value band), the tracked pilots
    involved, a zKillboard link and the ship's render as thumbnail.

    Raises:
        TypeError: ``notification`` is not a kill.
    """
    details = notification.details
    if not isinstance(details, KillDetails):
        msg = f"not a kill notification: {notification.kind}"
        raise TypeError(msg)
    victim = details.victim
    ship = victim.ship_name or "ship"
    description = (
        f"**{_md(_pilot_label(victim))}** lost a **{_md(ship)}** in **{_md(details.system_name)}**"
    )
    if details.victim_tracked:
        description += " (tracked pilot's loss)"
    fields = [
        _field("Value", f"{format_isk(details.value_isk)} ISK"),
        _field("Attackers", str(details.attacker_count)),
        _field("System", _md(details.system_name)),
    ]
    if details.final_blow is not None:
        blow = details.final_blow
        label = _md(_pilot_label(blow)) if blow.name else "NPC or structure"
        if blow.ship_name:
            label += f" in {_md(blow.ship_name)}"
        fields.insert(2, _field("Final blow", label))
    if details.tracked_pilots:
        names = [_md(pilot.name or str(pilot.character_id)) for pilot in details.tracked_pilots]
        fields.append(_field("Tracked pilots", _name_list(names), inline=False))
    embed: dict[str, Any] = {
        "title": notification.title,
        "url": zkillboard_url(details.killmail_id),
        "description": description,
        "color": value_colour(details.value_isk),
        "timestamp": format_time(details.kill_time),
        "fields": fields,
        "footer": {"text": f"Kill {details.killmail_id} \u2022 {details.system_name}"},
    }
    author: dict[str, Any] = {"name": _pilot_label(victim)}
    if victim.character_id is not None:
        author["icon_url"] = portrait_url(victim.character_id)
    embed["author"] = author
    if victim.ship_type_id is not None:
        embed["thumbnail"] = {"url": ship_render_url(victim.ship_type_id)}
    return embed


def map_embed(notification: Notification) -> dict[str, Any]:
    """The embed of a map notification (system added, character added or removed, rally point).

    Raises:
        TypeError: ``notification`` is a kill.
    """
    details = notification.details
    embed: dict[str, Any] = {
        "title": notification.title,
        "timestamp": format_time(notification.time),
    }
    if isinstance(details, SystemDetails):
        embed["description"] = f"**{_md(details.name)}** was added to map **{_md(details.slug)}**"
        embed["color"] = TEAL
        embed["footer"] = {"text": f"Map {details.slug} \u2022 system {details.system_id}"}
    elif isinstance(details, CharacterDetails):
        added = notification.kind == "character_added"
        state = "is now tracked on" if added else "is no longer tracked on"
        embed["description"] = f"**{_md(details.name)}** {state} map **{_md(details.slug)}**"
        embed["color"] = BLUE if added else GREY
        embed["thumbnail"] = {"url": portrait_url(details.character_id)}
        if details.system_name:
            embed["fields"] = [_field("Location", _md(details.system_name))]
        embed["footer"] = {"text": f"Map {details.slug} \u2022 character {details.character_id}"}
    elif isinstance(details, RallyPointDetails):
        embed["description"] = _md(details.message) if details.message else "Rally here!"
        embed["color"] = PURPLE
        embed["fields"] = [
            _field("System", _md(details.system_name or "unknown")),
            _field("Called by", _md(details.character_name or "unknown")),
        ]
        if details.character_id is not None:
            embed["thumbnail"] = {"url": portrait_url(details.character_id)}
        embed["footer"] = {"text": f"Map {details.slug}"}
    else:
        msg = f"not a map notification: {notification.kind}"
        raise TypeError(msg)
    return embed


def message_payload(notification: Notification) -> dict[str, Any]:
    """The JSON body of the Discord message for ``notification``, within every size limit.

    Contains ``embeds`` (one) and ``allowed_mentions`` (none); the sender adds
    ``nonce`` and ``enforce_nonce`` in bot mode.
    """
    render: Callable[[Notification], dict[str, Any]] = (
        kill_embed if isinstance(notification.details, KillDetails) else map_embed
    )
    return fit_to_limits({"embeds": [render(notification)], "allowed_mentions": {"parse": []}})


# -- Console --------------------------------------------------------------------


def _plain(text: str) -> str:
    """``text`` safe for one terminal line: no control or bidi characters, bounded."""
    cleaned = blank_controls(_clean(text))
    return truncate(" ".join(cleaned.split()), _CONSOLE_TEXT_LIMIT)


def _console_parts(notification: Notification) -> tuple[str, int, list[str]]:
    details = notification.details
    parts = [notification.title]
    if isinstance(details, KillDetails):
        parts.append(f"victim {_pilot_label(details.victim)}")
        if details.final_blow is not None:
            blow = details.final_blow
            ship = f" ({blow.ship_name})" if blow.ship_name else ""
            parts.append(f"final blow {_pilot_label(blow)}{ship}")
        plural = "" if details.attacker_count == 1 else "s"
        parts.append(f"{details.attacker_count} attacker{plural}")
        parts.append(f"{format_isk(details.value_isk)} ISK")
        parts.append(zkillboard_url(details.killmail_id))
        return "KILL", value_colour(details.value_isk), parts
    if isinstance(details, SystemDetails):
        return "SYSTEM", TEAL, parts
    if isinstance(details, CharacterDetails):
        return "CHARACTER", BLUE if notification.kind == "character_added" else GREY, parts
    if details.character_name:
        parts.append(f"by {details.character_name}")
    if details.message:
        parts.append(details.message)
    return "RALLY", PURPLE, parts


def console_line(notification: Notification, colour: bool) -> str:
    """One line for a terminal: label, title and the essentials, ``|``-separated.

    Text from the network is stripped of control and bidi characters (no
    terminal escapes, no line breaks) and each part is bounded. ANSI colour
    (the kill's value band, one colour per map kind) only when ``colour``.
    """
    plain, coloured = console_lines(notification)
    return coloured if colour else plain


def console_lines(notification: Notification) -> tuple[str, str]:
    """:func:`console_line` without and with colour, rendered once."""
    label, band, parts = _console_parts(notification)
    line = " | ".join(_plain(part) for part in parts)
    return f"{label:<9} {line}", f"{_ANSI[band]}{label:<9}{_ANSI_RESET} {line}"
