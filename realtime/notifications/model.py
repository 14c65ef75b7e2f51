"""What a notification is: its kind, its key, and the data a card is rendered from.

A :class:`Notification` carries everything a renderer needs, so rendering never
goes back to the event, the tracked state or the static info. One details class
per kind.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from realtime.event import Priority
from realtime.static_info import SystemStaticInfo


class NotificationKind(enum.StrEnum):
    KILL = "kill"
    SYSTEM_ADDED = "system_added"
    CHARACTER_ADDED = "character_added"
    CHARACTER_REMOVED = "character_removed"
    RALLY_POINT = "rally_point"
    ALERT = "alert"
    STATUS = "status"


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
    """A character on a killmail (or an NPC: no ``character_id``), as far as it names them.

    Attributes:
        damage: damage done (an attacker) or taken (the victim).
    """

    character_id: int | None = None
    name: str = ""
    corporation_id: int | None = None
    corporation_name: str = ""
    corporation_ticker: str = ""
    alliance_id: int | None = None
    alliance_name: str = ""
    alliance_ticker: str = ""
    ship_type_id: int | None = None
    ship_name: str = ""
    damage: float = 0.0

    @property
    def is_npc(self) -> bool:
        return self.character_id is None


class KillRole(enum.StrEnum):
    """Whose kill it is, for the people reading the channel."""

    LOSS = "loss"
    """A tracked pilot died."""
    KILL = "kill"
    """A tracked pilot was among the attackers (and none died)."""
    NEUTRAL = "neutral"
    """No tracked pilot: a kill in a tracked system."""


@dataclass(frozen=True, slots=True)
class KillDetails:
    """What a kill notification shows.

    Attributes:
        system_name: the map's name for a tracked system, else the feed's
            ``solar_system_name``, else the static info's; the id only when
            nobody names it.
        region_name: the system's region, when the static info is known.
        system_label: what kind of space, when the static info is known: the
            class in J-space (``C4``, ``C5 shattered``), the security band and
            status in known space (``Low-sec 0.3``).
        final_blow: the attacker with the final blow (``None``: no attackers).
        top_damage: the attacker who did the most damage, when it is not the
            final blow.
        attacker_count: attackers on the killmail.
        solo: one attacker.
        npc: zKillboard calls it an NPC kill (no player attacker).
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
    region_name: str = ""
    system_label: str = ""
    top_damage: Pilot | None = None
    solo: bool = False
    npc: bool = False

    @property
    def role(self) -> KillRole:
        if self.victim_tracked:
            return KillRole.LOSS
        return KillRole.KILL if self.tracked_pilots else KillRole.NEUTRAL


@dataclass(frozen=True, slots=True)
class SystemDetails:
    """A system added to a map.

    Attributes:
        name: the map's name for it (a custom name, or its EVE name).
        static: the static info, when it could be fetched (else the card shows the name).
    """

    slug: str
    system_id: int
    name: str
    static: SystemStaticInfo | None = None

    @property
    def eve_name(self) -> str:
        """The EVE name (what dotlan knows), ``""`` when unknown."""
        return self.static.name if self.static is not None else ""


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
    corporation_ticker: str = ""
    alliance_ticker: str = ""
    corporation_name: str = ""
    alliance_name: str = ""


@dataclass(frozen=True, slots=True)
class RallyPointDetails:
    slug: str
    rally_point_id: str
    system_id: int | None
    system_name: str
    character_id: int | None
    character_name: str
    message: str


class AlertState(enum.StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertDetails:
    """An alert raised, escalated or resolved.

    Attributes:
        key: what it is about, stable across occurrences (``connection:kills``).
        severity: ``info``, ``warning`` or ``critical``.
        first_seen: when it was first raised (Unix seconds).
        count: how many times it was raised.
    """

    key: str
    severity: str
    state: AlertState
    message: str
    first_seen: float
    count: int = 1


class StatusReason(enum.StrEnum):
    STARTED = "started"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class StatusDetails:
    """The program started, or is back after an outage.

    Attributes:
        away_s: how long it was away (recovered), when known.
        kills_caught_up: kills it caught up after coming back.
        detail: a line of its own (versions, what was away...), may be empty.
    """

    reason: StatusReason
    away_s: float | None = None
    kills_caught_up: int = 0
    detail: str = ""


Details = (
    KillDetails
    | SystemDetails
    | CharacterDetails
    | RallyPointDetails
    | AlertDetails
    | StatusDetails
)


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell the users, ready to render.

    Attributes:
        key: stable identity of the fact (``kill:{killmail_id}``,
            ``system:{slug}:{system_id}:{sse_id}``,
            ``character:{slug}:{eve_id}:{added|removed}:{sse_id}``,
            ``rally:{slug}:{rally_point_id}``, ``alert:{key}:{state}:{ms}``,
            ``status:{reason}:{ms}``); the notifier adds where it goes.
        kind: what it is about.
        seq: the journal seq of the event it came from (``None`` for an event
            that was never committed, an alert or a status).
        time: when it happened, Unix seconds.
        title: a one-line summary.
        details: the data to render, one class per kind.
        priority: kills of tracked pilots, costly kills, rally points and
            critical alerts are :attr:`Priority.HIGH`; characters coming and
            going are :attr:`Priority.LOW`; the rest :attr:`Priority.NORMAL`.
        maps: the slugs of the maps it concerns (a map event: its map; a kill:
            empty, kills are not tied to one map).
    """

    key: str
    kind: NotificationKind
    seq: int | None
    time: float
    title: str
    details: Details
    priority: Priority
    maps: tuple[str, ...] = ()
