""":class:`Config`, the whole file: one field per table, and the values
derived from several tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from realtime.config.feeds import MapConfig, SourcesConfig
from realtime.config.notify import (
    FiltersConfig,
    NotifyConfig,
    RouteConfig,
    StaticInfoConfig,
    StatusConfig,
    default_route,
)
from realtime.config.pipeline import DedupConfig, FlowConfig, JournalConfig, RoutingConfig
from realtime.config.service import (
    AlertsConfig,
    AppConfig,
    DebugConfig,
    HttpConfig,
    MailboxConfig,
    MetricsConfig,
    SimulatorConfig,
    SupervisionConfig,
)


@dataclass(frozen=True, slots=True)
class Config:
    app: AppConfig = field(default_factory=AppConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    maps: tuple[MapConfig, ...] = ()
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    static_info: StaticInfoConfig = field(default_factory=StaticInfoConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    routes: tuple[RouteConfig, ...] = ()
    status: StatusConfig = field(default_factory=StatusConfig)
    mailbox: MailboxConfig = field(default_factory=MailboxConfig)
    supervision: SupervisionConfig = field(default_factory=SupervisionConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)

    source_path: ClassVar[str] = "config.toml"

    @property
    def data_path(self) -> Path:
        return Path(self.app.data_dir)

    @property
    def effective_routes(self) -> tuple[RouteConfig, ...]:
        """``[[routes]]``, or the one default route when there is none."""
        return self.routes or (default_route(),)

    @property
    def dedup_window_s(self) -> float:
        """The effective dedup window: never shorter than a replayable kill's age."""
        if self.dedup.window_s > 0:
            return self.dedup.window_s
        return max(2 * self.filters.max_kill_age_s, 3600.0)
