"""The web face as a WSGI application: plain routing, and who may use what.

Routes are plain functions of a :class:`Request` registered in a
:class:`Routes` table with the :class:`Access` they need. Handlers run on the
server's worker threads and never touch another actor's state: they read
snapshots (the tree) or ask actors by name with a short timeout.

The rules, checked in this order for every request:

1. **Host.** Except for the probes (``/livez``, ``/readyz``), the ``Host``
   header must name an IP address, ``localhost``, or one of ``[http]
   allowed_hosts`` (port ignored); otherwise 400. A DNS-rebinding page always
   sends its own domain name, never an address, so it cannot reach the API.
2. **Route.** 404 for an unknown path, 405 for a known path with another method.
3. **Access** (only when ``[http] token`` is set):

   - ``PROBE`` and ``OPEN``: anyone (probes show detail only to the token);
   - ``METRICS``: the token, unless ``[http] metrics_public``;
   - ``READ``: the token, as ``Authorization: Bearer`` or as the session
     cookie the login sets (``HttpOnly; SameSite=Strict``; its value is
     derived from the token, never the token itself);
   - ``ACTION`` (state-changing, POST only): the token in the
     ``Authorization`` header, never the cookie. Without a token, an
     ``X-Requested-With`` header instead. Either is a header a cross-site
     form cannot send, and that makes a cross-site script ask first (CORS
     preflight), which this server never grants.

   A page that is refused gets the login page (401); anything else JSON 401.

Every response carries ``X-Content-Type-Options: nosniff``, a
``Content-Security-Policy`` that allows only this origin's scripts, styles
and requests (no inline script or style, ``frame-ancestors 'none'``),
``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``. No token is
ever read from, or written to, a URL.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import importlib.resources
import ipaddress
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from realtime.config import Config
from supervision import Registry, SupervisionTree, TreeNode

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger(__name__)

SESSION_COOKIE = "wanderer_session"
ACTION_HEADER = "X-Requested-With"
"""Without a token, a state-changing request must carry this header (any value)."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
)
LOOPBACK_NAMES = frozenset({"localhost"})
_REASONS = {
    200: "OK",
    202: "Accepted",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Access(enum.Enum):
    """What a route needs when ``[http] token`` is set (see the module docstring)."""

    PROBE = "probe"
    OPEN = "open"
    METRICS = "metrics"
    READ = "read"
    ACTION = "action"


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
    """One request as a handler sees it.

    Attributes:
        headers: by lower-case name.
        authorised: the caller showed the token (always true when none is set).
        body: the request body (bounded by ``[http] max_body_bytes``).
    """

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    app: WebApp
    authorised: bool = True
    body: bytes = b""


Handler = Callable[[Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    access: Access
    params: Mapping[str, str] = field(default_factory=dict)


class Routes:
    """Exact paths, and prefixes ending in ``{name}`` (one path segment), by method."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, tuple[Handler, Access]]] = {}
        self._prefixes: dict[str, tuple[str, dict[str, tuple[Handler, Access]]]] = {}

    def add(self, method: str, path: str, handler: Handler, access: Access = Access.READ) -> None:
        """Route ``method path`` to ``handler``; ``/debug/crash/{actor}`` captures one segment."""
        if path.endswith("}"):
            prefix, _, name = path.rpartition("{")
            self._prefixes.setdefault(prefix, (name[:-1], {}))[1][method] = (handler, access)
        else:
            self._exact.setdefault(path, {})[method] = (handler, access)

    def match(self, method: str, path: str) -> Route | list[str] | None:
        """The route; the allowed methods if only the method differs; ``None``: no such path."""
        params: dict[str, str] = {}
        methods = self._exact.get(path)
        if methods is None:
            prefix, _, segment = path.rpartition("/")
            found = self._prefixes.get(prefix + "/")
            if found is None or not segment:
                return None
            params[found[0]] = urllib.parse.unquote(segment)
            methods = found[1]
        if method not in methods:
            return sorted(methods)
        handler, access = methods[method]
        return Route(handler, access, params)


@dataclass(slots=True)
class WebApp:
    """The WSGI application; what request handlers may use (every member is thread-safe).

    Attributes:
        config: the effective configuration.
        registry: the tree's names; ask actors through it with a timeout.
        routes: the route table.
        tree: the supervision tree, set once it is built.
        server_statistics: the server's figures (set by the web actor), for ``/metrics``.
    """

    config: Config
    registry: Registry
    routes: Routes = field(default_factory=lambda: default_routes())  # noqa: PLW0108 -- defined below
    tree: SupervisionTree | None = None
    server_statistics: Callable[[], Any] | None = None
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> TreeNode:
        """The supervision tree now (never blocks on a busy actor)."""
        if self.tree is None:
            msg = "the web app has no tree yet"
            raise RuntimeError(msg)
        return self.tree.snapshot()

    def counts(self) -> dict[str, int]:
        """Requests refused by the rules, by reason, and answered, by status class."""
        with self._lock:
            return dict(sorted(self._counts.items()))

    def tally(self, key: str) -> None:
        """Count one request under ``key`` (see :meth:`counts`)."""
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    # --- WSGI ---------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self.respond(environ)
        except Exception:
            logger.exception("web: %s %s failed", environ.get("REQUEST_METHOD"), _path(environ))
            response = Response.json(500, {"error": "internal error; see the log"})
        self.tally(f"answered_{response.status // 100}xx")
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *SECURITY_HEADERS,
            *response.headers.items(),
        ]
        start_response(f"{response.status} {_REASONS.get(response.status, '')}", headers)
        return [response.body]

    def respond(self, environ: WSGIEnvironment) -> Response:
        """The response to one request (see the module docstring for the rules)."""
        method, path = str(environ.get("REQUEST_METHOD", "GET")), _path(environ)
        found = self.routes.match(method, path)
        probe = isinstance(found, Route) and found.access is Access.PROBE
        if not probe and not self.host_allowed(str(environ.get("HTTP_HOST", ""))):
            self.tally("refused_host")
            return Response.json(
                400, {"error": "this host name is not allowed: add it to [http] allowed_hosts"}
            )
        if found is None:
            return Response.json(404, {"error": f"no route for {method} {path}"})
        if isinstance(found, list):
            return Response(
                405,
                json.dumps({"error": f"{path} allows {', '.join(found)}"}).encode(),
                headers={"Allow": ", ".join(found)},
            )
        authorised = self.authorised(found.access, environ)
        if not authorised and found.access not in (Access.PROBE, Access.OPEN):
            self.tally("refused_token")
            return unauthorised(found.access, path, self.config)
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        request = Request(
            method, path, found.params, headers, self, authorised, _body(environ, self.config)
        )
        return found.handler(request)

    # --- the rules --------------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        """Whether the ``Host`` header names this server (see the module docstring).

        An absent header is allowed: every browser sends one, so its absence
        is no rebinding page.
        """
        name = host_name(host)
        if not name or name in LOOPBACK_NAMES:
            return True
        if name in {allowed.lower() for allowed in self.config.http.allowed_hosts}:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def authorised(self, access: Access, environ: WSGIEnvironment) -> bool:
        """Whether the request shows what ``access`` needs when a token is set."""
        token = self.config.http.token.value
        if access is Access.ACTION:
            if not token:
                return f"HTTP_{ACTION_HEADER.upper().replace('-', '_')}" in environ
            return bearer_matches(str(environ.get("HTTP_AUTHORIZATION", "")), token)
        if not token or (access is Access.METRICS and self.config.http.metrics_public):
            return True
        if bearer_matches(str(environ.get("HTTP_AUTHORIZATION", "")), token):
            return True
        cookie = cookie_value(str(environ.get("HTTP_COOKIE", "")), SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(
            cookie.encode(), session_value(token).encode()
        )


def host_name(host: str) -> str:
    """The lower-case host name of a ``Host`` header, without port or brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.removesuffix(".")


def bearer_matches(authorization: str, token: str) -> bool:
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


def session_value(token: str) -> str:
    """The login cookie's value: derived from the token, so that it changes with it."""
    return hmac.new(
        token.encode(), b"wanderer-realtime dashboard session", hashlib.sha256
    ).hexdigest()


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, if present."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def unauthorised(access: Access, path: str, config: Config) -> Response:
    """401: the login page for the dashboard (``/``), JSON for everything else."""
    if path == "/":
        return login_page("")
    if access is Access.ACTION and not config.http.token:
        error = f"a state-changing request needs an {ACTION_HEADER} header (any value)"
        return Response.json(401, {"error": error})
    return Response.json(401, {"error": "missing or wrong bearer token"})


def _path(environ: WSGIEnvironment) -> str:
    return str(environ.get("PATH_INFO") or "/")


def _body(environ: WSGIEnvironment, config: Config) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if length <= 0:
        return b""
    stream = environ["wsgi.input"]
    return bytes(stream.read(min(length, config.http.max_body_bytes)))


# --- pages and static files ---------------------------------------------------------------

_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
STATIC_FILES = ("dashboard.css", "dashboard.js", "login.css")
"""What ``/static/{name}`` serves: the dashboard's script and styles (no secret in them)."""


def static_bytes(name: str) -> bytes:
    return importlib.resources.files("actors").joinpath("static", name).read_bytes()


def static_page(status: int, name: str) -> Response:
    """An HTML page shipped in ``actors/static``."""
    return Response(status, static_bytes(name), _STATIC_TYPES[".html"])


def login_page(error: str) -> Response:
    """401: the page that asks for the token (``error`` shown above the field)."""
    page = static_bytes("login.html").replace(
        b"<!--error-->", error.replace("&", "&amp;").replace("<", "&lt;").encode()
    )
    return Response(401, page, _STATIC_TYPES[".html"])


def static_file(request: Request) -> Response:
    name = request.params["name"]
    if name not in STATIC_FILES:
        return Response.json(404, {"error": f"no static file {name!r}"})
    return Response(200, static_bytes(name), _STATIC_TYPES["." + name.rpartition(".")[2]])


def login(request: Request) -> Response:
    """``POST /login`` (form field ``token``): sets the session cookie and goes to the dashboard."""
    token = request.app.config.http.token.value
    if not token:
        return Response(303, b"", headers={"Location": "/"})
    form = urllib.parse.parse_qs(request.body.decode("utf-8", "replace"))
    offered = form.get("token", [""])[-1]
    if not hmac.compare_digest(offered.encode(), token.encode()):
        request.app.tally("refused_login")
        return login_page("That token was refused.")
    secure = "; Secure" if request.headers.get("x-forwarded-proto") == "https" else ""
    cookie = f"{SESSION_COOKIE}={session_value(token)}; Path=/; HttpOnly; SameSite=Strict{secure}"
    return Response(303, b"", headers={"Location": "/", "Set-Cookie": cookie})


def default_routes() -> Routes:
    from actors import web_api, web_metrics  # both build on this module

    routes = Routes()
    routes.add("GET", "/static/{name}", static_file, Access.OPEN)
    routes.add("POST", "/login", login, Access.OPEN)
    api = web_api.register(routes)
    web_metrics.register(routes, api)
    return routes
