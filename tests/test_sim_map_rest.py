import json
from typing import Any

import pytest
import requests

from simulator.map_server import MapCharacter, MapServer, MapSystem
from tests.support.sim_map import AUTH

pytestmark = pytest.mark.map_server(
    fake_clock=True,
    systems=[MapSystem(31000005, "J123450", position_x=100, position_y=200, labels=("A",))],
    characters=[MapCharacter(2117000001, "Example Pilot", 98000001, "EXMPL", 99000001, "ALLY")],
)


def get(
    map_server: MapServer, endpoint: str, slug: str = "demo", **kwargs: Any
) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return requests.get(f"{map_server.base_url}/api/maps/{slug}/{endpoint}", timeout=5, **kwargs)


def systems(map_server: MapServer) -> dict[int, dict[str, Any]]:
    body = get(map_server, "systems").json()
    assert body["data"]["connections"] == []
    return {system["solar_system_id"]: system for system in body["data"]["systems"]}


def tracked_eve_ids(map_server: MapServer) -> list[str]:
    return [
        row["character"]["eve_id"] for row in get(map_server, "tracked-characters").json()["data"]
    ]


def test_systems_have_the_rest_fields_with_labels_as_a_json_string(map_server: MapServer) -> None:
    (system,) = systems(map_server).values()
    assert system == {
        "id": system["id"],
        "map_id": map_server.map_id,
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


def test_tracked_characters_carry_the_eve_id_as_a_string(map_server: MapServer) -> None:
    (row,) = get(map_server, "tracked-characters").json()["data"]
    assert row["map_id"] == map_server.map_id
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


def test_published_system_events_change_what_rest_returns(map_server: MapServer) -> None:
    map_server.publish("add_system", {"solar_system_id": 30000142, "name": "Jita", "position_x": 5})
    assert set(systems(map_server)) == {31000005, 30000142}
    assert systems(map_server)[30000142]["position_x"] == 5
    map_server.publish("deleted_system", {"solar_system_id": 31000005})
    assert set(systems(map_server)) == {30000142}


def test_published_character_events_change_what_rest_returns(map_server: MapServer) -> None:
    map_server.publish("character_added", {"character_eve_id": "2117000002", "name": "Second"})
    map_server.publish("character_added", {"eve_id": 2117000003, "name": "Third"})
    assert tracked_eve_ids(map_server) == ["2117000001", "2117000002", "2117000003"]
    map_server.publish("character_removed", {"character_eve_id": "2117000001"})
    assert tracked_eve_ids(map_server) == ["2117000002", "2117000003"]


def test_an_event_without_a_usable_id_is_published_but_changes_nothing(
    map_server: MapServer,
) -> None:
    map_server.publish("add_system", {"name": "nameless"})
    map_server.publish("character_added", {"character_eve_id": "not-a-number"})
    assert set(systems(map_server)) == {31000005}
    assert tracked_eve_ids(map_server) == ["2117000001"]
    assert map_server.statistics().events_published == 2


def test_seeding_methods_add_state_without_publishing(map_server: MapServer) -> None:
    map_server.add_system(31000006, "J000006", labels=["B"])
    map_server.add_character(2117000009, "Ninth")
    assert set(systems(map_server)) == {31000005, 31000006}
    assert tracked_eve_ids(map_server) == ["2117000001", "2117000009"]
    assert map_server.statistics().events_published == 0
    assert map_server.statistics().retained_events == 0


def test_the_map_state_is_bounded() -> None:
    map_server = MapServer(max_systems=1, max_characters=1)
    map_server.add_system(1, "one")
    map_server.add_system(1, "one again")  # replacing is not growing
    with pytest.raises(ValueError, match="full"):
        map_server.add_system(2, "two")
    with pytest.raises(ValueError, match="full"):
        map_server.publish("add_system", {"solar_system_id": 3})
    map_server.add_character(90000001, "one")
    with pytest.raises(ValueError, match="full"):
        map_server.publish("character_added", {"eve_id": 90000002})
    stats = map_server.statistics()
    assert (stats.systems, stats.characters, stats.events_published) == (1, 1, 0)


def test_rest_needs_the_bearer_key_and_a_known_map(map_server: MapServer) -> None:
    assert get(map_server, "systems", headers={}).status_code == 401
    assert get(map_server, "systems", headers={"Authorization": "Bearer nope"}).status_code == 401
    missing = get(map_server, "tracked-characters", slug="nope")
    assert missing.status_code == 404
    assert missing.json()["code"] == "MAP_NOT_FOUND"
    assert get(map_server, "systems", slug=map_server.map_id).status_code == 200


def test_fail_next_leaves_rest_requests_alone(map_server: MapServer) -> None:
    map_server.fail_next(500, None)
    assert get(map_server, "systems").status_code == 200
    assert map_server.statistics().rest_requests == 1
    assert map_server.statistics().connect_attempts_total == 0


def test_publish_refuses_bad_types_and_payloads(map_server: MapServer) -> None:
    with pytest.raises(ValueError, match="one non-empty line"):
        map_server.publish("add\nsystem", {})
    with pytest.raises(ValueError, match="not JSON"):
        map_server.publish("add_system", {"solar_system_id": object()})
    with pytest.raises(ValueError, match="killmail_id"):
        map_server.publish_map_kill({"killmail_id": "123"})
    assert map_server.statistics().events_published == 0
