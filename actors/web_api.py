"""The operator's routes: readiness, health, status, Prometheus metrics and the dashboard.

Registered by :func:`actors.web.default_routes`. Every route that needs other
actors asks them all at once (non-blocking pykka asks of control messages,
which never wait for room in a mailbox) and waits for the answers against one
deadline of :data:`STATUS_TIMEOUT_S`, so one busy actor costs a page at most
that long and shows in the JSON as ``{"error": "no answer within 0.5 s"}``.
An actor that has not answered a previous question is not asked again: the
request waits on the ask already in flight, so a stuck actor's control lane
holds at most one question from the web however often the page polls.

No secret appears in a response: every JSON answer is scrubbed of the
configuration's secret values and of string values under secret-looking keys
(``token``, ``api_key``, ``password``, ``secret``, ``authorization``,
``webhook_url``).

Shapes (CONTRACT.md):

- ``GET /readyz``: 200 ``{"status": "pass", "ready": true}`` when every
  enabled source is ``connected`` or ``degraded``, the journal and every
  actor of the pipeline run, and the journal reports no error; otherwise 503
  ``{"status": "fail", "ready": false, "reasons": [...]}``.
- ``GET /api/health``: ``{"status": pass|warn|fail, "connections": [...]}``,
  one entry per enabled source from its status' ``connection`` (a source that
  is not running is ``disconnected``; one that does not answer is
  ``unknown``, with an ``error``).
- ``GET /api/status``: ``connections``, ``health``, ``readiness``,
  ``pipeline`` (per actor: state, restarts, mailbox size, capacity,
  high-water), ``dedup``, ``flow``, ``journal``, ``notifier``, ``metrics``
  (the metrics actor's summary), ``alerts``, ``tree``, ``rejects`` (by
  reason, summed over the sources and the journal), ``rejects_by_source``,
  ``actors`` (who answered) and ``statuses`` (every other actor's status).
- ``GET /metrics``: Prometheus text exposition (see :class:`StatusCollector`).
- ``GET /``: the dashboard (``actors/static/dashboard.html``).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import math
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast, get_args

import pykka
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector

from actors.metrics import EVENTS_COUNTER, MetricsQuery, enabled_sources
from actors.protocol import Names
from actors.web import Request, Response, Routes, WebApp
from realtime.config import Config, Secret
from realtime.health import LIVE_STATES, HealthSnapshot, State, Status, overall
from realtime.metrics import parse_series_key
from supervision import GetStatus, TreeNode

STATUS_TIMEOUT_S = 0.5
"""How long a page waits for all the actors it asks, together."""

NOT_RUNNING = "not running"
MASK = "***"
MAX_LABEL_VALUES = 64
"""Reject reasons (and other free label values) exported per source at most."""

_SECRET_KEY = re.compile(
    r"(^|_)(token|api_key|password|secret|authorization|webhook_url)$", re.IGNORECASE
)
_STATUS_SECTIONS = {
    "dedup": Names.DEDUP,
    "flow": Names.FLOW_CONTROL,
    "journal": Names.JOURNAL,
    "notifier": Names.NOTIFIER,
}


@dataclass(frozen=True, slots=True)
class Answer:
    """One actor's reply, or why there is none."""

    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def mapping(self) -> Mapping[str, Any]:
        """The reply if it is a mapping, else ``{"error": ...}``."""
        if self.error is not None:
            return {"error": self.error}
        if isinstance(self.value, Mapping):
            return self.value
        return {"value": self.value}


