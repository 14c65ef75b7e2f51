"""The map's REST answers that bootstrap what it tracks:
:func:`parse_systems` (``GET /api/maps/{slug}/systems``) and
:func:`parse_tracked_characters` (``GET /api/maps/{slug}/tracked-characters``).
Optional fields the server omits or sends with the wrong type become ``None``;
an answer of the wrong shape raises ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from realtime.ids import as_id, is_int


@dataclass(frozen=True, slots=True)
class MapSystem:
    """A system on the map, from ``GET /api/maps/{slug}/systems``.

    Optional fields the server omits, or sends with the wrong type, are
    ``None`` (``locked`` defaults to ``False``, ``visible`` to ``True``).
    ``labels`` decodes the JSON-encoded string the server sends: a list of
    strings, or an object whose ``labels`` is one; anything else is no labels.
    """

    solar_system_id: int
    name: str | None = None
    original_name: str | None = None
    custom_name: str | None = None
    temporary_name: str | None = None
    status: int | None = None
    position_x: float | None = None
    position_y: float | None = None
    locked: bool = False
    visible: bool = True
    labels: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        """The name a map user sees: temporary, custom, name, original, else the id."""
        for candidate in (self.temporary_name, self.custom_name, self.name, self.original_name):
            if candidate:
                return candidate
        return str(self.solar_system_id)


@dataclass(frozen=True, slots=True)
class TrackedCharacter:
    """A character the map tracks, from ``GET /api/maps/{slug}/tracked-characters``.

    Attributes:
        eve_id: the EVE character id (``character.eve_id``, sent as a string).
        character_id: the map's internal UUID for the character.
        tracked: the entry's ``tracked`` flag (``True`` when absent).
    """

    eve_id: int
    name: str | None = None
    corporation_id: int | None = None
    corporation_ticker: str | None = None
    alliance_id: int | None = None
    alliance_ticker: str | None = None
    character_id: str | None = None
    tracked: bool = True


def parse_systems(document: object) -> list[MapSystem]:
    """The systems of a decoded ``{"data": {"systems": [...], ...}}`` answer.

    Raises:
        ValueError: the document does not have that shape, or a system has
            no integer ``solar_system_id`` (a decimal string is accepted).
    """
    data = document.get("data") if isinstance(document, dict) else None
    systems = data.get("systems") if isinstance(data, dict) else None
    if not isinstance(systems, list):
        msg = f'expected {{"data": {{"systems": [...]}}}}, got {_shape(document)}'
        raise ValueError(msg)
    return [_system(index, entry) for index, entry in enumerate(systems)]


def _system(index: int, entry: object) -> MapSystem:
    if not isinstance(entry, dict):
        msg = f"systems[{index}] is a {_shape(entry)}, not an object"
        raise ValueError(msg)
    system_id = as_id(entry.get("solar_system_id"))
    if system_id is None:
        msg = f"systems[{index}] has no integer solar_system_id: {entry.get('solar_system_id')!r}"
        raise ValueError(msg)
    locked = entry.get("locked")
    visible = entry.get("visible")
    status = entry.get("status")
    return MapSystem(
        solar_system_id=system_id,
        name=_as_str(entry.get("name")),
        original_name=_as_str(entry.get("original_name")),
        custom_name=_as_str(entry.get("custom_name")),
        temporary_name=_as_str(entry.get("temporary_name")),
        status=status if is_int(status) else None,
        position_x=_as_float(entry.get("position_x")),
        position_y=_as_float(entry.get("position_y")),
        locked=locked if isinstance(locked, bool) else False,
        visible=visible if isinstance(visible, bool) else True,
        labels=_labels(entry.get("labels")),
    )


def _labels(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return ()
    if isinstance(value, dict):
        value = value.get("labels")
    if isinstance(value, list):
        return tuple(label for label in value if isinstance(label, str) and label)
    return ()


def parse_tracked_characters(document: object) -> list[TrackedCharacter]:
    """The characters of a decoded ``{"data": [{..., "character": {...}}]}`` answer.

    Raises:
        ValueError: the document does not have that shape, or an entry has
            no ``character`` object with a decimal ``eve_id``.
    """
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        msg = f'expected {{"data": [...]}}, got {_shape(document)}'
        raise ValueError(msg)
    return [_tracked_character(index, entry) for index, entry in enumerate(entries)]


def _tracked_character(index: int, entry: object) -> TrackedCharacter:
    if not isinstance(entry, dict):
        msg = f"data[{index}] is a {_shape(entry)}, not an object"
        raise ValueError(msg)
    character = entry.get("character")
    if not isinstance(character, dict):
        msg = f"data[{index}] has no character object"
        raise ValueError(msg)
    eve_id = as_id(character.get("eve_id"))
    if eve_id is None:
        msg = f"data[{index}].character has no decimal eve_id: {character.get('eve_id')!r}"
        raise ValueError(msg)
    tracked = entry.get("tracked")
    return TrackedCharacter(
        eve_id=eve_id,
        name=_as_str(character.get("name")),
        corporation_id=as_id(character.get("corporation_id")),
        corporation_ticker=_as_str(character.get("corporation_ticker")),
        alliance_id=as_id(character.get("alliance_id")),
        alliance_ticker=_as_str(character.get("alliance_ticker")),
        character_id=_as_str(entry.get("character_id")),
        tracked=tracked if isinstance(tracked, bool) else True,
    )


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_float(value: object) -> float | None:
    """A JSON number as a float; ``None`` for anything else, or an integer too large for one."""
    if isinstance(value, float):
        return value
    if not is_int(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _shape(value: object) -> str:
    if isinstance(value, dict):
        return "object with keys " + ", ".join(sorted(map(str, value))[:8])
    return type(value).__name__
