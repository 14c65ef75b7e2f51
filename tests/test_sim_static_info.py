from __future__ import annotations

from typing import Any

import requests

from realtime.static_info import SecurityBand, parse_static_info, system_label
from simulator import static_info as universe
from simulator.map_server import MapServer
from simulator.traffic import KSPACE_SYSTEMS, WORMHOLE_SYSTEMS, security_band, system_name
from tests.support.sim_map import AUTH


def ask(map_server: MapServer, system_id: int | str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return requests.get(
        f"{map_server.base_url}/api/common/system-static-info",
        params={"id": system_id},
        timeout=5,
        **kwargs,
    )


def test_a_wormhole_has_class_statics_with_destinations_and_its_traffic_name(
    map_server: MapServer,
) -> None:
    system_id = next(universe.wormholes(4, effect=True))
    response = ask(map_server, system_id)
    assert response.status_code == 200
    info = parse_static_info(response.json(), system_id)
    assert info.name == system_name(system_id)
    assert (info.class_title, info.security_band) == ("C4", SecurityBand.WORMHOLE)
    assert info.effect_name in universe.EFFECTS
    assert info.statics
    assert all(s.destination and s.lifetime_h and s.max_jump_mass_kg for s in info.statics)
    assert info.region_name.startswith("D-R")


def test_a_shattered_wormhole_has_no_statics(map_server: MapServer) -> None:
    system_id = next(universe.wormholes(5, shattered=True))
    info = parse_static_info(ask(map_server, system_id).json(), system_id)
    assert info.is_shattered
    assert info.statics == ()
    assert info.region_name == "K-R00033"


def test_known_space_has_a_security_in_the_band_traffic_gives_it(map_server: MapServer) -> None:
    for system_id in (30000142, 30000143, 30000144):
        info = parse_static_info(ask(map_server, system_id).json(), system_id)
        expected = {"highsec": "High-sec", "lowsec": "Low-sec", "nullsec": "Null-sec"}
        assert system_label(info).startswith(expected[security_band(system_id)])
        assert info.region_name


def test_an_unknown_system_is_404_and_a_bad_key_401(map_server: MapServer) -> None:
    assert ask(map_server, 32_000_000).status_code == 404
    assert ask(map_server, 32_000_000).json() == {"error": "System not found"}
    assert ask(map_server, 30000142, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert ask(map_server, "x").status_code == 400


def test_requests_are_counted_per_system_and_failures_can_be_injected(
    map_server: MapServer,
) -> None:
    system_id = 31000777
    before = map_server.statistics().static_info_requests.get(system_id, 0)
    map_server.fail_static_info(503, count=2)
    assert [ask(map_server, system_id).status_code for _ in range(3)] == [503, 503, 200]
    assert map_server.statistics().static_info_requests[system_id] == before + 3


def test_every_system_of_the_universe_has_static_info() -> None:
    for system_id in (*WORMHOLE_SYSTEMS[::97], *KSPACE_SYSTEMS[::211]):
        data = universe.static_info(system_id)
        assert data is not None
        parse_static_info(data, system_id)