class Api:
    """The routes of this module, with the asks in flight shared between requests.

    Args:
        timeout_s: how long one request waits for all its answers.
    """

    def __init__(self, timeout_s: float = STATUS_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], tuple[pykka.ActorRef[Any], pykka.Future[Any]]] = {}

    # --- asking ---------------------------------------------------------------------

    def ask_all(self, app: WebApp, questions: Mapping[str, Any]) -> dict[str, Answer]:
        """Ask each named actor its question at once; the answers within the deadline.

        Questions must be control messages (``GetStatus``, ``MetricsQuery``), so
        that putting them never waits for room in a full mailbox.
        """
        deadline = time.monotonic() + self.timeout_s
        answers: dict[str, Answer] = {}
        waiting: dict[str, tuple[tuple[str, str], pykka.Future[Any]]] = {}
        for name, message in questions.items():
            ref = app.registry.lookup(name)
            if ref is None:
                answers[name] = Answer(error=NOT_RUNNING)
                continue
            slot = (name, _question_key(message))
            with self._lock:
                pending = self._pending.get(slot)
                if pending is None or pending[0] is not ref:
                    try:
                        pending = (ref, ref.ask(message, block=False))
                    except pykka.ActorDeadError:
                        answers[name] = Answer(error=NOT_RUNNING)
                        continue
                    self._pending[slot] = pending
            waiting[name] = (slot, pending[1])
        for name, (slot, future) in waiting.items():
            try:
                value = future.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                answers[name] = Answer(error=f"no answer within {self.timeout_s:g} s")
                continue
            except Exception as error:  # noqa: BLE001 -- the actor's failure is the answer
                answers[name] = Answer(error=f"{type(error).__name__}: {error}")
            else:
                answers[name] = Answer(value)
            with self._lock:
                if self._pending.get(slot, (None, None))[1] is future:
                    del self._pending[slot]
        return answers

    # --- routes ------------------------------------------------------------------------

    def readyz(self, request: Request) -> Response:
        app = request.app
        tree = app.snapshot()
        sources = enabled_sources(app.config)
        answers = self.ask_all(app, dict.fromkeys([*sources, Names.JOURNAL], GetStatus()))
        reasons = readiness_reasons(tree, sources, answers)
        if reasons:
            body = {"status": "fail", "ready": False, "reasons": reasons}
            return json_response(app.config, 503, body)
        return json_response(app.config, 200, {"status": "pass", "ready": True})

    def health(self, request: Request) -> Response:
        app = request.app
        sources = enabled_sources(app.config)
        answers = self.ask_all(app, dict.fromkeys(sources, GetStatus()))
        connections = [connection_entry(name, answers[name]) for name in sources]
        body = {"status": health_status(connections), "connections": connections}
        return json_response(app.config, 200, body)

    def status(self, request: Request) -> Response:
        app = request.app
        body = self.gather(app, MetricsQuery(history_s=120))
        return json_response(app.config, 200, body)

    def gather(self, app: WebApp, query: MetricsQuery) -> dict[str, Any]:
        """The ``/api/status`` document."""
        tree = app.snapshot()
        sources = enabled_sources(app.config)
        workers = [n.name for n in tree.walk() if n.kind == "worker" and n.name != Names.METRICS]
        questions: dict[str, Any] = dict.fromkeys(dict.fromkeys([*sources, *workers]), GetStatus())
        questions[Names.METRICS] = query
        answers = self.ask_all(app, questions)
        connections = [connection_entry(name, answers[name]) for name in sources]
        metrics = dict(answers[Names.METRICS].mapping())
        alerts = metrics.pop("alerts", {"error": answers[Names.METRICS].error})
        by_source = rejects_by_source(answers, [*sources, Names.JOURNAL])
        reasons = readiness_reasons(tree, sources, answers)
        body: dict[str, Any] = {
            "at": time.time(),
            "health": health_status(connections),
            "readiness": {"ready": not reasons, "reasons": reasons},
            "connections": connections,
            "pipeline": pipeline_view(tree),
            **{section: answers_of(answers, name) for section, name in _STATUS_SECTIONS.items()},
            "metrics": metrics,
            "alerts": alerts,
            "tree": tree.as_dict(),
            "rejects": sum_rejects(by_source),
            "rejects_by_source": by_source,
            "actors": {
                name: {"answered": answer.ok, "error": answer.error}
                for name, answer in sorted(answers.items())
            },
            "statuses": {
                name: answers[name].mapping()
                for name in workers
                if name not in sources and name not in _STATUS_SECTIONS.values()
            },
        }
        return body

    def metrics(self, request: Request) -> Response:
        app = request.app
        document = self.gather(app, MetricsQuery(history_s=0, histograms=True))
        collector = StatusCollector(document, app.snapshot())
        body = generate_latest(collector)
        return Response(200, redact_text(body.decode(), app.config).encode(), CONTENT_TYPE_LATEST)

    def dashboard(self, request: Request) -> Response:
        return static_page(200, "dashboard.html")


