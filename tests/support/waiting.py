"""Waiting for a condition with a deadline: how the tests synchronise (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], timeout_s: float = 5.0, interval_s: float = 0.002, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``.

    Returns the truthy value, so a test can wait for and use a result at once.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"condition not met within {timeout_s}s: {what or condition}"
            raise AssertionError(msg)
        # A short pause between polls; the condition, not the pause, synchronises.
        time.sleep(interval_s)
