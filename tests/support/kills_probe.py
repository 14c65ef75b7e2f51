"""A raw Phoenix V1 client for the simulated wanderer-kills server's tests.

Deliberately minimal and synchronous (websocket-client): it sends what a test
says and reads frames with deadlines, so the tests see the server's wire
behaviour and nothing of the project's own client.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import websocket

LOBBY = "killmails:lobby"


class Probe:
    """One WebSocket connection to the server under test."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout_s)
        self._refs = itertools.count(1)

    @property
    def local_port(self) -> int:
        sock = self.ws.sock
        assert sock is not None, "the probe is closed"
        return int(sock.getsockname()[1])

    def send(self, topic: str, event: str, payload: Any) -> str:
        """Send one V1 frame; returns its ref."""
        ref = str(next(self._refs))
        self.ws.send(json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref}))
        return ref

    def join(self, systems: Iterable[Any] = (), characters: Iterable[Any] = ()) -> str:
        payload = {
            "systems": list(systems),
            "character_ids": list(characters),
            "preload": {"enabled": True, "limit_per_system": 20, "since_hours": 12},
        }
        return self.send(LOBBY, "phx_join", payload)

    def heartbeat(self) -> str:
        return self.send("phoenix", "heartbeat", {})

    def frame(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The next frame, decoded.

        Raises:
            websocket.WebSocketTimeoutException: nothing arrived before the deadline.
        """
        self.ws.settimeout(timeout_s)
        decoded: dict[str, Any] = json.loads(self.ws.recv())
        return decoded

    def until(
        self, matches: Callable[[dict[str, Any]], bool], timeout_s: float = 5.0
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read frames until one matches; returns it and the frames skipped before it."""
        deadline = time.monotonic() + timeout_s
        skipped: list[dict[str, Any]] = []
        while True:
            frame = self.frame(max(0.01, deadline - time.monotonic()))
            if matches(frame):
                return frame, skipped
            skipped.append(frame)

    def reply(self, ref: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """The ``phx_reply`` carrying ``ref`` (frames before it are dropped)."""
        frame, _ = self.until(lambda f: f["event"] == "phx_reply" and f["ref"] == ref, timeout_s)
        return frame

    def joined(self, systems: Iterable[Any] = (), characters: Iterable[Any] = ()) -> dict[str, Any]:
        """Join, assert the reply is ok, read past the preload; returns the reply's response."""
        systems = list(systems)
        reply = self.reply(self.join(systems, characters))
        assert reply["payload"]["status"] == "ok", reply
        if systems:
            self.until(lambda f: f["event"] == "preload_complete")
        response: dict[str, Any] = reply["payload"]["response"]
        return response

    def close(self) -> None:
        """Close politely if still possible, and always release the socket."""
        with contextlib.suppress(websocket.WebSocketException, OSError):
            self.ws.close(timeout=0.5)
        self.ws.shutdown()  # type: ignore[no-untyped-call]  # websocket-client leaves it untyped
