"""The tracking actor: persisted across restarts, published to its neighbours."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pykka

from actors import tracking
from actors.protocol import Bootstrap, GetTracking, Names, TrackingChanged
from realtime.tracking import TrackedSnapshot
from supervision import ActorUnavailableError, ChildSpec, Crash, GetStatus, SupervisionTree
from tests.support.notifier import (
    HOME,
    KSPACE,
    SHOOTER,
    SLUG,
    Recorded,
    app_config,
    handle,
    map_event,
    running_tree,
)
from tests.support.waiting import wait_for

OTHER_SYSTEM = 31000777
PILOT = 2117000555


def tracking_tree(
    config_dir: Path, recorded: Recorded, slugs: tuple[str, ...] = (SLUG,)
) -> list[ChildSpec]:
    config = app_config(config_dir, slugs=slugs)
    return [*(recorded.spec(name) for name in list(recorded.inboxes)), tracking.child_spec(config)]


def neighbours() -> Recorded:
    recorded = Recorded()
    for name in (Names.FLOW_CONTROL, Names.NOTIFIER, Names.KILLS):
        recorded.spec(name)
    return recorded


def current(tree: SupervisionTree) -> TrackingChanged:
    answer = tree.registry.ask(Names.TRACKING, GetTracking())
    assert isinstance(answer, TrackingChanged)
    return answer


def test_a_bootstrap_and_map_events_are_published_to_every_neighbour(tmp_path: Path) -> None:
    recorded = neighbours()
    with running_tree(tracking_tree(tmp_path, recorded)) as tree:
        tree.registry.tell(Names.TRACKING, Bootstrap(SLUG, {HOME: "J100005"}, {SHOOTER: "Ours"}))
        handle(
            tree,
            [
                map_event("add_system", {"solar_system_id": OTHER_SYSTEM, "name": "J100777"}, 1),
                map_event("character_added", {"character_eve_id": str(PILOT), "name": "New"}, 2),
                map_event("rally_point_added", {"rally_point_id": "r"}, 3),
            ],
            name=Names.TRACKING,
        )
        latest = current(tree)
    assert latest.systems == {HOME, OTHER_SYSTEM}
    assert latest.characters == {SHOOTER, PILOT}
    assert isinstance(latest.view, TrackedSnapshot)
    assert latest.view.system_name(OTHER_SYSTEM) == "J100777"
    for name in (Names.FLOW_CONTROL, Names.NOTIFIER, Names.KILLS):
        told = recorded.of(name, TrackingChanged)
        # one for the bootstrap, one for the batch (the rally point changes nothing)
        assert len(told) == 2
        assert told[-1].systems == latest.systems


def test_tracking_holds_at_most_the_kill_feeds_max_systems_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    recorded = neighbours()
    config = app_config(tmp_path, slugs=(SLUG,))
    kills = dataclasses.replace(config.sources.kills, max_systems=1)
    config = dataclasses.replace(config, sources=dataclasses.replace(config.sources, kills=kills))
    specs = [*(recorded.spec(name) for name in list(recorded.inboxes)), tracking.child_spec(config)]
    with running_tree(specs) as tree:
        systems = {HOME: "J100005", OTHER_SYSTEM: "J100777"}
        tree.registry.tell(Names.TRACKING, Bootstrap(SLUG, systems, {}))
        assert len(current(tree).systems) == 1
        status = tree.registry.ask(Names.TRACKING, GetStatus())
    assert status["max_systems"] == 1
    assert status["refused"]["full"] == 1


def test_tracking_persists_across_a_restart_of_the_tree(tmp_path: Path) -> None:
    with running_tree(tracking_tree(tmp_path, Recorded())) as tree:
        tree.registry.tell(Names.TRACKING, Bootstrap(SLUG, {HOME: "J100005"}, {SHOOTER: "Ours"}))
        handle(
            tree,
            [
                map_event("add_system", {"solar_system_id": KSPACE, "name": "Jita"}, 1),
                map_event("deleted_system", {"solar_system_id": HOME}, 2),
                map_event("character_updated", {"eve_id": str(SHOOTER), "name": "Renamed"}, 3),
            ],
            name=Names.TRACKING,
        )
    recorded = neighbours()
    with running_tree(tracking_tree(tmp_path, recorded)) as tree:
        latest = current(tree)
        status = tree.registry.ask(Names.TRACKING, GetStatus())
    assert latest.systems == {KSPACE}
    assert latest.characters == {SHOOTER}
    assert isinstance(latest.view, TrackedSnapshot)
    assert latest.view.character_name(SHOOTER) == "Renamed"
    assert status["maps"] == [SLUG]
    # nothing changed at start: neighbours ask GetTracking when they start
    assert recorded.of(Names.KILLS, TrackingChanged) == []


def test_a_crashed_tracking_actor_restarts_with_what_it_tracked(tmp_path: Path) -> None:
    with running_tree(tracking_tree(tmp_path, Recorded())) as tree:
        tree.registry.tell(Names.TRACKING, Bootstrap(SLUG, {HOME: "J100005"}, {}))
        before = current(tree)
        tree.registry.tell(Names.TRACKING, Crash())
        wait_for(lambda: _restarts(tree) == 1, what="tracking restarted")
        after = wait_for(lambda: _current_or_none(tree), what="tracking answers again")
    assert after is not None
    assert after.systems == before.systems == {HOME}


def _restarts(tree: SupervisionTree) -> int:
    node = tree.snapshot().find(Names.TRACKING)
    assert node is not None
    return node.restarts


def _current_or_none(tree: SupervisionTree) -> TrackingChanged | None:
    try:
        return current(tree)
    except (ActorUnavailableError, pykka.Timeout):
        return None  # between the crash and the restart nothing answers


def test_maps_no_longer_configured_are_forgotten_at_start(tmp_path: Path) -> None:
    with running_tree(tracking_tree(tmp_path, Recorded(), slugs=(SLUG, "gone"))) as tree:
        tree.registry.tell(Names.TRACKING, Bootstrap(SLUG, {HOME: "J100005"}, {}))
        tree.registry.tell(Names.TRACKING, Bootstrap("gone", {KSPACE: "Jita"}, {}))
        assert current(tree).systems == {HOME, KSPACE}
    with running_tree(tracking_tree(tmp_path, Recorded())) as tree:
        assert current(tree).systems == {HOME}
    with running_tree(tracking_tree(tmp_path, Recorded(), slugs=(SLUG, "gone"))) as tree:
        assert current(tree).systems == {HOME}
