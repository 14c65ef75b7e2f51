"""The project's own documentation, checked against the code and the files it describes.

- ``docs/configuration.md`` documents every key of ``config.toml``: one markdown
  table per TOML table (a ``## [table]`` or ``## [[array]]`` heading, then rows
  ``| `key` | type | `default` | meaning |``). The rows are compared with the
  dataclasses of :mod:`realtime.config`: a key the code has and the reference
  lacks, a row for a key the code does not have, and a type or default that
  differs from the code's are failures, each naming the key and the row to
  write.
- Every relative link in ``README.md`` and ``docs/*.md`` reaches a file of the
  repository (and a heading of it, for ``file.md#anchor``).
- Nothing in ``README.md`` and ``docs/`` refers to a path outside the
  repository.
- The README's test command is the set-up script that ``.ci/run`` also calls.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from app import cli
from realtime.config import Config, Secret, load, parse

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "configuration.md"
README = ROOT / "README.md"
SETUP_SCRIPT = "scripts/setup-tests"
REQUIRED = "required"


# -- the configuration keys, as the code defines them -------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One key of ``config.toml`` as :mod:`realtime.config` defines it.

    Attributes:
        key: the full key, ``sources.kills.url``; an array of tables is
            written ``maps[].slug``.
        heading: the reference's heading for its table, ``[sources.kills]``
            or ``[[maps]]``.
        name: the key within its table, ``url``.
        type: the type as the reference writes it.
        default: the default as a TOML value, or ``required``.
    """

    key: str
    heading: str
    name: str
    type: str
    default: str

    def row(self) -> str:
        default = self.default if self.default == REQUIRED else f"`{self.default}`"
        return f"| `{self.name}` | {self.type} | {default} | MEANING |"


def config_settings(cls: type[Any] = Config, path: str = "", heading: str = "") -> list[Setting]:
    """Every key of ``cls`` and the dataclasses nested in it, in declaration order.

    A :class:`Secret` and a mapping-valued field (``[dedup] strategies``) are
    one key each; a tuple of dataclasses is an array of tables.
    """
    found: list[Setting] = []
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        hint, key = hints[spec.name], f"{path}{spec.name}"
        table = _table_of(hint)
        if table is not None:
            nested = f"[[{key}]]" if table is not hint else f"[{key}]"
            found += config_settings(table, f"{key}[]." if table is not hint else f"{key}.", nested)
            continue
        found.append(Setting(key, heading, spec.name, type_text(hint), _default_text(spec)))
    return found


def _table_of(hint: Any) -> type[Any] | None:
    """The dataclass a field holds as a table (or an array of tables), if any."""
    if hint is Secret:
        return None
    if dataclasses.is_dataclass(hint):
        return typing.cast("type[Any]", hint)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args and dataclasses.is_dataclass(args[0]):
        return typing.cast("type[Any]", args[0])
    return None


_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string", Secret: "secret"}


def type_text(hint: Any, *, plural: bool = False) -> str:
    """How the reference writes a setting's type: ``integer``, ``list of strings``..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _SCALARS:
        return _SCALARS[hint] + ("s" if plural else "")
    if origin is Literal:
        return " or ".join(f"`{value}`" for value in args)
    if origin is tuple:
        return ("lists" if plural else "list") + " of " + type_text(args[0], plural=True)
    if origin is Mapping:
        return ("tables" if plural else "table") + " of " + type_text(args[1], plural=True)
    raise TypeError(f"no reference type for {hint!r}: teach tests/test_docs.py::type_text")


def _default_text(spec: dataclasses.Field[Any]) -> str:
    if spec.default is not dataclasses.MISSING:
        return toml_value(spec.default)
    if spec.default_factory is not dataclasses.MISSING:
        return toml_value(spec.default_factory())
    return REQUIRED


def toml_value(value: Any) -> str:
    """``value`` written as TOML (a tuple as an array, a secret as its string)."""
    if isinstance(value, Secret):
        return json.dumps(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        pairs = (f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(f"no TOML form for {value!r}")


# -- the reference, as docs/configuration.md writes it ------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the reference."""

    key: str
    heading: str
    type: str
    default: str
    meaning: str
    line: int


