"""``GET /metrics``: the Prometheus text exposition, cheap enough to scrape often.

One scrape asks one actor, ``metrics``, for :class:`~actors.metrics.ExpositionQuery`
(its totals, histograms and the statuses it polled from every actor within
the last second), reads the supervision tree's snapshot and the HTTP server's
figures in this process, and writes the text format with
:class:`realtime.exposition.Exposition`. No other actor is asked, so a scrape
costs the same however many actors run (under 1 ms of CPU for the demo world:
``python -m bench.metrics_scrape``); a status is at most one metrics tick
old. Without a running
``metrics`` actor (``[metrics] enabled = false``, or restarting), the
statuses are asked directly instead, as ``/api/status`` does.

Conventions: one ``wanderer_`` prefix, base units (``_seconds``, ``_ratio``,
``_bytes``), counters end in ``_total``, labels have low cardinality (actor
and source names, event types, stages, reasons capped at
:data:`MAX_LABEL_VALUES` per source). Counters come from running totals that
reset when their actor restarts, which Prometheus' ``rate()`` handles.

Families: ``wanderer_up``; per actor ``wanderer_actor_up``,
``wanderer_actor_restarts_total``, ``wanderer_status_answered``,
``wanderer_mailbox_messages``, ``wanderer_mailbox_capacity_messages``,
``wanderer_mailbox_high_water_messages``,
``wanderer_mailbox_dropped_messages_total``; per connection
``wanderer_connection_up``, ``wanderer_connection_state`` (1 for the current
state), ``wanderer_connection_quality_ratio``,
``wanderer_connection_rtt_seconds``, ``wanderer_connection_uptime_ratio``,
``wanderer_connection_reconnects_total``,
``wanderer_connection_last_message_age_seconds``;
``wanderer_events_total{source,type}``, ``wanderer_stage_latency_seconds{stage}``
(histogram), ``wanderer_rejects_total{source,reason}``,
``wanderer_alerts_active{severity}``, ``wanderer_regression_alarm{signal}``,
``wanderer_metrics_reports_total``; numeric journal, flow control and
notifier figures; the HTTP server's ``wanderer_http_connections``,
``wanderer_http_connections_closed_total{reason}`` and
``wanderer_http_requests_total{outcome}``; every other counter and gauge the
actors report, as ``wanderer_<name>{actor,...}``; and the standard
``process_*`` metrics.
"""

from __future__ import annotations

import functools
import os
import re
import resource
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from actors.metrics import EVENTS_COUNTER, ExpositionQuery, enabled_sources
from actors.protocol import Names
from actors.web_api import (
    STATES,
    Answer,
    Api,
    connection_entry,
    rejects_by_source,
    secret_values,
)
from actors.web_app import Access, Request, Response, Routes
from realtime.exposition import LABEL_CACHE_SIZE, Exposition, Labels, Row
from realtime.health import LIVE_STATES
from realtime.metrics import parse_series_key
from supervision import GetStatus, TreeNode

MAX_LABEL_VALUES = 64
"""Reject reasons (and other free label values) exported per source at most."""

_RESERVED_PREFIXES = (
    "wanderer_actor_",
    "wanderer_mailbox_",
    "wanderer_connection_",
    "wanderer_stage_",
    "wanderer_alerts_",
    "wanderer_regression_",
    "wanderer_journal_",
    "wanderer_flow_",
    "wanderer_notifications_",
    "wanderer_metrics_",
    "wanderer_status_",
    "wanderer_http_",
)
_RESERVED_NAMES = frozenset({"wanderer_up", "wanderer_events", "wanderer_rejects"})
_COMPONENTS = {"journal": Names.JOURNAL, "flow": Names.FLOW_CONTROL, "notifier": Names.NOTIFIER}


