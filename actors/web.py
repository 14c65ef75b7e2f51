"""The ``web`` actor: health endpoints, the JSON API, metrics and the dashboard.

The actor owns a ``ThreadingHTTPServer`` running in a thread of its own;
request threads never touch another actor's state directly: they read
snapshots (the tree, mailbox statistics) or ask actors by name with a short
timeout. Routes are plain functions of a :class:`Request` registered in a
:class:`Routes` table, so that each concern adds its own.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pykka

from realtime.config import Config
from supervision import (
    ActorContext,
    Crash,
    Ping,
    Registry,
    SupervisedActor,
    SupervisionTree,
    TreeNode,
)

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0
_QUERY_TOKEN = re.compile(r"([?&]token=)[^&\s]*")


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any) -> Response:
        return cls(status, json.dumps(value, default=str).encode())

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), f"{content_type}; charset=utf-8")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    app: WebApp


Handler = Callable[[Request], Response]


@dataclass(slots=True)
class WebApp:
    """What request handlers may use; every member is safe from any thread.

    Attributes:
        config: the effective configuration.
        registry: the tree's names; ask actors through it with a timeout.
        routes: the route table.
        tree: the supervision tree, set once it is built.
    """

    config: Config
    registry: Registry
    routes: Routes = field(default_factory=lambda: default_routes())  # noqa: PLW0108 -- defined below
    tree: SupervisionTree | None = None

    def snapshot(self) -> TreeNode:
        """The supervision tree now (never blocks on a busy actor)."""
        if self.tree is None:
            msg = "the web app has no tree yet"
            raise RuntimeError(msg)
        return self.tree.snapshot()


class Routes:
    """Exact paths and ``{name}`` patterns, by method."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._patterns: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        if "{" in path:
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
            self._patterns.append((method, re.compile(f"^{regex}$"), handler))
        else:
            self._exact[(method, path)] = handler

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        handler = self._exact.get((method, path))
        if handler is not None:
            return handler, {}
        for route_method, pattern, route_handler in self._patterns:
            found = pattern.match(path)
            if route_method == method and found:
                return route_handler, found.groupdict()
        return None


def needs_token(path: str) -> bool:
    """Paths behind the bearer token when one is configured (CONTRACT.md)."""
    return path.startswith(("/api/", "/debug/")) or path == "/"


def token_in_query(path: str) -> bool:
    """Where ``?token=`` may stand for the header: the dashboard, opened by a browser,
    which cannot add a header to a page it navigates to."""
    return path == "/"


def unauthorised(path: str) -> Response:
    """401: JSON for the API; for the dashboard, a page that asks for the token."""
    if token_in_query(path):
        from actors.web_api import login_page  # web_api builds on this module

        return login_page()
    return Response.json(401, {"error": "missing or wrong bearer token"})


def livez(request: Request) -> Response:
    """200 while the root runs and every running actor answers a ping."""
    tree = request.app.snapshot()
    if tree.state != "running":
        return Response.json(503, {"status": "fail", "reasons": [f"root is {tree.state}"]})
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
        except (pykka.Timeout, Exception) as error:  # noqa: BLE001 -- any failure is an answer
            unanswered.append(f"{name}: {type(error).__name__}")
    if unanswered:
        return Response.json(503, {"status": "fail", "reasons": unanswered})
    return Response.json(200, {"status": "pass"})


def api_tree(request: Request) -> Response:
    from actors.web_api import json_response  # failure messages may quote a secret

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


def default_routes() -> Routes:
    from actors.web_api import register  # web_api builds on this module

    routes = Routes()
    routes.add("GET", "/livez", livez)
    routes.add("GET", "/api/tree", api_tree)
    routes.add("POST", "/debug/crash/{actor}", debug_crash)
    register(routes)
    return routes


class WebActor(SupervisedActor):
    """Serves HTTP on ``[http] bind:port`` from a thread it owns.

    ``on_listening`` is called with the bound ``(host, port)`` (useful with
    port 0 in tests).
    """

    def __init__(
        self,
        ctx: ActorContext,
        app: WebApp,
        on_listening: Callable[[tuple[str, int]], None] | None = None,
    ) -> None:
        super().__init__(ctx)
        self.app = app
        self.on_listening = on_listening
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def on_start(self) -> None:
        http = self.app.config.http
        server = ThreadingHTTPServer((http.bind, http.port), _handler_class(self.app))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="web-http"
        )
        self._thread.daemon = True
        self._thread.start()
        host, port = server.server_address[:2]
        logger.info("web: listening on http://%s:%s", host, port)
        if self.on_listening is not None:
            self.on_listening((str(host), int(port)))

    def on_exit(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def status(self) -> Mapping[str, Any]:
        address = self._server.server_address if self._server else None
        return {"listening": list(address[:2]) if address else None}


def _handler_class(app: WebApp) -> type[BaseHTTPRequestHandler]:
    token = app.config.http.token.value

    class _Handler(BaseHTTPRequestHandler):
        server_version = "wanderer-realtime"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            if token and needs_token(path) and not self._authorised(token, path, query):
                self._send(unauthorised(path))
                return
            found = app.routes.match(method, path)
            if found is None:
                self._send(Response.json(404, {"error": f"no route for {method} {path}"}))
                return
            handler, params = found
            request = Request(method, path, params, dict(self.headers.items()), app)
            try:
                response = handler(request)
            except Exception:
                logger.exception("web: %s %s failed", method, path)
                response = Response.json(500, {"error": "internal error; see the log"})
            self._send(response)

        def _authorised(self, expected: str, path: str, query: str) -> bool:
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
                return True
            if not token_in_query(path):
                return False
            offered = urllib.parse.parse_qs(query).get("token", [""])[-1]
            return hmac.compare_digest(offered.encode(), expected.encode())

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("web: %s", _QUERY_TOKEN.sub(r"\1***", format % args))

    return _Handler
