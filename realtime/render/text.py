"""The pieces cards are made of: numbers for people, links, colours, escaped names.

Every text that comes from other people (pilot, corporation, system names, a
rally point's message) goes through :func:`md` before it enters markdown, so
that a name cannot format the card, hide a link or look like a mention.
"""

from __future__ import annotations

import math
import re
from urllib.parse import quote

from realtime.notifications import KillDetails, Pilot
from realtime.static_info import SecurityBand

RED = 0xED4245
ORANGE = 0xE67E22
YELLOW = 0xFEE75C
GREEN = 0x57F287
GREY = 0x95A5A6
BLUE = 0x3498DB
PURPLE = 0x9B59B6
TEAL = 0x1ABC9C

LOSS_COLOUR = RED
KILL_COLOUR = GREEN

_VALUE_BANDS = ((5e9, RED), (1e9, ORANGE), (1e8, YELLOW), (1e7, GREEN))
_BAND_COLOURS = {
    SecurityBand.HIGH: GREEN,
    SecurityBand.LOW: ORANGE,
    SecurityBand.NULL: RED,
    SecurityBand.WORMHOLE: PURPLE,
}
_UNITS = ((1e3, "K", 1), (1e6, "M", 1), (1e9, "B", 2))
_MARKDOWN_SPECIAL = re.compile(r"([\\*_~`|>\[\]<@#])")

THUMBNAIL_SIZE = 128
"""Pixels of ship renders and portraits: sharp in a card's corner, light to load."""


def format_isk(value: float) -> str:
    """An ISK amount for people: ``1.25B``, ``340.5M``, ``12.0K``, ``950``.

    Rounding never shows 1000 of a unit (999,960,000 is ``1.00B``). Negative,
    NaN and infinite amounts show as ``0``.
    """
    amount = value if math.isfinite(value) and value > 0 else 0.0
    number, unit = f"{amount:.0f}", ""
    for divisor, suffix, digits in _UNITS:
        if float(number) < 1000:
            break
        number, unit = f"{amount / divisor:.{digits}f}", suffix
    return number + unit


def value_colour(value: float) -> int:
    """The colour of a kill worth ``value`` ISK: at least 5B red, 1B orange,
    100M yellow, 10M green, else grey."""
    for threshold, colour in _VALUE_BANDS:
        if value >= threshold:
            return colour
    return GREY


def band_colour(band: SecurityBand | None) -> int:
    return TEAL if band is None else _BAND_COLOURS[band]


