"""Discord's size limits, and making any message body fit them.

:func:`fit_to_limits` makes any payload fit Discord's size limits (a 400 with
code 50035 otherwise), so that no message is ever refused however long the
names in a killmail are or however many pilots it lists.

Lengths are counted in UTF-16 code units, which is never less than the count
of code points, so a payload that fits by this measure fits whichever way
Discord counts. Truncation cuts on grapheme cluster boundaries (a base
character stays with its combining marks, an emoji ZWJ sequence, a flag's two
regional indicators, a Hangul syllable's jamo, CR LF stay whole) and ends
with an ellipsis; lone surrogates, which cannot be encoded as JSON text,
become U+FFFD.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any, TypeGuard

CONTENT_LIMIT = 2000
EMBEDS_LIMIT = 10
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_NAME_LIMIT = 256
EMBEDS_TOTAL_LIMIT = 6000

ELLIPSIS = "\u2026"
_ZWJ = "\u200d"
EMPTY_FIELD = "\u200b"
"""A zero-width space: Discord refuses empty field names and values."""


# -- Text measurement and grapheme-safe truncation ----------------------------


def clean(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def discord_length(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (an upper bound of Discord's count)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _extends(char: str) -> bool:
    """Whether ``char`` continues the grapheme cluster before it (UAX #29, conservatively)."""
    code = ord(char)
    return (
        unicodedata.category(char) in {"Mn", "Me", "Mc"}
        or char == _ZWJ
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences
        or 0x1160 <= code <= 0x11FF  # Hangul medial vowels and final consonants
        or 0xD7B0 <= code <= 0xD7FF
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _is_hangul_leading(char: str) -> bool:
    code = ord(char)
    return 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97C


def _is_boundary(text: str, index: int) -> bool:
    """Whether a grapheme cluster may end between ``text[index - 1]`` and ``text[index]``."""
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if unicodedata.category(before) == "Cc" or unicodedata.category(after) == "Cc":
        return True
    if before == _ZWJ or _extends(after):
        return False
    if _is_hangul_leading(before) and (_is_hangul_leading(after) or 0xAC00 <= ord(after) <= 0xD7A3):
        return False
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        while run < index and _is_regional_indicator(text[index - 1 - run]):
            run += 1
        return run % 2 == 0
    return True


def truncate(text: str, limit: int) -> str:
    """``text`` cleaned and, if longer than ``limit`` UTF-16 units, cut to fit with an ellipsis.

    The cut falls on a grapheme cluster boundary, before trailing whitespace;
    the result, ellipsis included, is at most ``limit`` units long ("" for a
    limit of 0).
    """
    text = clean(text)
    if discord_length(text) <= limit:
        return text
    if limit <= 0:
        return ""
    budget = limit - discord_length(ELLIPSIS)
    cut, used = 0, 0
    for char in text[:budget]:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            break
        cut += 1
    while cut > 0 and not _is_boundary(text, cut):
        cut -= 1
    # whitespace and a dangling joiner before the ellipsis would only look broken
    while cut > 0 and (text[cut - 1].isspace() or text[cut - 1] == _ZWJ):
        cut -= 1
    return text[:cut] + ELLIPSIS


# -- Fitting a payload to Discord's limits -------------------------------------


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _fit_slot(holder: dict[str, Any], name: str, limit: int) -> None:
    """Cut ``holder[name]`` to ``limit``; remove it if it is ``None`` or empty."""
    text = truncate(_as_text(holder.get(name)) or "", limit)
    if text:
        holder[name] = text
    else:
        holder.pop(name, None)


def _fit_named(embed: dict[str, Any], part: str, key: str, limit: int) -> None:
    """Fit a sub-object's text (``footer.text``, ``author.name``); drop it if it has none."""
    value = embed.get(part)
    if value is None:
        embed.pop(part, None)
        return
    holder = dict(value) if isinstance(value, Mapping) else {key: value}
    _fit_slot(holder, key, limit)
    if holder.get(key):
        embed[part] = holder
    else:
        embed.pop(part)


def _is_table(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(value, Mapping)


def _fit_field(field: Mapping[str, Any]) -> dict[str, Any]:
    fitted = dict(field)
    for key, limit in (("name", FIELD_NAME_LIMIT), ("value", FIELD_VALUE_LIMIT)):
        text = truncate(_as_text(fitted.get(key)) or "", limit)
        fitted[key] = text or EMPTY_FIELD
    return fitted


def _fit_embed(embed: Mapping[str, Any]) -> dict[str, Any]:
    fitted = dict(embed)
    for key, limit in (("title", TITLE_LIMIT), ("description", DESCRIPTION_LIMIT)):
        if key in fitted:
            _fit_slot(fitted, key, limit)
    if "footer" in fitted:
        _fit_named(fitted, "footer", "text", FOOTER_LIMIT)
    if "author" in fitted:
        _fit_named(fitted, "author", "name", AUTHOR_NAME_LIMIT)
    if "fields" in fitted:
        raw_fields = fitted["fields"]
        fields = [f for f in (raw_fields if isinstance(raw_fields, list) else ()) if _is_table(f)]
        fitted["fields"] = [_fit_field(field) for field in fields[:FIELDS_LIMIT]]
    return fitted


def _embed_length(embed: Mapping[str, Any]) -> int:
    """The characters of ``embed`` that count towards the 6000 limit."""
    total = discord_length(embed.get("title", "")) + discord_length(embed.get("description", ""))
    total += discord_length(embed.get("footer", {}).get("text", ""))
    total += discord_length(embed.get("author", {}).get("name", ""))
    for field in embed.get("fields", ()):
        total += discord_length(field["name"]) + discord_length(field["value"])
    return total


def _shrink(holder: dict[str, Any], key: str, excess: int) -> bool:
    """Shorten ``holder[key]`` by at least ``excess`` units; remove it if emptied.

    Returns whether any text is left.
    """
    text = holder[key]
    shorter = truncate(text, max(discord_length(text) - excess, 0))
    if shorter:
        holder[key] = shorter
        return True
    del holder[key]
    return False


def _fit_total(embeds: list[dict[str, Any]]) -> None:
    """Shorten the embeds, least important text first, until they fit 6000 in all.

    Per embed from the last: the description, then field values and whole
    fields from the last, then footer, author and title.
    """

    def excess() -> int:
        return sum(_embed_length(embed) for embed in embeds) - EMBEDS_TOTAL_LIMIT

    for embed in reversed(embeds):
        if excess() > 0 and "description" in embed:
            _shrink(embed, "description", excess())
        fields: list[dict[str, Any]] = embed.get("fields", [])
        while excess() > 0 and fields:
            value_length = discord_length(fields[-1]["value"])
            if value_length - excess() >= 2:
                _shrink(fields[-1], "value", excess())
            else:
                fields.pop()
        for part, key in (("footer", "text"), ("author", "name")):
            # Discord refuses a footer or author without its text
            if excess() > 0 and part in embed and not _shrink(embed[part], key, excess()):
                del embed[part]
        if excess() > 0 and "title" in embed:
            _shrink(embed, "title", excess())
        if excess() <= 0:
            return


def fit_to_limits(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a message body that fits every Discord size limit.

    ``content`` is cut to 2000; only the first 10 embeds are kept; in each
    embed title, description, footer text, author name, field names and
    values are cut to their limits (empty field names and values become a
    zero-width space, as Discord refuses empty ones), only the first 25 fields
    are kept; then, if the embeds' text exceeds 6000 in all, the least
    important text is shortened (see ``_fit_total``). Text values that are not
    strings are converted with ``str``; ``None`` or empty text removes the
    entry (a footer or author without text goes whole). Embeds and fields that
    are not tables are dropped; other keys are kept as they are. The input is
    not modified.
    """
    fitted = dict(payload)
    if "content" in fitted:
        _fit_slot(fitted, "content", CONTENT_LIMIT)
    if "embeds" in fitted:
        raw_embeds = fitted["embeds"]
        tables = [e for e in (raw_embeds if isinstance(raw_embeds, list) else ()) if _is_table(e)]
        embeds = [_fit_embed(embed) for embed in tables[:EMBEDS_LIMIT]]
        _fit_total(embeds)
        fitted["embeds"] = embeds
    return fitted
