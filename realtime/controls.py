"""Text from outside made safe for a terminal or a log: no control characters pass through.

A feed's strings (event types, ids, reasons, HTTP bodies) may carry control
characters: ANSI escape sequences that recolour or rewrite a terminal, CR that
overwrites a log line, LF that forges one, bidi controls that reorder what is
shown, lone surrogates that a UTF-8 log handler cannot encode. One table,
applied with ``str.translate`` (a single C pass), serves both uses:

- :func:`escape_controls` for logs: each such character becomes a visible
  escape (``\\x1b``, ``\\u202e``, ``\\udc80``), so nothing is lost;
- :func:`blank_controls` for console lines: each becomes a space.

Unicode category Cc is exactly U+0000-U+001F and U+007F-U+009F; with the bidi
embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069) they
are what the table covers, plus, for logs, the surrogates.
"""

from __future__ import annotations

from typing import Final

CONTROL_CHARACTERS: Final = (*range(0x20), *range(0x7F, 0xA0))
BIDI_CONTROLS: Final = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
_SURROGATES: Final = range(0xD800, 0xE000)


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ESCAPED: Final = {
    code: _escape(code) for code in (*CONTROL_CHARACTERS, *BIDI_CONTROLS, *_SURROGATES)
}
_BLANKED: Final = dict.fromkeys((*CONTROL_CHARACTERS, *BIDI_CONTROLS), " ")


def escape_controls(text: str) -> str:
    """``text`` for a log line: control, bidi and surrogate code points escaped visibly.

    A backslash is kept as it is: the escapes mark where the text had a
    character a terminal would have acted on, not a round-trip encoding.
    """
    return text.translate(_ESCAPED)


def blank_controls(text: str) -> str:
    """``text`` for a console line: control and bidi characters become spaces."""
    return text.translate(_BLANKED)
