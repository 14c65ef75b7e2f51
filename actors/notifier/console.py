"""The console sink: one readable line per notification on a text stream."""

from __future__ import annotations

from typing import TextIO

import orjson

from realtime.notifications import Notification
from realtime.render import console_lines


class ConsoleSink:
    """Writes one line per notification to a text stream (stdout by default).

    Colour (ANSI) only when the stream is a terminal. Lines are stored in the
    ledger payload in both forms, so that a resumed entry prints the same line.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        isatty = getattr(stream, "isatty", None)
        self.colour = bool(isatty()) if callable(isatty) else False

    @staticmethod
    def payload(notification: Notification) -> bytes:
        plain, colour = console_lines(notification)
        return orjson.dumps({"plain": plain, "colour": colour})

    def write(self, payload: bytes) -> bool:
        """Write the line stored in ``payload``; ``False`` if it holds no line.

        The line may stay in the stream's buffer until :meth:`flush`.

        Raises:
            OSError: the stream is closed or broken.
        """
        try:
            lines = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        line = lines.get("colour" if self.colour else "plain") if isinstance(lines, dict) else None
        if not isinstance(line, str):
            return False
        self._stream.write(line + "\n")
        return True

    def flush(self) -> None:
        """Push the written lines out (one system call for a batch, not one per line).

        Raises:
            OSError: the stream is closed or broken.
        """
        self._stream.flush()
