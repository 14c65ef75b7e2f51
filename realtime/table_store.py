"""The base of a store that owns one connection to the journal database file.

A table's store (the tracking store, the static-info cache) opens its own
:class:`~realtime.storage.Database` connection with :meth:`TableStore.open`
and closes it with :meth:`TableStore.close` or by leaving a ``with`` block;
the subclass adds the reads and writes of its table through
``self._database``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from realtime.storage import Database, StorageSettings


class TableStore:
    """One connection to the journal database, for the subclass's table. One owner."""

    def __init__(self, database: Database) -> None:
        """Use :meth:`open`."""
        self._database = database

    @classmethod
    def open(cls, path: Path, settings: StorageSettings | None = None) -> Self:
        """Open (creating if needed) the journal database at ``path``.

        Raises:
            StorageCorruptError: the file is not a journal database.
            StorageUnavailableError: the file cannot be opened now.
        """
        return cls(Database.open(path, settings))

    def close(self) -> None:
        """Close the connection; a second call does nothing."""
        self._database.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
