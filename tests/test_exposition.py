"""The Prometheus text writer: what prometheus_client's own parser reads back."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from realtime.exposition import Exposition


def parsed(out: Exposition) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(out.text())
    }


def test_families_read_back_with_escaped_labels_and_special_values() -> None:
    out = Exposition()
    rows = [(('a"b', "c\\d\ne"), 1.0), (("x", "y"), math.inf), (("z", "w"), math.nan)]
    out.family("t_gauge", "gauge", "A gauge.", ("k", "v"), rows)
    out.family("t_events_total", "counter", "A counter.", (), [((), 3)])
    families = parsed(out)
    first, second, third = families["t_gauge"]
    assert first == ("t_gauge", {"k": 'a"b', "v": "c\\d\ne"}, 1.0)
    assert second[2] == math.inf
    assert math.isnan(third[2])
    assert families["t_events"] == [("t_events_total", {}, 3.0)]


def test_a_family_name_is_written_once() -> None:
    out = Exposition()
    out.family("t_events_total", "counter", "First.", (), [((), 1.0)])
    out.family("t_events_total", "counter", "Second.", (), [((), 2.0)])
    assert parsed(out)["t_events"] == [("t_events_total", {}, 1.0)]


def test_a_histogram_has_its_buckets_count_and_sum() -> None:
    out = Exposition()
    out.histogram(
        "t_seconds", "A histogram.", "stage", [("journal", [(0.1, 2), (math.inf, 5)], 1.5)]
    )
    samples = {(name, labels.get("le")): value for name, labels, value in parsed(out)["t_seconds"]}
    assert samples == {
        ("t_seconds_bucket", "0.1"): 2.0,
        ("t_seconds_bucket", "+Inf"): 5.0,
        ("t_seconds_count", None): 5.0,
        ("t_seconds_sum", None): 1.5,
    }
