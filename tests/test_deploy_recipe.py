"""The deployment recipe: the health probe, the Dockerfile, compose.yaml and the systemd unit.

The recipe's install and start steps themselves run in CI
(``deploy/check-recipe.sh``: a fresh virtual environment, the started program,
this health probe, SIGTERM); here are the parts a test can hold: the probe
against real HTTP servers, and the files' promises (non-root, the volume, the
read-only config, exec-form commands, the unit's hardening).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.process import ROOT
from tests.support.sockets import free_port

HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
PREFIX = "/opt/wanderer-realtime"
PROBE_COMMAND = [f"{PREFIX}/bin/python", f"{PREFIX}/bin/healthcheck.py"]


class _Livez(ThreadingHTTPServer):
    """A server whose ``/livez`` answers ``statuses`` in turn, then the last one for ever."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _LivezHandler)
        self.statuses = statuses
        self.requests = 0

    def next_status(self) -> int:
        status = self.statuses[min(self.requests, len(self.statuses) - 1)]
        self.requests += 1
        return status


class _LivezHandler(BaseHTTPRequestHandler):
    server: _Livez

    def do_GET(self) -> None:
        status = self.server.next_status() if self.path == "/livez" else 404
        body = json.dumps({"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def livez() -> Iterator[_Livez]:
    server = _Livez([200])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    """The health probe as the image runs it: a script on the installed package's Python."""
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        env={"PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def config_with(tmp_path: Path, http: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"[http]\n{http}\n", encoding="utf-8")
    return path


def test_probe_is_healthy_when_livez_answers_200_at_the_configured_port(
    tmp_path: Path, livez: _Livez
) -> None:
    config = config_with(tmp_path, f"port = {livez.server_address[1]}")
    result = probe("--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("healthy: http://127.0.0.1:")


def test_probe_reaches_a_wildcard_bind_on_loopback(tmp_path: Path, livez: _Livez) -> None:
    http = f'bind = "0.0.0.0"\nport = {livez.server_address[1]}\ntoken = "x"'
    result = probe("--config", str(config_with(tmp_path, http)))
    assert result.returncode == 0, result.stdout
    assert f"http://127.0.0.1:{livez.server_address[1]}/livez" in result.stdout


def test_probe_is_unhealthy_on_503(livez: _Livez) -> None:
    livez.statuses = [503]
    result = probe("--url", f"http://127.0.0.1:{livez.server_address[1]}")
    assert result.returncode == 1
    assert "answered 503" in result.stdout


def test_probe_is_unhealthy_when_nothing_listens() -> None:
    result = probe("--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert result.returncode == 1
    assert result.stdout.startswith("unhealthy:")


def test_probe_waits_until_healthy_when_asked(livez: _Livez) -> None:
    livez.statuses = [503, 503, 503, 200]
    result = probe("--url", f"http://127.0.0.1:{livez.server_address[1]}", "--wait", "20")
    assert result.returncode == 0, result.stdout
    assert livez.requests == 4


@pytest.mark.parametrize(
    ("http", "problem"),
    [("port = 0", "port is 0"), ('port = "x"', "not an address and a port")],
)
def test_probe_is_unhealthy_on_a_config_it_cannot_probe(
    tmp_path: Path, http: str, problem: str
) -> None:
    result = probe("--config", str(config_with(tmp_path, http)))
    assert result.returncode == 1
    assert problem in result.stdout


def test_probe_is_unhealthy_on_a_missing_config(tmp_path: Path) -> None:
    result = probe("--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 1
    assert "unhealthy: config" in result.stdout


# -- the Dockerfile and compose.yaml ---------------------------------------------------


def dockerfile_instructions() -> dict[str, list[str]]:
    """Each instruction's arguments (continuation lines joined), by instruction."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    )
    found: dict[str, list[str]] = {}
    for line in joined.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            found.setdefault(instruction.upper(), []).append(rest.strip())
    return found


def test_image_runs_the_recipe_as_a_non_root_user_with_data_on_a_volume() -> None:
    found = dockerfile_instructions()
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", found["FROM"][0]), found["FROM"]
    assert any("deploy/recipe.sh install" in run for run in found["RUN"])
    assert found["USER"] == ["wanderer"]
    assert json.loads(found["VOLUME"][0]) == ["/data"]
    env = " ".join(found["ENV"])
    assert "WANDERER_CONFIG=/config/config.toml" in env
    assert "WANDERER_DATA_DIR=/data" in env


def test_image_starts_and_probes_in_exec_form() -> None:
    found = dockerfile_instructions()
    # Exec form: the program (after the start step's exec) is the process that
    # `docker stop` signals, not a shell in front of it.
    assert json.loads(found["ENTRYPOINT"][0]) == [f"{PREFIX}/bin/recipe.sh"]
    assert json.loads(found["CMD"][0]) == ["start"]
    healthcheck = found["HEALTHCHECK"][0]
    assert json.loads(healthcheck[healthcheck.index("CMD ") + 4 :]) == PROBE_COMMAND
    assert found["STOPSIGNAL"] == ["SIGTERM"]


def test_start_step_execs_the_program() -> None:
    recipe = (ROOT / "deploy" / "recipe.sh").read_text(encoding="utf-8")
    start = recipe[recipe.index("\nstart)") : recipe.index(";;", recipe.index("\nstart)"))]
    assert 'exec "$prefix/bin/wanderer-realtime" run --config "$config"' in start


def test_compose_keeps_the_journal_reads_secrets_from_an_env_file_and_probes_health() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["notifier"]
    assert service["restart"] == "unless-stopped"
    assert service["env_file"] == ".env"
    assert "data:/data" in service["volumes"]
    assert "./config.toml:/config/config.toml:ro" in service["volumes"]
    assert "data" in compose["volumes"]
    assert service["healthcheck"]["test"] == ["CMD", *PROBE_COMMAND]


# -- the systemd unit ------------------------------------------------------------------

UNIT = ROOT / "deploy" / "wanderer-realtime.service"


def unit_settings() -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, separator, value = line.partition("=")
        assert separator, f"not a key=value line: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_restarts_on_failure_as_a_dedicated_user_in_a_read_only_system() -> None:
    service = unit_settings()["Service"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]
    assert service["User"] == ["wanderer"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    # The one writable place is the state directory, and the journal is in it.
    assert service["StateDirectory"] == ["wanderer-realtime"]
    assert "WANDERER_DATA_DIR=/var/lib/wanderer-realtime" in service["Environment"]
    assert service["WorkingDirectory"] == ["/var/lib/wanderer-realtime"]
    assert service["ExecStart"] == [f"{PREFIX}/bin/recipe.sh start"]
    assert "WANDERER_CONFIG=/etc/wanderer-realtime/config.toml" in service["Environment"]
    assert service["KillSignal"] == ["SIGTERM"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point the install prefix at a stub.
    (tmp_path / "bin").mkdir()
    stub = tmp_path / "bin" / "recipe.sh"
    stub.write_text("#!/bin/sh\n", encoding="utf-8")
    stub.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(PREFIX, str(tmp_path)), "utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and unsafe settings are only warnings: any output is a failure here.
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
