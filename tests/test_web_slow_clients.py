"""Slow and idle clients against the real program (``python run.py``), not a test double.

Three hundred sockets that connect and then send nothing, or send headers that
never end, one byte at a time: the probes must keep answering within a
second, the process must gain no thread and no more file descriptors than
``[http] max_connections`` allows, and every slow client must be cut within
``[http] request_timeout_s``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

import requests

from tests.support.process import running
from tests.support.sockets import closed_by_peer, free_port
from tests.support.waiting import wait_for

CLIENTS = 300
MAX_CONNECTIONS = 100
TIMEOUT_S = 2.0
SLACK = 8
"""Threads or descriptors that other parts of the program may open meanwhile (a database
handle, a timer): a server with a thread per connection would add hundreds."""


def config_text(directory: Path, port: int) -> str:
    return f"""
[app]
data_dir = "{directory / "data"}"
[http]
port = {port}
threads = 4
max_connections = {MAX_CONNECTIONS}
request_timeout_s = {TIMEOUT_S}
[simulator]
enabled = false
[sources.kills]
enabled = false
"""


def counts(pid: int) -> tuple[int, int]:
    """Threads and open file descriptors of the process."""
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def test_300_slow_or_idle_clients_neither_stop_the_probes_nor_grow_threads_or_fds(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, port), encoding="utf-8")
    with running(config, port) as instance:
        pid = instance.process.pid
        threads_before, fds_before = counts(pid)
        clients = []
        for index in range(CLIENTS):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            if index % 2:  # slowloris: headers that never end; the others stay idle
                client.sendall(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n")
            clients.append(client)
        started = time.monotonic()
        while time.monotonic() - started < TIMEOUT_S / 2:
            sent = time.monotonic()
            answer = requests.get(f"{instance.url}/livez", timeout=1)
            assert answer.status_code == 200
            assert time.monotonic() - sent < 1.0
            threads, fds = counts(pid)
            assert threads <= threads_before + SLACK, "a thread per connection"
            assert fds <= fds_before + MAX_CONNECTIONS + SLACK, "a descriptor per connection"
            for client in clients[1::2]:  # keep trickling: never idle
                with contextlib.suppress(OSError):
                    client.send(b"X")
        wait_for(
            lambda: all(closed_by_peer(client) for client in clients),
            timeout_s=TIMEOUT_S + 3,
            what="every slow or idle client cut",
        )
        web = requests.get(f"{instance.url}/api/status", timeout=5).json()["statuses"]["web"]
        server = web["server"]
        assert server["evicted"] + server["timed_out"] >= CLIENTS - MAX_CONNECTIONS
        assert server["timed_out"] > 0
        assert requests.get(f"{instance.url}/livez", timeout=1).status_code == 200
        for client in clients:
            client.close()
        assert instance.terminate() == 0