def _question_key(message: object) -> str:
    """Equal for equal questions: a dataclass by its fields, anything else by its type."""
    if dataclasses.is_dataclass(message):
        return repr(message)
    return type(message).__qualname__


def register(routes: Routes, api: Api | None = None) -> Api:
    """Add this module's routes to ``routes``; the :class:`Api` that serves them."""
    api = api or Api()
    routes.add("GET", "/readyz", api.readyz)
    routes.add("GET", "/api/health", api.health)
    routes.add("GET", "/api/status", api.status)
    routes.add("GET", "/metrics", api.metrics)
    routes.add("GET", "/", api.dashboard)
    return api


def static_page(status: int, name: str) -> Response:
    """An HTML page shipped in ``actors/static``."""
    page = importlib.resources.files("actors").joinpath("static", name).read_bytes()
    return Response(status, page, "text/html; charset=utf-8")


def login_page() -> Response:
    """The 401 answer to ``GET /`` without a token: a page that asks for it."""
    return static_page(401, "login.html")


# --- building the documents ------------------------------------------------------------


def answers_of(answers: Mapping[str, Answer], name: str) -> Mapping[str, Any]:
    answer = answers.get(name)
    return {"error": NOT_RUNNING} if answer is None else answer.mapping()


def connection_entry(name: str, answer: Answer) -> dict[str, Any]:
    """The ``/api/health`` entry of the source ``name`` from its status answer."""
    connection = answer.value.get("connection") if isinstance(answer.value, Mapping) else None
    if answer.ok and isinstance(connection, Mapping):
        return {"name": name, **connection}
    return {
        "name": name,
        "kind": "sse" if name.startswith("map:") else "websocket",
        # Only CONTRACT.md's states: a source that does not answer counts as
        # disconnected, and ``error`` says why.
        "state": "disconnected",
        "quality": {"score": 0, "band": "critical"},
        "rtt_ms": None,
        "uptime_pct": 0.0,
        "reconnects": 0,
        "last_message_age_s": None,
        "error": answer.error or "its status has no connection",
    }


def health_status(connections: Iterable[Mapping[str, Any]]) -> Status:
    """:func:`realtime.health.overall` over connection entries."""
    return overall(_snapshot(entry) for entry in connections)


def _snapshot(entry: Mapping[str, Any]) -> HealthSnapshot:
    quality = entry.get("quality")
    quality = quality if isinstance(quality, Mapping) else {}
    state = entry.get("state")
    return HealthSnapshot(
        name=str(entry.get("name")),
        kind=cast("Any", entry.get("kind")),
        state=cast("Any", state if state in _STATES else "disconnected"),
        score=int(quality.get("score") or 0),
        band=cast("Any", quality.get("band") or "critical"),
        rtt_ms=None,
        rtt_p95_ms=None,
        uptime_pct=0.0,
        reconnects=0,
        last_message_age_s=None,
        errors=(),
        recent_errors=0,
        state_since=0.0,
        state_age_s=0.0,
        transitions=(),
    )


_STATES = frozenset(get_args(State))


