"""What deserves a notification: pure decisions over events and the tracked state.

:func:`kill_notification` decides about a killmail (from wanderer-kills or a
map's ``map_kill``), :func:`map_notification` about map events (a system or a
character added to a map, a character removed, a rally point). Both return a
:class:`Notification` carrying everything a renderer needs, so rendering never
goes back to the event or the tracked state. The tracked state is read through
:class:`~realtime.tracking.TrackedLookup`: the notifier decides against the
immutable :class:`~realtime.tracking.TrackedSnapshot` that tracking sent it.

A notification's :attr:`Notification.key` is stable: the same fact gives the
same key on every replay, so the notifier's ledger (keyed by it plus the
channel) is what prevents a second post. There is deliberately no start-up
grace period and no short dedup window here: a kill replayed by the server's
preload is decided exactly like a live one, and the ledger refuses it if it
was already claimed. (The Elixir notifier's 30-minute dedup window against a
60-minute max kill age let preload replays notify twice.)
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from realtime.config import KillNotifyConfig, MapNotifyConfig
from realtime.event import Event, Priority, parse_time
from realtime.ids import as_id
from realtime.keys import KILLMAIL_TYPES
from realtime.tracking import TrackedLookup, character_id_of, map_payload, map_slug

WORMHOLE_SYSTEM_IDS = range(31_000_000, 32_000_000)
"""System ids of wormhole space (J-space, Thera, ...)."""

HIGH_PRIORITY_VALUE_ISK = 1_000_000_000.0
"""Kills worth at least this are :attr:`Priority.HIGH`, like a tracked pilot's loss."""


class NotificationKind(enum.StrEnum):
    KILL = "kill"
    SYSTEM_ADDED = "system_added"
    CHARACTER_ADDED = "character_added"
    CHARACTER_REMOVED = "character_removed"
    RALLY_POINT = "rally_point"


class SkipReason(enum.StrEnum):
    """Why a killmail is not notified (one counter per reason)."""

    DISABLED = "disabled"
    NOT_A_KILL = "not_a_kill"
    MALFORMED = "malformed"
    TOO_OLD = "too_old"
    EXCLUDED_SYSTEM = "excluded_system"
    NOT_WORMHOLE = "not_wormhole"
    UNTRACKED = "untracked"
    EXCLUDED_CHARACTER = "excluded_character"
    BELOW_MIN_VALUE = "below_min_value"


@dataclass(frozen=True, slots=True)
class Decision:
    """A killmail that is not notified, and why."""

    reason: SkipReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Pilot:
    """A character on a killmail, as far as the killmail names it."""

    character_id: int | None = None
    name: str = ""
    corporation_id: int | None = None
    corporation_name: str = ""
    alliance_id: int | None = None
    alliance_name: str = ""
    ship_type_id: int | None = None
    ship_name: str = ""


@dataclass(frozen=True, slots=True)
class KillDetails:
    """What a kill notification shows.

    Attributes:
        tracked_system: the kill's system is tracked by a map.
        victim_tracked: the victim is a tracked character (a loss).
        tracked_pilots: the tracked characters involved (victim first, then
            attackers in killmail order), excluded characters left out.
    """

    killmail_id: int
    kill_time: float
    system_id: int
    system_name: str
    victim: Pilot
    final_blow: Pilot | None
    attacker_count: int
    value_isk: float
    tracked_system: bool
    victim_tracked: bool
    tracked_pilots: tuple[Pilot, ...]


@dataclass(frozen=True, slots=True)
class SystemDetails:
    slug: str
    system_id: int
    name: str


@dataclass(frozen=True, slots=True)
class CharacterDetails:
    slug: str
    character_id: int
    name: str
    corporation_id: int | None
    alliance_id: int | None
    ship_type_id: int | None
    system_id: int | None
    system_name: str


@dataclass(frozen=True, slots=True)
class RallyPointDetails:
    slug: str
    rally_point_id: str
    system_id: int | None
    system_name: str
    character_id: int | None
    character_name: str
    message: str