def md(text: str) -> str:
    """``text`` with Discord markdown, link and mention syntax escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def link(text: str, url: str) -> str:
    """A markdown link whose visible ``text`` is escaped (``url`` is ours, never escaped)."""
    return f"[{md(text)}]({url})"


def zkillboard_url(killmail_id: int) -> str:
    return f"https://zkillboard.com/kill/{killmail_id}/"


def zkillboard_character_url(character_id: int) -> str:
    return f"https://zkillboard.com/character/{character_id}/"


def zkillboard_corporation_url(corporation_id: int) -> str:
    return f"https://zkillboard.com/corporation/{corporation_id}/"


def zkillboard_alliance_url(alliance_id: int) -> str:
    return f"https://zkillboard.com/alliance/{alliance_id}/"


def zkillboard_system_url(system_id: int) -> str:
    return f"https://zkillboard.com/system/{system_id}/"


def dotlan_system_url(eve_name: str) -> str:
    """Dotlan's page of a system: by its EVE name (a map's custom name is unknown there)."""
    return f"https://evemaps.dotlan.net/system/{quote(eve_name.replace(' ', '_'))}"


def dotlan_region_url(region_name: str) -> str:
    return f"https://evemaps.dotlan.net/map/{quote(region_name.replace(' ', '_'))}"


def ship_render_url(ship_type_id: int) -> str:
    return f"https://images.evetech.net/types/{ship_type_id}/render?size={THUMBNAIL_SIZE}"


def portrait_url(character_id: int) -> str:
    return f"https://images.evetech.net/characters/{character_id}/portrait?size={THUMBNAIL_SIZE}"


def type_icon_url(type_id: int) -> str:
    return f"https://images.evetech.net/types/{type_id}/icon?size=64"


def tickers(corporation: str, alliance: str) -> str:
    """``[CORP] <ALLY>`` as EVE writes them; empty parts are left out."""
    parts = [f"[{corporation}]" if corporation else "", f"<{alliance}>" if alliance else ""]
    return " ".join(part for part in parts if part)


def pilot_name(pilot: Pilot) -> str:
    """The name to show: the character's; an NPC's ship (that is its name); else a stand-in."""
    if pilot.name:
        return pilot.name
    if pilot.is_npc:
        return pilot.ship_name or pilot.corporation_name or "an NPC"
    return "Unknown pilot"


def pilot_markdown(pilot: Pilot) -> str:
    """The pilot linked to zKillboard, with tickers (``[name](url) \\[CORP\\]``).

    An NPC (no character) is its name in bold and ``(NPC)``, without a link.
    """
    if pilot.is_npc:
        name = pilot.ship_name or pilot.corporation_name
        return f"**{md(name)}** (NPC)" if name else "an NPC"
    shown = link(pilot_name(pilot), zkillboard_character_url(pilot.character_id or 0))
    badge = tickers(pilot.corporation_ticker, pilot.alliance_ticker)
    return f"{shown} {md(badge)}" if badge else shown


def victim_markdown(victim: Pilot) -> str:
    """The victim: a pilot as :func:`pilot_markdown`; without a character (a structure,
    a deployable) its owner corporation, linked to zKillboard."""
    if not victim.is_npc:
        return pilot_markdown(victim)
    owner = victim.corporation_name or "Unknown owner"
    if victim.corporation_id is None:
        return f"**{md(owner)}**"
    return link(owner, zkillboard_corporation_url(victim.corporation_id))


def victim_plain(victim: Pilot) -> str:
    return pilot_plain(victim) if not victim.is_npc else victim.corporation_name or "Unknown owner"


def pilot_plain(pilot: Pilot) -> str:
    """The pilot with tickers, for a console line (an NPC: its name and ``(NPC)``)."""
    if pilot.is_npc:
        name = pilot.ship_name or pilot.corporation_name
        return f"{name} (NPC)" if name else "an NPC"
    badge = tickers(pilot.corporation_ticker, pilot.alliance_ticker)
    name = pilot_name(pilot)
    return f"{name} {badge}" if badge else name


def company_phrase(details: KillDetails) -> str:
    """Who else was on the kill, after its final blow: ``, solo``, `` and 3 others`` or ""."""
    others = details.attacker_count - 1
    if details.solo:
        return ", solo"
    if others > 0:
        return f" and {others} other{'s' if others != 1 else ''}"
    return ""


def mass_text(kilograms: float) -> str:
    """``375M kg``, ``1,350M kg``, ``20M kg``: wormhole masses in one unit, so they compare."""
    if kilograms >= 1e6:
        return f"{kilograms / 1e6:,.0f}M kg"
    return f"{kilograms:,.0f} kg"


def article(noun: str) -> str:
    """``a`` (Loki) or ``an`` (Ishtar)."""
    return "an" if noun[:1].upper() in ("A", "E", "I", "O", "U") else "a"


def with_article(noun: str) -> str:
    """``a Loki``, ``an Ishtar``."""
    return f"{article(noun)} {noun}"


def bold_with_article(noun: str) -> str:
    """``a **Loki**``, ``an **Ishtar**`` (the noun escaped)."""
    return f"{article(noun)} **{md(noun)}**"


def hours_text(hours: float) -> str:
    return f"{hours:.1f}".removesuffix(".0") + " h"