class MetricsRoute:
    """``GET /metrics``; see the module docstring.

    Args:
        api: asks the statuses directly when ``metrics`` does not answer.
    """

    def __init__(self, api: Api) -> None:
        self.api = api
        self._process = ProcessFigures()
        self._secrets: list[str] | None = None

    def __call__(self, request: Request) -> Response:
        app = request.app
        tree = app.snapshot()
        answer = self.api.ask_all(app, {Names.METRICS: ExpositionQuery()})[Names.METRICS]
        view = answer.value if answer.ok else self._asked(request, tree)
        out = Exposition()
        up = [((), 1.0)]
        out.family("wanderer_up", "gauge", "1 while the instance answers.", (), up)
        write_actors(out, tree, view["answered"])
        write_connections(out, _connections(app.config, view["statuses"], view["errors"]))
        write_metrics(out, view)
        write_rejects(out, _rejects(app.config, view["statuses"]))
        write_components(out, view["statuses"])
        if app.server_statistics is not None:
            write_http(out, app.server_statistics(), app.counts())
        write_reported(out, view["counters"], view["gauges"])
        self._process.write(out)
        text = out.text()
        if self._secrets is None:
            self._secrets = secret_values(app.config)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return Response(200, text.encode(), CONTENT_TYPE_LATEST)

    def _asked(self, request: Request, tree: TreeNode) -> dict[str, Any]:
        """The view from the actors themselves, when ``metrics`` cannot give it."""
        workers = [n.name for n in tree.walk() if n.kind == "worker" and n.name != Names.METRICS]
        answers = self.api.ask_all(request.app, dict.fromkeys(workers, GetStatus()))
        return {
            "statuses": {name: a.value for name, a in answers.items() if a.ok},
            "errors": {name: a.error for name, a in answers.items() if not a.ok},
            "answered": {name: a.ok for name, a in answers.items()},
            "series": [],
            "histograms": {},
            "counters": {},
            "gauges": {},
            "alerts": {},
            "regression": {},
            "reports_total": 0,
        }


def register(routes: Routes, api: Api) -> None:
    routes.add("GET", "/metrics", MetricsRoute(api), Access.METRICS)


