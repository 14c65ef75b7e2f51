from __future__ import annotations

import copy
import unicodedata
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.event import Priority
from realtime.notifications import (
    CharacterDetails,
    KillDetails,
    Notification,
    NotificationKind,
    Pilot,
    RallyPointDetails,
    SystemDetails,
)
from realtime.render import console_line, message_payload
from realtime.render.cards import embed_for, kill_embed
from realtime.render.limits import ELLIPSIS, EMPTY_FIELD, discord_length, fit_to_limits, truncate
from realtime.render.text import GREEN, GREY, ORANGE, RED, YELLOW, format_isk, value_colour

LIMITS = {
    "content": 2000,
    "embeds": 10,
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field_name": 256,
    "field_value": 1024,
    "footer": 2048,
    "author": 256,
    "total": 6000,
}


def assert_within_limits(payload: dict[str, Any]) -> None:
    """Every Discord size limit, counted in UTF-16 units (never fewer than code points)."""
    orjson.dumps(payload)  # no lone surrogates: the body can be sent at all
    assert discord_length(payload.get("content", "")) <= LIMITS["content"]
    assert payload.get("content") != ""
    embeds = payload.get("embeds", [])
    assert len(embeds) <= LIMITS["embeds"]
    total = 0
    for embed in embeds:
        assert embed.get("title", None) != ""
        assert embed.get("description", None) != ""
        title = embed.get("title", "")
        description = embed.get("description", "")
        assert discord_length(title) <= LIMITS["title"]
        assert discord_length(description) <= LIMITS["description"]
        total += discord_length(title) + discord_length(description)
        if "footer" in embed:
            assert embed["footer"]["text"]
            assert discord_length(embed["footer"]["text"]) <= LIMITS["footer"]
            total += discord_length(embed["footer"]["text"])
        if "author" in embed:
            assert embed["author"]["name"]
            assert discord_length(embed["author"]["name"]) <= LIMITS["author"]
            total += discord_length(embed["author"]["name"])
        fields = embed.get("fields", [])
        assert len(fields) <= LIMITS["fields"]
        for field in fields:
            assert field["name"]
            assert field["value"]
            assert discord_length(field["name"]) <= LIMITS["field_name"]
            assert discord_length(field["value"]) <= LIMITS["field_value"]
            total += discord_length(field["name"]) + discord_length(field["value"])
    assert total <= LIMITS["total"]


def kill(
    *,
    name: str = "Example Pilot",
    attackers: int = 1,
    value: float = 12_500_000.0,
    tracked_pilots: int = 0,
) -> Notification:
    victim = Pilot(
        character_id=2117000001,
        name=name,
        corporation_name=name,
        ship_type_id=587,
        ship_name="Rifter",
    )
    shooter = Pilot(character_id=2117000002, name=name, ship_name=name)
    details = KillDetails(
        killmail_id=123456789,
        kill_time=1_800_000_000.0,
        system_id=31000005,
        system_name="J100005",
        victim=victim,
        final_blow=shooter,
        attacker_count=attackers,
        value_isk=value,
        tracked_system=True,
        victim_tracked=False,
        tracked_pilots=tuple(
            Pilot(character_id=2117000100 + i, name=f"{name}{i}") for i in range(tracked_pilots)
        ),
    )
    return Notification(
        key="kill:123456789",
        kind=NotificationKind.KILL,
        seq=1,
        time=details.kill_time,
        title=f"Rifter destroyed in {name}",
        details=details,
        priority=Priority.NORMAL,
    )


def map_notification(kind: NotificationKind, text: str = "J100005") -> Notification:
    details: SystemDetails | CharacterDetails | RallyPointDetails
    if kind is NotificationKind.SYSTEM_ADDED:
        details = SystemDetails("home", 31000005, text)
    elif kind is NotificationKind.RALLY_POINT:
        details = RallyPointDetails("home", "rp-1", 31000005, text, 2117000001, text, text)
    else:
        details = CharacterDetails("home", 2117000001, text, None, None, None, 31000005, text)
    return Notification(
        key="k", kind=kind, seq=1, time=1_800_000_000.0, title=text, details=details,
        priority=Priority.NORMAL,
    )  # fmt: skip


