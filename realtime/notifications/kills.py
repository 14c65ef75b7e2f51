"""Whether a killmail deserves a notification, and what its card shows.

A killmail comes from wanderer-kills (``killmail``) or as a map's
``map_kill``; both are decided alike. Names come from the killmail
(``character_name``, or the older ``victim_name``/``attacker_name``), tickers
when the feed has them, and the system's name from the map that tracks it,
else the feed's ``solar_system_name``, else the static info.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from realtime.config import KillNotifyConfig
from realtime.event import Event, Priority, parse_time
from realtime.ids import as_id
from realtime.keys import KILLMAIL_TYPES
from realtime.notifications.model import (
    Decision,
    KillDetails,
    Notification,
    NotificationKind,
    Pilot,
    SkipReason,
)
from realtime.static_info import (
    NO_STATIC_INFO,
    WORMHOLE_SYSTEM_IDS,
    StaticInfoLookup,
    system_label,
)
from realtime.tracking import TrackedLookup, map_payload

HIGH_PRIORITY_VALUE_ISK = 1_000_000_000.0
"""Kills worth at least this are :attr:`Priority.HIGH`, like a tracked pilot's loss."""


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float:
    """A finite, non-negative amount (ISK, damage); anything else counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    amount = float(value)
    return amount if math.isfinite(amount) and amount > 0 else 0.0


def _pilot(entry: Mapping[str, Any], tracked: TrackedLookup, *, victim: bool) -> Pilot:
    character_id = as_id(entry.get("character_id"))
    name = text(entry.get("character_name")) or text(
        entry.get("victim_name" if victim else "attacker_name")
    )
    if not name and character_id is not None:
        name = tracked.character_name(character_id) or ""
    return Pilot(
        character_id=character_id,
        name=name,
        corporation_id=as_id(entry.get("corporation_id")),
        corporation_name=text(entry.get("corporation_name")),
        corporation_ticker=text(entry.get("corporation_ticker")),
        alliance_id=as_id(entry.get("alliance_id")),
        alliance_name=text(entry.get("alliance_name")),
        alliance_ticker=text(entry.get("alliance_ticker")),
        ship_type_id=as_id(entry.get("ship_type_id")),
        ship_name=text(entry.get("ship_name")),
        damage=_number(entry.get("damage_taken" if victim else "damage_done")),
    )


def _final_blow(attackers: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The attacker flagged ``final_blow``, else the one with most damage, else none."""
    for attacker in attackers:
        if attacker.get("final_blow") is True:
            return attacker
    return _top_damage(attackers)


