"""The static_info actor against a real map server on loopback, with a real database."""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from actors import static_info
from actors.protocol import Names, TrackingChanged
from actors.static_info import (
    Fetched,
    FetchFailed,
    FetchStaticInfo,
    GetStaticInfo,
    StaticInfoChanged,
    StaticInfoClient,
    http_fetcher,
)
from realtime.config import AppConfig, Config, MapConfig, NotifyConfig, Secret, StaticInfoConfig
from realtime.tracking import TrackedSnapshot
from simulator.map_server import MapServer
from supervision import Registry, SupervisionTree
from tests.support.notifier import Recorded, map_event, tree_spec
from tests.support.notifier import running_tree as running_children
from tests.support.waiting import wait_for

A, B, C = 31000054, 31000174, 30000142
FetchResult = Fetched | FetchFailed
SETTINGS = StaticInfoConfig(wait_s=2.0, request_timeout_s=2.0, min_interval_s=0.0,
                            retry_min_s=0.2, retry_max_s=1.0)  # fmt: skip


pytestmark = pytest.mark.map_server(slug="home")


def config(data_dir: Path, map_server: MapServer, settings: StaticInfoConfig = SETTINGS) -> Config:
    map_config = MapConfig(
        slug="home", base_url=map_server.base_url, api_key=Secret("demo-key", "x")
    )
    return Config(app=AppConfig(data_dir=str(data_dir)), maps=(map_config,), static_info=settings)


@contextmanager
def running(
    cfg: Config, recorded: Recorded, fetcher: static_info.Fetcher | None = None
) -> Iterator[SupervisionTree]:
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    tree = SupervisionTree(
        tree_spec([recorded.spec(Names.NOTIFIER), static_info.child_spec(cfg, fetcher=fetcher)])
    ).start()
    try:
        yield tree
    finally:
        tree.stop()


def tracking(*systems: int) -> TrackingChanged:
    view = TrackedSnapshot.of(dict.fromkeys(systems, ""), {})
    return TrackingChanged(view=view, systems=frozenset(systems), characters=frozenset())


def requests_for(map_server: MapServer, *systems: int) -> list[int]:
    counts = map_server.statistics().static_info_requests
    return [counts.get(system, 0) for system in systems]


def test_each_system_is_requested_once_even_across_restarts(
    tmp_path: Path, map_server: MapServer
) -> None:
    cfg, recorded = config(tmp_path, map_server), Recorded()
    with running(cfg, recorded) as tree:
        tree.registry.tell(Names.STATIC_INFO, tracking(A, B, C))
        wait_for(lambda: requests_for(map_server, A, B, C) == [1, 1, 1], what="prefetched")
        published = wait_for(
            lambda: [
                m
                for m in recorded.of(Names.NOTIFIER, StaticInfoChanged)
                if len(m.view.systems) == 3
            ],
            what="published to the notifier",
        )
        assert published[-1].view.static_info(A).class_title == "C4"
    with running(cfg, Recorded()) as tree:
        answer = tree.registry.ask(Names.STATIC_INFO, GetStaticInfo())
        assert set(answer.view.systems) == {A, B, C}
        tree.registry.tell(Names.STATIC_INFO, tracking(A, B, C))
        fetched = tree.registry.ask(Names.STATIC_INFO, FetchStaticInfo((A, B, C), "home"))
        assert set(fetched.systems) == {A, B, C}
    assert requests_for(map_server, A, B, C) == [1, 1, 1]


