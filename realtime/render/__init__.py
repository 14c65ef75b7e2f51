"""Rendering notifications: Discord message bodies and console lines.

:func:`message_payload` builds the JSON body of a Discord message (without the
``nonce``: the sender adds it) from the card of the notification's kind
(:mod:`realtime.render.cards`) and always passes it through
:func:`~realtime.render.limits.fit_to_limits`, so that no message is ever
refused for its size. :func:`console_lines` renders the same facts as one
readable terminal line (:mod:`realtime.render.console`).

Every message disables mention parsing (``allowed_mentions: {"parse": []}``)
and carries no ``content``: names and rally point messages come from other
people, and must not ping anyone. A route that is configured to ping adds its
mention to ``content`` and widens ``allowed_mentions`` to exactly that
mention (see :func:`with_mention`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from realtime.notifications import Notification
from realtime.render.cards import embed_for
from realtime.render.console import console_line, console_lines
from realtime.render.limits import fit_to_limits, truncate
from realtime.render.text import format_isk, value_colour

NO_MENTIONS: Mapping[str, Any] = {"parse": []}


def message_payload(notification: Notification) -> dict[str, Any]:
    """The JSON body of the Discord message for ``notification``, within every size limit.

    Contains ``embeds`` (one) and ``allowed_mentions`` (none); the sender adds
    ``nonce`` and ``enforce_nonce`` in bot mode.
    """
    return fit_to_limits({"embeds": [embed_for(notification)], "allowed_mentions": NO_MENTIONS})


def with_mention(
    payload: Mapping[str, Any], content: str, allowed_mentions: Mapping[str, Any]
) -> dict[str, Any]:
    """``payload`` with ``content`` (a mention) and the ``allowed_mentions`` that let
    exactly it ping, fitted to the limits again."""
    return fit_to_limits(
        {**payload, "content": content, "allowed_mentions": dict(allowed_mentions)}
    )


__all__ = [
    "NO_MENTIONS",
    "console_line",
    "console_lines",
    "fit_to_limits",
    "format_isk",
    "message_payload",
    "truncate",
    "value_colour",
    "with_mention",
]
