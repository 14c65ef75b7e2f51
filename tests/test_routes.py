"""Specifications of routing (which route a notification goes to) and of mentions."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.config import RouteConfig
from realtime.event import Priority
from realtime.notifications import (
    KillDetails,
    Notification,
    NotificationKind,
    Pilot,
    RallyPointDetails,
    alert_notification,
    status_notification,
)
from realtime.routes import (
    NO_MEMBERSHIP,
    Pings,
    allowed_mentions,
    matches,
    mention_body,
    routes_of,
    silent_body,
)
from realtime.tracking import TrackedSnapshot

J_SPACE, K_SPACE = 31000005, 30000142
OURS, THEIRS = 2117000001, 2117000099
NOW = 1_800_000_000.0


def kill(
    *,
    system_id: int = J_SPACE,
    tracked_system: bool = True,
    pilots: tuple[int, ...] = (),
    value: float = 100e6,
    killmail_id: int = 1,
) -> Notification:
    tracked = tuple(Pilot(character_id=pilot, name=f"P{pilot}") for pilot in pilots)
    details = KillDetails(
        killmail_id=killmail_id,
        kill_time=NOW - 60,
        system_id=system_id,
        system_name="J100005",
        victim=Pilot(character_id=THEIRS),
        final_blow=None,
        attacker_count=1,
        value_isk=value,
        tracked_system=tracked_system,
        victim_tracked=False,
        tracked_pilots=tracked,
    )
    return Notification(
        f"kill:{killmail_id}", NotificationKind.KILL, 1, NOW - 60, "t", details, Priority.NORMAL
    )


def rally(slug: str = "home") -> Notification:
    details = RallyPointDetails(slug, "rp1", J_SPACE, "J100005", OURS, "Pilot", "form up")
    return Notification(
        f"rally:{slug}:rp1",
        NotificationKind.RALLY_POINT,
        2,
        NOW,
        "Rally",
        details,
        Priority.HIGH,
        maps=(slug,),
    )


def route(**changes: Any) -> RouteConfig:
    return RouteConfig(**{"name": "r", "kinds": ("kill",), **changes})


def test_a_route_takes_only_its_kinds() -> None:
    kills = route(kinds=("kill",))
    rallies = route(kinds=("rally_point",))
    assert matches(kills, kill())
    assert not matches(kills, rally())
    assert matches(rallies, rally())
    assert not matches(rallies, kill())


def test_alerts_and_status_messages_go_to_routes_of_their_kind_whatever_their_maps() -> None:
    ops = route(kinds=("alert", "status"), maps=("home",))
    alert = alert_notification(
        "connection:kills", "critical", "raised", "down", first_seen=NOW, at=NOW
    )
    status = status_notification("started", NOW)
    assert matches(ops, alert)
    assert matches(ops, status)
    assert not matches(route(kinds=("kill",)), alert)


@pytest.mark.parametrize(
    ("involving", "tracked_system", "pilots", "expected"),
    [
        (("system", "character"), True, (), True),
        (("system", "character"), False, (OURS,), True),
        (("system",), False, (OURS,), False),
        (("character",), True, (), False),
        (("character",), True, (OURS,), True),
        (("system",), True, (OURS,), True),
    ],
)
def test_a_kill_matches_when_one_of_the_routes_reasons_holds(
    involving: tuple[str, ...], tracked_system: bool, pilots: tuple[int, ...], expected: bool
) -> None:
    notification = kill(tracked_system=tracked_system, pilots=pilots)
    assert matches(route(involving=involving), notification) is expected


def test_kill_value_and_wormhole_filters_are_per_route() -> None:
    big = route(min_value_isk=1e9)
    wormholes = route(wormhole_only=True)
    assert matches(big, kill(value=1e9))
    assert not matches(big, kill(value=999e6))
    assert matches(wormholes, kill(system_id=J_SPACE))
    assert not matches(wormholes, kill(system_id=K_SPACE))


def test_a_route_with_maps_takes_a_kill_only_for_a_reason_on_one_of_its_maps() -> None:
    view = TrackedSnapshot.of(
        {J_SPACE: "J100005"},
        {OURS: "Ours"},
        {"home": (frozenset({J_SPACE}), frozenset()), "away": (frozenset(), frozenset({OURS}))},
    )
    home, away = route(maps=("home",)), route(maps=("away",))
    in_home = kill(tracked_system=True)
    our_pilot_elsewhere = kill(system_id=K_SPACE, tracked_system=False, pilots=(OURS,))
    assert matches(home, in_home, view)
    assert not matches(away, in_home, view)
    assert matches(away, our_pilot_elsewhere, view)
    assert not matches(home, our_pilot_elsewhere, view)
    # "away" tracks our pilot, but this route only cares about systems
    assert not matches(route(maps=("away",), involving=("system",)), our_pilot_elsewhere, view)
    # a view that knows no map passes no route that lists maps
    assert not matches(home, in_home, NO_MEMBERSHIP)
    assert matches(route(), in_home, NO_MEMBERSHIP)


def test_a_map_event_goes_to_routes_of_its_map() -> None:
    assert matches(route(kinds=("rally_point",), maps=("home",)), rally("home"))
    assert not matches(route(kinds=("rally_point",), maps=("home",)), rally("away"))


def test_routes_of_keeps_the_configuration_order_and_may_find_none() -> None:
    routes = [route(name="a"), route(name="b", min_value_isk=5e9), route(name="c")]
    assert [r.name for r in routes_of(routes, kill())] == ["a", "c"]
    assert routes_of(routes, rally()) == []


@pytest.mark.parametrize(
    ("mention", "allowed"),
    [
        ("@here", {"parse": ["everyone"]}),
        ("@everyone", {"parse": ["everyone"]}),
        ("<@&123456789012345678>", {"parse": [], "roles": ["123456789012345678"]}),
        ("", {"parse": []}),
        ("<@42>", {"parse": []}),
    ],
)
def test_allowed_mentions_permit_exactly_the_configured_mention(
    mention: str, allowed: dict[str, Any]
) -> None:
    assert allowed_mentions(mention) == allowed


def test_a_pinging_body_leads_with_the_mention_and_a_silent_one_allows_nothing() -> None:
    body = {"embeds": [{"title": "@everyone look"}], "allowed_mentions": {"parse": ["users"]}}
    pinging = mention_body(body, "<@&77>")
    assert pinging["content"] == "<@&77>"
    assert pinging["allowed_mentions"] == {"parse": [], "roles": ["77"]}
    assert mention_body({**body, "content": "x" * 2000}, "@here")["content"].startswith("@here\n")
    assert len(mention_body({**body, "content": "x" * 2000}, "@here")["content"]) <= 2000
    assert silent_body(body)["allowed_mentions"] == {"parse": []}
    assert "content" not in silent_body(body)


def test_a_route_without_a_mention_never_pings() -> None:
    assert not Pings().take(route(), kill(value=1e12), NOW)


def test_a_kill_pings_only_at_or_above_the_routes_threshold() -> None:
    pinging = route(mention="@here", mention_min_value_isk=1e9, mention_cooldown_s=0)
    pings = Pings()
    assert not pings.take(pinging, kill(value=999e6), NOW)
    assert pings.take(pinging, kill(value=1e9), NOW)


def test_a_route_pings_at_most_once_per_cooldown_and_other_routes_are_apart() -> None:
    rallies = route(name="rally", kinds=("rally_point",), mention="@here", mention_cooldown_s=300)
    other = route(name="other", kinds=("rally_point",), mention="@here", mention_cooldown_s=300)
    pings = Pings()
    assert pings.take(rallies, rally(), NOW)
    assert not pings.take(rallies, rally(), NOW + 299)
    assert pings.take(other, rally(), NOW + 299)
    assert pings.take(rallies, rally(), NOW + 300)


def test_the_cooldown_holds_from_the_last_ping_loaded_and_through_a_clock_step_back() -> None:
    rallies = route(name="rally", kinds=("rally_point",), mention="@here", mention_cooldown_s=300)
    assert not Pings({"rally": NOW - 100}).take(rallies, rally(), NOW)
    assert Pings({"rally": NOW - 300}).take(rallies, rally(), NOW)
    stepped = Pings({"rally": NOW + 3600})  # recorded before the wall clock went back an hour
    assert not stepped.take(rallies, rally(), NOW)
    assert not stepped.take(rallies, rally(), NOW + 299)
    assert stepped.take(rallies, rally(), NOW + 300)


def test_pings_taken_for_claims_that_failed_are_given_back() -> None:
    rallies = route(name="rally", kinds=("rally_point",), mention="@here")
    pings = Pings()
    before = pings.last()
    assert pings.take(rallies, rally(), NOW)
    pings.restore(before)
    assert pings.take(rallies, rally(), NOW + 1)
