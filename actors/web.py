"""The ``web`` actor: health endpoints, the JSON API, metrics and the dashboard over HTTP.

The actor owns a :class:`~actors.web_server.BoundedServer` (waitress, with a
fixed worker pool, a connection limit and a per-request deadline) serving the
WSGI application :class:`~actors.web_app.WebApp`, whose routes live in
:mod:`actors.web_app` (login, static files, the rules of access) and
:mod:`actors.web_api` (the operator's routes). If the server's I/O loop dies,
the actor fails, and its supervisor restarts it on a fresh server.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from actors.web_app import Access, Request, Response, Routes, WebApp
from actors.web_server import BoundedServer
from supervision import ActorContext, SupervisedActor

__all__ = ["Access", "Request", "Response", "Routes", "WebActor", "WebApp"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _ServerDied:
    error: BaseException


class HttpServerDiedError(RuntimeError):
    """The HTTP server's I/O loop ended on its own."""


class WebActor(SupervisedActor):
    """Serves HTTP on ``[http] bind:port``; see the module docstring.

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
        self._server: BoundedServer | None = None

    def on_start(self) -> None:
        me = self.actor_ref
        self._server = server = BoundedServer(
            self.app, self.app.config.http, lambda error: _tell(me, _ServerDied(error))
        )
        self.app.server_statistics = server.statistics
        server.start()
        host, port = server.address
        logger.info("web: listening on http://%s:%s", host, port)
        if self.on_listening is not None:
            self.on_listening((host, port))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _ServerDied):
            msg = f"the HTTP server stopped: {type(message.error).__name__}: {message.error}"
            raise HttpServerDiedError(msg) from message.error
        return super().on_receive(message)

    def on_exit(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def status(self) -> Mapping[str, Any]:
        if self._server is None:
            return {"listening": None}
        host, port = self._server.address
        return {
            "listening": [host, port],
            "server": dataclasses.asdict(self._server.statistics()),
            "requests": self.app.counts(),
        }


def _tell(ref: pykka.ActorRef[Any], message: object) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug("web: the actor already stopped when its server did")