_HEADING = re.compile(r"^#{2,3} (\[\[?[A-Za-z0-9_.]+\]\]?)\s*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def reference_rows(text: str) -> list[Row]:
    """The rows of every ``## [table]`` section (other tables are ignored)."""
    rows: list[Row] = []
    heading = ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _HEADING.match(line)
        if match:
            heading = match.group(1)
            continue
        if line.startswith("#"):
            heading = ""
        if not heading or not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in _CELL_SPLIT.split(line.strip())[1:-1]]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue  # the header row and its rule
        name = cells[0].strip("`")
        rows.append(Row(_key(heading, name), heading, cells[1], cells[2], cells[3], number))
    return rows


def _key(heading: str, name: str) -> str:
    if heading.startswith("[["):
        return f"{heading.strip('[]')}[].{name}"
    return f"{heading.strip('[]')}.{name}"


def reference_problems(settings: list[Setting], rows: list[Row]) -> list[str]:
    """What the reference gets wrong, each problem with the fix, in the code's order."""
    problems: list[str] = []
    by_key: dict[str, Row] = {}
    for row in rows:
        if row.key in by_key:
            problems.append(
                f"{row.key}: documented twice (lines {by_key[row.key].line}, {row.line})"
            )
        by_key[row.key] = row
    known = {setting.key for setting in settings}
    for setting in settings:
        found = by_key.get(setting.key)
        if found is None:
            problems.append(
                f"{setting.key}: missing from docs/configuration.md; under '## {setting.heading}' "
                "(make the section if there is none) "
                f"add the row\n    {setting.row()}\n  (MEANING: what it does, its unit, "
                "what 0 or empty means)"
            )
            continue
        row = found
        if row.type != setting.type:
            problems.append(
                f"{setting.key}: docs/configuration.md:{row.line} says type {row.type!r}, "
                f"the code's is {setting.type!r}"
            )
        if not _same_default(row.default, setting.default):
            problems.append(
                f"{setting.key}: docs/configuration.md:{row.line} says default {row.default}, "
                f"the code's is {setting.default}; write the row as\n    "
                + setting.row().replace("MEANING", row.meaning)
            )
        if not row.meaning:
            problems.append(f"{setting.key}: docs/configuration.md:{row.line} has no meaning")
    problems += [
        f"{row.key}: docs/configuration.md:{row.line} documents a key realtime.config "
        "does not have: remove the row (or add the field)"
        for row in rows
        if row.key not in known
    ]
    return problems


def _same_default(documented: str, code: str) -> bool:
    if REQUIRED in (documented, code):
        return documented == code
    if not (documented.startswith("`") and documented.endswith("`")):
        return False
    try:
        written = tomllib.loads(f"v = {documented.strip('`')}")["v"]
        expected = tomllib.loads(f"v = {code}")["v"]
    except tomllib.TOMLDecodeError:
        return False
    return _equal(written, expected)


def _equal(a: Any, b: Any) -> bool:
    """Equal values of the same TOML type (``1`` is not ``1.0``, ``true`` is not ``1``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def toml_keys(table: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """The reference keys a parsed ``config.toml`` sets (``maps[].slug``...)."""
    settings = {setting.key for setting in config_settings()}
    for name, value in table.items():
        key = f"{path}{name}"
        if key in settings:
            yield key
        elif isinstance(value, Mapping):
            yield from toml_keys(value, f"{key}.")
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for item in value:
                yield from toml_keys(item, f"{key}[].")
        else:
            yield key


def test_every_config_key_is_in_the_reference_with_the_codes_type_and_default() -> None:
    problems = reference_problems(config_settings(), reference_rows(REFERENCE.read_text()))
    assert not problems, "\n".join(problems)


def test_the_shipped_config_parses_and_every_key_it_sets_is_documented() -> None:
    shipped = ROOT / "config.toml"
    load(shipped, environ={})
    documented = {row.key for row in reference_rows(REFERENCE.read_text())}
    table = tomllib.loads(shipped.read_text(encoding="utf-8"))
    assert sorted(set(toml_keys(table)) - documented) == []


def test_the_readmes_routing_example_is_a_valid_config() -> None:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Routing notifications")[1]
    example = tomllib.loads(section.split("```toml\n")[1].split("```")[0])
    config = parse({**example, "maps": [{"slug": "home"}]}, environ={})
    assert [route.name for route in config.routes] == [route["name"] for route in example["routes"]]


@dataclass(frozen=True, slots=True)
class _Inner:
    ratio: float = 0.5
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True, slots=True)
class _Outer:
    name: str
    port: int = 8765
    tags: tuple[str, ...] = ("x",)
    inner: _Inner = dataclasses.field(default_factory=_Inner)
    items: tuple[_Inner, ...] = ()


_GOOD_REFERENCE = """
## [top]

