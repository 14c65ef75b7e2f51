"""The operator's routes: liveness, readiness, health, status, the tree, the dashboard, faults.

Registered by :func:`actors.web_app.default_routes` (``/metrics`` is
:mod:`actors.web_metrics`). Every route that needs other
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

Shapes:

- ``GET /livez``: 200 ``{"status": "pass"}`` while the root runs and every
  running actor answers a ping within :data:`PROBE_TIMEOUT_S`; otherwise 503
  ``{"status": "fail", "reasons": [...]}``.
- ``GET /readyz``: 200 ``{"status": "pass", "ready": true}`` when every
  enabled source is ``connected`` or ``degraded``, the journal and every
  actor of the pipeline run, and the journal reports no error; otherwise 503
  ``{"status": "fail", "ready": false, "reasons": [...]}``.
- The probes answer anyone, but when ``[http] token`` is set they show
  ``reasons`` only to a caller with the token: to others, nothing but status.
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
- ``GET /api/tree``: the supervision tree (``run.py tree --json``).
- ``GET /``: the dashboard (``actors/static/dashboard.html``).
- ``POST /debug/crash/{actor}``: only with ``[debug] allow_fault_injection``
  (404 otherwise): that actor raises inside its message handling.

Shapes may grow: a client reads the keys it knows and ignores the others.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast, get_args

import pykka

from actors.metrics import MetricsQuery, enabled_sources
from actors.protocol import Names
from actors.web_app import Access, Request, Response, Routes, WebApp, static_page
from realtime.config import Config, Secret
from realtime.health import LIVE_STATES, HealthSnapshot, State, Status, overall
from supervision import Crash, GetStatus, Ping, TreeNode

logger = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 0.5
"""How long a page waits for all the actors it asks, together."""

PROBE_TIMEOUT_S = 2.0
"""How long ``/livez`` waits for every running actor to answer a ping."""

NOT_RUNNING = "not running"
MASK = "***"

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
            body: dict[str, Any] = {"status": "fail", "ready": False}
            if request.authorised:  # the reasons name actors and errors: not for everyone
                body["reasons"] = reasons
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
    routes.add("GET", "/livez", livez, Access.PROBE)
    routes.add("GET", "/readyz", api.readyz, Access.PROBE)
    routes.add("GET", "/api/health", api.health)
    routes.add("GET", "/api/status", api.status)
    routes.add("GET", "/api/tree", api_tree)
    routes.add("GET", "/", api.dashboard)
    routes.add("POST", "/debug/crash/{actor}", debug_crash, Access.ACTION)
    return api


def livez(request: Request) -> Response:
    """200 while the root runs and every running actor answers a ping; 503 otherwise.

    The reasons (who did not answer) are shown only to a caller with the token.
    """
    tree = request.app.snapshot()
    if tree.state != "running":
        return _probe_failure(request, [f"root is {tree.state}"])
    # Every running worker is pinged at once; all answers share one deadline.
    pings = []
    for node in tree.walk()[1:]:
        if node.state == "running" and node.kind == "worker":
            ref = request.app.registry.lookup(node.name)
            pings.append((node.name, ref.ask(Ping(), block=False) if ref else None))
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    unanswered = []
    for name, future in pings:
        if future is None:
            unanswered.append(f"{name}: not running")
            continue
        try:
            future.get(timeout=max(0.0, deadline - time.monotonic()))
        except Exception as error:  # noqa: BLE001 -- any failure is an answer
            unanswered.append(f"{name}: {type(error).__name__}")
    if unanswered:
        return _probe_failure(request, unanswered)
    return Response.json(200, {"status": "pass"})


def _probe_failure(request: Request, reasons: list[str]) -> Response:
    body: dict[str, Any] = {"status": "fail"}
    if request.authorised:
        body["reasons"] = reasons
    return json_response(request.app.config, 503, body)


def api_tree(request: Request) -> Response:
    return json_response(request.app.config, 200, request.app.snapshot().as_dict())


def debug_crash(request: Request) -> Response:
    """Fault injection: the named actor raises inside its message handling."""
    if not request.app.config.debug.allow_fault_injection:
        return Response.json(404, {"error": "not found"})
    name = request.params["actor"]
    if request.app.snapshot().find(name) is None:
        return Response.json(404, {"error": f"no actor named {name!r}"})
    try:
        request.app.registry.tell(name, Crash())
    except Exception as error:  # noqa: BLE001 -- reported to the caller, not raised
        return Response.json(409, {"error": f"{name} is not running: {error}"})
    logger.warning("fault injected into %s on request", name)
    return Response.json(202, {"crashed": name})


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
        # Only the documented states (docs/operations.md): a source that does not answer counts as
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
        state=cast("Any", state if state in STATES else "disconnected"),
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


STATES: Final = frozenset(get_args(State))


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


def json_response(config: Config, status: int, value: Any) -> Response:
    """A JSON response with every secret scrubbed."""
    body = redact(value, secret_values(config))
    return Response(status, json.dumps(body, default=str).encode())
