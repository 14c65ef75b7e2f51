"""What the maps track: systems and characters, per map, for the kill feed.

A :class:`TrackedState` holds, for every Wanderer map (by slug), the systems
(``solar_system_id -> name``) and characters (EVE id -> name) the map tracks.
The kill subscription follows their union: a system tracked by two maps stays
tracked until both have removed it.

It is fed by a REST bootstrap per map (:meth:`TrackedState.bootstrap`, which
replaces that map's sets) and kept current by the map's SSE events
(:meth:`TrackedState.apply`). Both report the resulting change of the union as
a :class:`Change`, so that the caller can push subscription updates to the kill
feed instead of re-joining.

:meth:`TrackedState.snapshot` gives an immutable :class:`TrackedSnapshot` of the
union (ids and names) that other actors can read without sharing the mutable
state; both satisfy :class:`TrackedLookup`, the view that notification
decisions need.

Ids are checked against the ranges wanderer-kills accepts (one invalid id makes
it refuse a whole join), and the union is bounded by the caller's capacities
(by default the server's own limits: 10,000 systems, 50,000 characters). Ids
that do not fit are refused and counted, never silently half-tracked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from realtime.event import Event
from realtime.flow import TrackedView
from realtime.ids import CHARACTER_ID_RANGE, SYSTEM_ID_RANGE, as_id

MAP_SOURCE_PREFIX = "map:"


def map_slug(source: str) -> str | None:
    """The map slug of an event source ``map:{slug}``; ``None`` for any other source."""
    if source.startswith(MAP_SOURCE_PREFIX) and len(source) > len(MAP_SOURCE_PREFIX):
        return source[len(MAP_SOURCE_PREFIX) :]
    return None


def map_payload(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payload of a map event's data.

    A map source stores the SSE envelope's ``payload`` as the event data; data
    that is still a whole envelope (``type`` plus a ``payload`` table) is
    unwrapped, so either shape reads the same.
    """
    payload = data.get("payload")
    if "type" in data and isinstance(payload, Mapping):
        return payload
    return data


def character_id_of(payload: Mapping[str, Any]) -> int | None:
    """The EVE id of a character event: ``character_eve_id`` (a string) or ``eve_id``."""
    for name in ("character_eve_id", "eve_id"):
        character_id = as_id(payload.get(name))
        if character_id is not None:
            return character_id
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def systems_from_rest(body: Mapping[str, Any]) -> dict[int, str]:
    """Systems from ``GET /api/maps/{slug}/systems``: ``solar_system_id -> name``.

    The name is the map's ``name`` (else ``original_name``, else ""). Entries
    without an integer ``solar_system_id`` are skipped.
    """
    data = body.get("data")
    systems = data.get("systems") if isinstance(data, Mapping) else None
    result: dict[int, str] = {}
    for entry in systems if isinstance(systems, list) else ():
        if not isinstance(entry, Mapping):
            continue
        system_id = as_id(entry.get("solar_system_id"))
        if system_id is not None:
            result[system_id] = _text(entry.get("name")) or _text(entry.get("original_name"))
    return result


def characters_from_rest(body: Mapping[str, Any]) -> dict[int, str]:
    """Characters from ``GET /api/maps/{slug}/tracked-characters``: EVE id -> name.

    The EVE id is ``character.eve_id`` (a string; the top-level
    ``character_id`` is an internal UUID). Entries with ``tracked: false`` or
    without a numeric ``eve_id`` are skipped.
    """
    data = body.get("data")
    result: dict[int, str] = {}
    for entry in data if isinstance(data, list) else ():
        if not isinstance(entry, Mapping) or entry.get("tracked") is False:
            continue
        character = entry.get("character")
        if not isinstance(character, Mapping):
            continue
        character_id = as_id(character.get("eve_id"))
        if character_id is not None:
            result[character_id] = _text(character.get("name"))
    return result


class TrackedLookup(TrackedView, Protocol):
    """What the maps track, with names: what notification decisions read."""

    def system_name(self, system_id: int) -> str | None: ...

    def character_name(self, character_id: int) -> str | None: ...


def _frozen(names: Mapping[int, str]) -> Mapping[int, str]:
    return MappingProxyType(dict(names))


