"""Which map events deserve a notification: a system or a character added, a
character removed, a rally point."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from realtime.config import MapNotifyConfig
from realtime.event import Event, Priority
from realtime.ids import as_id
from realtime.notifications.kills import text
from realtime.notifications.model import (
    CharacterDetails,
    Notification,
    NotificationKind,
    RallyPointDetails,
    SystemDetails,
)
from realtime.static_info import NO_STATIC_INFO, StaticInfoLookup
from realtime.tracking import TrackedLookup, character_id_of, map_payload, map_slug


def map_notification(
    event: Event,
    tracked: TrackedLookup,
    config: MapNotifyConfig,
    *,
    static: StaticInfoLookup = NO_STATIC_INFO,
) -> Notification | None:
    """A notification for a map event, or ``None``.

    Notified (each switchable in ``config``): ``add_system`` (with the
    system's static info from ``static`` when known), ``character_added``,
    ``character_removed`` and ``rally_point_added`` (with its message).
    Events from a source other than ``map:{slug}``, other types and payloads
    without the needed id give ``None``. Names missing from the payload are
    taken from ``tracked`` (then the static info) when they know them.
    """
    slug = map_slug(event.source)
    if slug is None:
        return None
    payload = map_payload(event.data)
    if event.type == "add_system" and config.system_added:
        return _system_added(event, slug, payload, tracked, static)
    if (event.type == "character_added" and config.character_added) or (
        event.type == "character_removed" and config.character_removed
    ):
        return _character(event, slug, payload, tracked)
    if event.type == "rally_point_added" and config.rally_point_added:
        return _rally_point(event, slug, payload, tracked)
    return None


def _system_added(
    event: Event,
    slug: str,
    payload: Mapping[str, Any],
    tracked: TrackedLookup,
    static: StaticInfoLookup,
) -> Notification | None:
    system_id = as_id(payload.get("solar_system_id"))
    if system_id is None:
        return None
    info = static.static_info(system_id)
    name = (
        text(payload.get("name"))
        or tracked.system_name(system_id)
        or (info.name if info is not None else "")
        or str(system_id)
    )
    title = f"New system {name}"
    if info is not None and info.class_title:
        title += f" ({info.class_title})"
    return Notification(
        key=f"system:{slug}:{system_id}:{event.id}",
        kind=NotificationKind.SYSTEM_ADDED,
        seq=event.seq,
        time=event.time,
        title=f"{title} on {slug}",
        details=SystemDetails(slug=slug, system_id=system_id, name=name, static=info),
        priority=Priority.NORMAL,
        maps=(slug,),
    )


def _character(
    event: Event, slug: str, payload: Mapping[str, Any], tracked: TrackedLookup
) -> Notification | None:
    character_id = character_id_of(payload)
    if character_id is None:
        return None
    added = event.type == "character_added"
    name = text(payload.get("name")) or tracked.character_name(character_id) or str(character_id)
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
            corporation_ticker=text(payload.get("corporation_ticker")),
            alliance_ticker=text(payload.get("alliance_ticker")),
            corporation_name=text(payload.get("corporation_name")),
            alliance_name=text(payload.get("alliance_name")),
        ),
        priority=Priority.LOW,
        maps=(slug,),
    )


def _rally_point(
    event: Event, slug: str, payload: Mapping[str, Any], tracked: TrackedLookup
) -> Notification | None:
    raw_id = payload.get("rally_point_id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
        return None
    rally_point_id = str(raw_id)
    system_id = as_id(payload.get("solar_system_id"))
    system_name = text(payload.get("system_name"))
    if not system_name and system_id is not None:
        system_name = tracked.system_name(system_id) or str(system_id)
    character_name = text(payload.get("character_name"))
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
            message=text(payload.get("message")),
        ),
        priority=Priority.HIGH,
        maps=(slug,),
    )
