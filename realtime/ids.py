"""EVE ids as they arrive in payloads."""

from __future__ import annotations

from typing import Any, TypeGuard

SYSTEM_ID_RANGE = (1, 50_000_000)
"""Inclusive range of system ids that wanderer-kills accepts in a subscription."""

CHARACTER_ID_RANGE = (90_000_000, 3_000_000_000)
"""Inclusive range of character ids that wanderer-kills accepts in a subscription."""


def is_int(value: object) -> TypeGuard[int]:
    """A JSON integer (``bool`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_id(value: Any) -> int | None:
    """An integer id from an int or a decimal string (EVE ids arrive as both).

    ``None`` for anything else (booleans, floats, empty or non-numeric text).
    """
    if is_int(value):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None
