"""What the notifier needs from the configuration: :class:`NotifierSettings`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from realtime.config import Config, DiscordConfig, NotifyConfig, RouteConfig, StatusConfig
from realtime.storage import DATABASE_FILE


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    """What the notifier needs from the configuration.

    Attributes:
        database: the journal's SQLite file, which holds the ledger.
        notify: ``[notify]`` (sinks, Discord, kill and map switches).
        routes: the effective routes (``[[routes]]``, or the default one).
        status: ``[status]``.
        max_kill_age_s: ``[filters] max_kill_age_s``.
        keep_s: how long sent and failed ledger entries are kept (then pruned).
        tick_s: how often the actor looks at its workers' outcomes and backlog.
        stop_timeout_s: how long a stop waits for workers with an answer outstanding.
        tracking_timeout_s: how long to wait for tracking's answer to ``GetTracking``.
        static_info_wait_s: how long a new system's card waits for its static info
            (``[static_info] wait_s``; 0 when static info is off).
    """

    database: Path
    notify: NotifyConfig
    routes: tuple[RouteConfig, ...]
    status: StatusConfig
    max_kill_age_s: float
    keep_s: float
    tick_s: float = 0.2
    stop_timeout_s: float = 2.0
    tracking_timeout_s: float = 2.0
    static_info_wait_s: float = 0.0

    @classmethod
    def from_config(
        cls, config: Config, *, discord: DiscordConfig | None = None
    ) -> NotifierSettings:
        """Settings from ``config``; ``discord`` replaces ``[notify.discord]`` (simulator)."""
        notify = (
            config.notify
            if discord is None
            else dataclasses.replace(config.notify, discord=discord)
        )
        max_age = config.filters.max_kill_age_s
        return cls(
            database=config.data_path / DATABASE_FILE,
            notify=notify,
            routes=config.effective_routes,
            status=config.status,
            max_kill_age_s=max_age,
            keep_s=max(config.journal.retention_days * 86400.0, 2 * max_age),
            static_info_wait_s=config.static_info.wait_s if config.static_info.enabled else 0.0,
        )