def test_a_failure_degrades_to_the_name_and_is_retried_after_a_backoff(
    tmp_path: Path, map_server: MapServer
) -> None:
    map_server.fail_static_info(500, count=2)
    with running(config(tmp_path, map_server), Recorded()) as tree:
        client = StaticInfoClient(tree.registry, wait_s=2.0)
        added = map_event("add_system", {"solar_system_id": A, "name": "J488975"}, 1)
        assert client.prepare([added]).static_info(A) is None  # the card goes out with the name
        first_failure = time.monotonic()
        tree.registry.tell(Names.STATIC_INFO, tracking(B, C))
        # the endpoint failed: everything waits, then A is retried (and fails again), later B, C
        wait_for(lambda: requests_for(map_server, A, B, C) == [3, 1, 1], timeout_s=10.0)
        assert time.monotonic() - first_failure >= 0.2 + 0.4
        status = tree.registry.ask(Names.STATIC_INFO, GetStaticInfo())
        assert set(status.view.systems) == {A, B, C}
    assert requests_for(map_server, A) == [3]


def test_an_unknown_system_does_not_stop_the_others(tmp_path: Path, map_server: MapServer) -> None:
    with running(config(tmp_path, map_server), Recorded()) as tree:
        tree.registry.tell(Names.STATIC_INFO, tracking(32_500_000, A))
        wait_for(lambda: requests_for(map_server, 32_500_000, A) == [1, 1])
        answer = tree.registry.ask(Names.STATIC_INFO, GetStaticInfo())
        assert set(answer.view.systems) == {A}


def test_a_new_systems_card_waits_at_most_wait_s_for_a_slow_endpoint(
    tmp_path: Path, map_server: MapServer
) -> None:
    release = threading.Event()
    with requests.Session() as session:
        fetch = http_fetcher(session)

        def slow(map_config: MapConfig, system_id: int, timeout_s: float) -> FetchResult:
            release.wait(10)
            return fetch(map_config, system_id, timeout_s)

        settings = StaticInfoConfig(wait_s=0.3, request_timeout_s=2.0, min_interval_s=0.0)
        with running(config(tmp_path, map_server, settings), Recorded(), fetcher=slow) as tree:
            client = StaticInfoClient(tree.registry, wait_s=settings.wait_s)
            added = map_event("add_system", {"solar_system_id": A, "name": "J488975"}, 1)
            started = time.monotonic()
            view = client.prepare([added])
            waited = time.monotonic() - started
            release.set()
            assert view.static_info(A) is None
            assert 0.25 <= waited < 2.0
            assert client.timeouts == 1
            wait_for(
                lambda: A in tree.registry.ask(Names.STATIC_INFO, GetStaticInfo()).view.systems
            )
            assert client.prepare([added]).static_info(A) is not None


def test_without_the_actor_the_client_degrades_at_once() -> None:
    client = StaticInfoClient(Registry(), wait_s=5.0)
    added = map_event("add_system", {"solar_system_id": A, "name": "J488975"}, 1)
    started = time.monotonic()
    assert client.prepare([added]).static_info(A) is None
    assert time.monotonic() - started < 1.0


def test_a_new_systems_card_and_the_kills_in_it_carry_the_fetched_static_info(
    tmp_path: Path, map_server: MapServer
) -> None:
    from actors import tracking
    from simulator import static_info as universe
    from tests.support.notifier import handle, kill_event, killmail, notifier_spec

    cfg = dataclasses.replace(config(tmp_path, map_server), notify=NotifyConfig(sinks=("console",)))
    stream = io.StringIO()
    system = next(universe.wormholes(4, effect=True))
    children = [
        tracking.child_spec(cfg),
        static_info.child_spec(cfg),
        notifier_spec(cfg, stdout=stream),
    ]
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    with running_children(children) as tree:
        added = map_event("add_system", {"solar_system_id": system, "name": "Home Hole"}, 1)
        handle(tree, [added], name=Names.TRACKING)  # as the router does: tracking first
        assert handle(tree, [added]) == 1
        kill = kill_event(killmail(9001, system_id=system), 2)
        assert handle(tree, [kill]) == 1
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("SYSTEM    New system Home Hole (C4) on home | C4 | Magnetar")
    assert "statics C247\u2192C3 16 h" in lines[0]
    assert "(C4, D-R00015)" in lines[1]
    assert requests_for(map_server, system) == [1]
