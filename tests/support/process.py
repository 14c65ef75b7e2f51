"""Run the real program (``python run.py``) as a subprocess: one command, or a running instance.

:func:`run_cli` runs one command to its end and captures what it printed;
:func:`start` runs the program and returns a :class:`Program` once its
``/livez`` answers 200 (failing at once, with the program's log, if it exits
first); :func:`running` does the same as a ``with`` block that kills the
program if the test left it running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root (where ``run.py`` is)."""

ACTION = {"X-Requested-With": "test"}
"""What a state-changing request carries when no token is set (no cross-site form can)."""

QUIET = """
[simulator]
enabled = false
[sources.kills]
enabled = false
[debug]
allow_fault_injection = true
"""
"""Configuration for an instance that connects to nothing (no simulator, no kills feed)."""


def write_config(directory: Path, body: str, port: int) -> Path:
    """A config file for a test instance: data in ``directory``, HTTP on ``port``."""
    path = directory / "config.toml"
    path.write_text(
        f'[app]\ndata_dir = "{directory / "data"}"\nlog_level = "DEBUG"\n'
        f"[http]\nport = {port}\n" + body,
        encoding="utf-8",
    )
    return path


def _command(args: tuple[str, ...]) -> list[str]:
    return [sys.executable, str(ROOT / "run.py"), *args]


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    # unbuffered, so that a log read after a crash holds the program's last lines
    return {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``python run.py ARGS...`` to its end; its exit code and output as (UTF-8) text."""
    done = run_cli_bytes(*args, env=env, timeout_s=timeout_s)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def run_cli_bytes(
    *args: str, env: Mapping[str, str] | None = None, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[bytes]:
    """:func:`run_cli` for a command whose output is binary (``events --format msgpack``)."""
    return subprocess.run(
        _command(args),
        cwd=ROOT,
        env=_environment(env),
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass
class Program:
    """One run of ``python run.py``: its process, the URL of its web face and its log file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout_s: float = 20.0) -> int:
        """SIGTERM (if still running), then the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def sigkill(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def rss_kib(self) -> int:
        """The process's resident set size (``VmRSS`` in ``/proc/PID/status``), KiB."""
        status = Path(f"/proc/{self.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        msg = f"no VmRSS in /proc/{self.pid}/status"
        raise AssertionError(msg)

    def tree(self) -> dict[str, Any]:
        """The live supervision tree (``GET /api/tree``)."""
        answer = requests.get(f"{self.url}/api/tree", timeout=5)
        answer.raise_for_status()
        tree: dict[str, Any] = answer.json()
        return tree

    def crash(self, actor: str) -> int:
        """``POST /debug/crash/{actor}``; the HTTP status."""
        return requests.post(
            f"{self.url}/debug/crash/{actor}", headers=ACTION, timeout=5
        ).status_code

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def check_running(self) -> None:
        """Fails, with the program's log, if the program has exited (for a wait's condition)."""
        if not self.alive():
            msg = f"run.py exited with {self.process.returncode}:\n{self.log_text()}"
            raise AssertionError(msg)

    def live(self) -> bool:
        """Whether ``/livez`` answers 200; fails with the log if the program has exited."""
        self.check_running()
        try:
            return requests.get(f"{self.url}/livez", timeout=2).status_code == 200
        except requests.RequestException:
            return False


def start(
    config: Path, port: int, *, log: Path | None = None, env: Mapping[str, str] | None = None
) -> Program:
    """``python run.py --config CONFIG``, its output in ``log`` (``run.log`` beside the config);
    returns once ``/livez`` on ``port`` answers 200."""
    log = log or config.parent / "run.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            _command(("--config", str(config))),
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_environment(env),
        )
    program = Program(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(program.live, timeout_s=30, interval_s=0.02, what="the program's /livez")
    except BaseException:
        program.sigkill()
        raise
    return program


@contextmanager
def running(config: Path, port: int, env: Mapping[str, str] | None = None) -> Iterator[Program]:
    """:func:`start` as a ``with`` block; the program is killed at its end if still running."""
    program = start(config, port, env=env)
    try:
        yield program
    finally:
        program.sigkill()
