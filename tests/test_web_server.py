"""The bounded HTTP server on real sockets: deadlines, the connection limit, its own death.

A :class:`BoundedServer` serves a tiny WSGI application on 127.0.0.1 with
small bounds, and raw sockets play the clients (idle, trickling, busy).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
import requests

from actors.web_server import BoundedServer
from realtime.config import HttpConfig
from tests.support.sockets import closed_by_peer
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class App:
    """Answers ``ok``; ``/block`` waits until :attr:`release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.blocked = threading.Event()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/block":
            self.blocked.set()
            self.release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]


@contextmanager
def serving(
    app: App, deaths: list[BaseException] | None = None, **bounds: Any
) -> Iterator[BoundedServer]:
    http = HttpConfig(port=0, **bounds)
    server = BoundedServer(app, http, (deaths if deaths is not None else []).append)
    server.start()
    try:
        yield server
    finally:
        app.release.set()
        server.stop()


def url(server: BoundedServer) -> str:
    host, port = server.address
    return f"http://{host}:{port}"


def connect(server: BoundedServer) -> socket.socket:
    return socket.create_connection(server.address, timeout=5)


def test_a_trickling_client_is_cut_at_the_request_deadline_however_often_it_sends() -> None:
    with serving(App(), request_timeout_s=0.6) as server:
        client = connect(server)
        started = time.monotonic()
        client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        # One header byte every 0.1 s: never idle long enough for an idle timeout.
        while not closed_by_peer(client):
            assert time.monotonic() - started < 5, "the trickling client was never cut"
            try:
                client.sendall(b"X")
            except OSError:
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert 0.6 <= elapsed < 2.0
        assert server.statistics().timed_out == 1
        client.close()


def test_an_idle_keep_alive_connection_is_closed_after_the_deadline_and_a_client_reconnects() -> (
    None
):
    with serving(App(), request_timeout_s=0.5) as server:
        session = requests.Session()
        assert session.get(url(server), timeout=5).text == "ok"
        wait_for(lambda: server.statistics().timed_out == 1, timeout_s=3, what="idle closed")
        assert server.statistics().connections == 0
        assert session.get(url(server), timeout=5).text == "ok"  # requests reconnects


def test_at_the_limit_a_new_connection_closes_the_one_idle_the_longest() -> None:
    with serving(App(), max_connections=3, threads=1, request_timeout_s=30) as server:
        idle = [connect(server) for _ in range(3)]
        wait_for(lambda: server.statistics().connections == 3, what="three open")
        assert requests.get(url(server), timeout=2).text == "ok"
        wait_for(lambda: closed_by_peer(idle[0]), timeout_s=2, what="the oldest closed")
        assert not closed_by_peer(idle[1])
        assert not closed_by_peer(idle[2])
        figures = server.statistics()
        assert figures.evicted == 1
        assert figures.connections <= 3
        for client in idle:
            client.close()


def test_when_every_connection_is_busy_a_new_one_is_refused_and_counted() -> None:
    app = App()
    with serving(app, max_connections=1, threads=1, request_timeout_s=30) as server:
        busy = threading.Thread(target=requests.get, args=(url(server) + "/block",), daemon=True)
        busy.start()
        assert app.blocked.wait(5)
        refused = connect(server)
        wait_for(lambda: closed_by_peer(refused), timeout_s=2, what="refused at once")
        assert server.statistics().refused == 1
        app.release.set()
        busy.join(5)
        refused.close()


def test_the_worker_pool_is_fixed_whatever_the_number_of_slow_clients() -> None:
    with serving(App(), threads=2, max_connections=50, request_timeout_s=30) as server:
        before = threading.active_count()
        slow = [connect(server) for _ in range(40)]
        for client in slow:
            client.sendall(b"GET / HTTP/1.1\r\n")  # headers never finished
        wait_for(lambda: server.statistics().connections == 40, what="forty open")
        started = time.monotonic()
        assert requests.get(url(server), timeout=2).text == "ok"
        assert time.monotonic() - started < 1.0
        assert threading.active_count() == before
        for client in slow:
            client.close()


def test_a_request_over_the_size_limits_is_refused() -> None:
    with serving(App(), max_header_bytes=1024, max_body_bytes=64) as server:
        big_header = {"X-Padding": "a" * 2048}
        assert requests.get(url(server), headers=big_header, timeout=5).status_code == 431
        assert requests.post(url(server), data=b"b" * 65, timeout=5).status_code == 413
        assert requests.post(url(server), data=b"b" * 64, timeout=5).status_code == 200


class _Exploding:
    """A dispatcher whose readiness check fails, as a bug in the loop would."""

    def readable(self) -> bool:
        msg = "the loop broke"
        raise RuntimeError(msg)

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        pass


def test_the_loop_dying_is_reported_to_the_owner() -> None:
    deaths: list[BaseException] = []
    with serving(App(), deaths) as server:
        server._map[-1] = _Exploding()  # the only way to break the loop from outside
        wait_for(lambda: deaths, timeout_s=3, what="the death reported")
        assert isinstance(deaths[0], RuntimeError)
        with pytest.raises(requests.ConnectionError):
            requests.get(url(server), timeout=2)


def test_a_request_in_flight_when_the_server_stops_still_gets_its_answer() -> None:
    app = App()
    answers: list[int] = []
    with serving(app) as server:
        client = threading.Thread(
            target=lambda: answers.append(
                requests.get(url(server) + "/block", timeout=5).status_code
            )
        )
        client.start()
        assert app.blocked.wait(5)
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        # The listener closes at once: nothing new gets in while the request finishes.
        wait_for(lambda: not _accepts(server), timeout_s=2, what="the listener closed")
        app.release.set()
        client.join(5)
        stopping.join(5)
    assert answers == [200]


def _accepts(server: BoundedServer) -> bool:
    try:
        socket.create_connection(server.address, timeout=0.5).close()
    except OSError:
        return False
    return True
