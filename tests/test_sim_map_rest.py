import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from simulator.map_server import MapCharacter, MapServer, MapSystem
from tests.support.sim_map import AUTH, FakeClock


@pytest.fixture
def server() -> Iterator[MapServer]:
    with MapServer(
        clock=FakeClock(),
        systems=[MapSystem(31000005, "J123450", position_x=100, position_y=200, labels=("A",))],
        characters=[MapCharacter(2117000001, "Example Pilot", 98000001, "EXMPL", 99000001, "ALLY")],
    ) as running:
        yield running


def get(server: MapServer, endpoint: str, slug: str = "demo", **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return requests.get(f"{server.base_url}/api/maps/{slug}/{endpoint}", timeout=5, **kwargs)


def systems(server: MapServer) -> dict[int, dict[str, Any]]:
    body = get(server, "systems").json()
    assert body["data"]["connections"] == []
    return {system["solar_system_id"]: system for system in body["data"]["systems"]}


def tracked_eve_ids(server: MapServer) -> list[str]:
    return [row["character"]["eve_id"] for row in get(server, "tracked-characters").json()["data"]]


def test_systems_have_the_rest_fields_with_labels_as_a_json_string(server: MapServer) -> None:
    (system,) = systems(server).values()
    assert system == {
        "id": system["id"],
        "map_id": server.map_id,
        "solar_system_id": 31000005,
        "name": "J123450",
        "original_name": "J123450",
        "custom_name": None,
        "temporary_name": None,
        "status": 0,
        "position_x": 100,
        "position_y": 200,
        "locked": False,
        "visible": True,
        "labels": system["labels"],
    }
    assert isinstance(system["labels"], str)
    assert json.loads(system["labels"])["labels"] == ["A"]


def test_tracked_characters_carry_the_eve_id_as_a_string(server: MapServer) -> None:
    (row,) = get(server, "tracked-characters").json()["data"]
    assert row["map_id"] == server.map_id
    assert row["tracked"] is True
    assert isinstance(row["id"], str)
    assert isinstance(row["character_id"], str)
    assert row["character"] == {
        "eve_id": "2117000001",
        "name": "Example Pilot",
        "corporation_id": 98000001,
        "corporation_ticker": "EXMPL",
        "alliance_id": 99000001,
        "alliance_ticker": "ALLY",
    }


def test_published_system_events_change_what_rest_returns(server: MapServer) -> None:
    server.publish("add_system", {"solar_system_id": 30000142, "name": "Jita", "position_x": 5})
    assert set(systems(server)) == {31000005, 30000142}
    assert systems(server)[30000142]["position_x"] == 5
    server.publish("deleted_system", {"solar_system_id": 31000005})
    assert set(systems(server)) == {30000142}


def test_published_character_events_change_what_rest_returns(server: MapServer) -> None:
    server.publish("character_added", {"character_eve_id": "2117000002", "name": "Second"})
    server.publish("character_added", {"eve_id": 2117000003, "name": "Third"})
    assert tracked_eve_ids(server) == ["2117000001", "2117000002", "2117000003"]
    server.publish("character_removed", {"character_eve_id": "2117000001"})
    assert tracked_eve_ids(server) == ["2117000002", "2117000003"]


def test_an_event_without_a_usable_id_is_published_but_changes_nothing(server: MapServer) -> None:
    server.publish("add_system", {"name": "nameless"})
    server.publish("character_added", {"character_eve_id": "not-a-number"})
    assert set(systems(server)) == {31000005}
    assert tracked_eve_ids(server) == ["2117000001"]
    assert server.statistics().events_published == 2


def test_seeding_methods_add_state_without_publishing(server: MapServer) -> None:
    server.add_system(31000006, "J000006", labels=["B"])
    server.add_character(2117000009, "Ninth")
    assert set(systems(server)) == {31000005, 31000006}
    assert tracked_eve_ids(server) == ["2117000001", "2117000009"]
    assert server.statistics().events_published == 0
    assert server.statistics().retained_events == 0


def test_the_map_state_is_bounded() -> None:
    server = MapServer(max_systems=1, max_characters=1)
    server.add_system(1, "one")
    server.add_system(1, "one again")  # replacing is not growing
    with pytest.raises(ValueError, match="full"):
        server.add_system(2, "two")
    with pytest.raises(ValueError, match="full"):
        server.publish("add_system", {"solar_system_id": 3})
    server.add_character(90000001, "one")
    with pytest.raises(ValueError, match="full"):
        server.publish("character_added", {"eve_id": 90000002})
    stats = server.statistics()
    assert (stats.systems, stats.characters, stats.events_published) == (1, 1, 0)


def test_rest_needs_the_bearer_key_and_a_known_map(server: MapServer) -> None:
    assert get(server, "systems", headers={}).status_code == 401
    assert get(server, "systems", headers={"Authorization": "Bearer nope"}).status_code == 401
    missing = get(server, "tracked-characters", slug="nope")
    assert missing.status_code == 404
    assert missing.json()["code"] == "MAP_NOT_FOUND"
    assert get(server, "systems", slug=server.map_id).status_code == 200


def test_fail_next_leaves_rest_requests_alone(server: MapServer) -> None:
    server.fail_next(500, None)
    assert get(server, "systems").status_code == 200
    assert server.statistics().rest_requests == 1
    assert server.statistics().connect_attempts_total == 0


def test_publish_refuses_bad_types_and_payloads(server: MapServer) -> None:
    with pytest.raises(ValueError, match="one non-empty line"):
        server.publish("add\nsystem", {})
    with pytest.raises(ValueError, match="not JSON"):
        server.publish("add_system", {"solar_system_id": object()})
    with pytest.raises(ValueError, match="killmail_id"):
        server.publish_map_kill({"killmail_id": "123"})
    assert server.statistics().events_published == 0
