"""The Discord embed of each kind of notification (before fitting to the limits).

Each card says what happened in its title and first line, links what a
reader wants to open (zKillboard for pilots and kills, dotlan for systems and
regions by their EVE names), and puts the details in short inline fields.
Colours carry meaning: a loss red and a kill green whenever a tracked pilot
is involved, otherwise a kill's value band; a system by its security band.
"""

from __future__ import annotations

from typing import Any

from realtime.event import format_time
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
from realtime.render.limits import FIELD_VALUE_LIMIT, discord_length, truncate
from realtime.render.text import (
    BLUE,
    GREEN,
    GREY,
    KILL_COLOUR,
    LOSS_COLOUR,
    ORANGE,
    PURPLE,
    RED,
    band_colour,
    bold_with_article,
    company_phrase,
    dotlan_region_url,
    dotlan_system_url,
    format_isk,
    hours_text,
    link,
    mass_text,
    md,
    pilot_markdown,
    pilot_name,
    portrait_url,
    ship_render_url,
    tickers,
    type_icon_url,
    value_colour,
    victim_markdown,
    zkillboard_alliance_url,
    zkillboard_character_url,
    zkillboard_corporation_url,
    zkillboard_system_url,
    zkillboard_url,
)
from realtime.static_info import SystemStaticInfo, system_label

_SEVERITY_COLOURS = {"critical": RED, "warning": ORANGE}


def field(name: str, value: str, *, inline: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "inline": inline}


def relative_time(unix_seconds: float) -> str:
    """Discord's timestamp markup: each reader sees "5 minutes ago" in their own terms."""
    return f"<t:{int(unix_seconds)}:R>"


def name_list(names: list[str]) -> str:
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


# -- Kills ------------------------------------------------------------------------


def _attacker_phrase(pilot: Pilot) -> str:
    phrase = pilot_markdown(pilot)
    if pilot.is_npc or not pilot.ship_name:
        return phrase  # an NPC's name is its ship
    return f"{phrase} in {bold_with_article(pilot.ship_name)}"


def kill_summary(details: KillDetails) -> str:
    """The card's first lines: who lost what to whom, solo or with how many, top damage."""
    victim = details.victim
    ship = bold_with_article(victim.ship_name or "ship")
    line = f"{victim_markdown(victim)} lost {ship}"
    blow = details.final_blow
    if blow is None:
        return line + "."
    line += f" to {_attacker_phrase(blow)}{company_phrase(details)}."
    if details.top_damage is not None:
        line += f"\nTop damage: {_attacker_phrase(details.top_damage)}."
    return line


def _kill_author(details: KillDetails) -> dict[str, Any]:
    role = details.role
    if role is KillRole.NEUTRAL:
        return {"name": f"Kill in {details.system_name}"}
    first = details.victim if role is KillRole.LOSS else _first_attacker(details)
    label = "Loss" if role is KillRole.LOSS else "Kill"
    author: dict[str, Any] = {"name": f"{label} \u2022 {pilot_name(first)}"}
    if first.character_id is not None:
        author["icon_url"] = portrait_url(first.character_id)
        author["url"] = zkillboard_character_url(first.character_id)
    return author


def _first_attacker(details: KillDetails) -> Pilot:
    """The first tracked attacker (there is one: the role is a kill)."""
    return next(p for p in details.tracked_pilots if p is not details.victim)


def _kill_system(details: KillDetails) -> str:
    system = link(details.system_name, zkillboard_system_url(details.system_id))
    extra = [part for part in (details.system_label, details.region_name) if part]
    return " \u2022 ".join([system, *(md(part) for part in extra)])


def kill_colour(details: KillDetails) -> int:
    role = details.role
    if role is KillRole.LOSS:
        return LOSS_COLOUR
    return KILL_COLOUR if role is KillRole.KILL else value_colour(details.value_isk)


