"""The SSE parser against the WHATWG "event stream interpretation", case by case.

Beyond the named cases: a literal transcription of the spec (decode the whole
stream, split lines, run the field algorithm) is the oracle for random streams;
any re-chunking of a stream must give what feeding it whole gives; and on the
subset of streams that sseclient-py handles correctly, both agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sseclient import SSEClient

from realtime.sse import MAX_RETRY_MS, SseComment, SseEvent, SseParser

Item = SseEvent | SseComment


def parse(stream: bytes, max_line_bytes: int = 1024, max_event_bytes: int = 4096) -> list[Item]:
    parser = SseParser(max_line_bytes, max_event_bytes=max_event_bytes)
    return parser.feed(stream) + parser.close()


def events(
    stream: bytes, max_line_bytes: int = 1024, max_event_bytes: int = 4096
) -> list[SseEvent]:
    items = parse(stream, max_line_bytes, max_event_bytes)
    return [item for item in items if isinstance(item, SseEvent)]


def feed_in_chunks(parser: SseParser, stream: bytes, cuts: Sequence[int]) -> list[Item]:
    out: list[Item] = []
    start = 0
    for cut in sorted(cuts):
        out += parser.feed(stream[start:cut])
        start = cut
    out += parser.feed(stream[start:])
    return out + parser.close()


def message(data: str, last_event_id: str = "", type_: str = "message") -> SseEvent:
    return SseEvent(type=type_, data=data, last_event_id=last_event_id, retry_ms=None)


# --- the spec's own examples ------------------------------------------------


def test_spec_example_with_comment_and_two_events() -> None:
    stream = (
        b": test stream\n\n"
        b"data: first event\nid: 1\n\n"
        b"data:second event\nid\n\n"
        b"data:  third event\n\n"
    )
    assert parse(stream) == [
        SseComment("test stream"),
        message("first event", "1"),
        message("second event", ""),
        message(" third event", ""),
    ]


def test_spec_example_empty_data_line_dispatches_an_empty_string() -> None:
    assert events(b"data\n\ndata\ndata\n\ndata:") == [message(""), message("\n")]


def test_spec_example_space_after_colon_is_optional() -> None:
    assert events(b"data:test\n\ndata: test\n\n") == [message("test"), message("test")]


def test_multiline_data_is_joined_with_lf_without_a_trailing_one() -> None:
    assert events(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [message("YHOO\n+2\n10")]


# --- line endings and chunking ----------------------------------------------


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_each_line_ending_alone_is_understood(ending: bytes) -> None:
    stream = ending.join([b"event: a", b"data: 1", b"", b"data: 2", b"", b""])
    assert events(stream) == [message("1", type_="a"), message("2")]


@pytest.mark.parametrize(
    "stream",
    [
        b"data: 1\n\r\ndata: 2\r\n\r\n",  # LF then CRLF
        b"data: 1\n\rdata: 2\r\r",  # LF then CR
        b"data: 1\r\r\ndata: 2\n\n",  # CR then CRLF
        b"data: 1\r\n\rdata: 2\n\r\n",  # CRLF then CR
    ],
)
def test_mixed_line_endings_never_merge_events(stream: bytes) -> None:
    assert events(stream) == [message("1"), message("2")]


def test_cr_at_chunk_end_and_lf_at_next_chunk_start_are_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: 1\r") == []
    # Were the LF a second line end, this would dispatch "1" with data lines merged.
    assert parser.feed(b"\ndata: 2\r") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [message("1\n2")]


def test_cr_at_chunk_end_dispatches_without_waiting_for_the_next_chunk() -> None:
    parser = SseParser()
    assert parser.feed(b"data: 1\r\r") == [message("1")]
    assert parser.feed(b"\ndata: 2\n\n") == [message("2")]


def test_a_lone_lf_after_a_cr_that_ended_an_earlier_chunk_is_skipped_once_only() -> None:
    parser = SseParser()
    assert parser.feed(b"data: 1\r") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\n") == [message("1")]


def test_a_chunk_boundary_inside_a_multibyte_character_is_harmless() -> None:
    stream = "data: é€😀\n\n".encode()
    for cut in range(len(stream) + 1):
        parser = SseParser()
        assert feed_in_chunks(parser, stream, [cut]) == [message("é€😀")]


def test_feeding_one_byte_at_a_time_matches_feeding_whole() -> None:
    stream = b"\xef\xbb\xbfid: 7\r\nevent: e\r\ndata: \xc3\xa9\r\n: c\r\rdata: x\ndata\r\n\r\n"
    parser = SseParser()
    one_by_one = feed_in_chunks(parser, stream, range(len(stream)))
    assert one_by_one == parse(stream)
    assert one_by_one == [
        SseComment("c"),
        message("é", "7", "e"),
        message("x\n", "7"),
    ]


def test_empty_chunks_change_nothing() -> None:
    parser = SseParser()
    assert parser.feed(b"") == []
    assert parser.feed(b"data: 1\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\n\n") == [message("1")]


# --- BOM ----------------------------------------------------------------------


def test_one_leading_bom_is_stripped() -> None:
    assert events(b"\xef\xbb\xbfdata: 1\n\n") == [message("1")]


def test_a_bom_split_across_chunks_is_stripped() -> None:
    parser = SseParser()
    assert parser.feed(b"\xef") == []
    assert parser.feed(b"\xbb") == []
    assert parser.statistics().buffered_line_bytes == 2
    assert parser.feed(b"\xbfdata: 1\n\n") == [message("1")]


def test_a_second_bom_is_content_and_spoils_the_field_name() -> None:
    assert events(b"\xef\xbb\xbf\xef\xbb\xbfdata: 1\n\ndata: 2\n\n") == [message("2")]


def test_a_bom_after_the_start_of_the_stream_is_content() -> None:
    assert events(b"data: 1\n\n\xef\xbb\xbfdata: 2\n\n") == [message("1")]


def test_a_bom_prefix_that_is_not_a_bom_is_kept() -> None:
    parser = SseParser()
    assert parser.feed(b"\xef\xbb") == []
    assert parser.feed(b"Xdata: 1\n\ndata: 2\n\n") == [message("2")]


def test_each_new_stream_after_close_strips_its_own_bom() -> None:
    parser = SseParser()
    assert parser.feed(b"\xef\xbb\xbfdata: 1\n\n") == [message("1")]
    parser.close()
    assert parser.feed(b"\xef\xbb\xbfdata: 2\n\n") == [message("2")]


# --- UTF-8 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"\xff", "\ufffd"),
        (b"a\xc3", "a\ufffd"),  # truncated by the line end
        (b"\xe2\x82", "\ufffd"),  # one U+FFFD for the maximal subpart
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # encoded surrogate
        (b"\xc0\xaf", "\ufffd\ufffd"),  # overlong
        (b"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"),  # beyond U+10FFFF
    ],
)
def test_invalid_utf8_becomes_replacement_characters(raw: bytes, text: str) -> None:
    assert events(b"data: " + raw + b"\n\n") == [message(text)]
    assert events(b"data: " + raw + b"\r\n\r\n") == [message(text)]


def test_invalid_utf8_in_a_field_name_just_makes_an_unknown_field() -> None:
    assert events(b"dat\xe1: 1\ndata: 2\n\n") == [message("2")]


def test_invalid_utf8_never_raises_and_never_ends_the_stream() -> None:
    parser = SseParser()
    assert parser.feed(b"id: \x80\x80\ndata: \xfe\n\n") == [message("\ufffd", "\ufffd\ufffd")]
    assert parser.feed(b"data: ok\n\n") == [message("ok", "\ufffd\ufffd")]


# --- fields -------------------------------------------------------------------


def test_a_line_without_colon_is_a_field_with_an_empty_value() -> None:
    assert parse(b"event\ndata\n\n") == [message("")]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert events(b"data:   x \n\n") == [message("  x ")]


def test_only_the_first_colon_separates_name_and_value() -> None:
    assert events(b"data: a: b:c\n\n") == [message("a: b:c")]


def test_a_tab_after_the_colon_is_kept() -> None:
    assert events(b"data:\tx\n\n") == [message("\tx")]


def test_field_names_are_case_sensitive() -> None:
    assert events(b"Data: 1\nDATA: 2\nEvent: e\ndata: 3\n\n") == [message("3")]


def test_a_leading_space_makes_an_unknown_field() -> None:
    assert events(b" data: 1\ndata: 2\n\n") == [message("2")]


def test_unknown_fields_are_ignored() -> None:
    assert events(b"foo: bar\ndata: 1\nbaz\n\n") == [message("1")]


def test_event_type_defaults_to_message_and_an_empty_one_too() -> None:
    assert events(b"data: 1\n\nevent:\ndata: 2\n\n") == [message("1"), message("2")]


def test_the_last_event_line_wins_and_the_type_does_not_carry_over() -> None:
    assert events(b"event: a\nevent: b\ndata: 1\n\ndata: 2\n\n") == [
        message("1", type_="b"),
        message("2"),
    ]


def test_a_type_without_data_does_not_leak_into_the_next_event() -> None:
    assert events(b"event: a\n\ndata: 1\n\n") == [message("1")]


# --- id -----------------------------------------------------------------------


def test_the_last_event_id_persists_across_events() -> None:
    assert events(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n") == [
        message("a", "1"),
        message("b", "1"),
        message("c", "2"),
    ]


def test_an_empty_id_resets_the_last_event_id() -> None:
    assert events(b"id: 1\ndata: a\n\nid\ndata: b\n\nid:\ndata: c\n\n") == [
        message("a", "1"),
        message("b", ""),
        message("c", ""),
    ]


def test_an_id_containing_nul_is_ignored() -> None:
    parser = SseParser()
    assert parser.feed(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        message("a", "1"),
        message("b", "1"),
    ]
    assert parser.last_event_id == "1"


def test_an_id_only_block_dispatches_nothing_but_moves_the_resume_point() -> None:
    parser = SseParser()
    assert parser.feed(b"id: 5\n\n") == []
    assert parser.last_event_id == "5"
    assert parser.feed(b"data: x\n\n") == [message("x", "5")]


def test_the_id_applies_even_when_it_follows_the_data_in_a_block() -> None:
    assert events(b"data: x\nid: 9\n\n") == [message("x", "9")]


def test_the_last_event_id_survives_the_end_of_a_stream() -> None:
    parser = SseParser()
    parser.feed(b"id: 42\ndata: a\n\n")
    parser.close()
    assert parser.last_event_id == "42"
    assert parser.feed(b"data: b\n\n") == [message("b", "42")]


def test_a_known_resume_point_is_carried_by_events_without_id() -> None:
    parser = SseParser(last_event_id="01JDZ")
    assert parser.feed(b"data: a\n\n") == [message("a", "01JDZ")]


def test_a_resume_point_with_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        SseParser(last_event_id="a\0b")


def test_an_id_takes_effect_only_when_its_block_is_dispatched() -> None:
    parser = SseParser(last_event_id="0")
    assert parser.feed(b"id: 1\ndata: a\n") == []
    assert parser.last_event_id == "0"
    assert parser.feed(b"\n") == [message("a", "1")]
    assert parser.last_event_id == "1"


def test_wpt_format_data_before_final_empty_line() -> None:
    # web-platform-tests eventsource/format-data-before-final-empty-line: the
    # second block has no final empty line, so "test2" is never dispatched and
    # its id never becomes the resume point, on this stream or the next.
    stream = b"retry:1000\ndata:test1\n\nid:test\ndata:test2"
    parser = SseParser()
    first = parser.feed(stream) + parser.close()
    assert first == [SseEvent("message", "test1", "", 1000)]
    assert parser.last_event_id == ""
    again = parser.feed(stream) + parser.close()
    assert again == [SseEvent("message", "test1", "", 1000)]
    assert parser.last_event_id == ""


def test_id_event_data_then_eof_without_a_blank_line_dispatches_nothing_and_keeps_the_id() -> None:
    parser = SseParser(last_event_id="01JDZ3J9Q5V8K2M4N6P8R0T2W4")
    assert parser.feed(b"id: 01JDZ3J9Q5V8K2M4N6P8R0T2W5\nevent: add_system\ndata: {}") == []
    assert parser.close() == []
    assert parser.last_event_id == "01JDZ3J9Q5V8K2M4N6P8R0T2W4"
    assert parser.statistics().unterminated_events == 1
    # a reused parser does not carry the undispatched id into the next stream
    assert parser.feed(b"data: next\n\n") == [message("next", "01JDZ3J9Q5V8K2M4N6P8R0T2W4")]


# --- retry --------------------------------------------------------------------


def test_retry_with_ascii_digits_sets_the_reconnection_time() -> None:
    parser = SseParser()
    assert parser.retry_ms is None
    assert parser.feed(b"retry: 2500\ndata: a\n\ndata: b\n\n") == [
        SseEvent("message", "a", "", 2500),
        SseEvent("message", "b", "", 2500),
    ]
    assert parser.retry_ms == 2500


@pytest.mark.parametrize(
    "value",
    [b"", b"  1000", b"1000 ", b"-1", b"+1", b"1e3", b"1_000", b"10.5", b"\xd9\xa1", b"x"],
)
def test_retry_that_is_not_only_ascii_digits_is_ignored(value: bytes) -> None:
    parser = SseParser()
    parser.feed(b"retry: 100\n\nretry:" + value + b"\n\n")
    assert parser.retry_ms == 100


def test_retry_takes_effect_without_an_event() -> None:
    parser = SseParser()
    assert parser.feed(b"retry: 0\n\n") == []
    assert parser.retry_ms == 0


def test_retry_with_leading_zeros_is_decimal() -> None:
    parser = SseParser()
    parser.feed(b"retry: 0010\n")
    assert parser.retry_ms == 10


def test_a_huge_retry_saturates_instead_of_failing() -> None:
    parser = SseParser()
    parser.feed(b"retry: " + b"9" * 5000 + b"\n")
    assert parser.retry_ms == MAX_RETRY_MS
    parser.feed(b"retry: " + b"0" * 40 + b"999999999999999999\n")
    assert parser.retry_ms == 999_999_999_999_999_999


# --- comments -----------------------------------------------------------------


def test_comments_are_returned_in_stream_order_between_events() -> None:
    assert parse(b": keepalive\ndata: a\n:\n:x\n\n:  two spaces\n") == [
        SseComment("keepalive"),
        SseComment(""),
        SseComment("x"),
        message("a"),
        SseComment(" two spaces"),
    ]


def test_a_comment_inside_an_event_does_not_interrupt_it() -> None:
    assert events(b"data: a\n: ping\ndata: b\n\n") == [message("a\nb")]


# --- end of stream ------------------------------------------------------------


def test_an_unterminated_last_event_is_discarded_at_close() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\n\ndata: b\n") == [message("a")]
    assert parser.close() == []
    assert parser.statistics().unterminated_events == 1
    assert parser.feed(b"\n") == []


def test_an_unterminated_last_line_is_not_a_line() -> None:
    parser = SseParser()
    parser.feed(b"id: 1\n\nid: 2")
    parser.close()
    assert parser.last_event_id == "1"


def test_close_on_a_clean_boundary_counts_nothing_lost() -> None:
    parser = SseParser()
    parser.feed(b"data: a\n\n")
    parser.close()
    assert parser.statistics().unterminated_events == 0


def test_a_cr_before_close_does_not_swallow_the_next_streams_first_lf() -> None:
    parser = SseParser()
    parser.feed(b"data: a\r")
    parser.close()
    assert parser.feed(b"\ndata: b\n\n") == [message("b")]


# --- bounds -------------------------------------------------------------------


def test_an_oversize_line_is_dropped_with_its_event_and_parsing_goes_on() -> None:
    parser = SseParser(max_line_bytes=16)
    out = parser.feed(b"id: 1\ndata: " + b"x" * 100 + b"\ndata: after\nid: 2\n\ndata: next\n\n")
    assert out == [message("next", "2")]
    stats = parser.statistics()
    assert stats.oversize_lines == 1
    assert stats.events == 1


def test_a_line_of_exactly_the_bound_is_kept() -> None:
    line = b"data: " + b"x" * 10
    assert events(line + b"\n\n", max_line_bytes=len(line)) == [message("x" * 10)]
    assert events(line + b"\n\n", max_line_bytes=len(line) - 1) == []


def test_an_oversize_line_arriving_in_small_chunks_never_buffers_beyond_the_bound() -> None:
    parser = SseParser(max_line_bytes=1024)
    assert parser.feed(b"data: ok\n\ndata: ") == [message("ok")]
    high_water = 0
    for _ in range(10_000):
        assert parser.feed(b"y" * 100) == []
        high_water = max(high_water, parser.statistics().buffered_line_bytes)
    assert high_water <= 1024
    assert parser.feed(b"\r") == []
    # The rest of the event the oversize line belonged to is dropped with it.
    assert parser.feed(b"\ndata: same event\n\ndata: fine\n\n") == [message("fine")]
    assert parser.statistics().oversize_lines == 1


def test_an_oversize_line_ending_in_a_cr_split_from_its_lf_is_one_line_end() -> None:
    parser = SseParser(max_line_bytes=8)
    assert parser.feed(b"data: toolong\r") == []
    # Were the LF a second line end, it would end the dropped event and "a" would pass.
    assert parser.feed(b"\ndata: a\n\n") == []
    assert parser.feed(b"data: b\n\n") == [message("b")]


def test_an_oversize_comment_drops_the_event_being_built_too() -> None:
    assert events(b"data: a\n:" + b"c" * 50 + b"\n\ndata: b\n\n", max_line_bytes=20) == [
        message("b")
    ]


def test_an_event_with_too_much_data_is_dropped_and_the_stream_goes_on() -> None:
    parser = SseParser(max_line_bytes=64, max_event_bytes=100)
    many_lines = b"data: " + b"z" * 50 + b"\n"
    out = parser.feed(b"event: big\n" + many_lines * 3 + b"\ndata: small\n\n")
    assert out == [message("small")]
    stats = parser.statistics()
    assert stats.oversize_events == 1
    assert stats.oversize_lines == 0


def test_event_data_is_bounded_by_max_event_bytes_under_a_flood() -> None:
    parser = SseParser(max_line_bytes=64, max_event_bytes=4096)
    high_water = 0
    for _ in range(5_000):
        parser.feed(b"data: " + b"w" * 50 + b"\n")
        high_water = max(high_water, parser.statistics().buffered_event_bytes)
    assert high_water <= 4096
    assert parser.feed(b"\ndata: after\n\n") == [message("after")]
    assert parser.statistics().oversize_events == 1


def test_an_event_of_exactly_max_event_bytes_is_kept() -> None:
    # Two values of 3 bytes, each counted with its LF: 8 bytes.
    assert events(b"data: abc\ndata: def\n\n", max_event_bytes=8) == [message("abc\ndef")]
    assert events(b"data: abc\ndata: def\n\n", max_event_bytes=7) == []


@pytest.mark.parametrize(("max_line_bytes", "max_event_bytes"), [(0, 1), (1, 0)])
def test_bounds_below_one_are_refused(max_line_bytes: int, max_event_bytes: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SseParser(max_line_bytes, max_event_bytes=max_event_bytes)


def test_statistics_count_bytes_events_and_comments() -> None:
    parser = SseParser()
    stream = b"\xef\xbb\xbf: hi\ndata: a\n\ndata: b\n\ndata: c"
    parser.feed(stream)
    stats = parser.statistics()
    assert (stats.bytes, stats.events, stats.comments) == (len(stream), 2, 1)
    assert stats.buffered_line_bytes == len(b"data: c")
    assert stats.max_line_bytes == 1_048_576


# --- properties ---------------------------------------------------------------

_TOKENS = [
    b"data",
    b"data:",
    b"data: ",
    b"data: x",
    b"data:  two",
    b"event: t",
    b"event:",
    b"id: 1",
    b"id: a\x00b",
    b"id",
    b"retry: 10",
    b"retry: x1",
    b"retry:",
    b":",
    b": c",
    b"foo: bar",
    b" data: y",
    b"\r",
    b"\n",
    b"\r\n",
    b"\xef\xbb\xbf",
    b"\xe2\x82\xac",
    b"\xe2\x82",
    b"\xff",
    b"\xf0\x9f\x98\x80",
    b"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
]

streams = st.lists(st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=6)), max_size=40).map(
    b"".join
)


def spec_reference(stream: bytes) -> tuple[list[Item], str, int | None]:
    """A literal transcription of the spec: decode all, split lines, interpret."""
    text = stream.decode("utf-8-sig", "replace")
    lines = re.split("\r\n|\r|\n", text)[:-1]  # the unterminated remainder is not a line
    out: list[Item] = []
    data_buffer, event_type, last_event_id, id_buffer, retry = "", "", "", "", None
    for line in lines:
        if line == "":
            last_event_id = id_buffer
            if data_buffer == "":
                event_type = ""
                continue
            data_buffer = data_buffer.removesuffix("\n")
            out.append(SseEvent(event_type or "message", data_buffer, last_event_id, retry))
            data_buffer, event_type = "", ""
            continue
        if line.startswith(":"):
            out.append(SseComment(line[1:].removeprefix(" ")))
            continue
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            event_type = value
        elif name == "data":
            data_buffer += value + "\n"
        elif name == "id":
            if "\0" not in value:
                id_buffer = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            retry = int(value)
    return out, last_event_id, retry


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(streams)
def test_random_streams_match_a_literal_transcription_of_the_spec(stream: bytes) -> None:
    parser = SseParser()
    got = parser.feed(stream) + parser.close()
    assert (got, parser.last_event_id, parser.retry_ms) == spec_reference(stream)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    streams,
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    st.integers(min_value=1, max_value=24),
)
def test_any_rechunking_gives_what_feeding_whole_gives(
    stream: bytes, cuts: list[int], max_line_bytes: int
) -> None:
    whole = SseParser(max_line_bytes, max_event_bytes=40)
    chunked = SseParser(max_line_bytes, max_event_bytes=40)
    expected = whole.feed(stream) + whole.close()
    cuts = [min(cut, len(stream)) for cut in cuts]
    assert feed_in_chunks(chunked, stream, cuts) == expected
    assert chunked.statistics() == whole.statistics()
    assert (chunked.last_event_id, chunked.retry_ms) == (whole.last_event_id, whole.retry_ms)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(streams, st.integers(min_value=1, max_value=24))
def test_buffers_never_exceed_their_bounds(stream: bytes, max_line_bytes: int) -> None:
    parser = SseParser(max_line_bytes, max_event_bytes=30)
    for byte in range(len(stream)):
        parser.feed(stream[byte : byte + 1])
        stats = parser.statistics()
        assert stats.buffered_line_bytes <= max(max_line_bytes, 2)  # a BOM prefix is 2 at most
        assert stats.buffered_event_bytes <= 30


# --- differential against sseclient-py ----------------------------------------

# Values sseclient-py handles like the spec: no CR/LF (LF-only framing), no NUL
# (it keeps ids with NUL), no surrogates (valid UTF-8 only).
_values = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\0"),
    max_size=12,
)


@st.composite
def sseclient_safe_blocks(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str, str | None]]]:
    """A stream in sseclient-py's correct subset, and what each event should be."""
    lines: list[str] = []
    expected: list[tuple[str, str, str | None]] = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        block: list[str] = []
        type_ = draw(st.none() | _values)
        id_ = draw(st.none() | _values)
        data = draw(st.lists(_values, min_size=1, max_size=3))
        if draw(st.booleans()):
            block.append(": " + draw(_values))
        if type_ is not None:
            block.append("event: " + type_)
        spaced = [draw(st.booleans()) for _ in data]
        block.extend(
            ("data: " if space else "data:") + value
            for space, value in zip(spaced, data, strict=True)
        )
        data = [
            value if space else value.removeprefix(" ")
            for space, value in zip(spaced, data, strict=True)
        ]
        if id_ is not None:
            block.append("id: " + id_)
        if draw(st.booleans()):
            block.append("unknown: " + draw(_values))
        lines.extend(block)
        lines.append("")
        expected.append((type_ or "message", "\n".join(data), id_))
    return "".join(line + "\n" for line in lines).encode(), expected


def chunks_of(stream: bytes, cuts: Sequence[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted(min(cut, len(stream)) for cut in cuts):
        yield stream[start:cut]
        start = cut
    yield stream[start:]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(sseclient_safe_blocks(), st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_agrees_with_sseclient_py_where_sseclient_py_is_right(
    case: tuple[bytes, list[tuple[str, str, str | None]]], cuts: list[int]
) -> None:
    stream, expected = case
    theirs = list(SSEClient(chunks_of(stream, cuts)).events())
    ours = events(stream)
    assert [(e.event, e.data) for e in theirs] == [(e.type, e.data) for e in ours]
    assert [(e.type, e.data) for e in ours] == [(t, d) for t, d, _ in expected]
    for their_event, our_event in zip(theirs, ours, strict=True):
        # sseclient-py only knows the id of the block itself.
        if their_event.id is not None:
            assert their_event.id == our_event.last_event_id
