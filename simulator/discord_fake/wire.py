"""The Discord fake's wire: message bodies as Discord checks them, and answers.

:func:`form_errors` gives Discord's nested ``errors`` object for a body past
its size limits; :func:`pings` says whom a message pings; an :class:`Answer`
is what the HTTP side writes back (or a connection closed without one).
No state lives here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER_TEXT = 2048
MAX_AUTHOR_NAME = 256
MAX_EMBEDS_TOTAL = 6000
MAX_NONCE = 25
MAX_BODY_BYTES = 8 * 1024 * 1024

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """What to write back: a status, a body and headers, after ``delay_s`` (real
    time); or, with ``close_without_answer``, a connection reset instead."""

    status: int
    body: bytes = b""
    headers: Headers = ()
    content_type: str = "application/json"
    delay_s: float = 0.0
    close_without_answer: bool = False


def json_answer(status: int, body: Mapping[str, Any], headers: Headers = ()) -> Answer:
    """A JSON answer."""
    return Answer(status, orjson.dumps(body), headers)


def too_many(retry_after: float, *, is_global: bool, scope: str, headers: Headers) -> Answer:
    """Discord's 429: ``retry_after`` and ``global`` in the body, ``Retry-After`` and
    ``X-RateLimit-Scope`` (and ``X-RateLimit-Global``) in the headers."""
    retry_after = max(0.0, round(retry_after, 3))
    extra = [("Retry-After", str(math.ceil(retry_after))), ("X-RateLimit-Scope", scope)]
    if is_global:
        extra.append(("X-RateLimit-Global", "true"))
    body = {
        "message": "You are being rate limited.",
        "retry_after": retry_after,
        "global": is_global,
    }
    return json_answer(429, body, (*headers, *extra))


def decode(body: bytes) -> Any:
    """The JSON of a request body, ``None`` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def invalid(payload: Any, headers: Headers) -> Answer | None:
    """The 400 Discord answers a message body with (invalid JSON, past a limit, empty),
    or ``None`` for a valid one."""
    if not isinstance(payload, dict):
        return json_answer(
            400, {"message": "The request body contains invalid JSON.", "code": 50109}, headers
        )
    errors = form_errors(payload)
    if errors:
        body = {"code": 50035, "message": "Invalid Form Body", "errors": errors}
        return json_answer(400, body, headers)
    if not payload.get("content") and not payload.get("embeds"):
        return json_answer(400, {"message": "Cannot send an empty message", "code": 50006}, headers)
    return None


def form_errors(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Discord's nested ``errors`` object for a message body ({} when valid).

    Checks the documented limits: content 2000; 10 embeds; title 256,
    description 4096, 25 fields, field name 256 and value 1024, footer text
    2048, author name 256; 6000 characters over all embeds together; a nonce
    of at most 25 characters.
    """
    errors: dict[str, Any] = {}
    content = payload.get("content")
    if content is not None:
        _check_text(errors, ("content",), content, MAX_CONTENT)
    nonce = payload.get("nonce")
    if nonce is not None and not (isinstance(nonce, int) and not isinstance(nonce, bool)):
        _check_text(errors, ("nonce",), nonce, MAX_NONCE)
    embeds = payload.get("embeds")
    if embeds is None:
        return errors
    if not isinstance(embeds, list):
        _add_error(errors, ("embeds",), "BASE_TYPE_ARRAY_TYPE", "Must be an array.")
        return errors
    if len(embeds) > MAX_EMBEDS:
        _add_error(errors, ("embeds",), *_max_length(MAX_EMBEDS))
    total = 0
    for index, embed in enumerate(embeds):
        total += _check_embed(errors, ("embeds", str(index)), embed)
    if total > MAX_EMBEDS_TOTAL:
        message = f"Embed size exceeds maximum size of {MAX_EMBEDS_TOTAL}"
        _add_error(errors, ("embeds",), "MAX_EMBED_SIZE_EXCEEDED", message)
    return errors


def _check_embed(errors: dict[str, Any], path: tuple[str, ...], embed: Any) -> int:
    """Record the embed's errors; return the characters it counts toward 6000."""
    if not isinstance(embed, Mapping):
        _add_error(errors, path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a Model.")
        return 0
    total = 0
    for name, limit in (("title", MAX_TITLE), ("description", MAX_DESCRIPTION)):
        if embed.get(name) is not None:
            total += _check_text(errors, (*path, name), embed[name], limit)
    for part, name, limit in (
        ("footer", "text", MAX_FOOTER_TEXT),
        ("author", "name", MAX_AUTHOR_NAME),
    ):
        value = embed.get(part)
        if isinstance(value, Mapping) and value.get(name) is not None:
            total += _check_text(errors, (*path, part, name), value[name], limit)
    fields = embed.get("fields")
    if fields is not None:
        total += _check_fields(errors, (*path, "fields"), fields)
    return total


def _check_fields(errors: dict[str, Any], path: tuple[str, ...], fields: Any) -> int:
    if not isinstance(fields, list):
        _add_error(errors, path, "BASE_TYPE_ARRAY_TYPE", "Must be an array.")
        return 0
    total = 0
    if len(fields) > MAX_FIELDS:
        _add_error(errors, path, *_max_length(MAX_FIELDS))
    for index, field in enumerate(fields):
        where = (*path, str(index))
        if not isinstance(field, Mapping):
            _add_error(
                errors, where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a Model."
            )
            continue
        for name, limit in (("name", MAX_FIELD_NAME), ("value", MAX_FIELD_VALUE)):
            if field.get(name) is None:
                _add_error(errors, (*where, name), "BASE_TYPE_REQUIRED", "This field is required")
            else:
                total += _check_text(errors, (*where, name), field[name], limit)
    return total


def _check_text(errors: dict[str, Any], path: tuple[str, ...], value: Any, limit: int) -> int:
    if not isinstance(value, str):
        _add_error(errors, path, "BASE_TYPE_STRING", "Could not interpret the value as string.")
        return 0
    if len(value) > limit:
        _add_error(errors, path, *_max_length(limit))
    return len(value)


def _max_length(limit: int) -> tuple[str, str]:
    return "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."


def _add_error(errors: dict[str, Any], path: tuple[str, ...], code: str, message: str) -> None:
    node = errors
    for part in path:
        node = node.setdefault(part, {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def pings(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Who a message pings, as Discord decides it: ``mention_everyone`` and ``mention_roles``.

    Only the content pings (never embeds). Without ``allowed_mentions`` every
    mention in the content pings; with it, ``@everyone``/``@here`` ping only if
    its ``parse`` has ``everyone``, and a role only if ``parse`` has ``roles``
    or its ``roles`` list names it.
    """
    content = payload.get("content")
    text = content if isinstance(content, str) else ""
    allowed = payload.get("allowed_mentions")
    parse = allowed.get("parse", []) if isinstance(allowed, Mapping) else None
    listed = allowed.get("roles", []) if isinstance(allowed, Mapping) else []
    everyone = "@everyone" in text or "@here" in text
    roles = [
        role
        for role in dict.fromkeys(_ROLE_MENTION.findall(text))
        if parse is None or "roles" in parse or role in listed
    ]
    return {
        "mention_everyone": everyone and (parse is None or "everyone" in parse),
        "mention_roles": roles,
    }