def readiness_reasons(
    tree: TreeNode, sources: Iterable[str], answers: Mapping[str, Answer]
) -> list[str]:
    """Why the instance is not ready (empty when it is); see the module docstring."""
    reasons = []
    if tree.state != "running":
        reasons.append(f"{tree.name}: {tree.state}")
    for name in sources:
        answer = answers.get(name, Answer(error=NOT_RUNNING))
        entry = connection_entry(name, answer)
        if entry["state"] not in LIVE_STATES:
            detail = f" ({entry['error']})" if entry.get("error") else ""
            reasons.append(f"{name}: connection {entry['state']}{detail}")
    pipeline = tree.find(Names.PIPELINE)
    required = [Names.JOURNAL, Names.PIPELINE]
    required += [child.name for child in pipeline.children] if pipeline else []
    for name in required:
        node = tree.find(name)
        if node is None:
            reasons.append(f"{name}: not in the supervision tree")
        elif node.state != "running":
            reasons.append(f"{name}: {node.state}")
    journal = answers.get(Names.JOURNAL, Answer(error=NOT_RUNNING))
    if not journal.ok:
        reasons.append(f"journal: {journal.error}")
    elif journal.mapping().get("error"):
        reasons.append(f"journal: {journal.mapping()['error']}")
    return reasons


def pipeline_view(tree: TreeNode) -> dict[str, Any]:
    """Per actor (and supervisor): state, restarts and mailbox figures, from the snapshot."""
    view = {}
    for node in tree.walk():
        mailbox = node.mailbox
        view[node.name] = {
            "kind": node.kind,
            "state": node.state,
            "restarts": node.restarts,
            "size": mailbox.size if mailbox else None,
            "capacity": mailbox.capacity if mailbox else None,
            "high_water": mailbox.high_water if mailbox else None,
            "dropped": mailbox.dropped if mailbox else None,
            "blocked_puts": mailbox.blocked_puts if mailbox else None,
        }
    return view


def rejects_by_source(answers: Mapping[str, Answer], names: Iterable[str]) -> dict[str, Any]:
    by_source: dict[str, dict[str, float]] = {}
    for name in names:
        answer = answers.get(name)
        rejects = answer.mapping().get("rejects") if answer else None
        if isinstance(rejects, Mapping):
            by_source[name] = {
                str(reason): count
                for reason, count in rejects.items()
                if isinstance(count, int | float) and not isinstance(count, bool)
            }
    return by_source


