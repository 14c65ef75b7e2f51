"""A solar system's static data, as a Wanderer map's static-info endpoint gives it.

``GET {base}/api/common/system-static-info?id={solar_system_id}`` answers
``{"data": {...}}`` with the system's EVE name, region, constellation, class,
security, whether it is shattered, its effect, and the wormhole types that
always lead out of it (its *statics*) with their destinations. It is static
data: fetched once per system, it never needs fetching again.

:func:`parse_static_info` turns the answer into a :class:`SystemStaticInfo`
(strict about the system id, lenient about everything else: a field of the
wrong type is left out, never fatal). :class:`FetchPlan` is the pure core of
fetching: which system to ask for next, and when, with a backoff that keeps a
failing endpoint from being hammered.
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from realtime.ids import as_id

WORMHOLE_SYSTEM_IDS = range(31_000_000, 32_000_000)
"""System ids of wormhole space (J-space, Thera, the shattered and drifter systems)."""


class StaticInfoError(ValueError):
    """An answer that is not a system's static info."""


class SecurityBand(enum.StrEnum):
    HIGH = "High-sec"
    LOW = "Low-sec"
    NULL = "Null-sec"
    WORMHOLE = "W-space"


@dataclass(frozen=True, slots=True)
class WormholeStatic:
    """A wormhole type that always leads out of a system.

    Attributes:
        name: the type, ``C247``.
        destination: the short name of where it leads (``C3``, ``HS``, ``NS``...).
        destination_name: the long name (``Class 3``, ``High-sec``).
        lifetime_h: how long one lives, in hours.
        max_mass_kg: the total mass it lets through before it collapses.
        max_jump_mass_kg: the heaviest ship it lets through.
    """

    name: str
    destination: str = ""
    destination_name: str = ""
    lifetime_h: float | None = None
    max_mass_kg: float | None = None
    max_jump_mass_kg: float | None = None


@dataclass(frozen=True, slots=True)
class SystemStaticInfo:
    """What a map's static-info endpoint says about one solar system.

    Attributes:
        system_id: the solar system id.
        name: its EVE name (never a map's custom name): the one dotlan knows.
        class_title: ``C4``, ``HS``, ``Thera``... (``""`` when not given).
        type_description: ``Class 4``, ``High-sec``...
        security: the true security status, when given.
        effect_power: the strength of the effect (1-6), when given.
    """

    system_id: int
    name: str
    region_id: int | None = None
    region_name: str = ""
    constellation_name: str = ""
    system_class: int | None = None
    class_title: str = ""
    type_description: str = ""
    security: float | None = None
    is_shattered: bool = False
    effect_name: str = ""
    effect_power: int | None = None
    statics: tuple[WormholeStatic, ...] = ()
    sun_type_id: int | None = None

    @property
    def is_wormhole(self) -> bool:
        return self.system_id in WORMHOLE_SYSTEM_IDS

    @property
    def security_band(self) -> SecurityBand | None:
        """The band EVE shows: by the security rounded as the game rounds it.

        ``None`` for a known-space system whose security is not known.
        """
        if self.is_wormhole:
            return SecurityBand.WORMHOLE
        shown = self.shown_security
        if shown is None:
            return None
        if shown >= 0.5:
            return SecurityBand.HIGH
        return SecurityBand.LOW if shown > 0.0 else SecurityBand.NULL

    @property
    def shown_security(self) -> float | None:
        """The security to one decimal as the game shows it.

        Rounded half up, except that anything above 0.0 and below 0.05 shows
        as 0.1 (such a system is low-sec, not null-sec).
        """
        if self.security is None:
            return None
        if 0.0 < self.security < 0.05:
            return 0.1
        return math.floor(self.security * 10 + 0.5) / 10


def system_label(info: SystemStaticInfo) -> str:
    """What kind of space, in a few characters: ``C4``, ``C5 shattered``, ``Low-sec 0.3``."""
    if info.is_wormhole:
        label = info.class_title or info.type_description or SecurityBand.WORMHOLE.value
        return f"{label} shattered" if info.is_shattered else label
    band, shown = info.security_band, info.shown_security
    if band is None:
        return info.type_description
    return band.value if shown is None else f"{band.value} {shown:.1f}"


