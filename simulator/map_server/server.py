"""The map server's control API: :class:`MapServer`, what tests and the demo drive."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self, get_args

from simulator import static_info as universe
from simulator.map_server.serving import MapHttp
from simulator.map_server.state import (
    MapCharacter,
    MapLimits,
    MapServerStatistics,
    MapState,
    MapSystem,
)
from simulator.map_server.wire import Framing


class MapServer:
    """A loopback Wanderer map: one map, one API key, real HTTP.

    Args:
        slug: the map's slug; the map's UUID (``map_id``) works in URLs too.
        api_key: the only Bearer token accepted.
        host, port: where to listen (``port=0`` picks a free port; a restart
            after :meth:`stop` reuses the port first bound).
        retention_s: how long events stay available for backfill, on ``clock``.
        keepalive_s: silence after which a stream gets ``: keepalive``.
        max_backfill: most events replayed to one request.
        max_connections_per_key: concurrent streams allowed; more get 429.
        clock: Unix seconds; ULIDs, timestamps and retention use it.
        map_id: the map's UUID (derived from ``slug`` when omitted).
        systems, characters: the map's initial state.
        seed: seeds ULID randomness and the ``split`` cut positions.
        max_retained: bound of the backfill log (oldest events go first).
        max_queued_per_stream: bound of each stream's outgoing queue; a stream
            whose client reads too slowly to keep under it is closed.
        max_recorded_attempts: how many connect attempts :meth:`statistics` keeps.
        max_systems, max_characters: bounds of the map's state.
        static_info: the answer of ``/api/common/system-static-info`` for a
            system id (its ``data``), ``None`` for unknown (404); by default
            the simulated universe's.
    """

    def __init__(
        self,
        slug: str = "demo",
        api_key: str = "demo-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        retention_s: float = 600.0,
        keepalive_s: float = 30.0,
        max_backfill: int = 1000,
        max_connections_per_key: int = 10,
        clock: Callable[[], float] = time.time,
        map_id: str | None = None,
        systems: Iterable[MapSystem] = (),
        characters: Iterable[MapCharacter] = (),
        seed: int = 0,
        max_retained: int = 100_000,
        max_queued_per_stream: int = 10_000,
        max_recorded_attempts: int = 1000,
        max_systems: int = 10_000,
        max_characters: int = 10_000,
        static_info: Callable[[int], Mapping[str, Any] | None] = universe.static_info,
    ) -> None:
        for name, value in (
            ("max_backfill", max_backfill),
            ("max_connections_per_key", max_connections_per_key),
            ("max_retained", max_retained),
            ("max_queued_per_stream", max_queued_per_stream),
            ("max_recorded_attempts", max_recorded_attempts),
            ("max_systems", max_systems),
            ("max_characters", max_characters),
        ):
            if value < 1:
                msg = f"{name} must be at least 1, got {value}"
                raise ValueError(msg)
        if keepalive_s <= 0 or retention_s < 0:
            msg = "keepalive_s must be positive and retention_s not negative"
            raise ValueError(msg)
        self.slug = slug
        self.map_id = map_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"wanderer-map:{slug}"))
        self._state = MapState(
            slug=slug,
            map_id=self.map_id,
            api_key=api_key,
            limits=MapLimits(
                retention_s=retention_s,
                max_backfill=max_backfill,
                max_connections=max_connections_per_key,
                max_retained=max_retained,
                max_recorded_attempts=max_recorded_attempts,
                max_systems=max_systems,
                max_characters=max_characters,
            ),
            clock=clock,
            seed=seed,
            static_info=static_info,
        )
        self._http = MapHttp(
            self._state,
            host=host,
            port=port,
            keepalive_s=keepalive_s,
            max_queued=max_queued_per_stream,
            split_rng=random.Random(seed + 1),
        )
        for system in systems:
            self._state.put_system(system)
        for character in characters:
            self._state.put_character(character)

    # Lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Listen and serve on a background thread; returns once listening.

        Raises:
            RuntimeError: the server is already running.
            OSError: the address could not be bound.
        """
        self._http.start()

    def stop(self) -> None:
        """Close every connection, stop listening and join the thread (idempotent)."""
        self._http.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the requested one before the first start)."""
        return self._http.port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``, the base URL a map source is configured with."""
        return f"http://{self._http.host}:{self._http.port}"

    # Map state and events ----------------------------------------------------

    def add_system(
        self,
        solar_system_id: int,
        name: str,
        *,
        position_x: int = 0,
        position_y: int = 0,
        labels: Iterable[str] = (),
    ) -> None:
        """Put a system on the map without publishing an event.

        Raises:
            ValueError: the map already holds ``max_systems`` other systems.
        """
        system = MapSystem(
            solar_system_id,
            name,
            position_x=position_x,
            position_y=position_y,
            labels=tuple(labels),
        )
        with self._state.lock:
            self._state.put_system(system)

    def add_character(
        self,
        eve_id: int,
        name: str,
        *,
        corporation_id: int | None = None,
        corporation_ticker: str | None = None,
        alliance_id: int | None = None,
        alliance_ticker: str | None = None,
    ) -> None:
        """Track a character without publishing an event.

        Raises:
            ValueError: the map already tracks ``max_characters`` others.
        """
        character = MapCharacter(
            eve_id, name, corporation_id, corporation_ticker, alliance_id, alliance_ticker
        )
        with self._state.lock:
            self._state.put_character(character)

    def publish(self, event_type: str, payload: Mapping[str, Any]) -> str:
        """Append an event to the log, apply it to the map, send it to every stream.

        ``add_system`` / ``deleted_system`` change the systems by
        ``solar_system_id``; ``character_added`` / ``character_removed`` change
        the tracked characters by ``character_eve_id`` (or ``eve_id``, an int or
        a digit string). A payload without a usable id changes nothing but is
        still published, so clients can be fed odd payloads. Streams receive it
        in publication order, if their ``events`` filter matches.

        Returns:
            The event's ULID.

        Raises:
            ValueError: ``event_type`` is empty or holds a line break, the
                payload is not JSON-serialisable, or the map is full.
        """
        if not event_type or any(c in event_type for c in "\r\n"):
            msg = f"an event type must be one non-empty line, got {event_type!r}"
            raise ValueError(msg)
        with self._state.lock:
            entry = self._state.append(event_type, payload)
            self._http.fan_out_soon(entry)
        return entry.id

    def publish_map_kill(self, killmail: Mapping[str, Any]) -> str:
        """Publish a ``map_kill`` whose payload is ``killmail`` (keyed by ``killmail_id``).

        Raises:
            ValueError: ``killmail`` has no integer ``killmail_id``.
        """
        killmail_id = killmail.get("killmail_id")
        if not isinstance(killmail_id, int) or isinstance(killmail_id, bool):
            msg = f"a map_kill needs an integer killmail_id, got {killmail_id!r}"
            raise ValueError(msg)
        return self.publish("map_kill", dict(killmail))

    # Fault switches ----------------------------------------------------------

    def drop_all(self, *, mid_event: bool = False) -> int:
        """Close every open stream abruptly: no end-of-body chunk, just a closed socket.

        Without ``mid_event`` the streams are cut now (inside an event when a
        ``split`` write is in flight) and this returns once they are gone. With
        ``mid_event`` each stream open now stays up until its next event, writes
        the first half of that event in one write and is then closed; that event
        stays in the log for backfill.

        Returns:
            How many streams were affected (0 when not running).
        """
        return self._http.on_loop(self._http.drop_streams(mid_event=mid_event), 0)

    def fail_next(self, status: int, count: int | None = 1) -> None:
        """Answer the next ``count`` stream requests (all when ``None``) with ``status``.

        The answer is a JSON error ``{"error", "code", "status"}``, given
        before any authentication; REST requests are not affected.

        Raises:
            ValueError: ``status`` is not an HTTP error status, or ``count < 1``.
        """
        try:
            known = HTTPStatus(status)
        except ValueError:
            known = HTTPStatus.OK
        if not 400 <= known <= 599:
            msg = f"fail_next needs an HTTP error status, got {status}"
            raise ValueError(msg)
        if count is not None and count < 1:
            msg = f"fail_next count must be at least 1 or None, got {count}"
            raise ValueError(msg)
        with self._state.lock:
            self._state.fail_status = status
            self._state.fail_remaining = count

    def fail_static_info(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` static-info requests with ``status`` (after counting them).

        Raises:
            ValueError: ``status`` is not an HTTP error status, or ``count < 1``.
        """
        if not 400 <= status <= 599 or count < 1:
            msg = (
                f"fail_static_info needs an HTTP error status and count >= 1, got {status}, {count}"
            )
            raise ValueError(msg)
        with self._state.lock:
            self._state.static_info_failures.extend([status] * count)

    def clear_failures(self) -> None:
        """Stop answering stream requests with the :meth:`fail_next` status."""
        with self._state.lock:
            self._state.fail_remaining = 0

    def set_framing(self, mode: Framing) -> None:
        """Lay out subsequent writes of every stream as ``mode`` (see :data:`Framing`).

        Raises:
            ValueError: unknown mode.
        """
        if mode not in get_args(Framing):
            msg = f"unknown framing {mode!r}; expected one of {get_args(Framing)}"
            raise ValueError(msg)
        with self._state.lock:
            self._state.framing = mode

    def set_keepalive(self, enabled: bool) -> None:
        """Send (or stop sending) ``: keepalive`` after ``keepalive_s`` of silence."""
        with self._state.lock:
            self._state.keepalive_enabled = enabled

    def set_silent(self, silent: bool) -> None:
        """Make streams dead: connected, yet sending nothing, not even keepalives.

        While silent, every open stream goes dead for good (it stays dead after
        ``set_silent(False)``, as a half-open connection would), and new streams
        get their response head and then nothing. Events for dead streams are
        discarded; they remain in the log for a reconnecting client's backfill.
        """
        with self._state.lock:
            self._state.silent = silent
        if silent:
            self._http.on_loop(self._http.kill_streams(), None)

    def send_raw(self, data: bytes) -> int:
        """Write ``data`` as is, in one write, to every live stream, after what is queued.

        For garbage: invalid JSON, events without ids, a BOM, invalid UTF-8,
        huge lines. It is not retained and not replayed.

        Returns:
            How many streams it was queued to (0 when not running).
        """
        return self._http.on_loop(self._http.queue_raw(data), 0)

    def statistics(self) -> MapServerStatistics:
        """A consistent snapshot of the counters (see :class:`MapServerStatistics`)."""
        with self._state.lock:
            return self._state.statistics(self._http.open_streams)
