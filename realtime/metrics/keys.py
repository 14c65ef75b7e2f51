"""Series and counter keys: Prometheus' ``name{label="value"}`` syntax in a plain ``str``.

Labels travel inside the string key of a :class:`~actors.protocol.StatsReport`
counter: ``series_key("events_total", source="wanderer-kills", type="killmail")``
is ``events_total{source="wanderer-kills",type="killmail"}`` and
:func:`parse_series_key` reads it back. :data:`OTHER` is the label value (or
key) that absorbs what no longer fits a bound.
"""

from __future__ import annotations

import re
from typing import Final

OTHER: Final = "other"
"""The label value (or key) that absorbs what no longer fits a bound."""

SeriesKey = tuple[str, str]
OTHER_SERIES: Final[SeriesKey] = (OTHER, OTHER)

_KEY = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def series_key(name: str, /, **labels: str) -> str:
    """``name{a="x",b="y"}`` with labels sorted by name; just ``name`` without labels.

    Raises:
        ValueError: ``name`` or a label name is not a Prometheus identifier.
    """
    if not _KEY.match(name) or "{" in name:
        msg = f"not a metric name: {name!r}"
        raise ValueError(msg)
    if not labels:
        return name
    parts = []
    for label, value in sorted(labels.items()):
        if not label.isidentifier():
            msg = f"not a label name: {label!r}"
            raise ValueError(msg)
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{label}="{escaped}"')
    return f"{name}{{{','.join(parts)}}}"


def parse_series_key(key: str) -> tuple[str, dict[str, str]] | None:
    """The name and labels of a :func:`series_key`; ``None`` if ``key`` is malformed."""
    found = _KEY.match(key)
    if found is None:
        return None
    name, body = found.group(1), found.group(2)
    labels: dict[str, str] = {}
    if body:
        position = 0
        while position < len(body):
            label = _LABEL.match(body, position)
            if label is None:
                return None
            raw = label.group(2)
            labels[label.group(1)] = re.sub(
                r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), raw
            )
            position = label.end()
    return name, labels