# -- numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1_250_000_000, "1.25B"),
        (340_500_000, "340.5M"),
        (12_000, "12.0K"),
        (12_500_000, "12.5M"),
        (950, "950"),
        (0, "0"),
        (999.6, "1.0K"),
        (999_960_000, "1.00B"),
        (999_940, "999.9K"),
        (125_000_000_000, "125.00B"),
        (-5, "0"),
        (float("nan"), "0"),
        (float("inf"), "0"),
    ],
)
def test_isk_is_formatted_for_people(value: float, text: str) -> None:
    assert format_isk(value) == text


@pytest.mark.parametrize(
    ("value", "colour"),
    [
        (5e9, RED),
        (4_999_999_999, ORANGE),
        (1e9, ORANGE),
        (999_999_999, YELLOW),
        (1e8, YELLOW),
        (99_999_999, GREEN),
        (1e7, GREEN),
        (9_999_999, GREY),
        (0, GREY),
    ],
)
def test_value_bands_give_the_embed_colour(value: float, colour: int) -> None:
    assert value_colour(value) == colour


# -- embeds ----------------------------------------------------------------------


def test_kill_embed_shows_victim_final_blow_attackers_value_and_links() -> None:
    embed = kill_embed(kill(attackers=7, value=1_250_000_000))
    assert embed["url"] == "https://zkillboard.com/kill/123456789/"
    assert embed["thumbnail"] == {"url": "https://images.evetech.net/types/587/render?size=128"}
    assert embed["color"] == ORANGE
    assert embed["author"] == {"name": "Kill in J100005"}
    assert embed["timestamp"] == "2027-01-15T08:00:00Z"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Value"] == "1.25B ISK"
    assert fields["When"] == "<t:1800000000:R>"
    assert fields["System"] == "[J100005](https://zkillboard.com/system/31000005/)"
    assert embed["description"] == (
        "[Example Pilot](https://zkillboard.com/character/2117000001/) lost a **Rifter** to "
        "[Example Pilot](https://zkillboard.com/character/2117000002/) in an **Example Pilot** "
        "and 6 others."
    )


def test_kill_embed_lists_our_pilots_and_escapes_their_markdown() -> None:
    embed = kill_embed(kill(name="*bold*", tracked_pilots=2))
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Our pilots"] == (
        "[\\*bold\\*0](https://zkillboard.com/character/2117000100/), "
        "[\\*bold\\*1](https://zkillboard.com/character/2117000101/)"
    )


def test_message_payload_has_one_embed_no_mentions_and_no_nonce() -> None:
    payload = message_payload(kill())
    assert set(payload) == {"embeds", "allowed_mentions"}
    assert payload["allowed_mentions"] == {"parse": []}
    assert len(payload["embeds"]) == 1


@pytest.mark.parametrize(
    "kind",
    [
        NotificationKind.SYSTEM_ADDED,
        NotificationKind.CHARACTER_ADDED,
        NotificationKind.CHARACTER_REMOVED,
        NotificationKind.RALLY_POINT,
    ],
)
def test_map_notifications_render_and_fit(kind: NotificationKind) -> None:
    embed = embed_for(map_notification(kind))
    assert "J100005" in embed["description"] or "J100005" in str(embed.get("fields"))
    assert_within_limits(message_payload(map_notification(kind, "x" * 10_000)))
    with pytest.raises(TypeError):
        kill_embed(map_notification(kind))


def test_rally_message_is_quoted_in_the_description_and_cannot_ping_everyone() -> None:
    payload = message_payload(map_notification(NotificationKind.RALLY_POINT, "@everyone up"))
    assert payload["embeds"][0]["description"].endswith("\n> \\@everyone up")
    assert payload["allowed_mentions"] == {"parse": []}
    assert "content" not in payload


