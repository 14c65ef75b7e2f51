"""Loopback sockets for the tests: a port nothing listens on, whether a peer has closed."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released).

    Another process may take it before the test does; use it for a server the
    test starts at once, or as a port that refuses connections.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def closed_by_peer(client: socket.socket) -> bool:
    """Whether the other end has closed ``client`` (EOF or reset); never blocks."""
    client.setblocking(False)
    try:
        return client.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        client.setblocking(True)
