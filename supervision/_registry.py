"""Stable names: a name resolves to the *current* actor, across restarts."""

from __future__ import annotations

import threading
from typing import Any

import pykka

DEFAULT_ASK_TIMEOUT_S = 5.0
"""Like ``GenServer.call``: an ask never waits forever unless told to."""


class ActorUnavailableError(Exception):
    """No live actor holds the name right now (never started, stopped, or restarting)."""


class Registry:
    """Name -> current :class:`pykka.ActorRef`, shared by one supervision tree.

    Senders look names up at send time, so a message sent by name after a
    restart reaches the new instance. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[str, pykka.ActorRef[Any]] = {}

    def register(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._refs[name] = ref

    def unregister(self, name: str, ref: pykka.ActorRef[Any] | None = None) -> None:
        """Forget ``name``; with ``ref``, only if it still points at that actor."""
        with self._lock:
            if ref is None or self._refs.get(name) is ref:
                self._refs.pop(name, None)

    def lookup(self, name: str) -> pykka.ActorRef[Any] | None:
        """The live actor named ``name``, or ``None``."""
        with self._lock:
            ref = self._refs.get(name)
        if ref is None or not ref.is_alive():
            return None
        return ref

    def require(self, name: str) -> pykka.ActorRef[Any]:
        ref = self.lookup(name)
        if ref is None:
            msg = f"no live actor is named {name!r}"
            raise ActorUnavailableError(msg)
        return ref

    def tell(self, name: str, message: Any) -> None:
        """Send ``message`` to the actor named ``name`` now.

        Raises:
            ActorUnavailableError: no live actor has the name (e.g. it is
                between a crash and its restart); the message was not sent.
            MailboxFullError: the mailbox's policy is ``reject`` and it is full.
        """
        try:
            self.require(name).tell(message)
        except pykka.ActorDeadError as exc:
            msg = f"actor {name!r} stopped before the message was queued"
            raise ActorUnavailableError(msg) from exc

    def ask(self, name: str, message: Any, timeout_s: float | None = DEFAULT_ASK_TIMEOUT_S) -> Any:
        """Send ``message`` and wait for the answer (re-raising the handler's exception).

        Raises:
            ActorUnavailableError: no live actor has the name, or it died first.
            pykka.Timeout: no answer within ``timeout_s``.
        """
        try:
            return self.require(name).ask(message, timeout=timeout_s)
        except pykka.ActorDeadError as exc:
            msg = f"actor {name!r} stopped before answering"
            raise ActorUnavailableError(msg) from exc

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._refs)
