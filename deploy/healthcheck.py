#!/usr/bin/env python3
"""The health probe of a running instance: ``GET /livez``, exit 0 on a 200, 1 otherwise.

The container image's ``HEALTHCHECK`` runs it (slim images have no curl), and
CI runs it after the recipe's start step. The address is the config's
``[http] bind`` and ``port`` (a wildcard bind such as ``0.0.0.0`` is probed on
loopback), or ``--url``. ``/livez`` needs no token. One line says what was
found; a config that cannot be read is unhealthy too (the program would not
run on it either).

    healthcheck.py [--config PATH] [--url BASE_URL] [--timeout S] [--wait S]

``--config`` defaults to ``$WANDERER_CONFIG``, else ``config.toml``.
``--wait S`` probes again every 0.2 s until healthy or S seconds have passed,
for a caller that has just started the program.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import os
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence

from realtime.config import HttpConfig

HEALTHY, UNHEALTHY = 0, 1
RETRY_EVERY_S = 0.2


def livez_url(config_path: str) -> str:
    """The ``/livez`` URL of the instance that runs on ``config_path``.

    Raises:
        OSError: the file cannot be read.
        tomllib.TOMLDecodeError: it is not TOML.
        ValueError: ``[http]`` is not a table of a bind address and a port.
    """
    with open(config_path, "rb") as file:
        table = tomllib.load(file)
    http = table.get("http", {})
    if not isinstance(http, dict):
        msg = "[http] is not a table"
        raise ValueError(msg)
    defaults = HttpConfig()
    bind = http.get("bind", defaults.bind)
    port = http.get("port", defaults.port)
    if not isinstance(bind, str) or not isinstance(port, int) or isinstance(port, bool):
        msg = f"[http] bind {bind!r} and port {port!r} are not an address and a port"
        raise ValueError(msg)
    if port == 0:
        msg = "[http] port is 0 (any free port): give it a fixed port to probe it"
        raise ValueError(msg)
    return f"http://{_probe_host(bind)}:{port}/livez"


def _probe_host(bind: str) -> str:
    """Where to reach a server bound to ``bind`` from the same host."""
    try:
        address = ipaddress.ip_address(bind)
    except ValueError:
        return bind  # a host name
    if address.is_unspecified:
        return "[::1]" if address.version == 6 else "127.0.0.1"
    return f"[{address}]" if address.version == 6 else str(address)


def probe(url: str, timeout_s: float) -> tuple[bool, str]:
    """One ``GET``: whether it answered 200, and a line saying what happened."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 -- http only
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, http.client.HTTPException) as error:
        return False, f"unhealthy: {url}: {type(error).__name__}: {error}"
    if status == 200:
        return True, f"healthy: {url} answered 200"
    return False, f"unhealthy: {url} answered {status}"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="Probe a running instance's /livez.")
    parser.add_argument("--config", default=os.environ.get("WANDERER_CONFIG", "config.toml"))
    parser.add_argument("--url", help="the instance's base URL instead of the config's [http]")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds for one request")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to keep trying")
    args = parser.parse_args(argv)
    if args.url:
        url = f"{args.url.rstrip('/')}/livez"
    else:
        try:
            url = livez_url(args.config)
        except (OSError, ValueError) as error:  # TOMLDecodeError is a ValueError
            print(f"unhealthy: config {args.config}: {error}")
            return UNHEALTHY
    deadline = time.monotonic() + max(0.0, args.wait)
    while True:
        healthy, line = probe(url, args.timeout)
        if healthy or time.monotonic() >= deadline:
            print(line)
            return HEALTHY if healthy else UNHEALTHY
        time.sleep(RETRY_EVERY_S)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