def kill_embed(notification: Notification) -> dict[str, Any]:
    """The card of a kill (see the module docstring).

    Raises:
        TypeError: ``notification`` is not a kill.
    """
    details = notification.details
    if not isinstance(details, KillDetails):
        msg = f"not a kill notification: {notification.kind}"
        raise TypeError(msg)
    fields = [
        field("Value", f"{format_isk(details.value_isk)} ISK"),
        field("System", _kill_system(details)),
        field("When", relative_time(details.kill_time)),
    ]
    ours = [p for p in details.tracked_pilots if p is not details.victim]
    if len(ours) > 1 or (ours and details.victim_tracked):
        names = [pilot_markdown(pilot) for pilot in ours]
        fields.append(field("Our pilots", name_list(names), inline=False))
    embed: dict[str, Any] = {
        "author": _kill_author(details),
        "title": notification.title,
        "url": zkillboard_url(details.killmail_id),
        "description": kill_summary(details),
        "color": kill_colour(details),
        "fields": fields,
        "timestamp": format_time(details.kill_time),
        "footer": {"text": f"zKillboard {details.killmail_id}"},
    }
    if details.victim.ship_type_id is not None:
        embed["thumbnail"] = {"url": ship_render_url(details.victim.ship_type_id)}
    return embed


# -- Systems ----------------------------------------------------------------------


def _static_lines(info: SystemStaticInfo) -> str:
    lines = []
    for static in info.statics:
        line = f"**{md(static.name)}**"
        if static.destination:
            line += f" \u2192 {md(static.destination)}"
        facts = []
        if static.lifetime_h is not None:
            facts.append(hours_text(static.lifetime_h))
        if static.max_jump_mass_kg is not None:
            facts.append(f"{mass_text(static.max_jump_mass_kg)} per jump")
        if static.max_mass_kg is not None:
            facts.append(f"{mass_text(static.max_mass_kg)} in all")
        if facts:
            line += " \u2022 " + ", ".join(facts)
        lines.append(line)
    return "\n".join(lines)


def _region_text(info: SystemStaticInfo) -> str:
    region = link(info.region_name, dotlan_region_url(info.region_name))
    if info.constellation_name:
        region += f" \u2022 {md(info.constellation_name)}"
    return region


def _system_fields(info: SystemStaticInfo) -> list[dict[str, Any]]:
    fields = [field("Class" if info.is_wormhole else "Security", md(system_label(info)))]
    if info.effect_name:
        fields.append(field("Effect", md(info.effect_name)))
    if info.region_name:
        fields.append(field("Region", _region_text(info)))
    if info.statics:
        fields.append(field("Statics", _static_lines(info), inline=False))
    elif info.is_wormhole:
        fields.append(field("Statics", "none", inline=False))
    return fields


def system_embed(notification: Notification, details: SystemDetails) -> dict[str, Any]:
    info = details.static
    shown = f"**{md(details.name)}**"
    if details.eve_name and details.eve_name != details.name:
        shown += f" ({md(details.eve_name)})"
    embed: dict[str, Any] = {
        "title": f"New system: {details.name}",
        "description": f"{shown} was added to map **{md(details.slug)}**.",
        "color": band_colour(None if info is None else info.security_band),
        "timestamp": format_time(notification.time),
        "footer": {"text": f"Map {details.slug} \u2022 system {details.system_id}"},
    }
    if info is None:
        embed["footer"]["text"] += " \u2022 static info not available yet"
        return embed
    embed["title"] += f" ({info.class_title})" if info.class_title else ""
    embed["url"] = dotlan_system_url(info.name)
    embed["fields"] = _system_fields(info)
    if info.sun_type_id is not None:
        embed["thumbnail"] = {"url": type_icon_url(info.sun_type_id)}
    return embed


# -- Characters and rally points -------------------------------------------------------


def _organisation(name: str, ticker: str, url: str | None) -> str:
    shown = name or (f"[{ticker}]" if ticker else "")
    if not shown:
        return ""
    text = link(shown, url) if url else md(shown)
    return f"{text} {md(f'[{ticker}]')}" if name and ticker else text