class StaticInfoLookup(Protocol):
    """What the notification decisions read: the static info of a system, if known."""

    def static_info(self, system_id: int) -> SystemStaticInfo | None: ...


@dataclass(frozen=True, slots=True)
class StaticInfoView:
    """An immutable mapping of known static info, shared between actors."""

    systems: Mapping[int, SystemStaticInfo]

    def static_info(self, system_id: int) -> SystemStaticInfo | None:
        return self.systems.get(system_id)


NO_STATIC_INFO = StaticInfoView({})


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    """A finite number from a JSON number or a numeric string; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _static(entry: Any) -> WormholeStatic | None:
    if isinstance(entry, str) and entry.strip():
        return WormholeStatic(entry.strip())
    if not isinstance(entry, Mapping) or not _text(entry.get("name")):
        return None
    destination = entry.get("destination")
    destination = destination if isinstance(destination, Mapping) else {}
    properties = entry.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    return WormholeStatic(
        name=_text(entry.get("name")),
        destination=_text(destination.get("short_name")),
        destination_name=_text(destination.get("name")),
        lifetime_h=_number(properties.get("lifetime")),
        max_mass_kg=_number(properties.get("max_mass")),
        max_jump_mass_kg=_number(properties.get("max_jump_mass")),
    )


def _statics(data: Mapping[str, Any]) -> tuple[WormholeStatic, ...]:
    """``static_details`` when given (they carry destinations), else the bare ``statics``."""
    for key in ("static_details", "statics"):
        entries = data.get(key)
        if isinstance(entries, list) and entries:
            found = (_static(entry) for entry in entries)
            return tuple(static for static in found if static is not None)
    return ()


def parse_static_info(body: Any, system_id: int) -> SystemStaticInfo:
    """The static info in an answer of the static-info endpoint for ``system_id``.

    Accepts the whole answer (``{"data": {...}}``) or its ``data``. Fields of
    the wrong type are left out; the security may be a string (``"-0.2"``).

    Raises:
        StaticInfoError: no ``data`` object, no ``solar_system_name``, or a
            ``solar_system_id`` other than ``system_id``.
    """
    data = body.get("data", body) if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping):
        msg = "no static-info object"
        raise StaticInfoError(msg)
    answered = as_id(data.get("solar_system_id"))
    if answered != system_id:
        msg = f"asked for system {system_id}, the answer is about {answered}"
        raise StaticInfoError(msg)
    name = _text(data.get("solar_system_name"))
    if not name:
        msg = f"system {system_id}: no solar_system_name"
        raise StaticInfoError(msg)
    system_class = _number(data.get("system_class"))
    effect_power = _number(data.get("effect_power"))
    return SystemStaticInfo(
        system_id=system_id,
        name=name,
        region_id=as_id(data.get("region_id")),
        region_name=_text(data.get("region_name")),
        constellation_name=_text(data.get("constellation_name")),
        system_class=None if system_class is None else int(system_class),
        class_title=_text(data.get("class_title")),
        type_description=_text(data.get("type_description")),
        security=_number(data.get("security")),
        is_shattered=data.get("is_shattered") is True,
        effect_name=_text(data.get("effect_name")),
        effect_power=None if effect_power is None else int(effect_power),
        statics=_statics(data),
        sun_type_id=as_id(data.get("sun_type_id")),
    )


# -- When to fetch -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """A system whose static info could not be fetched yet.

    Attributes:
        attempts: failed attempts so far.
        retry_at: not asked again before this (Unix seconds).
        error: what went wrong the last time.
    """

    attempts: int
    retry_at: float
    error: str


@dataclass(frozen=True, slots=True)
class FetchPlanStatistics:
    """What a :class:`FetchPlan` holds and did.

    Attributes:
        known: systems whose static info is known.
        wanted: systems waiting to be fetched (failed ones included).
        failing: systems whose last attempt failed.
        paused_until: no fetch at all before this (Unix seconds; 0 when not paused).
        consecutive_failures: failures since the last success.
    """

    known: int
    wanted: int
    failing: int
    paused_until: float
    consecutive_failures: int


class FetchPlan:
    """Which system's static info to fetch next, and when (pure: the caller fetches).

    A system is fetched once: once known, it is never wanted again. A failed
    attempt makes that system wait ``retry_min_s``, doubling with each of its
    failures up to ``retry_max_s``; and because a failure usually means the
    endpoint is down, it also pauses *every* fetch for a delay that doubles
    with each failure in a row (reset by a success), so an outage costs a
    handful of requests, not one per system. Systems are fetched in the order
    they were wanted.

    Args:
        known: system ids already known (from the store).
        failures: systems that failed before (from the store), with their retry times.
        max_wanted: bound on the systems waiting; beyond it new ones are
            refused and counted in :attr:`refused`.
    """

    def __init__(
        self,
        *,
        retry_min_s: float,
        retry_max_s: float,
        known: Iterable[int] = (),
        failures: Mapping[int, Failure] | None = None,
        max_wanted: int = 50_000,
    ) -> None:
        if not 0 < retry_min_s <= retry_max_s:
            msg = "need 0 < retry_min_s <= retry_max_s"
            raise ValueError(msg)
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._known: set[int] = set(known)
        self._failures: dict[int, Failure] = dict(failures or {})
        self._wanted: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._max_wanted = max_wanted
        self._paused_until = 0.0
        self._consecutive = 0
        self.refused = 0
        for system_id in self._failures:
            self.want((system_id,))

    def want(self, system_ids: Iterable[int]) -> int:
        """Ask for these systems' static info; returns how many were newly wanted."""
        added = 0
        for system_id in system_ids:
            if system_id in self._known or system_id in self._wanted:
                continue
            if len(self._wanted) >= self._max_wanted:
                self.refused += 1
                continue
            self._wanted[system_id] = None
            added += 1
        return added

    def is_known(self, system_id: int) -> bool:
        return system_id in self._known

    def may_fetch(self, system_id: int, now: float) -> bool:
        """Whether ``system_id`` may be fetched at ``now`` (unknown, not paused, not waiting)."""
        if system_id in self._known or now < self._paused_until:
            return False
        failure = self._failures.get(system_id)
        return failure is None or now >= failure.retry_at

    def next_due(self, now: float) -> tuple[int | None, float | None]:
        """``(system to fetch now, None)``, or ``(None, when to look again)``.

        ``(None, None)`` when nothing is wanted.
        """
        if not self._wanted:
            return None, None
        if now < self._paused_until:
            return None, self._paused_until
        earliest: float | None = None
        for system_id in self._wanted:
            failure = self._failures.get(system_id)
            if failure is None or now >= failure.retry_at:
                return system_id, None
            earliest = failure.retry_at if earliest is None else min(earliest, failure.retry_at)
        return None, earliest

    def succeeded(self, system_id: int) -> None:
        self._known.add(system_id)
        self._wanted.pop(system_id, None)
        self._failures.pop(system_id, None)
        self._consecutive = 0
        self._paused_until = 0.0

    def failed(self, system_id: int, error: str, now: float, *, pause: bool = True) -> Failure:
        """Record a failed attempt; returns the system's new :class:`Failure`.

        ``pause``: whether the endpoint itself is in doubt (a timeout, a
        refused connection, a 5xx), which pauses every fetch; an answer that
        is only about this system (a 404) waits for this system alone.
        """
        previous = self._failures.get(system_id)
        attempts = 1 if previous is None else previous.attempts + 1
        failure = Failure(attempts, now + self._delay(attempts), error)
        self._failures[system_id] = failure
        if system_id not in self._known:
            self._wanted.pop(system_id, None)
            self._wanted[system_id] = None  # to the back: the others go first
        if pause:
            self._consecutive += 1
            self._paused_until = now + self._delay(self._consecutive)
        return failure

    def failure(self, system_id: int) -> Failure | None:
        return self._failures.get(system_id)

    def _delay(self, attempts: int) -> float:
        return min(self._retry_max_s, self._retry_min_s * 2.0 ** min(attempts - 1, 60))

    def statistics(self) -> FetchPlanStatistics:
        return FetchPlanStatistics(
            known=len(self._known),
            wanted=len(self._wanted),
            failing=len(self._failures),
            paused_until=self._paused_until,
            consecutive_failures=self._consecutive,
        )