def _connections(
    config: Any, statuses: Mapping[str, Any], errors: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """Connection entries of the enabled sources polled so far (one not asked yet is left out)."""
    entries = []
    for name in enabled_sources(config):
        if name in statuses:
            entries.append(connection_entry(name, Answer(statuses[name])))
        elif errors.get(name):
            entries.append(connection_entry(name, Answer(error=errors[name])))
    return entries


def _rejects(config: Any, statuses: Mapping[str, Any]) -> dict[str, Any]:
    names = [*enabled_sources(config), Names.JOURNAL]
    return rejects_by_source({n: Answer(statuses[n]) for n in names if n in statuses}, names)


# --- families -------------------------------------------------------------------------------


def write_actors(out: Exposition, tree: TreeNode, answered: Mapping[str, bool]) -> None:
    nodes = tree.walk()
    boxed = [(node.name, node.mailbox) for node in nodes if node.mailbox is not None]
    out.family(
        "wanderer_actor_up",
        "gauge",
        "1 while the actor runs.",
        ("actor", "kind"),
        (((n.name, n.kind), float(n.state == "running")) for n in nodes),
    )
    out.family(
        "wanderer_actor_restarts_total",
        "counter",
        "Restarts by its supervisor.",
        ("actor",),
        (((n.name,), float(n.restarts)) for n in nodes),
    )
    for name, documentation, field in (
        ("wanderer_mailbox_messages", "Messages queued in the mailbox.", "size"),
        ("wanderer_mailbox_capacity_messages", "Mailbox bound.", "capacity"),
        ("wanderer_mailbox_high_water_messages", "Largest mailbox size seen.", "high_water"),
    ):
        rows = (((actor,), float(getattr(box, field))) for actor, box in boxed)
        out.family(name, "gauge", documentation, ("actor",), rows)
    out.family(
        "wanderer_mailbox_dropped_messages_total",
        "counter",
        "Messages dropped by a full mailbox's policy.",
        ("actor",),
        (((actor,), float(box.dropped)) for actor, box in boxed),
    )
    out.family(
        "wanderer_status_answered",
        "gauge",
        "1 if the actor answered its last status poll.",
        ("actor",),
        (((name,), float(ok)) for name, ok in sorted(answered.items())),
    )


def write_connections(out: Exposition, entries: Sequence[Mapping[str, Any]]) -> None:
    names = [str(entry.get("name")) for entry in entries]
    states = [str(entry.get("state")) for entry in entries]
    rows = [
        ((name,), float(state in LIVE_STATES)) for name, state in zip(names, states, strict=True)
    ]
    out.family("wanderer_connection_up", "gauge", "1 while connected or degraded.", ("name",), rows)
    out.family(
        "wanderer_connection_state",
        "gauge",
        "1 for the current state.",
        ("name", "state"),
        (
            ((name, known), float(known == state))
            for name, state in zip(names, states, strict=True)
            for known in sorted(STATES)
        ),
    )
    for family, kind, documentation, read in (
        ("wanderer_connection_quality_ratio", "gauge", "Quality score, 0 to 1.", _quality),
        ("wanderer_connection_rtt_seconds", "gauge", "Median RTT.", _rtt),
        ("wanderer_connection_uptime_ratio", "gauge", "Uptime over the health window.", _uptime),
        (
            "wanderer_connection_reconnects_total",
            "counter",
            "Reconnections scheduled.",
            _reconnects,
        ),
        (
            "wanderer_connection_last_message_age_seconds",
            "gauge",
            "Seconds since anything arrived.",
            _age,
        ),
    ):
        rows = [
            ((name,), value)
            for name, entry in zip(names, entries, strict=True)
            if (value := read(entry)) is not None
        ]
        out.family(family, kind, documentation, ("name",), rows)


def _quality(entry: Mapping[str, Any]) -> float | None:
    score = _num((entry.get("quality") or {}).get("score"))
    return None if score is None else score / 100


def _rtt(entry: Mapping[str, Any]) -> float | None:
    value = _num(entry.get("rtt_ms"))
    return None if value is None else value / 1000


def _uptime(entry: Mapping[str, Any]) -> float | None:
    value = _num(entry.get("uptime_pct"))
    return None if value is None else value / 100


def _reconnects(entry: Mapping[str, Any]) -> float | None:
    return _num(entry.get("reconnects"))


def _age(entry: Mapping[str, Any]) -> float | None:
    return _num(entry.get("last_message_age_s"))


def write_metrics(out: Exposition, view: Mapping[str, Any]) -> None:
    """Throughput, latency, alerts and regression alarms, from the metrics actor."""
    out.family(
        "wanderer_events_total",
        "counter",
        "Events committed to the journal.",
        ("source", "type"),
        (((source, kind), float(total)) for source, kind, total in view["series"]),
    )
    out.histogram(
        "wanderer_stage_latency_seconds",
        "Seconds from the socket read to the end of each stage.",
        "stage",
        (
            (stage, histogram["buckets"], float(histogram["sum"]))
            for stage, histogram in sorted(view["histograms"].items())
        ),
    )
    counts = {"info": 0, "warning": 0, "critical": 0, **view["alerts"]}
    out.family(
        "wanderer_alerts_active",
        "gauge",
        "Active alerts by severity.",
        ("severity",),
        (((severity,), float(count)) for severity, count in counts.items()),
    )
    out.family(
        "wanderer_regression_alarm",
        "gauge",
        "1 while a regression is flagged.",
        ("signal",),
        (((signal,), float(alarm)) for signal, alarm in sorted(view["regression"].items())),
    )
    out.family(
        "wanderer_metrics_reports_total",
        "counter",
        "Stats reports received by metrics.",
        (),
        [((), float(view["reports_total"]))],
    )


def write_rejects(out: Exposition, by_source: Mapping[str, Mapping[str, float]]) -> None:
    out.family(
        "wanderer_rejects_total",
        "counter",
        "Input rejected, by reason.",
        ("source", "reason"),
        (
            ((source, reason), float(count))
            for source, rejects in sorted(by_source.items())
            for reason, count in sorted(rejects.items())[:MAX_LABEL_VALUES]
        ),
    )


_COMPONENT_GAUGES = (
    ("wanderer_journal_last_seq", "Last committed sequence number.", "journal", "last_seq"),
    ("wanderer_journal_checkpoint_seq", "Last fully handled seq.", "journal", "checkpoint"),
    ("wanderer_journal_backlog_events", "Committed, not yet settled.", "journal", "backlog"),
    ("wanderer_journal_rows", "Events in the journal.", "journal", "rows"),
    ("wanderer_journal_db_bytes", "Size of the journal database.", "journal", "db_bytes"),
    ("wanderer_flow_buffered_events", "Events buffered by flow control.", "flow", "size"),
    ("wanderer_flow_capacity_events", "Flow control's bound.", "flow", "capacity"),
    ("wanderer_notifications_pending", "Notifications not yet sent.", "notifier", "pending"),
)


def write_components(out: Exposition, statuses: Mapping[str, Any]) -> None:
    """Numeric journal, flow control and notifier figures from their statuses."""
    status = {key: _mapping(statuses.get(name)) for key, name in _COMPONENTS.items()}
    for name, documentation, component, key in _COMPONENT_GAUGES:
        if (value := _num(status[component].get(key))) is not None:
            out.family(name, "gauge", documentation, (), [((), value)])
    flow, notifier = status["flow"], status["notifier"]
    if isinstance(flow.get("backpressure"), bool):
        on: list[Row] = [((), float(flow["backpressure"]))]
        out.family("wanderer_flow_backpressure", "gauge", "1 while backpressure is on.", (), on)
    for name, documentation, key in (
        ("wanderer_flow_shed_events_total", "Events shed under load.", "shed"),
        ("wanderer_flow_stale_events_total", "Events dropped as too old.", "stale"),
    ):
        counts = flow.get(key)
        if isinstance(counts, Mapping):
            rows: list[Row] = [
                ((str(label),), value)
                for label, count in sorted(counts.items())[:MAX_LABEL_VALUES]
                if (value := _num(count)) is not None
            ]
            out.family(name, "counter", documentation, ("class",), rows)
    for name, documentation, key in (
        ("wanderer_notifications_sent_total", "Notifications sent.", "sent"),
        ("wanderer_notifications_failed_total", "Notifications given up on.", "failed"),
    ):
        if (value := _num(notifier.get(key))) is not None:
            out.family(name, "counter", documentation, (), [((), value)])


def write_http(out: Exposition, server: Any, counts: Mapping[str, int]) -> None:
    """The HTTP server's connections and the requests it answered or refused."""
    out.family(
        "wanderer_http_connections",
        "gauge",
        "Open HTTP connections.",
        (),
        [((), server.connections)],
    )
    out.family(
        "wanderer_http_max_connections",
        "gauge",
        "The connection bound ([http] max_connections).",
        (),
        [((), server.max_connections)],
    )
    out.family(
        "wanderer_http_connections_closed_total",
        "counter",
        "Connections the server closed: evicted (room for a new one), refused (all busy), "
        "timed_out (no complete request in time).",
        ("reason",),
        [
            (("evicted",), server.evicted),
            (("refused",), server.refused),
            (("timed_out",), server.timed_out),
        ],
    )
    out.family(
        "wanderer_http_requests_total",
        "counter",
        "Requests by outcome: answered_Nxx, or refused_host, refused_token, refused_login.",
        ("outcome",),
        (((outcome,), float(count)) for outcome, count in counts.items()),
    )


def write_reported(out: Exposition, counters: Mapping[str, Any], gauges: Mapping[str, Any]) -> None:
    """Every other counter and gauge of the stats reports, named after itself."""
    families: dict[str, tuple[str, str, Labels, list[Row]]] = {}
    for kind, table in (("counter", counters), ("gauge", gauges)):
        for actor, values in sorted(table.items()):
            for key, value in values:
                series = _reported_series(kind, key)
                if series is None or isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                full, documentation, names, label_values = series
                family = families.setdefault(full, (kind, documentation, names, []))
                if family[2] != names or family[0] != kind:
                    continue  # one family, one label set
                family[3].append(((actor, *label_values), float(value)))
    for full, (kind, documentation, names, rows) in families.items():
        out.family(full, kind, documentation, names, rows)


@functools.lru_cache(maxsize=LABEL_CACHE_SIZE)
def _reported_series(kind: str, key: str) -> tuple[str, str, Labels, Labels] | None:
    """The family name, help, label names and label values of a reported key (``None``:
    not exported: malformed, the throughput counter, or a name this module owns)."""
    parsed = parse_series_key(key)
    if parsed is None or parsed[0] == EVENTS_COUNTER:
        return None
    name, labels = parsed
    base = "wanderer_" + re.sub(r"[^a-zA-Z0-9_]", "_", name.removesuffix("_total"))
    full = f"{base}_total" if kind == "counter" else base
    if base in _RESERVED_NAMES or full.startswith(_RESERVED_PREFIXES):
        return None
    names = tuple(sorted(labels))
    return full, f"Reported {kind} {name}.", ("actor", *names), tuple(labels[n] for n in names)


class ProcessFigures:
    """The standard ``process_*`` metrics of this process, read cheaply.

    The same names as ``prometheus_client``'s process collector, from one read of
    ``/proc/self/stat``, a listing of ``/proc/self/fd`` and ``getrlimit``. Where
    ``/proc`` is missing, only what ``os`` and ``resource`` give is written.
    """

    def __init__(self) -> None:
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._page = resource.getpagesize()
        self._boot = _boot_time()

    def write(self, out: Exposition) -> None:
        times = os.times()
        cpu: list[Row] = [((), times.user + times.system)]
        out.family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (),
            cpu,
        )
        try:
            with open("/proc/self/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
            fds = len(os.listdir("/proc/self/fd"))
        except OSError:
            return
        gauges: list[tuple[str, str, float]] = [
            ("process_virtual_memory_bytes", "Virtual memory size in bytes.", float(fields[20])),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                float(fields[21]) * self._page,
            ),
            ("process_open_fds", "Number of open file descriptors.", float(fds)),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                float(resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
            ),
        ]
        if self._boot is not None:
            started = self._boot + float(fields[19]) / self._ticks
            gauges.append(
                (
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    started,
                ),
            )
        for name, documentation, value in gauges:
            out.family(name, "gauge", documentation, (), [((), value)])


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
