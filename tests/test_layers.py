"""The layer rules, read from the source: each package imports only what lies below it.

::

    app         the composition root: may import every layer
    actors      the running system: supervision, realtime
    simulator   the outside world on loopback: realtime (shared wire formats)
    supervision OTP-style supervision on pykka: no domain at all
    realtime    pure cores: nothing of the above, and no pykka

``bench/`` (micro-benchmarks, not installed) may import anything; nothing may
import it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN: dict[str, frozenset[str]] = {
    "realtime": frozenset({"actors", "app", "bench", "pykka", "simulator", "supervision"}),
    "supervision": frozenset({"actors", "app", "bench", "realtime", "simulator"}),
    "actors": frozenset({"app", "bench", "simulator"}),
    "simulator": frozenset({"actors", "app", "bench", "supervision"}),
    "app": frozenset({"bench"}),
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """The top-level package of every import in ``path`` (function-level ones too)."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def violations(package: str) -> list[str]:
    forbidden = FORBIDDEN[package]
    return sorted(
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name, line in imported_packages(path)
        if name in forbidden
    )


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_its_layer(package: str) -> None:
    assert violations(package) == []


def test_the_rule_reader_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from actors.protocol import Names\n", encoding="utf-8")
    assert imported_packages(module) == {("actors", 2)}


def test_importing_a_pure_core_loads_no_actor_machinery() -> None:
    probe = (
        "import sys, realtime.journal_store, realtime.circuit, realtime.phoenix, realtime.sse;"
        "print(sorted(m for m in ('pykka', 'supervision', 'actors') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