@dataclass(frozen=True, slots=True, eq=False)
class TrackedSnapshot:
    """An immutable view of every map's tracked systems and characters (their union).

    Safe to share between threads and actors: it never changes after it is
    made. Names are the ones :class:`TrackedState` would give (the first map
    that names an id), ``""`` when no map names it.

    Attributes:
        systems: ``solar_system_id -> name``, read-only.
        characters: EVE id ``-> name``, read-only.
        per_map: slug -> ``(system ids, character ids)`` that map tracks
            (what routes filtered by ``maps`` read); empty when the snapshot
            was made from the union alone.
    """

    systems: Mapping[int, str] = field(default_factory=lambda: _frozen({}))
    characters: Mapping[int, str] = field(default_factory=lambda: _frozen({}))
    per_map: Mapping[str, tuple[frozenset[int], frozenset[int]]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def of(
        cls,
        systems: Mapping[int, str],
        characters: Mapping[int, str],
        per_map: Mapping[str, tuple[frozenset[int], frozenset[int]]] | None = None,
    ) -> TrackedSnapshot:
        """A snapshot holding copies of ``systems``, ``characters`` and ``per_map``."""
        return cls(_frozen(systems), _frozen(characters), MappingProxyType(dict(per_map or {})))

    def maps_tracking_system(self, system_id: int) -> frozenset[str]:
        """The slugs of the maps that track system ``system_id``."""
        return frozenset(
            slug for slug, (systems, _) in self.per_map.items() if system_id in systems
        )

    def maps_tracking_character(self, character_id: int) -> frozenset[str]:
        """The slugs of the maps that track character ``character_id``."""
        return frozenset(
            slug for slug, (_, characters) in self.per_map.items() if character_id in characters
        )

    def is_tracked_system(self, system_id: int) -> bool:
        return system_id in self.systems

    def is_tracked_character(self, character_id: int) -> bool:
        return character_id in self.characters

    def system_name(self, system_id: int) -> str | None:
        """The name of tracked system ``system_id``; ``None`` if untracked or unnamed."""
        return self.systems.get(system_id) or None

    def character_name(self, character_id: int) -> str | None:
        """The name of tracked character ``character_id``; ``None`` if untracked or unnamed."""
        return self.characters.get(character_id) or None

    def subscription(self) -> tuple[frozenset[int], frozenset[int]]:
        """``(system ids, character ids)``: what the kill feed should follow."""
        return frozenset(self.systems), frozenset(self.characters)


@dataclass(frozen=True, slots=True)
class Change:
    """How the union of all maps' tracked ids changed (what the kill feed must follow)."""

    systems_added: frozenset[int] = frozenset()
    systems_removed: frozenset[int] = frozenset()
    characters_added: frozenset[int] = frozenset()
    characters_removed: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return bool(
            self.systems_added
            or self.systems_removed
            or self.characters_added
            or self.characters_removed
        )


@dataclass(frozen=True, slots=True)
class TrackingStatistics:
    """How full a :class:`TrackedState` is and what it did.

    Attributes:
        maps / max_maps: maps known, and the bound.
        systems / max_systems: distinct tracked systems (all maps), and the bound.
        characters / max_characters: distinct tracked characters, and the bound.
        memberships: (map, id) pairs held, systems and characters together.
        events_applied: map events that changed something (names included).
        events_ignored: map events with nothing to apply (other types, unknown
            ids, repeats).
        refused_full: ids not tracked because the union was at its bound.
        refused_invalid: ids outside the ranges the kill feed accepts.
        refused_maps: bootstraps or events for a map beyond ``max_maps``.
    """

    maps: int
    max_maps: int
    systems: int
    max_systems: int
    characters: int
    max_characters: int
    memberships: int
    events_applied: int
    events_ignored: int
    refused_full: int
    refused_invalid: int
    refused_maps: int


class _Registry:
    """Ids tracked per map with a reference count per id over all maps."""

    __slots__ = ("capacity", "id_range", "per_map", "refs", "refused_full", "refused_invalid")

    def __init__(self, capacity: int, id_range: tuple[int, int]) -> None:
        self.capacity = capacity
        self.id_range = id_range
        self.per_map: dict[str, dict[int, str]] = {}
        self.refs: dict[int, int] = {}
        self.refused_full = 0
        self.refused_invalid = 0

    def _admissible(self, item_id: int) -> bool:
        low, high = self.id_range
        if not low <= item_id <= high:
            self.refused_invalid += 1
            return False
        if item_id not in self.refs and len(self.refs) >= self.capacity:
            self.refused_full += 1
            return False
        return True

    def add(self, slug: str, item_id: int, name: str) -> tuple[bool, bool]:
        """Track ``item_id`` on ``slug``: (whether anything changed, whether the union grew)."""
        names = self.per_map.setdefault(slug, {})
        if item_id in names:
            if name and names[item_id] != name:
                names[item_id] = name
                return True, False
            return False, False
        if not self._admissible(item_id):
            return False, False
        names[item_id] = name
        count = self.refs.get(item_id, 0)
        self.refs[item_id] = count + 1
        return True, count == 0

    def remove(self, slug: str, item_id: int) -> tuple[bool, bool]:
        """Untrack ``item_id`` on ``slug``: (whether anything changed, whether the union shrank)."""
        names = self.per_map.get(slug)
        if names is None or item_id not in names:
            return False, False
        del names[item_id]
        count = self.refs[item_id] - 1
        if count:
            self.refs[item_id] = count
            return True, False
        del self.refs[item_id]
        return True, True

    def rename(self, slug: str, item_id: int, name: str) -> bool:
        names = self.per_map.get(slug)
        if names is None or item_id not in names or not name or names[item_id] == name:
            return False
        names[item_id] = name
        return True

    def replace(
        self, slug: str, items: Iterable[tuple[int, str]]
    ) -> tuple[frozenset[int], frozenset[int]]:
        """Make ``items`` the ids of ``slug``: (ids the union gained, ids it lost)."""
        before = frozenset(self.refs)
        old = self.per_map.pop(slug, {})
        for item_id in old:
            count = self.refs[item_id] - 1
            if count:
                self.refs[item_id] = count
            else:
                del self.refs[item_id]
        self.per_map[slug] = {}
        for item_id, name in items:
            self.add(slug, item_id, name)
        after = frozenset(self.refs)
        return after - before, before - after

    def name(self, item_id: int) -> str | None:
        for names in self.per_map.values():
            name = names.get(item_id)
            if name:
                return name
        return None

    def union(self) -> dict[int, str]:
        result: dict[int, str] = {}
        for names in self.per_map.values():
            for item_id, name in names.items():
                if name or item_id not in result:
                    result[item_id] = name
        return result

    def memberships(self) -> int:
        return sum(len(names) for names in self.per_map.values())


class TrackedState:
    """The tracked systems and characters of every map (see the module docstring).

    Not thread-safe: one owner (the tracking actor) reads and writes it.
    """

    def __init__(
        self, *, max_systems: int = 10_000, max_characters: int = 50_000, max_maps: int = 64
    ) -> None:
        """Create an empty state.

        Args:
            max_systems: bound on distinct tracked systems over all maps.
            max_characters: bound on distinct tracked characters over all maps.
            max_maps: bound on the number of maps (slugs) held.

        Raises:
            ValueError: a bound is smaller than 1.
        """
        if min(max_systems, max_characters, max_maps) < 1:
            msg = "TrackedState bounds must be at least 1"
            raise ValueError(msg)
        self._systems = _Registry(max_systems, SYSTEM_ID_RANGE)
        self._characters = _Registry(max_characters, CHARACTER_ID_RANGE)
        self._max_maps = max_maps
        self._slugs: set[str] = set()
        self._events_applied = 0
        self._events_ignored = 0
        self._refused_maps = 0
        self._revision = 0

    @property
    def revision(self) -> int:
        """A number that grows whenever what a map tracks may have changed (names included).

        Every admitted :meth:`bootstrap` and every :meth:`apply` that changed
        something increase it, so an owner can tell whether to persist or
        publish without comparing contents.
        """
        return self._revision

    def _admit_map(self, slug: str) -> bool:
        if slug in self._slugs:
            return True
        if len(self._slugs) >= self._max_maps:
            self._refused_maps += 1
            return False
        self._slugs.add(slug)
        return True

    def bootstrap(
        self, slug: str, systems: Mapping[int, str], characters: Mapping[int, str]
    ) -> Change | None:
        """Replace what map ``slug`` tracks with a REST snapshot.

        Other maps are untouched, so ids they also track stay tracked. Ids are
        taken in the snapshot's order until a bound is reached; the rest are
        refused and counted. Returns the change of the union, ``None`` if none
        (also when ``slug`` would exceed ``max_maps``).
        """
        if not self._admit_map(slug):
            return None
        self._revision += 1
        systems_added, systems_removed = self._systems.replace(slug, systems.items())
        characters_added, characters_removed = self._characters.replace(slug, characters.items())
        change = Change(systems_added, systems_removed, characters_added, characters_removed)
        return change or None

    def apply(self, event: Event) -> Change | None:
        """Apply a map SSE event; return the change of the union, ``None`` if none.

        Handled types: ``add_system`` (also updates the name of a system already
        tracked), ``deleted_system``, ``system_renamed``, ``character_added``,
        ``character_removed``, ``character_updated`` (name changes of tracked
        characters only: an update never starts tracking). Every other type,
        and events whose source is not ``map:{slug}``, are ignored.
        """
        slug = map_slug(event.source)
        changed = False
        change: Change | None = None
        if slug is not None and self._admit_map(slug):
            changed, change = self._apply(slug, event.type, map_payload(event.data))
        if changed:
            self._events_applied += 1
            self._revision += 1
        else:
            self._events_ignored += 1
        return change

    def _apply(
        self, slug: str, kind: str, payload: Mapping[str, Any]
    ) -> tuple[bool, Change | None]:
        """Apply one event: (whether anything changed, the change of the union)."""
        if kind in {"add_system", "deleted_system", "system_renamed"}:
            system_id = as_id(payload.get("solar_system_id"))
            if system_id is not None:
                return self._apply_system(slug, kind, system_id, payload)
        elif kind in {"character_added", "character_removed", "character_updated"}:
            character_id = character_id_of(payload)
            if character_id is not None:
                return self._apply_character(slug, kind, character_id, _text(payload.get("name")))
        return False, None

    def _apply_system(
        self, slug: str, kind: str, system_id: int, payload: Mapping[str, Any]
    ) -> tuple[bool, Change | None]:
        ids = frozenset({system_id})
        name = _text(payload.get("name"))
        if kind == "add_system":
            changed, grew = self._systems.add(slug, system_id, name)
            return changed, Change(systems_added=ids) if grew else None
        if kind == "deleted_system":
            changed, shrank = self._systems.remove(slug, system_id)
            return changed, Change(systems_removed=ids) if shrank else None
        new_name = name or _text(payload.get("custom_name")) or _text(payload.get("temporary_name"))
        return self._systems.rename(slug, system_id, new_name), None

    def _apply_character(
        self, slug: str, kind: str, character_id: int, name: str
    ) -> tuple[bool, Change | None]:
        ids = frozenset({character_id})
        if kind == "character_added":
            changed, grew = self._characters.add(slug, character_id, name)
            return changed, Change(characters_added=ids) if grew else None
        if kind == "character_removed":
            changed, shrank = self._characters.remove(slug, character_id)
            return changed, Change(characters_removed=ids) if shrank else None
        return self._characters.rename(slug, character_id, name), None

    def is_tracked_system(self, system_id: int) -> bool:
        return system_id in self._systems.refs

    def is_tracked_character(self, character_id: int) -> bool:
        return character_id in self._characters.refs

    def system_name(self, system_id: int) -> str | None:
        """The name a map gives ``system_id``; ``None`` if untracked or unnamed."""
        return self._systems.name(system_id)

    def character_name(self, character_id: int) -> str | None:
        """The name of tracked character ``character_id``; ``None`` if untracked or unnamed."""
        return self._characters.name(character_id)

    def systems(self) -> dict[int, str]:
        """Every tracked system of all maps, ``id -> name`` (a copy)."""
        return self._systems.union()

    def characters(self) -> dict[int, str]:
        """Every tracked character of all maps, ``EVE id -> name`` (a copy)."""
        return self._characters.union()

    def subscription(self) -> tuple[frozenset[int], frozenset[int]]:
        """``(system ids, character ids)`` for the kill feed's join: all valid, within bounds."""
        return frozenset(self._systems.refs), frozenset(self._characters.refs)

    def snapshot(self) -> TrackedSnapshot:
        """An immutable copy of the union of all maps, names included, and what each tracks."""
        per_map = {
            slug: (
                frozenset(self._systems.per_map.get(slug, ())),
                frozenset(self._characters.per_map.get(slug, ())),
            )
            for slug in self._slugs
        }
        return TrackedSnapshot.of(self._systems.union(), self._characters.union(), per_map)

    def maps(self) -> tuple[str, ...]:
        """The slugs of the maps held, sorted."""
        return tuple(sorted(self._slugs))

    def map_contents(self, slug: str) -> tuple[dict[int, str], dict[int, str]]:
        """What map ``slug`` tracks: ``(systems, characters)``, ``id -> name`` (copies).

        Both are empty for a map never seen. Feeding them back to
        :meth:`bootstrap` rebuilds the map as it is.
        """
        return (
            dict(self._systems.per_map.get(slug, {})),
            dict(self._characters.per_map.get(slug, {})),
        )

    def statistics(self) -> TrackingStatistics:
        return TrackingStatistics(
            maps=len(self._slugs),
            max_maps=self._max_maps,
            systems=len(self._systems.refs),
            max_systems=self._systems.capacity,
            characters=len(self._characters.refs),
            max_characters=self._characters.capacity,
            memberships=self._systems.memberships() + self._characters.memberships(),
            events_applied=self._events_applied,
            events_ignored=self._events_ignored,
            refused_full=self._systems.refused_full + self._characters.refused_full,
            refused_invalid=self._systems.refused_invalid + self._characters.refused_invalid,
            refused_maps=self._refused_maps,
        )
