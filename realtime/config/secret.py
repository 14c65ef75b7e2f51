"""The configuration's errors and secrets: :class:`ConfigError`, and
:class:`Secret`, a value read inline or from the environment (``"env:NAME"``)
that is never printed.
"""

from __future__ import annotations

from dataclasses import dataclass

ENV_PREFIX = "env:"


MASK = "***"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the problem."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value; ``str()`` and ``repr()`` never show it.

    Attributes:
        value: the secret itself ("" when unset).
        origin: where it came from, safe to print (``env:NAME`` or ``inline``).
    """

    value: str
    origin: str

    def __bool__(self) -> bool:
        return bool(self.value)

    def __str__(self) -> str:
        return MASK if self.value else ""

    def __repr__(self) -> str:
        return f"Secret({self.origin}, {'set' if self.value else 'unset'})"


NO_SECRET = Secret("", "inline")
