"""Configuration: ``config.toml`` into typed, frozen objects.

Every table is a frozen dataclass; the loader walks the dataclass fields, so a
new setting is one field with a default. Anything the file says that no field
expects is an error naming the key, as is a value of the wrong type or a
missing required value. A string value ``"env:NAME"`` in a :class:`Secret`
field is read from the environment and never printed.

One module per group of tables; import from this package:

- :mod:`~realtime.config.root`: :class:`Config`, the whole file;
- :mod:`~realtime.config.service`: ``[app]``, ``[http]``, ``[simulator]``,
  ``[mailbox]``, ``[supervision]``, ``[metrics]``, ``[alerts]``, ``[debug]``;
- :mod:`~realtime.config.feeds`: ``[sources]``, ``[sources.kills]``, ``[[maps]]``;
- :mod:`~realtime.config.pipeline`: ``[journal]``, ``[dedup]``, ``[flow]``,
  ``[routing]``;
- :mod:`~realtime.config.notify`: ``[notify]``, ``[[routes]]``, ``[status]``,
  ``[static_info]``, ``[filters]``;
- :mod:`~realtime.config.loading`: :func:`load`, :func:`parse`, :func:`masked`;
- :mod:`~realtime.config.validation`: the checks across tables;
- :mod:`~realtime.config.secret`: :class:`ConfigError` and :class:`Secret`.
"""

from realtime.config.feeds import (
    KillsSourceConfig,
    MapConfig,
    SourcesConfig,
)
from realtime.config.loading import (
    load,
    masked,
    parse,
)
from realtime.config.notify import (
    DEFAULT_ROUTE,
    ROUTE_KINDS,
    DiscordConfig,
    FiltersConfig,
    Involving,
    KillNotifyConfig,
    MapNotifyConfig,
    NotifyConfig,
    RouteConfig,
    RouteKind,
    StaticInfoConfig,
    StatusConfig,
    default_route,
)
from realtime.config.pipeline import (
    DedupConfig,
    FlowConfig,
    Handler,
    JournalConfig,
    Priority,
    RoutingConfig,
)
from realtime.config.root import (
    Config,
)
from realtime.config.secret import (
    ENV_PREFIX,
    MASK,
    NO_SECRET,
    ConfigError,
    Secret,
)
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

__all__ = [
    "DEFAULT_ROUTE",
    "ENV_PREFIX",
    "MASK",
    "NO_SECRET",
    "ROUTE_KINDS",
    "AlertsConfig",
    "AppConfig",
    "Config",
    "ConfigError",
    "DebugConfig",
    "DedupConfig",
    "DiscordConfig",
    "FiltersConfig",
    "FlowConfig",
    "Handler",
    "HttpConfig",
    "Involving",
    "JournalConfig",
    "KillNotifyConfig",
    "KillsSourceConfig",
    "MailboxConfig",
    "MapConfig",
    "MapNotifyConfig",
    "MetricsConfig",
    "NotifyConfig",
    "Priority",
    "RouteConfig",
    "RouteKind",
    "RoutingConfig",
    "Secret",
    "SimulatorConfig",
    "SourcesConfig",
    "StaticInfoConfig",
    "StatusConfig",
    "SupervisionConfig",
    "default_route",
    "load",
    "masked",
    "parse",
]