| key | type | default | meaning |
|---|---|---|---|
| `name` | string | required | who |
| `port` | integer | `8_765` | where |
| `tags` | list of strings | `["x"]` | which \\| what |

## [top.inner]

| key | type | default | meaning |
|---|---|---|---|
| `ratio` | number | `0.5` | how much |
| `mode` | `a` or `b` | `"a"` | how |

## [[top.items]]

| key | type | default | meaning |
|---|---|---|---|
| `ratio` | number | `0.5` | how much |
| `mode` | `a` or `b` | `"a"` | how |
"""


def _outer_settings() -> list[Setting]:
    return config_settings(_Outer, "top.", "[top]")


def test_the_reference_check_accepts_a_complete_reference() -> None:
    rows = reference_rows(_GOOD_REFERENCE)
    assert [row.key for row in rows][:3] == ["top.name", "top.port", "top.tags"]
    assert "top.items[].mode" in {row.key for row in rows}
    assert reference_problems(_outer_settings(), rows) == []


def test_a_missing_key_fails_naming_the_key_and_the_row_to_add() -> None:
    text = _GOOD_REFERENCE.replace(
        "| `ratio` | number | `0.5` | how much |\n| `mode`", "| `mode`", 1
    )
    problems = reference_problems(_outer_settings(), reference_rows(text))
    assert len(problems) == 1
    assert problems[0].startswith("top.inner.ratio: missing from docs/configuration.md")
    assert "under '## [top.inner]'" in problems[0]
    assert "| `ratio` | number | `0.5` | MEANING |" in problems[0]


def test_a_documented_key_the_code_lacks_fails() -> None:
    text = _GOOD_REFERENCE + "| `gone` | integer | `1` | removed long ago |\n"
    problems = reference_problems(_outer_settings(), reference_rows(text))
    assert len(problems) == 1
    assert problems[0].startswith("top.items[].gone: docs/configuration.md:")
    assert "does not have" in problems[0]


@pytest.mark.parametrize(
    ("documented", "wrong"),
    [("`8_765`", "`8766`"), ("`0.5`", "`5e-1x`"), ("`0.5`", "`1`"), ('`["x"]`', "`[]`")],
)
def test_a_default_that_differs_from_the_codes_fails(documented: str, wrong: str) -> None:
    text = _GOOD_REFERENCE.replace(f"| {documented} |", f"| {wrong} |", 1)
    problems = reference_problems(_outer_settings(), reference_rows(text))
    assert len(problems) == 1
    assert "says default" in problems[0]


def test_a_wrong_type_and_a_second_row_for_a_key_fail() -> None:
    text = _GOOD_REFERENCE.replace("| `port` | integer |", "| `port` | number |")
    text += '| `mode` | `a` or `b` | `"a"` | how |\n'
    problems = reference_problems(_outer_settings(), reference_rows(text))
    assert any(p.startswith("top.port: ") and "type 'number'" in p for p in problems)
    assert any(p.startswith("top.items[].mode: documented twice") for p in problems)


def test_keys_set_in_a_config_file_are_read_as_the_reference_writes_them() -> None:
    table = {
        "sources": {"kills": {"url": "ws://x"}},
        "maps": [{"slug": "a", "api_key": "env:K"}],
        "dedup": {"strategies": {"killmail": "key"}},
    }
    assert sorted(toml_keys(table)) == [
        "dedup.strategies",
        "maps[].api_key",
        "maps[].slug",
        "sources.kills.url",
    ]


# -- links and references ------------------------------------------------------


def documentation_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to ``-``."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(github_anchor(line.lstrip("#")))
    return found


def broken_links(path: Path, root: Path) -> list[str]:
    """Relative links of a markdown file that reach no file (or heading) of ``root``."""
    broken: list[str] = []
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}: ({target})"
        if not resolved.is_relative_to(root.resolve()):
            broken.append(f"{where} leaves the repository")
        elif not resolved.exists():
            broken.append(f"{where} reaches no file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{where} names no heading of {resolved.relative_to(root.resolve())}")
    return broken


_OUTSIDE = re.compile(
    r"\.\./shared|\bshared/referenc[e]|\b(?:DESIGN|CONTRACT|PROTOCOLS)\.md\b|/wor[k]/"
)
"""A path outside the repository: the team's shared folder and its documents."""


