"""The Prometheus text exposition format (0.0.4), written directly.

Building ``prometheus_client`` metric objects for a few hundred samples costs
more than gathering them; :class:`Exposition` writes the lines instead, with
the same escaping and number format, and keeps the rendering of each series'
name and labels between calls (the same series come back every scrape).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

LABEL_CACHE_SIZE = 8192
"""Label sets (and reported series keys) whose rendering is kept between scrapes; the
series are bounded well below this by the metrics actor's own bounds."""

Labels = tuple[str, ...]
Row = tuple[Labels, float]


class Exposition:
    """The Prometheus text format (0.0.4), written line by line.

    A family name is written once: a second family of the same name is
    skipped. A counter is named with its ``_total`` (in its ``# TYPE`` line
    too, as ``prometheus_client`` writes it).
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._names: set[str] = set()

    def family(
        self, name: str, kind: str, documentation: str, labels: Labels, rows: Iterable[Row]
    ) -> None:
        base = name.removesuffix("_total") if kind == "counter" else name
        if base in self._names:
            return
        self._names.add(base)
        lines = self.lines
        lines.append(f"# HELP {name} {documentation}\n# TYPE {name} {kind}")
        for values, value in rows:
            lines.append(sample_prefix(name, labels, values) + value_text(value))

    def histogram(
        self,
        name: str,
        documentation: str,
        label: str,
        rows: Iterable[tuple[str, Sequence[tuple[float, float]], float]],
    ) -> None:
        """``rows``: label value, cumulative ``(le, count)`` pairs ending at ``+Inf``, sum."""
        self._names.add(name)
        lines = self.lines
        lines.append(f"# HELP {name} {documentation}\n# TYPE {name} histogram")
        bucket, names = f"{name}_bucket", (label, "le")
        for value, buckets, total in rows:
            for bound, count in buckets:
                lines.append(
                    sample_prefix(bucket, names, (value, le_text(bound))) + value_text(count)
                )
            count = buckets[-1][1] if buckets else 0.0
            lines.append(sample_prefix(f"{name}_count", (label,), (value,)) + value_text(count))
            lines.append(sample_prefix(f"{name}_sum", (label,), (value,)) + value_text(total))

    def text(self) -> str:
        """The exposition; every sample line ends in a newline."""
        return "\n".join(self.lines) + "\n"


_SPECIAL_VALUES = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def value_text(value: float) -> str:
    """A sample value as Prometheus writes it (``+Inf``, ``NaN``, ``1.0``, ``2.5e-05``)."""
    text = repr(float(value))
    return _SPECIAL_VALUES.get(text, text)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@functools.lru_cache(maxsize=LABEL_CACHE_SIZE)
def sample_prefix(name: str, names: Labels, values: Labels) -> str:
    """``name{a="x",b="y"} `` (the line before its value); cached, as the same series
    come back every scrape."""
    if not names:
        return f"{name} "
    labels = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return f"{name}{{{labels}}} "


def le_text(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(float(bound))
