"""The tracked view the notifier decides against, with or without names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from realtime.flow import TrackedView
from realtime.tracking import TrackedLookup


@runtime_checkable
class _Named(Protocol):
    def system_name(self, system_id: int) -> str | None: ...

    def character_name(self, character_id: int) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _Nameless:
    """A view that knows what is tracked but no names (names then come from events)."""

    view: TrackedView

    def is_tracked_system(self, system_id: int) -> bool:
        return self.view.is_tracked_system(system_id)

    def is_tracked_character(self, character_id: int) -> bool:
        return self.view.is_tracked_character(character_id)

    def system_name(self, system_id: int) -> str | None:
        return None

    def character_name(self, character_id: int) -> str | None:
        return None


def lookup(view: TrackedView) -> TrackedLookup:
    """``view`` with names (a :class:`TrackedSnapshot` has them; any other view gets none)."""
    if isinstance(view, _Named):
        return view
    return _Nameless(view)


class TrackingUnavailableError(RuntimeError):
    """The notifier has no tracked view and the tracking actor does not answer: retry later."""
