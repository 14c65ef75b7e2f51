"""Fixtures every test module may ask for: a fake clock and one per simulated server.

A server fixture starts the simulator's server on a free loopback port with its
defaults and stops it at teardown. A module (``pytestmark = ...``) or a test
changes its settings with the marker of the same name, whose keyword arguments
go to the server's constructor::

    pytestmark = pytest.mark.map_server(slug="home", keepalive_s=0.1)

``fake_clock=True`` in such a marker hands the server the test's ``clock``
fixture, so that the test moves the server's time by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simulator.discord_fake import DiscordFake
from simulator.kills_server import KillsServer
from simulator.map_server import MapServer
from tests.support.clocks import FakeClock

_SERVER_MARKERS = {
    "kills_server": "settings of the kills_server fixture (KillsServer keyword arguments)",
    "map_server": "settings of the map_server fixture (MapServer keyword arguments)",
    "discord_fake": "settings of the discord_fake fixture (DiscordFake keyword arguments)",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, meaning in _SERVER_MARKERS.items():
        config.addinivalue_line("markers", f"{name}(**settings): {meaning}")


def _settings(request: pytest.FixtureRequest, marker: str) -> dict[str, Any]:
    """The marker's keyword arguments (the closest marker wins), with the clock resolved."""
    found = request.node.get_closest_marker(marker)
    settings = dict(found.kwargs) if found else {}
    if settings.pop("fake_clock", False):
        settings["clock"] = request.getfixturevalue("clock")
    return settings


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand, starting at a fixed Unix time."""
    return FakeClock()


@pytest.fixture
def kills_server(request: pytest.FixtureRequest) -> Iterator[KillsServer]:
    """The simulated wanderer-kills server (marker ``kills_server``)."""
    with KillsServer(**_settings(request, "kills_server")) as server:
        yield server


@pytest.fixture
def map_server(request: pytest.FixtureRequest) -> Iterator[MapServer]:
    """The simulated Wanderer map server (marker ``map_server``)."""
    with MapServer(**_settings(request, "map_server")) as server:
        yield server


@pytest.fixture
def discord_fake(request: pytest.FixtureRequest) -> Iterator[DiscordFake]:
    """The loopback Discord (marker ``discord_fake``)."""
    with DiscordFake(**_settings(request, "discord_fake")) as server:
        yield server
