"""The cards users see: golden Discord JSON (and console line) for each kind, and
the rules every card keeps (limits, escaping, no pings).

Golden files live in ``tests/golden/cards/``; after an intended change of a
card, ``UPDATE_GOLDEN=1 python -m pytest tests/test_cards.py`` rewrites them
(review the diff: it is what users will see).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from realtime.config import KillNotifyConfig, MapNotifyConfig
from realtime.notifications import (
    KillDetails,
    KillRole,
    Notification,
    alert_notification,
    kill_notification,
    map_notification,
    status_notification,
)
from realtime.render import console_line, message_payload, with_mention
from realtime.render.text import GREEN, RED
from realtime.static_info import NO_STATIC_INFO, StaticInfoView
from tests.support.cards import (
    C4_PULSAR,
    HOME,
    JITA,
    KSPACE,
    NOW,
    OUR_PILOT,
    OUR_WINGMAN,
    SHATTERED_C5,
    kill_event,
    killmail,
    map_event,
    pilot,
    static_view,
    tracked,
)
from tests.test_render import assert_within_limits

GOLDEN = Path(__file__).parent / "golden" / "cards"
STATIC = static_view(C4_PULSAR, SHATTERED_C5, JITA)


def decide_kill(data: dict[str, Any], static: StaticInfoView = STATIC) -> Notification:
    result = kill_notification(
        kill_event(data), tracked(), KillNotifyConfig(), 3600.0, NOW, static=static
    )
    assert isinstance(result, Notification), result
    return result


def decide_map(
    event_type: str, payload: dict[str, Any], static: StaticInfoView = STATIC
) -> Notification:
    result = map_notification(
        map_event(event_type, payload, "01JDZ3J9Q5V8K2M4N6P8R0T2W4"),
        tracked(),
        MapNotifyConfig(),
        static=static,
    )
    assert result is not None
    return result


def solo_kill() -> Notification:
    return decide_kill(
        killmail(
            pilot(2117500001, "Dax Morrow", ("Void Runners", "VRUN"), ("Tengu", 29984)),
            [
                pilot(
                    OUR_WINGMAN,
                    "Bren Osk",
                    ("Hole Control", "HOLE"),
                    ("Loki", 29990),
                    damage=48_210,
                    final_blow=True,
                    alliance_ticker="DEEP",
                ),
            ],
            value=1_480_000_000.0,
        )
    )


def fleet_kill() -> Notification:
    attackers = [
        pilot(
            2117500010,
            "Ivo Pell",
            ("Night Shift", "NSHFT"),
            ("Sabre", 22456),
            damage=900,
            final_blow=True,
        ),
        pilot(2117500011, "Mara Quist", ("Night Shift", "NSHFT"), ("Legion", 29986), damage=21_400),
    ] + [
        pilot(
            2117500020 + n,
            f"Night Pilot {n}",
            ("Night Shift", "NSHFT"),
            ("Loki", 29990),
            damage=2_000,
        )
        for n in range(6)
    ]
    return decide_kill(
        killmail(
            pilot(2117500002, "Tor Adaire", ("Void Runners", "VRUN"), ("Proteus", 29988)),
            attackers,
            value=640_000_000.0,
            killmail_id=128_400_002,
        )
    )


def loss() -> Notification:
    return decide_kill(
        killmail(
            pilot(
                OUR_PILOT,
                "Aria Vance",
                ("Hole Control", "HOLE"),
                ("Stratios", 33470),
                alliance_ticker="DEEP",
            ),
            [
                pilot(
                    2117500030,
                    "Gate Camper",
                    ("Pipe Bombers", "PIPE"),
                    ("Sabre", 22456),
                    damage=3_100,
                    final_blow=True,
                ),
                pilot(
                    2117500031,
                    "Camp Buddy",
                    ("Pipe Bombers", "PIPE"),
                    ("Cerberus", 11993),
                    damage=5_600,
                ),
            ],
            system_id=KSPACE,
            solar_system_name="Jita",
            value=310_000_000.0,
            killmail_id=128_400_003,
        )
    )


def npc_final_blow() -> Notification:
    return decide_kill(
        killmail(
            pilot(2117500040, "Lone Ratter", ("Void Runners", "VRUN"), ("Gila", 17715)),
            [
                pilot(
                    None,
                    "",
                    ("Sleepers", ""),
                    ("Vigilant Tyrannos", 30209),
                    damage=8_000,
                    final_blow=True,
                ),
                pilot(None, "", ("Sleepers", ""), ("Awakened Defender", 30213), damage=12_000),
            ],
            npc=True,
            value=96_000_000.0,
            killmail_id=128_400_004,
        )
    )


def c4_with_statics_and_effect() -> Notification:
    return decide_map(
        "add_system",
        {"solar_system_id": HOME, "name": "Home Hole", "position_x": 100, "position_y": 200},
    )


def shattered_c5() -> Notification:
    return decide_map("add_system", {"solar_system_id": 31002472, "name": "J005923"})


def kspace_system() -> Notification:
    return decide_map("add_system", {"solar_system_id": KSPACE, "name": "Jita"})


def character() -> Notification:
    return decide_map(
        "character_added",
        {
            "character_eve_id": "2117000003",
            "name": "Cass Ilmar",
            "corporation_id": 98000004,
            "corporation_ticker": "HOLE",
            "corporation_name": "Hole Control",
            "alliance_id": 99000001,
            "alliance_ticker": "DEEP",
            "alliance_name": "Deep Space Alliance",
            "ship_type_id": 33470,
            "solar_system_id": HOME,
            "online": True,
        },
    )


def rally_point() -> Notification:
    return decide_map(
        "rally_point_added",
        {
            "rally_point_id": "5e0c9a52-rally",
            "solar_system_id": HOME,
            "system_name": "Home Hole",
            "character_name": "Aria Vance",
            "character_eve_id": str(OUR_PILOT),
            "message": "Hostile Loki fleet on the X877, form up on me",
            "created_at": "2027-01-15T07:59:30.000000Z",
        },
    )


def status_message() -> Notification:
    return status_notification(
        "recovered", NOW, away_s=754.0, kills_caught_up=3, detail="wanderer-kills was unreachable"
    )


def alert_raised() -> Notification:
    return alert_notification(
        "connection:kills",
        "critical",
        "raised",
        "kills: no heartbeat reply for 62 s",
        first_seen=NOW - 62,
        at=NOW,
    )


CASES: dict[str, Callable[[], Notification]] = {
    "solo_kill": solo_kill,
    "fleet_kill": fleet_kill,
    "loss": loss,
    "npc_final_blow": npc_final_blow,
    "c4_with_statics_and_effect": c4_with_statics_and_effect,
    "shattered_c5": shattered_c5,
    "kspace_system": kspace_system,
    "character": character,
    "rally_point": rally_point,
    "status_message": status_message,
    "alert_raised": alert_raised,
}


def rendered(notification: Notification) -> dict[str, Any]:
    return {
        "discord": message_payload(notification),
        "console": console_line(notification, colour=False),
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_card_matches_its_golden_file(name: str) -> None:
    actual = rendered(CASES[name]())
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(actual, option=orjson.OPT_INDENT_2) + b"\n")
    assert actual == orjson.loads(path.read_bytes())


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_card_fits_discords_limits_and_pings_nobody(name: str) -> None:
    payload = message_payload(CASES[name]())
    assert_within_limits(payload)
    assert payload["allowed_mentions"] == {"parse": []}
    assert "content" not in payload


def test_a_loss_and_a_kill_are_told_apart_by_label_and_colour() -> None:
    lost, killed = message_payload(loss())["embeds"][0], message_payload(solo_kill())["embeds"][0]
    assert lost["author"]["name"] == "Loss \u2022 Aria Vance"
    assert lost["color"] == RED
    assert killed["author"]["name"] == "Kill \u2022 Bren Osk"
    assert killed["color"] == GREEN
    assert console_line(loss(), colour=False).startswith("LOSS ")


def test_a_kill_without_tracked_pilots_takes_its_value_band_colour() -> None:
    details = fleet_kill().details
    assert isinstance(details, KillDetails)
    assert details.role is KillRole.NEUTRAL
    assert message_payload(fleet_kill())["embeds"][0]["color"] == 0xFEE75C  # 100M-1B: yellow


def test_top_damage_is_named_only_when_someone_else_dealt_it() -> None:
    assert "Top damage: [Mara Quist]" in message_payload(fleet_kill())["embeds"][0]["description"]
    assert "Top damage" not in message_payload(solo_kill())["embeds"][0]["description"]


def test_a_system_card_links_dotlan_by_the_eve_name_not_the_maps_name() -> None:
    embed = message_payload(c4_with_statics_and_effect())["embeds"][0]
    assert embed["url"] == "https://evemaps.dotlan.net/system/J100005"
    assert embed["description"].startswith("**Home Hole** (J100005) was added")


def test_a_system_without_static_info_degrades_to_its_name() -> None:
    notification = decide_map(
        "add_system", {"solar_system_id": HOME, "name": "Home Hole"}, NO_STATIC_INFO
    )
    embed = message_payload(notification)["embeds"][0]
    assert embed["title"] == "New system: Home Hole"
    assert "fields" not in embed
    assert "url" not in embed
    assert embed["footer"]["text"].endswith("static info not available yet")


def test_hostile_names_cannot_format_the_card_or_ping() -> None:
    data = killmail(
        pilot(
            2117500001, "@everyone **x** [y](https://evil)", ("<@&1> `c`", "<@1>"), ("Rifter", 587)
        ),
        [
            pilot(
                OUR_WINGMAN,
                "||spoiler||",
                ("# head", "~~s~~"),
                ("> q", 11993),
                damage=1,
                final_blow=True,
            )
        ],
    )
    description = message_payload(decide_kill(data))["embeds"][0]["description"]
    assert "\\@everyone \\*\\*x\\*\\* \\[y\\](https://evil)" in description
    assert "\\[\\<\\@1\\>\\]" in description
    assert "\\|\\|spoiler\\|\\|" in description


def test_a_mention_is_added_with_exactly_its_permission() -> None:
    payload = with_mention(message_payload(loss()), "<@&42>", {"roles": ["42"]})
    assert payload["content"] == "<@&42>"
    assert payload["allowed_mentions"] == {"roles": ["42"]}
    assert payload["embeds"] == message_payload(loss())["embeds"]


def test_a_structure_loss_names_its_owner_corporation() -> None:
    structure = {"corporation_id": 98000077, "corporation_name": "Hole Control",
                 "ship_type_id": 35832, "ship_name": "Astrahus"}  # fmt: skip
    shooter = pilot(2117500050, "Siege Lead", ("Pipe Bombers", "PIPE"), ("Dreadnought", 19720),
                    damage=1_000_000, final_blow=True)  # fmt: skip
    notification = decide_kill(killmail(structure, [shooter], value=2_100_000_000.0))
    description = message_payload(notification)["embeds"][0]["description"]
    assert description.startswith(
        "[Hole Control](https://zkillboard.com/corporation/98000077/) lost an **Astrahus** to"
    )
    assert "Hole Control lost an Astrahus to Siege Lead" in console_line(notification, colour=False)
