"""realtime.controls: text from outside, safe for a log line or a console line."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from realtime.controls import BIDI_CONTROLS, blank_controls, escape_controls


def test_terminal_escapes_and_line_breaks_are_escaped_visibly_for_a_log() -> None:
    hostile = "add_system\x1b[2J\x1b[31mOWNED\r\nFAKE LOG LINE\u202egnp.exe\udc80"
    assert escape_controls(hostile) == (
        "add_system\\x1b[2J\\x1b[31mOWNED\\x0d\\x0aFAKE LOG LINE\\u202egnp.exe\\udc80"
    )


def test_printable_text_passes_unchanged() -> None:
    text = "J123450 Ωmega é 🚀 \\x1b stays as typed"
    assert escape_controls(text) == text
    assert blank_controls(text) == text


@given(st.text())
def test_an_escaped_log_text_has_no_control_bidi_or_surrogate_character(text: str) -> None:
    escaped = escape_controls(text)
    assert not [
        ch for ch in escaped if unicodedata.category(ch) in ("Cc", "Cs") or ord(ch) in BIDI_CONTROLS
    ]
    escaped.encode("utf-8")  # a UTF-8 log handler can write it


@given(st.text())
def test_a_console_text_keeps_its_length_with_controls_as_spaces(text: str) -> None:
    blanked = blank_controls(text)
    assert len(blanked) == len(text)
    assert not [ch for ch in blanked if unicodedata.category(ch) == "Cc"]