def outside_references(root: Path, files: Iterable[Path]) -> list[str]:
    """``path:line: text`` of every line of ``files`` that refers outside ``root``."""
    found: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        found += [
            f"{path.relative_to(root)}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), start=1)
            if _OUTSIDE.search(line)
        ]
    return found


def tracked_files(root: Path) -> list[Path]:
    """The files git tracks under ``root``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.decode()
    return [root / name for name in listed.split("\0") if name and (root / name).is_file()]


def test_every_relative_link_of_the_readme_and_the_docs_reaches_a_file() -> None:
    assert [problem for path in documentation_files() for problem in broken_links(path, ROOT)] == []


def test_a_link_to_a_missing_file_or_heading_or_outside_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "a.md"
    (tmp_path / "docs" / "b.md").write_text("# Title\n\n## The `[app]` table\n")
    page.write_text(
        "[ok](b.md#the-app-table) [web](https://example.org) [self](#top)\n# Top\n"
        "[gone](c.md) [bad anchor](b.md#nope) [out](../../elsewhere.md)\n"
        "```\n[in code](ignored.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "docs/a.md: (c.md) reaches no file",
        "docs/a.md: (b.md#nope) names no heading of docs/b.md",
        "docs/a.md: (../../elsewhere.md) leaves the repository",
    ]


def test_the_readme_and_the_docs_refer_to_nothing_outside_the_repository() -> None:
    assert outside_references(ROOT, documentation_files()) == []


def test_no_tracked_file_refers_to_anything_outside_the_repository() -> None:
    if shutil.which("git") is None:
        pytest.fail("this test needs git (apt-get install git)")
    assert outside_references(ROOT, tracked_files(ROOT)) == []


def test_references_outside_the_repository_are_found_in_tracked_files(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.fail("this test needs git (apt-get install git)")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text('"""See the DESIGN' + '.md page."""\nx = 1\n')
    (tmp_path / "README.md").write_text("Read ../" + "shared/CONTRACT" + ".md first.\n")
    (tmp_path / "clean.md").write_text("Everything here is in docs/.\n")
    (tmp_path / "untracked.md").write_text("../" + "shared\n")
    environ = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=environ)
    subprocess.run(
        ["git", "add", "pkg/m.py", "README.md", "clean.md"], cwd=tmp_path, check=True, env=environ
    )
    assert outside_references(tmp_path, tracked_files(tmp_path)) == [
        "README.md:1: Read ../" + "shared/CONTRACT" + ".md first.",
        "pkg/m.py:1: " + '"""See the DESIGN' + '.md page."""',
    ]


# -- the README's set-up commands ------------------------------------------------


def readme_commands() -> list[str]:
    """The commands of the README's first code block."""
    block = re.search(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None, "README.md must start with a ```sh block of set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_test_command_is_the_set_up_script_that_ci_runs() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[1] == f"{SETUP_SCRIPT} && pytest"
    assert os.access(ROOT / SETUP_SCRIPT, os.X_OK), f"{SETUP_SCRIPT} must be executable"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(SETUP_SCRIPT)}$", ci, re.MULTILINE)


def test_the_set_up_script_without_apt_says_what_to_install_and_fails(tmp_path: Path) -> None:
    tools = tmp_path / "bin"  # a machine with Python but neither chromium nor apt-get
    tools.mkdir()
    for name, target in (("python3", sys.executable), ("dirname", shutil.which("dirname"))):
        assert target is not None
        (tools / name).symlink_to(target)
    environ = {"PATH": str(tools), "CHROMIUM": str(tmp_path / "no-chromium"), "HOME": str(tmp_path)}
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, str(ROOT / SETUP_SCRIPT)],
        check=False,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no apt-get" in done.stderr
    assert f"Chromium at {tmp_path / 'no-chromium'}" in done.stderr
    assert "pip install" not in done.stdout  # it stops before installing anything


# -- what the program offers is documented ----------------------------------------


