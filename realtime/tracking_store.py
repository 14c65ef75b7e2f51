"""The ``tracking`` table: what each map tracks, saved so a restart starts from it.

It lives in the journal database file (see :mod:`realtime.storage`), through
a connection of its own. A write that fails raises a
:class:`~realtime.storage.StorageError` and changes nothing (the transaction
is rolled back): busy, full or unavailable can be retried as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from realtime.table_store import TableStore

MapContents = tuple[Mapping[int, str], Mapping[int, str]]
"""What one map tracks: ``(systems, characters)``, each ``id -> name``."""


class TrackingStore(TableStore):
    """Per map, the tracked systems and characters with names.

    Each map is saved whole (its rows replaced in one transaction), in the
    order :class:`~realtime.tracking.TrackedState` holds it, so that loading
    it back through :meth:`~realtime.tracking.TrackedState.bootstrap` admits
    the same ids under the same bounds. Not thread-safe: one owner.
    """

    def load(self) -> dict[str, MapContents]:
        """Every saved map: ``slug -> (systems, characters)``, in saved order."""
        maps: dict[str, tuple[dict[int, str], dict[int, str]]] = {}
        with self._database.reading("load tracking") as db:
            rows = db.execute(
                "SELECT slug, kind, id, name FROM tracking ORDER BY slug, kind, position"
            ).fetchall()
        for slug, kind, item_id, name in rows:
            systems, characters = maps.setdefault(str(slug), ({}, {}))
            (systems if kind == "system" else characters)[int(item_id)] = str(name)
        return dict(maps)

    def save(self, maps: Mapping[str, MapContents]) -> None:
        """Replace the saved contents of each map in ``maps``, all in one transaction."""
        with self._database.transaction("save tracking") as db:
            for slug, (systems, characters) in maps.items():
                db.execute("DELETE FROM tracking WHERE slug = ?", (slug,))
                db.executemany(
                    "INSERT INTO tracking (slug, kind, id, name, position) VALUES (?, ?, ?, ?, ?)",
                    [
                        *_rows(slug, "system", systems.items()),
                        *_rows(slug, "character", characters.items()),
                    ],
                )

    def forget(self, slugs: Iterable[str]) -> None:
        """Delete the saved contents of ``slugs``."""
        with self._database.transaction("forget tracking") as db:
            db.executemany("DELETE FROM tracking WHERE slug = ?", [(slug,) for slug in slugs])


def _rows(
    slug: str, kind: str, items: Iterable[tuple[int, str]]
) -> list[tuple[str, str, int, str, int]]:
    return [(slug, kind, item_id, name, index) for index, (item_id, name) in enumerate(items)]
