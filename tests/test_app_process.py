"""The program as a user runs it: ``python run.py`` and its commands, in a subprocess."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import requests

from tests.support.process import ACTION, QUIET, run_cli, run_cli_bytes, running, write_config
from tests.support.sockets import free_port
from tests.support.waiting import wait_for


def test_run_serves_the_tree_and_stops_in_order_with_exit_0_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, QUIET, port)
    with running(config, port) as instance:
        shown = run_cli("tree", "--config", str(config))
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[0].startswith("root  [supervisor]  running")
        assert "web  [worker]  running" in shown.stdout
        as_json = run_cli("tree", "--url", instance.url, "--json")
        tree = json.loads(as_json.stdout)
        assert tree["name"] == "root"
        assert {"name", "kind", "state", "restarts", "last_failure", "mailbox", "children"} <= set(
            tree
        )
        assert instance.terminate() == 0
        assert "stopped" in instance.log_text()


def test_crash_injection_restarts_the_actor_and_the_tree_shows_it(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, QUIET, port)
    with running(config, port) as instance:
        answer = requests.post(f"{instance.url}/debug/crash/web", headers=ACTION, timeout=5)
        assert answer.status_code == 202

        def web_restarted() -> bool:
            try:
                tree = requests.get(f"{instance.url}/api/tree", timeout=2).json()
            except requests.RequestException:
                return False
            web = next(c for c in tree["children"] if c["name"] == "web")
            return bool(web["restarts"] == 1 and web["state"] == "running")

        wait_for(web_restarted, timeout_s=10)
        shown = run_cli("tree", "--url", instance.url)
        assert "restarts=1" in shown.stdout
        assert "InjectedCrashError" in shown.stdout
        assert instance.terminate() == 0


def test_fault_injection_is_404_unless_enabled(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, QUIET.replace("true", "false"), port)
    with running(config, port) as instance:
        assert (
            requests.post(f"{instance.url}/debug/crash/web", headers=ACTION, timeout=5).status_code
            == 404
        )
        assert instance.terminate() == 0


def test_token_guards_the_api_but_not_liveness(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, QUIET, port)
    text = config.read_text().replace(f"port = {port}\n", f'port = {port}\ntoken = "env:TOK"\n')
    config.write_text(text)
    with running(config, port, env={"TOK": "s3cret-token"}) as instance:
        assert requests.get(f"{instance.url}/api/tree", timeout=5).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert requests.get(f"{instance.url}/api/tree", headers=bad, timeout=5).status_code == 401
        good = {"Authorization": "Bearer s3cret-token"}
        assert requests.get(f"{instance.url}/api/tree", headers=good, timeout=5).status_code == 200
        assert requests.get(f"{instance.url}/livez", timeout=5).status_code == 200
        # run.py tree reads the token from the same config.
        shown = run_cli("tree", "--config", str(config), env={"TOK": "s3cret-token"})
        assert shown.returncode == 0, shown.stderr
        assert instance.terminate() == 0
        assert "s3cret-token" not in instance.log_text()


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[http]\nprot = 8765\n")
    result = run_cli("--config", str(config))
    assert result.returncode == 2
    assert "http.prot: unknown key" in result.stderr
    assert run_cli("check-config", "--config", str(config)).returncode == 2


def test_check_config_prints_the_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[http]\ntoken = "plain-secret"\n')
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 0
    shown = json.loads(result.stdout)
    assert shown["http"]["token"] == "*** (inline)"
    assert "plain-secret" not in result.stdout


def test_tree_exits_1_when_no_instance_answers() -> None:
    result = run_cli("tree", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "no instance answers" in result.stderr


def test_events_writes_the_journal_as_jsonl_and_msgpack_with_filters(tmp_path: Path) -> None:
    from realtime.export import read_msgpack
    from realtime.journal_store import JournalStore
    from tests.support.pipeline import kill_event, map_event

    config = write_config(tmp_path, QUIET, free_port())
    with JournalStore.open(tmp_path / "data" / "journal.sqlite3") as store:
        store.append([kill_event(1), kill_event(2), map_event("add_system", "01JA", {"a": 1})])
    lines = run_cli("events", "--config", str(config)).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert {"seq", "id", "source", "type", "time", "received_at", "key", "priority", "data"} <= set(
        records[0]
    )
    only_kills = run_cli("events", "--config", str(config), "--type", "killmail", "--since", "2")
    assert [json.loads(line)["seq"] for line in only_kills.stdout.splitlines()] == [2]
    exported = run_cli_bytes("events", "--config", str(config), "--format", "msgpack")
    assert exported.returncode == 0, exported.stderr
    packed = exported.stdout
    import io

    events = list(read_msgpack(io.BytesIO(packed)))
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[2].data == {"a": 1}


def test_when_the_root_gives_up_the_process_exits_1_with_a_clear_line(tmp_path: Path) -> None:
    port = free_port()
    body = QUIET + "[supervision]\nmax_restarts = 2\nmax_seconds = 60\n"
    config = write_config(tmp_path, body, port)
    with running(config, port) as instance:
        for restarts in range(3):
            # The web actor is restarted twice, then the root gives up. Each crash
            # waits for the restart before it: a request that reached the dying
            # incarnation would crash nothing.
            wait_for(partial(_web_restarted, instance.url, restarts), timeout_s=10)
            requests.post(f"{instance.url}/debug/crash/web", headers=ACTION, timeout=5)
        assert instance.process.wait(30) == 1
        log = instance.log_text()
        assert "gave up" in log
        assert "more than 2 restarts in 60s" in log


def _web_restarted(url: str, times: int) -> bool:
    return _web_restarts(url) == times


def _web_restarts(url: str) -> int | None:
    """How often the web actor was restarted, as the live tree says; None if no answer."""
    try:
        tree = requests.get(f"{url}/api/tree", timeout=2).json()
    except (requests.RequestException, ValueError):
        return None
    nodes = [tree]
    while nodes:
        node = nodes.pop()
        if node["name"] == "web":
            return int(node["restarts"])
        nodes.extend(node["children"])
    return None
