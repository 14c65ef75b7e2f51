"""Reading Discord's answers within bounds: the body (at most
:data:`MAX_ANSWER_BYTES`), its JSON object, and a short reason that names the
fields Discord refused (its nested ``errors`` walked within
:data:`MAX_ERROR_DEPTH` levels and :data:`MAX_ERROR_NODES` nodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import requests

MAX_ANSWER_BYTES = 1 << 20


MAX_REASON = 400


MAX_ERROR_DEPTH = 32
"""Levels of an answer's ``errors`` object read for the reason (Discord's are a few deep)."""


MAX_ERROR_NODES = 1000
"""Nodes of an answer's ``errors`` object read for the reason."""


_MAX_PROBLEMS = 5


def read_bounded(response: requests.Response) -> bytes:
    """The answer's body, or its first ``MAX_ANSWER_BYTES + 1`` bytes when longer."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)


def json_object(content: bytes) -> Mapping[str, Any] | None:
    if not content or len(content) > MAX_ANSWER_BYTES:
        return None
    try:
        decoded = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


def describe(status: int, answer: Mapping[str, Any] | None) -> tuple[str, bool]:
    """``HTTP 400: Invalid Form Body (code 50035); embeds.0.title: Must be ...``.

    Returns the text and whether the ``errors`` tree was cut short (deeper
    than :data:`MAX_ERROR_DEPTH` or wider than :data:`MAX_ERROR_NODES`).
    """
    if answer is None:
        return f"HTTP {status}", False
    text = f"HTTP {status}: {answer.get('message', '')} (code {answer.get('code', '?')})"
    problems, bounded = _problems(answer.get("errors"))
    if problems:
        text += "; " + "; ".join(problems)
    return clip(text), bounded


def _problems(errors: Any) -> tuple[list[str], bool]:
    """Up to five ``path: message`` of Discord's nested ``errors`` object, depth first.

    Walked with an explicit stack (a hostile answer nested thousands deep
    cannot exhaust Python's) and within :data:`MAX_ERROR_DEPTH` levels and
    :data:`MAX_ERROR_NODES` nodes; also returns whether a bound cut it short.
    """
    found: list[str] = []
    bounded = False
    stack: list[tuple[Any, tuple[str, ...]]] = [(errors, ())]
    visited = 0
    while stack and len(found) < _MAX_PROBLEMS:
        node, path = stack.pop()
        visited += 1
        if visited > MAX_ERROR_NODES:
            return found, True
        if not isinstance(node, Mapping):
            continue
        if len(path) >= MAX_ERROR_DEPTH:
            bounded = True
            continue
        children = []
        for key, value in node.items():
            if key == "_errors" and isinstance(value, list):
                where = ".".join(path) or "body"
                found += [
                    f"{where}: {e.get('message', '')}" for e in value if isinstance(e, Mapping)
                ]
            else:
                children.append((value, (*path, str(key))))
        stack.extend(reversed(children))
    return found[:_MAX_PROBLEMS], bounded


def clip(text: str) -> str:
    """``text``, cut to :data:`MAX_REASON` characters (ending in ``...`` when cut)."""
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."
