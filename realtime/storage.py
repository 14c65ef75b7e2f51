"""The journal database file: one way to open it, run transactions and read SQLite errors.

The journal store, the notification ledger and the tracking store keep their
tables in one SQLite file, ``journal.sqlite3`` in ``[app] data_dir``, each
through a connection of its own made by :meth:`Database.open`, so all three
run with the same settings:

- **WAL** (``journal_mode=WAL``): readers never block the writer, and the
  three connections write in turn (``BEGIN IMMEDIATE`` takes the write lock
  up front; a writer waits up to ``busy_timeout_s`` for another's).
- **synchronous=NORMAL**: a commit appends its pages to the ``-wal`` file with
  ``write(2)`` and returns without ``fsync``; the bytes then belong to the
  kernel, so a committed transaction survives the death of the process
  (``SIGKILL`` included) and the next open replays the WAL. ``fsync`` happens
  at WAL checkpoints: after a power loss or kernel crash the file is
  consistent (each transaction whole or absent), but the transactions since
  the last checkpoint may be gone. ``sync_each_commit`` selects
  ``synchronous=FULL`` (the WAL is fsynced at every commit, and so is
  everything committed before it by any connection); the ledger asks for it
  because its commit comes before a post that cannot be taken back.
- **a size cap** (``max_db_bytes``, from ``[journal] max_db_mb``) on every
  connection: a write that would grow the file past it fails like a full
  disk, and pages freed by retention are reused.
- ``temp_store=MEMORY``, and the WAL truncated back to 64 MiB after a
  checkpoint.

The layout of every table is in :mod:`realtime.schema`; opening a new (or
incomplete) file creates whatever is missing, in one transaction.

Errors
------
Every SQLite error met by :meth:`Database.transaction` or
:meth:`Database.reading` is classified (:func:`classify`):

- :class:`StorageBusyError`: the file was locked by another connection past
  the busy timeout. Nothing was written; retry with backoff.
- :class:`StorageFullError`: the disk is full or the size cap is reached.
  Nothing was written; refuse new work, alert, and retry: it succeeds by
  itself once space returns.
- :class:`StorageUnavailableError` (the base of both): read-only file or
  file system, I/O error, file cannot be opened. Nothing was written; retry.
- :class:`StorageCorruptError`: the file is damaged, is not a journal
  database, or was written by a newer release. It is never recreated or
  overwritten: fail with the message, which says what to do.

Any other ``sqlite3.Error`` is a bug in the caller's SQL and is raised as is.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from realtime.config import Config
from realtime.schema import META, MIGRATIONS, SCHEMA_VERSION, TABLES, Migration, Table
from realtime.sqlite_rows import max_variables

DATABASE_FILE = "journal.sqlite3"
"""The database file in ``[app] data_dir``."""

FULL_CHECK_MAX_BYTES = 64 * 1024 * 1024
"""Files up to this size get ``PRAGMA integrity_check`` when verified at open (it
also checks every index against its table); larger ones get the linear-time
``PRAGMA quick_check``."""

WAL_LIMIT_BYTES = 64 * 1024 * 1024
"""After a checkpoint the ``-wal`` file is truncated back to this size."""

_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_FULL_CODES = frozenset({sqlite3.SQLITE_FULL})
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_PROTOCOL,
    }
)
_LEFT_ALONE = (
    "It was left untouched: stop the program, move the file (with any -wal and -shm "
    "beside it) aside to inspect or restore it, then start again to create a new journal."
)


class StorageError(Exception):
    """Base class of the storage errors (see the module doc)."""


class StorageCorruptError(StorageError):
    """The file is damaged, foreign or too new; it was left untouched."""


class StorageUnavailableError(StorageError):
    """The file cannot be written now; nothing of the failed call was written. Retry."""


class StorageBusyError(StorageUnavailableError):
    """Another connection held the lock past the busy timeout; retry with backoff."""


class StorageFullError(StorageUnavailableError):
    """The disk is full or the size cap is reached; retry once space returns."""


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """How a connection to the file behaves (see the module doc).

    Attributes:
        busy_timeout_s: how long a call waits for a lock held by another
            connection before :class:`StorageBusyError`.
        sync_each_commit: ``synchronous=FULL`` instead of ``NORMAL``.
        max_db_bytes: the cap on the file's size; ``None``: no cap.
    """

    busy_timeout_s: float = 5.0
    sync_each_commit: bool = False
    max_db_bytes: int | None = None

    @classmethod
    def of(cls, config: Config) -> StorageSettings:
        """The settings of ``[journal]`` (``max_db_mb = 0``: no cap)."""
        journal = config.journal
        cap = int(journal.max_db_mb * 1024 * 1024) if journal.max_db_mb > 0 else None
        return cls(journal.busy_timeout_s, journal.fsync, cap)


def classify(error: sqlite3.Error, path: Path, action: str) -> StorageError | None:
    """The storage error for an SQLite error met by ``action``; ``None`` for a bug."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    name = getattr(error, "sqlite_errorname", str(code))
    what = f"database {path}: {action} failed: {error} ({name})"
    if primary in _CORRUPT_CODES:
        return StorageCorruptError(f"{what}. {_LEFT_ALONE}")
    if primary in _BUSY_CODES:
        return StorageBusyError(
            f"{what}; another connection holds the lock; nothing was written, retrying"
        )
    if primary in _FULL_CODES:
        return StorageFullError(
            f"{what}; nothing was written; it resumes by itself once space is freed "
            "(or [journal] max_db_mb is raised)"
        )
    if primary in _UNAVAILABLE_CODES:
        return StorageUnavailableError(
            f"{what}; nothing was written, retrying until the cause is fixed"
        )
    return None


