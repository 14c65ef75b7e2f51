"""The ``killmails:lobby`` channel as the real server runs it, on every connection.

Joins (validated, then a preload), subscription changes (rate limited),
status, heartbeats, channel crashes on what the real channel would crash on,
and the live pushes of published kills to the channels that cover them.
Frames go out through the ``send`` the socket side gives; everything here
runs on the server's event loop only.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from websockets.asyncio.server import ServerConnection

from simulator.kills_server.model import ConnectionStatistics, Settings
from simulator.kills_server.phoenix import (
    LOBBY,
    MAX_CHARACTERS,
    MAX_SYSTEMS,
    SUBSCRIPTION_EVENTS,
    UPDATE_WINDOW_S,
    UPDATES_PER_WINDOW,
    Kill,
    RequestError,
    join_parameters,
    message,
    reply,
    valid_characters,
    valid_systems,
)
from simulator.traffic import iso_micros


class Client:
    """The server side of one WebSocket connection and its (at most one) lobby channel."""

    def __init__(self, number: int, socket: ServerConnection, outbox_capacity: int) -> None:
        self.number = number
        self.socket = socket
        self.outbox: asyncio.Queue[str | bytes] = asyncio.Queue(outbox_capacity)
        self.join_ref: object = None
        self.joined = False
        self.subscription_id = ""
        self.connected_at = ""
        self.systems: set[int] = set()
        self.characters: set[int] = set()
        self.all_systems = False
        self.joins = 0
        self.updates = 0
        self.heartbeats = 0
        self.update_times: collections.deque[float] = collections.deque(maxlen=UPDATES_PER_WINDOW)

    def leave(self) -> None:
        self.joined = False
        self.join_ref = None
        self.systems = set()
        self.characters = set()
        self.all_systems = False

    def covers(self, kill: Kill) -> bool:
        """Whether the channel gets ``kill``: it is on a topic the channel listens to
        (its system's, or the all-systems one) and passes the channel's filter
        (its system is subscribed, or a subscribed character is involved)."""
        if kill.system_id in self.systems:
            return True
        return self.all_systems and not self.characters.isdisjoint(kill.characters)

    def rate_limited(self, now: float) -> bool:
        times = self.update_times
        return len(times) == times.maxlen and now - times[0] < UPDATE_WINDOW_S

    def statistics(self) -> ConnectionStatistics:
        peer = self.socket.remote_address
        return ConnectionStatistics(
            number=self.number,
            peer_port=int(peer[1]) if peer else 0,
            joined=self.joined,
            joins=self.joins,
            subscription_updates=self.updates,
            heartbeats=self.heartbeats,
            systems=frozenset(self.systems),
            characters=frozenset(self.characters),
            outbox_size=self.outbox.qsize(),
            outbox_capacity=self.outbox.maxsize,
        )


class Lobby:
    """Every connection's lobby channel and the kill history it preloads from.

    Args:
        settings: the server's settings (clock, preload and history bounds).
        counts: the server's counters, shared with the socket side.
        send: queues a frame to a client's socket.
    """

    def __init__(
        self,
        settings: Settings,
        counts: collections.Counter[str],
        send: Callable[[Client, str | bytes], None],
    ) -> None:
        self._settings = settings
        self._clock = settings.clock
        self._counts = counts
        self._send = send
        self.clients: dict[int, Client] = {}
        self.history: dict[int, Kill] = {}
        self._join_refusal: str | None = None

    # -- pushes -------------------------------------------------------------------

    def publish(self, kill: Kill) -> int:
        """Remember ``kill`` and push it twice to every joined channel covering it; how many."""
        self._remember(kill)
        self._counts["kills_published"] += 1
        targets = [c for c in self.clients.values() if c.joined and c.covers(kill)]
        if targets:
            frame = message(
                LOBBY,
                "killmail_update",
                {
                    "system_id": kill.system_id,
                    "killmails": [kill.killmail],
                    "timestamp": iso_micros(self._clock()),
                    "preload": False,
                },
            )
            for client in targets:
                self._send(client, frame)
                self._send(client, frame)
        return len(targets)

    def push_kill_count(self, system_id: int, count: int) -> int:
        """A ``kill_count_update`` to every joined channel subscribed to ``system_id``."""
        targets = [c for c in self.clients.values() if c.joined and system_id in c.systems]
        payload = {"system_id": system_id, "count": count, "timestamp": iso_micros(self._clock())}
        frame = message(LOBBY, "kill_count_update", payload)
        for client in targets:
            self._send(client, frame)
        return len(targets)

    def send_raw(self, data: str | bytes, systems_joins_only: bool) -> int:
        """``data`` as is to every client (or only to channels joined with systems)."""
        clients = [
            client
            for client in self.clients.values()
            if not systems_joins_only or (client.joined and client.systems)
        ]
        for client in clients:
            self._send(client, data)
        return len(clients)

    def refuse_joins(self, reason: str | None) -> None:
        """Refuse every join with ``reason`` from now on (``None``: take joins again)."""
        self._join_refusal = reason

    # -- requests -------------------------------------------------------------------

    def handle(self, client: Client, frame: dict[str, Any]) -> None:
        """Answer one decoded V1 frame from ``client``."""
        topic, event, ref = frame["topic"], frame["event"], frame["ref"]
        if topic == "phoenix" and event == "heartbeat":
            client.heartbeats += 1
            self._counts["heartbeats_answered"] += 1
            self._send(client, reply(topic, ref, "ok", {}))
        elif topic == LOBBY and event == "phx_join":
            self._join(client, frame)
        elif topic != LOBBY or not client.joined:
            self._send(client, reply(topic, ref, "error", {"reason": "unmatched topic"}))
        elif event == "phx_leave":
            client.leave()
            self._send(client, reply(topic, ref, "ok", {}))
        elif event == "get_status":
            self._send(client, reply(topic, ref, "ok", self._status(client)))
        elif event in SUBSCRIPTION_EVENTS:
            self._update_subscription(client, event, frame["payload"], ref)
        else:
            self._crash_channel(client)

    def _join(self, client: Client, frame: dict[str, Any]) -> None:
        ref = frame["ref"]
        if client.joined:
            # Phoenix closes the existing channel before it joins the new one.
            self._send(client, message(LOBBY, "phx_close", {}, client.join_ref))
            client.leave()
        try:
            if self._join_refusal is not None:
                raise RequestError(self._join_refusal)
            systems, characters = join_parameters(frame["payload"])
        except RequestError as rejected:
            self._counts["joins_error"] += 1
            self._send(client, reply(LOBBY, ref, "error", {"reason": rejected.reason}))
            return
        client.joined = True
        client.join_ref = frame.get("join_ref", ref)
        client.subscription_id = uuid.uuid4().hex
        client.systems, client.characters = set(systems), set(characters)
        # the real channel picks its topics once, at the join
        client.all_systems = not systems and bool(characters)
        client.joins += 1
        self._counts["joins_ok"] += 1
        response = {
            "subscription_id": client.subscription_id,
            "subscribed_systems": systems,
            "subscribed_characters": characters,
            "status": "connected",
        }
        self._send(client, reply(LOBBY, ref, "ok", response))
        if systems:
            self._preload(client, systems)

    def _update_subscription(
        self, client: Client, event: str, payload: object, ref: object
    ) -> None:
        key, adding = SUBSCRIPTION_EVENTS[event]
        ids = payload.get(key) if isinstance(payload, dict) else None
        if ids is None and key == "character_ids" and isinstance(payload, dict):
            ids = payload.get("characters")  # newer servers' name, both accepted
        if not isinstance(ids, list):
            self._crash_channel(client)  # no handle_in clause matches
            return
        now = self._clock()
        if client.rate_limited(now):
            self._counts["subscription_updates_rate_limited"] += 1
            reason = f"rate limited: at most {UPDATES_PER_WINDOW} subscription updates per minute"
            self._send(client, reply(LOBBY, ref, "error", {"reason": reason}))
            return
        client.update_times.append(now)
        client.updates += 1
        self._counts["subscription_updates"] += 1
        systems = key == "systems"
        try:
            valid = valid_systems(ids) if systems else valid_characters(ids)
            changed = _apply(client, valid, systems=systems, adding=adding)
        except RequestError as rejected:
            self._send(client, reply(LOBBY, ref, "error", {"reason": rejected.reason}))
            return
        noun = "systems" if systems else "characters"
        if changed:
            current = client.systems if systems else client.characters
            response: dict[str, Any] = {f"subscribed_{noun}": sorted(current)}
        elif adding:
            response = {"message": f"Already subscribed to all requested {noun}"}
        else:
            response = {"message": f"Not subscribed to any of the requested {noun}"}
        self._send(client, reply(LOBBY, ref, "ok", response))
        if systems and adding and changed:
            # The real server preloads newly subscribed systems too.
            self._preload(client, changed)

    def _crash_channel(self, client: Client) -> None:
        """What a crashing channel process looks like to the client: ``phx_error``, no channel."""
        self._counts["channel_crashes"] += 1
        self._send(client, message(LOBBY, "phx_error", {}, client.join_ref))
        client.leave()

    def _status(self, client: Client) -> dict[str, Any]:
        return {
            "subscription_id": client.subscription_id,
            "subscribed_systems": sorted(client.systems),
            "subscribed_characters": sorted(client.characters),
            "connected_at": client.connected_at,
            "user_id": "anonymous",
        }

    # -- history and preload ----------------------------------------------------------

    def _preload(self, client: Client, systems: Sequence[int]) -> None:
        """Push the newest kills of each system (oldest first), then ``preload_complete``."""
        limit = self._settings.preload_per_system
        horizon = self._clock() - self._settings.history_s
        found: dict[int, list[dict[str, Any]]] = {system: [] for system in systems}
        unfilled = len(found) if limit > 0 else 0
        for kill in reversed(self.history.values()):
            if unfilled == 0:
                break
            bucket = found.get(kill.system_id)
            if bucket is None or len(bucket) >= limit:
                continue
            if kill.kill_time is not None and kill.kill_time < horizon:
                continue
            bucket.append(kill.killmail)
            if len(bucket) == limit:
                unfilled -= 1
        timestamp = iso_micros(self._clock())
        total = 0
        for system, kills in found.items():
            if kills:
                kills.reverse()
                payload = {
                    "system_id": system,
                    "killmails": kills,
                    "timestamp": timestamp,
                    "preload": True,
                }
                self._send(client, message(LOBBY, "killmail_update", payload))
                total += len(kills)
        summary = {"total_kills": total, "systems_processed": len(found), "errors": []}
        self._send(client, message(LOBBY, "preload_complete", summary))

    def _remember(self, kill: Kill) -> None:
        history = self.history
        history.pop(kill.killmail_id, None)  # a republished kill becomes the newest
        history[kill.killmail_id] = kill
        while len(history) > self._settings.history_limit:
            del history[next(iter(history))]


def _apply(client: Client, ids: list[int], *, systems: bool, adding: bool) -> list[int]:
    """Change the subscription; returns the ids actually added or removed.

    Raises:
        RequestError: adding would pass the real server's bound.
    """
    current = client.systems if systems else client.characters
    if adding:
        changed = [i for i in ids if i not in current]
        limit, noun = (MAX_SYSTEMS, "systems") if systems else (MAX_CHARACTERS, "characters")
        if len(current) + len(changed) > limit:
            raise RequestError(f"Too many {noun} (max: {limit})")
        current.update(changed)
    else:
        changed = [i for i in ids if i in current]
        current.difference_update(changed)
    return changed
