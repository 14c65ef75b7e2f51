from __future__ import annotations

from pathlib import Path

import pytest

from realtime.static_info import (
    FetchPlan,
    SecurityBand,
    StaticInfoError,
    SystemStaticInfo,
    parse_static_info,
    system_label,
)
from realtime.static_info_store import StaticInfoStore
from tests.support.cards import C4_PULSAR, HOME, JITA, SHATTERED_C5


def test_the_endpoints_answer_is_parsed_with_statics_and_their_destinations() -> None:
    info = parse_static_info(C4_PULSAR, HOME)
    assert (info.name, info.class_title, info.effect_name, info.region_name) == (
        "J100005",
        "C4",
        "Pulsar",
        "D-R00016",
    )
    assert [(s.name, s.destination, s.lifetime_h, s.max_jump_mass_kg) for s in info.statics] == [
        ("X877", "C4", 16.0, 375_000_000.0),
        ("H296", "C5", 24.0, 1_350_000_000.0),
    ]
    assert info.security_band is SecurityBand.WORMHOLE
    assert parse_static_info(SHATTERED_C5, 31002472).is_shattered


def test_bare_statics_are_kept_when_no_details_come_with_them() -> None:
    answer = {"solar_system_id": HOME, "solar_system_name": "J100005", "statics": ["C247"]}
    assert [s.name for s in parse_static_info(answer, HOME).statics] == ["C247"]


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {"data": "x"},
        {"data": {"solar_system_id": HOME}},
        {"data": {"solar_system_id": HOME + 1, "solar_system_name": "J1"}},
    ],
)
def test_an_answer_about_nothing_or_another_system_is_refused(answer: object) -> None:
    with pytest.raises(StaticInfoError):
        parse_static_info(answer, HOME)


def test_fields_of_the_wrong_type_are_left_out_not_fatal() -> None:
    answer = {
        "solar_system_id": HOME,
        "solar_system_name": "J1",
        "security": "high",
        "is_shattered": "yes",
        "static_details": [1, {"name": ""}, {"name": "K162"}],
    }
    info = parse_static_info(answer, HOME)
    assert info.security is None
    assert not info.is_shattered
    assert [s.name for s in info.statics] == ["K162"]


@pytest.mark.parametrize(
    ("security", "label"),
    [
        (0.9459, "High-sec 0.9"),
        (0.45, "High-sec 0.5"),
        (0.4499, "Low-sec 0.4"),
        (0.04, "Low-sec 0.1"),
        (0.0, "Null-sec 0.0"),
        (-0.38, "Null-sec -0.4"),
    ],
)
def test_known_space_is_banded_by_the_security_the_game_shows(security: float, label: str) -> None:
    assert system_label(SystemStaticInfo(30000142, "Jita", security=security)) == label


def test_a_plan_fetches_each_system_once_in_the_order_wanted() -> None:
    plan = FetchPlan(retry_min_s=10, retry_max_s=100)
    assert plan.want([3, 1, 3, 2]) == 3
    assert plan.next_due(0.0) == (3, None)
    plan.succeeded(3)
    assert plan.want([3]) == 0
    assert plan.next_due(0.0) == (1, None)


def test_a_failure_pauses_every_fetch_and_backs_off_doubling() -> None:
    plan = FetchPlan(retry_min_s=10, retry_max_s=35)
    plan.want([1, 2])
    assert plan.failed(1, "timeout", 0.0).retry_at == 10.0
    assert plan.next_due(5.0) == (None, 10.0)  # the endpoint is in doubt: nothing at all
    assert not plan.may_fetch(2, 5.0)
    assert plan.next_due(10.0) == (2, None)  # the failed one went to the back
    plan.failed(2, "timeout", 10.0)
    assert plan.next_due(10.0) == (None, 30.0)  # second failure in a row: 20 s
    assert plan.failed(1, "timeout", 30.0).retry_at == 50.0
    assert plan.failed(1, "timeout", 50.0).retry_at == 85.0  # capped at 35 s
    plan.succeeded(2)
    assert plan.statistics().consecutive_failures == 0


def test_a_404_waits_for_its_own_system_only() -> None:
    plan = FetchPlan(retry_min_s=10, retry_max_s=100)
    plan.want([1, 2])
    plan.failed(1, "404", 0.0, pause=False)
    assert plan.next_due(1.0) == (2, None)
    assert not plan.may_fetch(1, 1.0)


def test_the_store_keeps_fetched_systems_and_failures_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    plan = FetchPlan(retry_min_s=10, retry_max_s=100)
    with StaticInfoStore.open(path) as store:
        store.save(HOME, C4_PULSAR["data"], 1.0)
        store.record_failure(30000142, plan.failed(30000142, "HTTP 500", 2.0))
    with StaticInfoStore.open(path) as store:
        stored = store.load()
        assert stored.known[HOME] == parse_static_info(C4_PULSAR, HOME)
        assert stored.failures[30000142].retry_at == 12.0
        store.save(30000142, JITA["data"], 20.0)
    with StaticInfoStore.open(path) as store:
        stored = store.load()
    assert set(stored.known) == {HOME, 30000142}
    assert stored.failures == {}
    reopened = FetchPlan(retry_min_s=10, retry_max_s=100, known=stored.known)
    assert reopened.want([HOME, 30000142]) == 0
