"""Specifications of status messages: what an outage is and which kills were caught up."""

from __future__ import annotations

from realtime.status import MAX_WINDOWS, Outage, StatusReport, StatusWatch

T = 1_800_000_000.0


def test_a_start_after_a_previous_run_reports_the_time_away_and_the_kills_within_it() -> None:
    watch = StatusWatch(catch_up_s=30)
    outage = Outage("recovered", began=T - 720, ended=T, source="program")
    assert watch.open(outage, T) == []
    watch.kill(T - 600)  # happened while the program was down: caught up
    watch.kill(T - 720)  # the bounds count
    watch.kill(T - 721)  # before the outage: not caught up, merely old
    watch.kill(T + 5)  # live after the start: not caught up
    assert watch.due(T + 29.9) == []
    assert watch.due(T + 30) == [StatusReport(outage, 2)]
    assert outage.away_s == 720
    assert watch.due(T + 60) == []
    assert watch.statistics().reported == 1


def test_a_first_start_reports_no_time_away_and_counts_nothing() -> None:
    watch = StatusWatch(catch_up_s=0)
    first = Outage("started", began=None, ended=T)
    watch.open(first, T)
    watch.kill(T - 10)
    assert first.away_s is None
    assert watch.due(T) == [StatusReport(first, 0)]


def test_kills_are_counted_by_every_open_window_whose_outage_holds_them() -> None:
    watch = StatusWatch(catch_up_s=10)
    program = Outage("recovered", T - 100, T, "program")
    feed = Outage("recovered", T - 50, T + 5, "kills")
    watch.open(program, T)
    watch.open(feed, T + 5)
    watch.kill(T - 70)  # only the program's outage
    watch.kill(T - 20)  # both
    watch.kill(T + 3)  # only the feed's
    assert watch.due(T + 10) == [StatusReport(program, 2)]
    assert watch.due(T + 15) == [StatusReport(feed, 2)]


def test_a_flapping_feed_cannot_grow_the_open_windows_past_their_bound() -> None:
    watch = StatusWatch(catch_up_s=600)
    early: list[StatusReport] = []
    for n in range(MAX_WINDOWS + 3):
        early += watch.open(Outage("recovered", T + n, T + n + 1, "kills"), T + n)
    assert len(early) == 3
    assert [report.outage.began for report in early] == [T, T + 1, T + 2]
    statistics = watch.statistics()
    assert (statistics.open_windows, statistics.closed_early) == (MAX_WINDOWS, 3)