class Database:
    """One connection to the journal database file; create it with :meth:`open`.

    Thread-confined unless opened with ``shared=True`` (then the owner
    serialises its calls). Run statements inside :meth:`transaction` (writes)
    or :meth:`reading` (reads), which classify errors.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        """Use :meth:`open`."""
        self._connection = connection
        self._path = path
        self.max_variables = max_variables(connection)
        """SQLite's bound on ``?`` in one statement."""

    @classmethod
    def open(
        cls,
        path: Path,
        settings: StorageSettings | None = None,
        *,
        read_only: bool = False,
        verify: bool = False,
        shared: bool = False,
    ) -> Database:
        """Open (or create) the database file at ``path`` and check its layout.

        A missing file is created with its parent directory and the whole
        schema; an existing one is checked before anything is written to it.

        Args:
            path: the database file.
            settings: see :class:`StorageSettings` (the defaults if ``None``).
            read_only: open without write access, to read a file a running
                instance owns; every write raises :class:`StorageUnavailableError`.
            verify: run ``integrity_check`` (``quick_check`` above
                :data:`FULL_CHECK_MAX_BYTES`) first.
            shared: allow calls from several threads (the owner serialises them).

        Raises:
            FileNotFoundError: ``read_only`` and ``path`` does not exist.
            StorageCorruptError: the file is not a journal database this program can use.
            StorageUnavailableError: the file cannot be opened or initialised now.
        """
        settings = settings or StorageSettings()
        if read_only:
            if not path.exists():
                msg = f"database {path} does not exist"
                raise FileNotFoundError(msg)
            target, uri = f"{path.resolve().as_uri()}?mode=ro", True
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                msg = f"database {path}: cannot create its directory: {error}"
                raise StorageUnavailableError(msg) from error
            target, uri = str(path), False
        try:
            connection = sqlite3.connect(
                target,
                uri=uri,
                timeout=settings.busy_timeout_s,
                isolation_level=None,
                check_same_thread=not shared,
            )
        except sqlite3.Error as error:
            raise classify(error, path, "open") or error from error
        database = cls(connection, path)
        try:
            with database.reading("open"):
                database._prepare(settings, read_only=read_only, verify=verify)
        except BaseException:
            connection.close()
            raise
        return database

    def _prepare(self, settings: StorageSettings, *, read_only: bool, verify: bool) -> None:
        execute = self._connection.execute
        # Everything up to the layout check only reads: a foreign, damaged or
        # newer file is refused before a single byte of it changes.
        if verify:
            self._verify()
        missing, migrations = self._layout()
        if read_only:
            # an older file lacks what later releases added: reading it is fine
            if missing and not migrations:
                names = ", ".join(table.name for table in missing)
                msg = f"{self._path} is not a whole journal database (it lacks {names})"
                raise StorageCorruptError(msg)
            execute("PRAGMA temp_store = MEMORY")
            return
        mode = execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            msg = f"database {self._path}: cannot use WAL mode (got {mode!r})"
            raise StorageUnavailableError(msg)
        if missing or migrations:
            with self.transaction("open"):
                # Another connection may have created or migrated them since the check.
                self._upgrade(*self._layout())
        execute(f"PRAGMA synchronous = {'FULL' if settings.sync_each_commit else 'NORMAL'}")
        execute("PRAGMA temp_store = MEMORY")
        execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
        if settings.max_db_bytes is not None:
            page_size = execute("PRAGMA page_size").fetchone()[0]
            execute(f"PRAGMA max_page_count = {max(1, settings.max_db_bytes // page_size)}")

    def _verify(self) -> None:
        check = "open"
        try:
            page_count, page_size = self._connection.execute(
                "SELECT * FROM pragma_page_count, pragma_page_size"
            ).fetchone()
            check = (
                "integrity_check"
                if page_count * page_size <= FULL_CHECK_MAX_BYTES
                else "quick_check"
            )
            problems = [row[0] for row in self._connection.execute(f"PRAGMA {check}(10)")]
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorcode", 0) & 0xFF not in _CORRUPT_CODES:
                raise
            problems = [str(error)]
        if problems != ["ok"]:
            msg = f"journal {self._path} is damaged ({check}: {'; '.join(problems)}). {_LEFT_ALONE}"
            raise StorageCorruptError(msg)

    def _layout(self) -> tuple[list[Table], list[Migration]]:
        """The tables to create and the migrations to run; raises unless the file is a
        journal database (or empty).

        A table that a pending migration changes is checked after it, not now
        (a read-only open reads the other tables only).
        """
        present = {
            str(row[0])
            for row in self._connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        known = {table.name for table in TABLES}
        if META.name not in present and not present <= known:
            listed = ", ".join(sorted(present))
            msg = (
                f"{self._path} is not a journal database (tables: {listed}). It was left "
                "untouched: point app.data_dir at another directory, or move the file away."
            )
            raise StorageCorruptError(msg)
        version = self._check_version() if META.name in present else None
        migrations = [
            migration
            for migration in MIGRATIONS
            if migration.to > (version or 1)
            and set(migration.tables) <= present
            # a file without a version (from before ``meta``) may hold a table in
            # the current layout already (made by this release's ledger alone)
            and not (version is None and all(map(self._is_current, migration.tables)))
        ]
        if version is not None and version < SCHEMA_VERSION and not migrations:
            # nothing to change but the number (the tables it would change are missing)
            migrations = [Migration(SCHEMA_VERSION, {}, ())]
        changing = {name for migration in migrations for name in migration.tables}
        for migration in migrations:
            for name, needed in migration.tables.items():
                self._check_columns(name, needed)
        for name in sorted(present & known - changing):
            self._check_columns(name, _reference_columns()[name])
        return [table for table in TABLES if table.name not in present], migrations

    def _is_current(self, name: str) -> bool:
        """Table ``name`` has every column of its current layout."""
        columns = {row[1] for row in self._connection.execute(f"PRAGMA table_info({name})")}
        return set(_reference_columns()[name]) <= columns

    def _check_columns(self, name: str, needed: Sequence[str]) -> None:
        """Raises unless table ``name`` has every column of ``needed``."""
        columns = {row[1] for row in self._connection.execute(f"PRAGMA table_info({name})")}
        lacking = [column for column in needed if column not in columns]
        if lacking:
            msg = (
                f"{self._path}: table {name} lacks columns {', '.join(lacking)}; "
                "it is not a journal database this program can use, and was left untouched."
            )
            raise StorageCorruptError(msg)

    def _check_version(self) -> int:
        row = self._connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        version = None if row is None else row[0]
        if not isinstance(version, int) or version < 1:
            msg = f"journal {self._path} has no valid schema version ({version!r}); left untouched."
            raise StorageCorruptError(msg)
        if version > SCHEMA_VERSION:
            msg = (
                f"journal {self._path} has schema version {version}, newer than this "
                f"program's {SCHEMA_VERSION}: it was written by a newer release. "
                "Upgrade the program, or point app.data_dir elsewhere; the file was left "
                "untouched."
            )
            raise StorageCorruptError(msg)
        return version

    def _upgrade(self, missing: list[Table], migrations: list[Migration]) -> None:
        """Run ``migrations``, create the ``missing`` tables, record the version (in the
        open's transaction)."""
        for migration in migrations:
            for statement in migration.statements:
                self._connection.execute(statement)
        self._create(missing)
        if migrations and META not in missing:
            self._connection.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,)
            )

    def _create(self, tables: list[Table]) -> None:
        for table in tables:
            for statement in table.statements:
                self._connection.execute(statement)
        if any(table is META for table in tables):
            self._connection.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def in_transaction(self) -> bool:
        return self._connection.in_transaction

    def close(self) -> None:
        """Close the connection; a second call does nothing.

        The last connection to close checkpoints the WAL into the file.
        """
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextlib.contextmanager
    def reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection, with SQLite errors classified as ``action`` failing."""
        try:
            yield self._connection
        except sqlite3.Error as error:
            classified = classify(error, self._path, action)
            if classified is None:
                raise
            raise classified from error

    @contextlib.contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed if the block succeeds, rolled back otherwise.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so what the block
        reads cannot be changed by another writer before it commits. Errors
        are classified as in :meth:`reading`.
        """
        with self.reading(action) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                # SQLite already rolled back after some errors (SQLITE_FULL,
                # SQLITE_IOERR); a failing ROLLBACK must not hide the cause.
                if connection.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                raise


@functools.cache
def _reference_columns() -> dict[str, tuple[str, ...]]:
    """Each table's columns, as :data:`realtime.schema.TABLES` creates them."""
    with contextlib.closing(sqlite3.connect(":memory:")) as reference:
        for table in TABLES:
            for statement in table.statements:
                reference.execute(statement)
        return {
            table.name: tuple(
                str(row[1]) for row in reference.execute(f"PRAGMA table_info({table.name})")
            )
            for table in TABLES
        }