def character_embed(notification: Notification, details: CharacterDetails) -> dict[str, Any]:
    added = notification.kind is NotificationKind.CHARACTER_ADDED
    who = link(details.name, zkillboard_character_url(details.character_id))
    badge = tickers(details.corporation_ticker, details.alliance_ticker)
    if badge:
        who += f" {md(badge)}"
    state = "is now tracked on" if added else "is no longer tracked on"
    fields = []
    corporation = _organisation(
        details.corporation_name,
        details.corporation_ticker,
        None
        if details.corporation_id is None
        else zkillboard_corporation_url(details.corporation_id),
    )
    if corporation:
        fields.append(field("Corporation", corporation))
    alliance = _organisation(
        details.alliance_name,
        details.alliance_ticker,
        None if details.alliance_id is None else zkillboard_alliance_url(details.alliance_id),
    )
    if alliance:
        fields.append(field("Alliance", alliance))
    if details.system_name:
        fields.append(field("Location", md(details.system_name)))
    embed: dict[str, Any] = {
        "title": f"Character {'added' if added else 'removed'}: {details.name}",
        "url": zkillboard_character_url(details.character_id),
        "description": f"{who} {state} map **{md(details.slug)}**.",
        "color": BLUE if added else GREY,
        "thumbnail": {"url": portrait_url(details.character_id)},
        "timestamp": format_time(notification.time),
        "footer": {"text": f"Map {details.slug} \u2022 character {details.character_id}"},
    }
    if fields:
        embed["fields"] = fields
    return embed


def rally_embed(notification: Notification, details: RallyPointDetails) -> dict[str, Any]:
    who = details.character_name or "someone"
    caller = (
        link(who, zkillboard_character_url(details.character_id))
        if details.character_id is not None
        else md(who)
    )
    where = details.system_name or "an unknown system"
    place = (
        link(where, zkillboard_system_url(details.system_id))
        if details.system_id is not None
        else md(where)
    )
    description = f"{caller} calls a rally in **{place}**."
    if details.message:
        quoted = "\n".join(f"> {md(line)}" for line in details.message.splitlines() or [""])
        description += f"\n{quoted}"
    embed: dict[str, Any] = {
        "title": f"Rally point in {where}",
        "description": description,
        "color": PURPLE,
        "fields": [field("Map", md(details.slug))],
        "timestamp": format_time(notification.time),
        "footer": {"text": f"Map {details.slug} \u2022 rally point {details.rally_point_id}"},
    }
    if details.character_id is not None:
        embed["thumbnail"] = {"url": portrait_url(details.character_id)}
    return embed


# -- The program's own notices --------------------------------------------------------


def alert_embed(notification: Notification, details: AlertDetails) -> dict[str, Any]:
    resolved = details.state is AlertState.RESOLVED
    fields = [
        field("Severity", md(details.severity)),
        field("Since", relative_time(details.first_seen)),
    ]
    if details.count > 1:
        fields.append(field("Times raised", str(details.count)))
    embed: dict[str, Any] = {
        "title": notification.title,
        "color": GREEN if resolved else _SEVERITY_COLOURS.get(details.severity, BLUE),
        "fields": fields,
        "timestamp": format_time(notification.time),
        "footer": {"text": f"Alert {details.key}"},
    }
    if details.message:
        embed["description"] = md(details.message)
    return embed


def status_embed(notification: Notification, details: StatusDetails) -> dict[str, Any]:
    """The title says it all ("Back after 12 min, 3 kills caught up"); the detail follows."""
    embed: dict[str, Any] = {
        "title": notification.title,
        "color": BLUE if details.reason is StatusReason.STARTED else GREEN,
        "timestamp": format_time(notification.time),
        "footer": {"text": "wanderer-realtime"},
    }
    if details.detail:
        embed["description"] = md(details.detail)
    return embed


def embed_for(notification: Notification) -> dict[str, Any]:
    """The card of any notification."""
    details = notification.details
    if isinstance(details, KillDetails):
        return kill_embed(notification)
    if isinstance(details, SystemDetails):
        return system_embed(notification, details)
    if isinstance(details, CharacterDetails):
        return character_embed(notification, details)
    if isinstance(details, RallyPointDetails):
        return rally_embed(notification, details)
    if isinstance(details, AlertDetails):
        return alert_embed(notification, details)
    return status_embed(notification, details)