Details = KillDetails | SystemDetails | CharacterDetails | RallyPointDetails


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell the users, ready to render.

    Attributes:
        key: stable identity of the fact (``kill:{killmail_id}``,
            ``system:{slug}:{system_id}:{sse_id}``,
            ``character:{slug}:{eve_id}:{added|removed}:{sse_id}``,
            ``rally:{slug}:{rally_point_id}``); the notifier appends the channel.
        kind: what it is about.
        seq: the journal seq of the event it came from (``None`` for an event
            that was never committed).
        time: when it happened, Unix seconds.
        title: a one-line summary.
        details: the data to render, one class per kind.
        priority: kills of tracked pilots, costly kills and rally points are
            :attr:`Priority.HIGH`; characters coming and going are
            :attr:`Priority.LOW`; the rest :attr:`Priority.NORMAL`.
    """

    key: str
    kind: NotificationKind
    seq: int | None
    time: float
    title: str
    details: Details
    priority: Priority


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float:
    """A finite, non-negative ISK amount; anything else counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    amount = float(value)
    return amount if math.isfinite(amount) and amount > 0 else 0.0


def _pilot(entry: Mapping[str, Any], tracked: TrackedLookup) -> Pilot:
    character_id = as_id(entry.get("character_id"))
    name = _text(entry.get("character_name"))
    if not name and character_id is not None:
        name = tracked.character_name(character_id) or ""
    return Pilot(
        character_id=character_id,
        name=name,
        corporation_id=as_id(entry.get("corporation_id")),
        corporation_name=_text(entry.get("corporation_name")),
        alliance_id=as_id(entry.get("alliance_id")),
        alliance_name=_text(entry.get("alliance_name")),
        ship_type_id=as_id(entry.get("ship_type_id")),
        ship_name=_text(entry.get("ship_name")),
    )