def markdown_sections(text: str) -> dict[str, str]:
    """``## heading`` -> the text under it, up to the next ``##`` heading."""
    sections: dict[str, str] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            sections[heading] = ""
        elif heading:
            sections[heading] += line + "\n"
    return sections


def command_options() -> dict[str, list[str]]:
    """Every ``run.py`` command and its options, from the argument parser."""
    parser = cli._parser()
    found: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = [
                    option
                    for sub_action in sub._actions
                    for option in sub_action.option_strings
                    if option.startswith("--") and option != "--help"
                ]
    return found


def undocumented_commands(text: str) -> list[str]:
    sections = markdown_sections(text)
    missing: list[str] = []
    for command, options in command_options().items():
        titles = [t for t in sections if re.search(rf"\brun\.py {re.escape(command)}\b", t)]
        if not titles:
            missing.append(f"docs/cli.md: no '## python run.py {command}' section")
            continue
        body = sections[titles[0]]
        missing += [
            f"docs/cli.md '## {titles[0]}': {option} is not described"
            for option in options
            if not re.search(rf"`{re.escape(option)}\b", body)
        ]
    return missing


def test_every_command_and_option_of_run_py_is_in_the_cli_reference() -> None:
    assert undocumented_commands((DOCS / "cli.md").read_text(encoding="utf-8")) == []


def test_an_undocumented_command_or_option_is_named() -> None:
    text = "## python run.py run (the default)\n`--config PATH`\n## python run.py tree\n`--url`\n"
    missing = undocumented_commands(text)
    assert "docs/cli.md '## python run.py tree': --json is not described" in missing
    assert "docs/cli.md: no '## python run.py events' section" in missing
    assert not any("run (the default)" in problem for problem in missing)


_ROUTE = re.compile(r"""\.add\(\s*"(GET|POST|PUT|DELETE|PATCH)",\s*"([^"]+)\"""")


def http_routes() -> list[str]:
    """``METHOD /path`` of every route the actors register on the web actor."""
    return sorted(
        f"{method} {path}"
        for source in sorted((ROOT / "actors").rglob("*.py"))
        for method, path in _ROUTE.findall(source.read_text(encoding="utf-8"))
    )


def test_every_http_endpoint_is_in_the_operations_guide() -> None:
    routes = http_routes()
    assert "GET /livez" in routes  # the reader still finds them
    endpoints = markdown_sections((DOCS / "operations.md").read_text(encoding="utf-8"))
    table = endpoints["HTTP endpoints"]
    assert [route for route in routes if f"`{route}`" not in table] == []


_ALERT_KEY = re.compile(r'f?"([a-z_]+:[^"\s]+)"')
ALERT_RULES = ROOT / "actors" / "metrics" / "rules.py"


def alert_prefixes(source: str) -> list[str]:
    """The key prefixes of the alert rules: the keys of what ``conditions()`` returns."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == "conditions":
            returned = [n.value for n in ast.walk(node) if isinstance(n, ast.Return)]
            return [
                key.value
                for value in returned
                if isinstance(value, ast.Dict)
                for key in value.keys
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            ]
    return []


def alert_keys(source: str) -> list[str]:
    """Every alert key (``journal:error``, ``connection:{name}``) the rules write."""
    prefixes = tuple(alert_prefixes(source))
    return sorted({key for key in _ALERT_KEY.findall(source) if key.startswith(prefixes)})


def test_every_alert_is_in_the_operations_guide_with_what_to_do() -> None:
    keys = alert_keys(ALERT_RULES.read_text(encoding="utf-8"))
    assert "journal:error" in keys, f"tests/test_docs.py finds no alert rules in {ALERT_RULES}"
    table = markdown_sections((DOCS / "operations.md").read_text(encoding="utf-8"))["Alerts"]
    assert [key for key in keys if f"| `{key}` |" not in table] == []


def test_alert_keys_are_read_from_the_prefixes_of_the_rules() -> None:
    source = (
        "def conditions(self):\n"
        '    return {"disk:": self.disk(), "feed:": self.feed()}\n'
        "def disk(self):\n"
        '    return {"disk:full": 1, f"feed:{name}": 2, f"latency:{stage}": 3}\n'
    )
    assert alert_keys(source) == ["disk:full", "feed:{name}"]
