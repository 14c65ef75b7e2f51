"""The tables of the event pipeline between the feeds and the notifier:
``[journal]``, ``[dedup]``, ``[flow]`` and ``[routing]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """The event journal (SQLite, WAL) in ``[app] data_dir``.

    Group commit takes whatever ingest is queued, up to ``batch_max`` events,
    into one transaction. ``max_pending`` bounds what is held in memory while
    the database cannot be written (disk full); beyond it ingest is refused
    back to the sources. ``fsync`` makes every commit survive power loss too.

    ``max_db_mb`` (0: no cap), ``fsync``, ``busy_timeout_s`` and the retry
    delays apply to every part that writes the database file (journal,
    ledger, tracking). ``busy_timeout_s`` is how long a write waits for
    another connection's lock; a write that fails for a passing reason (busy,
    disk full, cap reached) is retried after ``retry_min_s``, doubling up to
    ``retry_max_s``, and alerted meanwhile. ``tail_events`` bounds the
    committed, undelivered events kept in memory for delivery without a read;
    ``purge_rows`` the rows one retention transaction deletes.
    """

    retention_days: float = 7.0
    batch_max: int = 1000
    max_pending: int = 2000
    max_reject_bytes: int = 65536
    max_db_mb: float = 0.0
    fsync: bool = False
    delivery_batch: int = 256
    purge_every_s: float = 60.0
    busy_timeout_s: float = 5.0
    retry_min_s: float = 0.1
    retry_max_s: float = 5.0
    tail_events: int = 5000
    purge_rows: int = 5000


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """``window_s = 0`` means ``max(2 * [filters] max_kill_age_s, 3600)``."""

    window_s: float = 0.0
    max_entries: int = 200_000
    default_strategy: Literal["key", "content", "hybrid"] = "hybrid"
    strategies: Mapping[str, Literal["key", "content", "hybrid"]] = field(default_factory=dict)


Priority = Literal["critical", "high", "normal", "low"]


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Flow control; its buffer holds ``[mailbox] flow_control`` events.

    ``priorities`` overrides the default priority of an event type.
    """

    high_watermark: int = 1600
    low_watermark: int = 1200
    batch: int = 256
    demand: int = 512
    priorities: Mapping[str, Priority] = field(default_factory=dict)


Handler = Literal["tracking", "notifier", "ignore"]


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Event type -> handlers, in order; overrides the defaults (see ``actors/router.py``)."""

    routes: Mapping[str, tuple[Handler, ...]] = field(default_factory=dict)
    max_attempts: int = 5
    retry_min_s: float = 0.2
    retry_max_s: float = 10.0
    handler_timeout_s: float = 10.0