def _top_damage(attackers: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first attacker with the most damage done; none without attackers."""
    if not attackers:
        return None
    return max(attackers, key=lambda attacker: _number(attacker.get("damage_done")))


def _kill_time(killmail: Mapping[str, Any], event: Event) -> float:
    value = killmail.get("kill_time")
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            pass
    return event.time


@dataclass(frozen=True, slots=True)
class _Killmail:
    """The parts of a killmail the decision reads."""

    killmail_id: int
    system_id: int
    kill_time: float
    victim: Mapping[str, Any]
    attackers: list[Mapping[str, Any]]
    data: Mapping[str, Any]


def _read_killmail(event: Event) -> _Killmail | Decision:
    if event.type not in KILLMAIL_TYPES:
        return Decision(SkipReason.NOT_A_KILL, event.type)
    data = map_payload(event.data)
    killmail_id = as_id(data.get("killmail_id"))
    system_id = as_id(data.get("system_id"))
    if system_id is None:
        system_id = as_id(data.get("solar_system_id"))
    if killmail_id is None or system_id is None:
        return Decision(SkipReason.MALFORMED, "no integer killmail_id and system_id")
    victim = data.get("victim")
    attackers = data.get("attackers")
    return _Killmail(
        killmail_id=killmail_id,
        system_id=system_id,
        kill_time=_kill_time(data, event),
        victim=victim if isinstance(victim, Mapping) else {},
        attackers=[
            attacker
            for attacker in (attackers if isinstance(attackers, list) else ())
            if isinstance(attacker, Mapping)
        ],
        data=data,
    )


def _screen_place_and_time(
    kill: _Killmail, config: KillNotifyConfig, max_kill_age_s: float, now: float
) -> Decision | None:
    age = now - kill.kill_time
    if age > max_kill_age_s:
        return Decision(SkipReason.TOO_OLD, f"{age:.0f} s old")
    if kill.system_id in config.exclude_systems:
        return Decision(SkipReason.EXCLUDED_SYSTEM, str(kill.system_id))
    if config.wormhole_only and kill.system_id not in WORMHOLE_SYSTEM_IDS:
        return Decision(SkipReason.NOT_WORMHOLE, str(kill.system_id))
    return None


def _tracked_pilots(
    victim: Pilot,
    attackers: list[Mapping[str, Any]],
    tracked: TrackedLookup,
    tracked_system: bool,
    config: KillNotifyConfig,
) -> tuple[Pilot, ...] | Decision:
    """The tracked, not excluded pilots involved, or why the kill is not relevant."""
    excluded = config.exclude_characters
    if victim.character_id is not None and victim.character_id in excluded:
        return Decision(SkipReason.EXCLUDED_CHARACTER, f"victim {victim.character_id}")
    pilots: list[Pilot] = []
    excluded_match = False
    if victim.character_id is not None and tracked.is_tracked_character(victim.character_id):
        pilots.append(victim)
    for attacker in attackers:
        # most attackers are strangers: only look closer at tracked ones
        character_id = as_id(attacker.get("character_id"))
        if character_id is None or not tracked.is_tracked_character(character_id):
            continue
        if character_id in excluded:
            excluded_match = True
        else:
            pilots.append(_pilot(attacker, tracked, victim=False))
    if tracked_system or pilots:
        return tuple(pilots)
    if excluded_match:
        return Decision(SkipReason.EXCLUDED_CHARACTER, "only excluded characters match")
    return Decision(SkipReason.UNTRACKED)


def kill_notification(
    event: Event,
    tracked: TrackedLookup,
    config: KillNotifyConfig,
    max_kill_age_s: float,
    now: float,
    *,
    static: StaticInfoLookup = NO_STATIC_INFO,
) -> Notification | Decision:
    """Decide whether a killmail event is notified.

    A kill is notified when its system is tracked, or its victim or any
    attacker is a tracked character. Checks, in order (the first failing one
    is the :class:`Decision`'s reason):

    1. kills enabled; the event is a ``killmail`` or ``map_kill`` with an
       integer ``killmail_id`` and system (``system_id`` or ``solar_system_id``);
    2. not older than ``max_kill_age_s`` by ``kill_time`` against ``now``
       (Unix seconds; a kill time from the future passes; an unreadable one
       falls back to the event's time);
    3. the system is not in ``exclude_systems``, and is in wormhole space
       (31000000-31999999) when ``wormhole_only``;
    4. tracked as above, where characters in ``exclude_characters`` do not
       count, and an excluded victim skips the kill whatever else matches;
    5. ``zkb.totalValue`` is at least ``min_value_isk``.

    ``static`` gives the system's region and class when they are known.
    Preload (replayed) kills are decided like live ones: duplicates are the
    ledger's business.
    """
    if not config.enabled:
        return Decision(SkipReason.DISABLED)
    kill = _read_killmail(event)
    if isinstance(kill, Decision):
        return kill
    skip = _screen_place_and_time(kill, config, max_kill_age_s, now)
    if skip is not None:
        return skip
    victim = _pilot(kill.victim, tracked, victim=True)
    tracked_system = tracked.is_tracked_system(kill.system_id)
    tracked_pilots = _tracked_pilots(victim, kill.attackers, tracked, tracked_system, config)
    if isinstance(tracked_pilots, Decision):
        return tracked_pilots
    zkb = kill.data.get("zkb")
    zkb = zkb if isinstance(zkb, Mapping) else {}
    value = _number(zkb.get("totalValue"))
    if value < config.min_value_isk:
        return Decision(SkipReason.BELOW_MIN_VALUE, f"{value:.0f} ISK")
    details = _details(
        kill,
        victim,
        tracked,
        static,
        tracked_system=tracked_system,
        tracked_pilots=tracked_pilots,
        value=value,
        npc=zkb.get("npc") is True,
    )
    ship = victim.ship_name or "Ship"
    high = details.victim_tracked or value >= HIGH_PRIORITY_VALUE_ISK
    return Notification(
        key=f"kill:{kill.killmail_id}",
        kind=NotificationKind.KILL,
        seq=event.seq,
        time=kill.kill_time,
        title=f"{ship} destroyed in {details.system_name}",
        details=details,
        priority=Priority.HIGH if high else Priority.NORMAL,
    )


def _details(
    kill: _Killmail,
    victim: Pilot,
    tracked: TrackedLookup,
    static: StaticInfoLookup,
    *,
    tracked_system: bool,
    tracked_pilots: tuple[Pilot, ...],
    value: float,
    npc: bool,
) -> KillDetails:
    final_entry = _final_blow(kill.attackers)
    top_entry = _top_damage(kill.attackers)
    final_blow = None if final_entry is None else _pilot(final_entry, tracked, victim=False)
    top_damage = (
        None
        if top_entry is None or top_entry is final_entry
        else _pilot(top_entry, tracked, victim=False)
    )
    counted = as_id(kill.data.get("attacker_count"))
    attacker_count = len(kill.attackers) if counted is None else counted
    info = static.static_info(kill.system_id)
    # a map's own name first, then the feed's, then the static info's
    system_name = (
        tracked.system_name(kill.system_id)
        or text(kill.data.get("solar_system_name"))
        or (info.name if info is not None else "")
    )
    return KillDetails(
        killmail_id=kill.killmail_id,
        kill_time=kill.kill_time,
        system_id=kill.system_id,
        system_name=system_name or str(kill.system_id),
        victim=victim,
        final_blow=final_blow,
        attacker_count=attacker_count,
        value_isk=value,
        tracked_system=tracked_system,
        victim_tracked=bool(tracked_pilots) and tracked_pilots[0] is victim,
        tracked_pilots=tracked_pilots,
        region_name=info.region_name if info is not None else "",
        system_label="" if info is None else system_label(info),
        top_damage=top_damage,
        solo=attacker_count == 1,
        npc=npc,
    )
