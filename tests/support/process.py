"""Run the real program (``python run.py``) as a subprocess for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(directory: Path, body: str, port: int) -> Path:
    """A config file for a test instance: data in ``directory``, HTTP on ``port``."""
    path = directory / "config.toml"
    path.write_text(
        f'[app]\ndata_dir = "{directory / "data"}"\nlog_level = "DEBUG"\n'
        f"[http]\nport = {port}\n" + body,
        encoding="utf-8",
    )
    return path


@dataclass
class Instance:
    process: subprocess.Popen[str]
    url: str
    log: Path

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, then the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running(config: Path, port: int, env: dict[str, str] | None = None) -> Iterator[Instance]:
    """Start ``run.py`` on ``config`` and wait until ``/livez`` answers 200."""
    log = config.parent / "run.log"
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "--config", str(config)],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
    instance = Instance(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(lambda: _live(instance), timeout_s=30, what="the instance's /livez")
        yield instance
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _live(instance: Instance) -> bool:
    if instance.process.poll() is not None:
        msg = f"run.py exited with {instance.process.returncode}:\n{instance.log_text()}"
        raise AssertionError(msg)
    try:
        return requests.get(f"{instance.url}/livez", timeout=2).status_code == 200
    except requests.RequestException:
        return False