def test_kill_with_200_attackers_and_256_character_names_fits() -> None:
    name = "\U0001f680" + "N" * 254 + "\u0301"
    payload = message_payload(kill(name=name * 2, attackers=200, tracked_pilots=200))
    assert_within_limits(payload)
    fields = {field["name"]: field["value"] for field in payload["embeds"][0]["fields"]}
    assert fields["Value"] == "12.5M ISK"
    assert payload["embeds"][0]["description"].endswith("and 199 others.")


# -- truncation ------------------------------------------------------------------


def test_truncate_keeps_short_text_and_cuts_long_text_with_an_ellipsis() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcd", 3) == "ab" + ELLIPSIS
    assert truncate("abcd", 0) == ""
    assert truncate("ab   cd", 5) == "ab" + ELLIPSIS


def test_truncate_never_splits_a_surrogate_pair() -> None:
    text = "a" + "\U0001f600" * 10
    cut = truncate(text, 3)
    assert cut == "a" + ELLIPSIS
    assert discord_length(cut) <= 3


def test_truncate_keeps_combining_marks_with_their_base() -> None:
    text = "e\u0301" * 10
    cut = truncate(text, 4)
    assert cut == "e\u0301" + ELLIPSIS


def test_truncate_keeps_emoji_zwj_sequences_and_flags_whole() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert truncate("x" + family + "yyyy", 8) == "x" + ELLIPSIS
    flags = "\U0001f1eb\U0001f1f7" * 3
    cut = truncate(flags, 7)
    assert cut == flags[:2] + ELLIPSIS
    assert truncate(flags, 9) == flags[:4] + ELLIPSIS


def test_truncate_keeps_hangul_jamo_and_crlf_together() -> None:
    assert truncate("a\u1100\u1161\u11a8bbbb", 4) == "a" + ELLIPSIS
    assert truncate("abc\r\ndef", 5) == "abc" + ELLIPSIS


def test_lone_surrogates_become_replacement_characters() -> None:
    assert truncate("a\ud800b", 10) == "a\ufffdb"
    assert truncate("\ud83d\ude00", 10) == "\U0001f600"


# -- fitting ---------------------------------------------------------------------


def test_payload_exactly_at_every_limit_is_unchanged() -> None:
    embed = {
        "title": "t" * 256,
        "description": "d" * 3000,
        "fields": [{"name": "n", "value": "v" * 100} for _ in range(25)],
        "footer": {"text": "f" * 200},
        "author": {"name": "a" * 19},
    }
    assert sum([256, 3000, 25 * 101, 200, 19]) == 6000
    payload = {"content": "c" * 2000, "embeds": [embed]}
    assert fit_to_limits(payload) == payload


def test_payload_one_over_every_limit_is_cut_to_fit() -> None:
    embed = {
        "title": "t" * 257,
        "description": "d" * 4097,
        "fields": [{"name": "n" * 257, "value": "v" * 1025} for _ in range(26)],
        "footer": {"text": "f" * 2049},
        "author": {"name": "a" * 257},
    }
    payload = {"content": "c" * 2001, "embeds": [copy.deepcopy(embed) for _ in range(11)]}
    fitted = fit_to_limits(payload)
    assert_within_limits(fitted)
    assert fitted["content"] == "c" * 1999 + ELLIPSIS
    assert len(fitted["embeds"]) == 10
    first = fitted["embeds"][0]
    assert first["title"] == "t" * 255 + ELLIPSIS
    assert payload["embeds"][0] == embed  # the input is untouched


def test_the_last_embeds_lose_text_first_when_the_total_is_too_long() -> None:
    embeds = [{"title": "first", "description": "a" * 4000}, {"description": "b" * 4000}]
    fitted = fit_to_limits({"embeds": embeds})
    assert_within_limits(fitted)
    assert fitted["embeds"][0]["description"] == "a" * 4000
    assert fitted["embeds"][1]["description"].endswith(ELLIPSIS)