def sum_rejects(by_source: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for rejects in by_source.values():
        for reason, count in rejects.items():
            total[reason] = total.get(reason, 0) + count
    return dict(sorted(total.items()))


# --- secrets --------------------------------------------------------------------------


def secret_values(config: Config) -> list[str]:
    """Every secret value in the configuration, longest first (so none is half-masked)."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, Secret):
            if value.value:
                found.append(value.value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for spec in dataclasses.fields(value):
                walk(getattr(value, spec.name))
        elif isinstance(value, tuple):
            for item in value:
                walk(item)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)

    walk(config)
    return sorted(set(found), key=len, reverse=True)


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every secret replaced by ``***`` in its strings (keys included)."""
    held = list(secrets)

    def scrub(item: Any, key: str = "") -> Any:
        if isinstance(item, str):
            if key and item and _SECRET_KEY.search(key):
                return MASK
            for secret in held:
                item = item.replace(secret, MASK)
            return item
        if isinstance(item, Mapping):
            return {scrub(str(k)): scrub(v, str(k)) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [scrub(v) for v in item]
        return item

    return scrub(value)


def redact_text(text: str, config: Config) -> str:
    for secret in secret_values(config):
        text = text.replace(secret, MASK)
    return text


def json_response(config: Config, status: int, value: Any) -> Response:
    """A JSON response with every secret scrubbed."""
    body = redact(value, secret_values(config))
    return Response(status, json.dumps(body, default=str).encode())


# --- Prometheus --------------------------------------------------------------------------

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
)
_RESERVED_NAMES = frozenset({"wanderer_up", "wanderer_events", "wanderer_rejects"})


class StatusCollector:
    """A ``prometheus_client`` collector over one ``/api/status`` document and tree.

    Conventions: one ``wanderer_`` prefix, base units (``_seconds``,
    ``_ratio``, ``_bytes``), counters end in ``_total``, labels have low
    cardinality (actor and source names, event types, stages, reasons capped
    at :data:`MAX_LABEL_VALUES` per source). Counters come from running totals
    that reset when their actor restarts, which Prometheus' ``rate()`` handles.

    Families: ``wanderer_up``; per actor ``wanderer_actor_up``,
    ``wanderer_actor_restarts_total``, ``wanderer_status_answered``,
    ``wanderer_mailbox_messages``, ``wanderer_mailbox_capacity_messages``,
    ``wanderer_mailbox_high_water_messages``,
    ``wanderer_mailbox_dropped_messages_total``; per connection
    ``wanderer_connection_up``, ``wanderer_connection_state`` (1 for the
    current state), ``wanderer_connection_quality_ratio``,
    ``wanderer_connection_rtt_seconds``, ``wanderer_connection_uptime_ratio``,
    ``wanderer_connection_reconnects_total``,
    ``wanderer_connection_last_message_age_seconds``;
    ``wanderer_events_total{source,type}``,
    ``wanderer_stage_latency_seconds{stage}`` (histogram),
    ``wanderer_rejects_total{source,reason}``, ``wanderer_alerts_active{severity}``,
    ``wanderer_regression_alarm{signal}``, ``wanderer_metrics_reports_total``;
    numeric journal, flow control and notifier figures; every other counter
    and gauge the actors report, as ``wanderer_<name>{actor,...}``; and the
    standard ``process_*`` metrics.
    """

    def __init__(self, document: Mapping[str, Any], tree: TreeNode) -> None:
        self.document = document
        self.tree = tree

    def collect(self) -> Iterator[Metric]:
        emitted: set[str] = set()
        for family in self._families():
            if family.name not in emitted:
                emitted.add(family.name)
                yield family
        yield from ProcessCollector(registry=None).collect()

    def _families(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("wanderer_up", "1 while the instance answers.")
        up.add_metric([], 1.0)
        yield up
        yield from self._actors()
        yield from self._connections()
        metrics = self.document.get("metrics") or {}
        yield from self._throughput(metrics)
        yield from self._latency(metrics)
        yield from self._rejects()
        yield from self._alerts(metrics)
        yield from self._components()
        yield from self._reported(metrics)

    def _actors(self) -> Iterator[Metric]:
        running = GaugeMetricFamily(
            "wanderer_actor_up", "1 while the actor runs.", labels=["actor", "kind"]
        )
        restarts = CounterMetricFamily(
            "wanderer_actor_restarts_total", "Restarts by its supervisor.", labels=["actor"]
        )
        size = GaugeMetricFamily(
            "wanderer_mailbox_messages", "Messages queued in the mailbox.", labels=["actor"]
        )
        capacity = GaugeMetricFamily(
            "wanderer_mailbox_capacity_messages", "Mailbox bound.", labels=["actor"]
        )
        high = GaugeMetricFamily(
            "wanderer_mailbox_high_water_messages", "Largest mailbox size seen.", labels=["actor"]
        )
        dropped = CounterMetricFamily(
            "wanderer_mailbox_dropped_messages_total",
            "Messages dropped by a full mailbox's policy.",
            labels=["actor"],
        )
        for node in self.tree.walk():
            running.add_metric([node.name, node.kind], float(node.state == "running"))
            restarts.add_metric([node.name], float(node.restarts))
            if node.mailbox is not None:
                size.add_metric([node.name], float(node.mailbox.size))
                capacity.add_metric([node.name], float(node.mailbox.capacity))
                high.add_metric([node.name], float(node.mailbox.high_water))
                dropped.add_metric([node.name], float(node.mailbox.dropped))
        answered = GaugeMetricFamily(
            "wanderer_status_answered",
            "1 if the actor answered its status within the deadline.",
            labels=["actor"],
        )
        for name, actor in sorted((self.document.get("actors") or {}).items()):
            answered.add_metric([name], float(bool(actor.get("answered"))))
        yield from (running, restarts, size, capacity, high, dropped, answered)

    def _connections(self) -> Iterator[Metric]:
        labels = ["name"]
        up = GaugeMetricFamily(
            "wanderer_connection_up", "1 while connected or degraded.", labels=labels
        )
        state = GaugeMetricFamily(
            "wanderer_connection_state", "1 for the current state.", labels=["name", "state"]
        )
        quality = GaugeMetricFamily(
            "wanderer_connection_quality_ratio", "Quality score, 0 to 1.", labels=labels
        )
        rtt = GaugeMetricFamily("wanderer_connection_rtt_seconds", "Median RTT.", labels=labels)
        uptime = GaugeMetricFamily(
            "wanderer_connection_uptime_ratio", "Uptime over the health window.", labels=labels
        )
        reconnects = CounterMetricFamily(
            "wanderer_connection_reconnects_total", "Reconnections scheduled.", labels=labels
        )
        age = GaugeMetricFamily(
            "wanderer_connection_last_message_age_seconds",
            "Seconds since anything arrived.",
            labels=labels,
        )
        for entry in self.document.get("connections") or []:
            name = str(entry.get("name"))
            current = str(entry.get("state"))
            up.add_metric([name], float(current in LIVE_STATES))
            for known in sorted(_STATES):
                state.add_metric([name, known], float(known == current))
            score = _num((entry.get("quality") or {}).get("score"))
            if score is not None:
                quality.add_metric([name], score / 100)
            if (value := _num(entry.get("rtt_ms"))) is not None:
                rtt.add_metric([name], value / 1000)
            if (value := _num(entry.get("uptime_pct"))) is not None:
                uptime.add_metric([name], value / 100)
            if (value := _num(entry.get("reconnects"))) is not None:
                reconnects.add_metric([name], value)
            if (value := _num(entry.get("last_message_age_s"))) is not None:
                age.add_metric([name], value)
        yield from (up, state, quality, rtt, uptime, reconnects, age)

    def _throughput(self, metrics: Mapping[str, Any]) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "wanderer_events_total", "Events committed to the journal.", labels=["source", "type"]
        )
        for series in (metrics.get("throughput") or {}).get("series") or []:
            events.add_metric([str(series["source"]), str(series["type"])], float(series["total"]))
        yield events

    def _latency(self, metrics: Mapping[str, Any]) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "wanderer_stage_latency_seconds",
            "Seconds from the socket read to the end of each stage.",
            labels=["stage"],
        )
        for stage, histogram in sorted((metrics.get("histograms") or {}).items()):
            buckets = [(_le(le), float(count)) for le, count in histogram["buckets"]]
            family.add_metric([stage], buckets, float(histogram["sum"]))
        yield family

    def _rejects(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "wanderer_rejects_total", "Input rejected, by reason.", labels=["source", "reason"]
        )
        for source, rejects in sorted((self.document.get("rejects_by_source") or {}).items()):
            for reason, count in sorted(rejects.items())[:MAX_LABEL_VALUES]:
                family.add_metric([source, reason], float(count))
        yield family

    def _alerts(self, metrics: Mapping[str, Any]) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "wanderer_alerts_active", "Active alerts by severity.", labels=["severity"]
        )
        alerts = self.document.get("alerts") or {}
        counts = dict.fromkeys(("info", "warning", "critical"), 0.0)
        for alert in alerts.get("active") or []:
            counts[str(alert.get("severity"))] = counts.get(str(alert.get("severity")), 0.0) + 1
        for severity, count in counts.items():
            active.add_metric([severity], count)
        alarm = GaugeMetricFamily(
            "wanderer_regression_alarm", "1 while a regression is flagged.", labels=["signal"]
        )
        for signal, state in sorted((metrics.get("regression") or {}).items()):
            alarm.add_metric([signal], float(bool(state.get("alarm"))))
        reports = CounterMetricFamily(
            "wanderer_metrics_reports_total", "Stats reports received by metrics."
        )
        reports.add_metric([], float((metrics.get("reports") or {}).get("total") or 0))
        yield from (active, alarm, reports)

    def _components(self) -> Iterator[Metric]:
        journal = self.document.get("journal") or {}
        flow = self.document.get("flow") or {}
        notifier = self.document.get("notifier") or {}
        gauges = [
            ("wanderer_journal_last_seq", "Last committed sequence number.", journal, "last_seq"),
            ("wanderer_journal_checkpoint_seq", "Last fully handled seq.", journal, "checkpoint"),
            ("wanderer_journal_backlog_events", "Committed, not yet settled.", journal, "backlog"),
            ("wanderer_journal_rows", "Events in the journal.", journal, "rows"),
            ("wanderer_journal_db_bytes", "Size of the journal database.", journal, "db_bytes"),
            ("wanderer_flow_buffered_events", "Events buffered by flow control.", flow, "size"),
            ("wanderer_flow_capacity_events", "Flow control's bound.", flow, "capacity"),
            ("wanderer_notifications_pending", "Notifications not yet sent.", notifier, "pending"),
        ]
        for name, documentation, source, key in gauges:
            if (value := _num(source.get(key))) is not None:
                family = GaugeMetricFamily(name, documentation)
                family.add_metric([], value)
                yield family
        if isinstance(flow.get("backpressure"), bool):
            family = GaugeMetricFamily("wanderer_flow_backpressure", "1 while backpressure is on.")
            family.add_metric([], float(flow["backpressure"]))
            yield family
        for name, documentation, key in (
            ("wanderer_flow_shed_events_total", "Events shed under load.", "shed"),
            ("wanderer_flow_stale_events_total", "Events dropped as too old.", "stale"),
        ):
            counts = flow.get(key)
            if isinstance(counts, Mapping):
                by_class = CounterMetricFamily(name, documentation, labels=["class"])
                for label, count in sorted(counts.items())[:MAX_LABEL_VALUES]:
                    if (value := _num(count)) is not None:
                        by_class.add_metric([str(label)], value)
                yield by_class
        for name, documentation, key in (
            ("wanderer_notifications_sent_total", "Notifications sent.", "sent"),
            ("wanderer_notifications_failed_total", "Notifications given up on.", "failed"),
        ):
            if (value := _num(notifier.get(key))) is not None:
                counter = CounterMetricFamily(name, documentation)
                counter.add_metric([], value)
                yield counter

    def _reported(self, metrics: Mapping[str, Any]) -> Iterator[Metric]:
        """Every other counter and gauge of the stats reports, named after itself."""
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        label_names: dict[str, tuple[str, ...]] = {}
        for kind, table in (("counter", "counters"), ("gauge", "gauges")):
            for actor, values in sorted((metrics.get(table) or {}).items()):
                for key, value in sorted(values.items()):
                    parsed = parse_series_key(key)
                    if parsed is None or parsed[0] == EVENTS_COUNTER or _num(value) is None:
                        continue
                    name, labels = parsed
                    base = "wanderer_" + re.sub(r"[^a-zA-Z0-9_]", "_", name.removesuffix("_total"))
                    full = f"{base}_total" if kind == "counter" else base
                    if base in _RESERVED_NAMES or full.startswith(_RESERVED_PREFIXES):
                        continue
                    names = ("actor", *sorted(labels))
                    family = families.get(full)
                    if family is None:
                        family = (
                            CounterMetricFamily(full, f"Reported counter {name}.", labels=names)
                            if kind == "counter"
                            else GaugeMetricFamily(full, f"Reported gauge {name}.", labels=names)
                        )
                        families[full] = family
                        label_names[full] = names
                    if label_names[full] != names or family.type != kind:
                        continue  # one family, one label set
                    label_values = [actor, *(labels[n] for n in names[1:])]
                    family.add_metric(label_values, float(value))
        yield from families.values()


def _le(bound: float) -> str:
    """A histogram bound as the exposition format writes it."""
    return "+Inf" if bound == math.inf else repr(float(bound))


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