def _final_blow(attackers: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The attacker flagged ``final_blow``, else the one with most damage, else none."""
    for attacker in attackers:
        if attacker.get("final_blow") is True:
            return attacker
    if not attackers:
        return None
    return max(attackers, key=lambda attacker: _number(attacker.get("damage_done")))


def _kill_time(killmail: Mapping[str, Any], event: Event) -> float:
    text = killmail.get("kill_time")
    if isinstance(text, str):
        try:
            return parse_time(text)
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
            pilots.append(_pilot(attacker, tracked))
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
    victim = _pilot(kill.victim, tracked)
    tracked_system = tracked.is_tracked_system(kill.system_id)
    tracked_pilots = _tracked_pilots(victim, kill.attackers, tracked, tracked_system, config)
    if isinstance(tracked_pilots, Decision):
        return tracked_pilots
    zkb = kill.data.get("zkb")
    value = _number(zkb.get("totalValue")) if isinstance(zkb, Mapping) else 0.0
    if value < config.min_value_isk:
        return Decision(SkipReason.BELOW_MIN_VALUE, f"{value:.0f} ISK")

    final_blow_entry = _final_blow(kill.attackers)
    attacker_count = as_id(kill.data.get("attacker_count"))
    # wanderer-kills names the system ``solar_system_name``; a map's own name wins
    system_name = tracked.system_name(kill.system_id) or _text(kill.data.get("solar_system_name"))
    victim_tracked = bool(tracked_pilots) and tracked_pilots[0] is victim
    details = KillDetails(
        killmail_id=kill.killmail_id,
        kill_time=kill.kill_time,
        system_id=kill.system_id,
        system_name=system_name or str(kill.system_id),
        victim=victim,
        final_blow=None if final_blow_entry is None else _pilot(final_blow_entry, tracked),
        attacker_count=len(kill.attackers) if attacker_count is None else attacker_count,
        value_isk=value,
        tracked_system=tracked_system,
        victim_tracked=victim_tracked,
        tracked_pilots=tracked_pilots,
    )
    ship = victim.ship_name or "Ship"
    high = victim_tracked or value >= HIGH_PRIORITY_VALUE_ISK
    return Notification(
        key=f"kill:{kill.killmail_id}",
        kind=NotificationKind.KILL,
        seq=event.seq,
        time=kill.kill_time,
        title=f"{ship} destroyed in {details.system_name}",
        details=details,
        priority=Priority.HIGH if high else Priority.NORMAL,
    )


def map_notification(
    event: Event, tracked: TrackedLookup, config: MapNotifyConfig
) -> Notification | None:
    """A notification for a map event, or ``None``.

    Notified (each switchable in ``config``): ``add_system``,
    ``character_added``, ``character_removed`` and ``rally_point_added``
    (with its message). Events from a source other than ``map:{slug}``, other
    types and payloads without the needed id give ``None``. Names missing from
    the payload are taken from ``tracked`` when it knows them.
    """
    slug = map_slug(event.source)
    if slug is None:
        return None
    payload = map_payload(event.data)
    if event.type == "add_system" and config.system_added:
        return _system_added(event, slug, payload, tracked)
    if (event.type == "character_added" and config.character_added) or (
        event.type == "character_removed" and config.character_removed
    ):
        return _character(event, slug, payload, tracked)
    if event.type == "rally_point_added" and config.rally_point_added:
        return _rally_point(event, slug, payload, tracked)
    return None


def _system_added(
    event: Event, slug: str, payload: Mapping[str, Any], tracked: TrackedLookup
) -> Notification | None:
    system_id = as_id(payload.get("solar_system_id"))
    if system_id is None:
        return None
    name = _text(payload.get("name")) or tracked.system_name(system_id) or str(system_id)
    return Notification(
        key=f"system:{slug}:{system_id}:{event.id}",
        kind=NotificationKind.SYSTEM_ADDED,
        seq=event.seq,
        time=event.time,
        title=f"System {name} added to {slug}",
        details=SystemDetails(slug=slug, system_id=system_id, name=name),
        priority=Priority.NORMAL,
    )


def _character(
    event: Event, slug: str, payload: Mapping[str, Any], tracked: TrackedLookup
) -> Notification | None:
    character_id = character_id_of(payload)
    if character_id is None:
        return None
    added = event.type == "character_added"
    name = _text(payload.get("name")) or tracked.character_name(character_id) or str(character_id)
    system_id = as_id(payload.get("solar_system_id"))
    system_name = "" if system_id is None else tracked.system_name(system_id) or ""
    verb = "added" if added else "removed"
    return Notification(
        key=f"character:{slug}:{character_id}:{verb}:{event.id}",
        kind=NotificationKind.CHARACTER_ADDED if added else NotificationKind.CHARACTER_REMOVED,
        seq=event.seq,
        time=event.time,
        title=f"Character {name} {verb} {'to' if added else 'from'} {slug}",
        details=CharacterDetails(
            slug=slug,
            character_id=character_id,
            name=name,
            corporation_id=as_id(payload.get("corporation_id")),
            alliance_id=as_id(payload.get("alliance_id")),
            ship_type_id=as_id(payload.get("ship_type_id")),
            system_id=system_id,
            system_name=system_name,
        ),
        priority=Priority.LOW,
    )


def _rally_point(
    event: Event, slug: str, payload: Mapping[str, Any], tracked: TrackedLookup
) -> Notification | None:
    raw_id = payload.get("rally_point_id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
        return None
    rally_point_id = str(raw_id)
    system_id = as_id(payload.get("solar_system_id"))
    system_name = _text(payload.get("system_name"))
    if not system_name and system_id is not None:
        system_name = tracked.system_name(system_id) or str(system_id)
    character_name = _text(payload.get("character_name"))
    return Notification(
        key=f"rally:{slug}:{rally_point_id}",
        kind=NotificationKind.RALLY_POINT,
        seq=event.seq,
        time=event.time,
        title=f"Rally point in {system_name or 'unknown system'} on {slug}",
        details=RallyPointDetails(
            slug=slug,
            rally_point_id=rally_point_id,
            system_id=system_id,
            system_name=system_name,
            character_id=character_id_of(payload),
            character_name=character_name,
            message=_text(payload.get("message")),
        ),
        priority=Priority.HIGH,
    )