def test_empty_or_missing_field_text_becomes_a_zero_width_space() -> None:
    fitted = fit_to_limits({"embeds": [{"fields": [{"name": "", "value": None}, "junk"]}]})
    assert fitted["embeds"][0]["fields"] == [{"name": EMPTY_FIELD, "value": EMPTY_FIELD}]


def test_empty_texts_and_footers_or_authors_without_text_are_dropped() -> None:
    embed = {"title": "", "description": None, "footer": {"icon_url": "x"}, "author": {"name": ""}}
    fitted = fit_to_limits({"content": "", "embeds": [embed, "junk"], "tts": False})
    assert fitted == {"embeds": [{}], "tts": False}


unicode_text = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.characters(categories=["Cs"]),
        st.sampled_from(["\u0301", "\u200d", "\U0001f1eb", "\U0001f600", "\r", "\n", "\u1161"]),
    ),
    max_size=40,
).map(lambda chunk: chunk * 200)
"""Strings up to 8000 code points of any kind, lone surrogates and extenders included."""

fields = st.lists(
    st.fixed_dictionaries({"name": unicode_text, "value": unicode_text, "inline": st.booleans()}),
    max_size=30,
)
embeds = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "title": unicode_text,
            "description": unicode_text,
            "fields": fields,
            "footer": st.fixed_dictionaries({"text": unicode_text}),
            "author": st.fixed_dictionaries({"name": unicode_text}),
        },
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.fixed_dictionaries({"embeds": embeds}, optional={"content": unicode_text}))
def test_any_payload_of_long_unicode_strings_fits_every_limit(payload: dict[str, Any]) -> None:
    assert_within_limits(fit_to_limits(payload))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(unicode_text, st.integers(min_value=0, max_value=300))
def test_truncation_is_a_clean_prefix_plus_an_ellipsis(text: str, limit: int) -> None:
    cut = truncate(text, limit)
    assert discord_length(cut) <= limit
    clean = truncate(text, 10**6)
    if cut != clean:
        assert cut == "" or cut.endswith(ELLIPSIS)
        kept = cut.removesuffix(ELLIPSIS)
        assert clean.startswith(kept)
        if kept:
            # a mark after a control character is a cluster of its own (UAX #29 GB4)
            if unicodedata.category(kept[-1]) != "Cc":
                assert unicodedata.category(clean[len(kept)]) not in {"Mn", "Me", "Mc"}
            assert not kept[-1].isspace()
            assert kept[-1] != "\u200d"


# -- console ---------------------------------------------------------------------


def test_console_line_is_plain_unless_colour_is_asked() -> None:
    plain = console_line(kill(value=6e9), colour=False)
    coloured = console_line(kill(value=6e9), colour=True)
    assert "\x1b" not in plain
    assert coloured.startswith("\x1b[31m")
    assert plain.startswith("KILL")
    assert "6.00B ISK" in plain
    assert "https://zkillboard.com/kill/123456789/" in plain


def test_console_line_strips_terminal_escapes_and_line_breaks_from_names() -> None:
    line = console_line(kill(name="evil\x1b[2J\nname\u202e"), colour=False)
    assert "\x1b" not in line
    assert "\n" not in line
    assert "\u202e" not in line
    assert "evil [2J name" in line


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        (NotificationKind.SYSTEM_ADDED, "SYSTEM"),
        (NotificationKind.CHARACTER_ADDED, "CHARACTER"),
        (NotificationKind.CHARACTER_REMOVED, "CHARACTER"),
        (NotificationKind.RALLY_POINT, "RALLY"),
    ],
)
def test_console_line_labels_map_notifications_and_bounds_their_text(
    kind: NotificationKind, label: str
) -> None:
    line = console_line(map_notification(kind, "m" * 5000), colour=False)
    assert line.startswith(label)
    assert len(line) < 1000
