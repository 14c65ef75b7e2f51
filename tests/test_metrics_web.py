"""HTTP: /readyz, /api/health, /api/status, /metrics and the dashboard, their shapes and rules."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from actors.protocol import Names
from actors.web_api import Answer, connection_entry, health_status, redact, secret_values
from realtime.config import Config, DiscordConfig, MapConfig, NotifyConfig, Secret
from tests.support.metrics_tree import (
    STATUSES,
    TOKEN,
    Drop,
    Emit,
    Fail,
    RejectFrame,
    Running,
    SetStatus,
    config_on_free_port,
    running_tree,
)
from tests.support.waiting import wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONNECTION_KEYS = {
    "name",
    "kind",
    "state",
    "quality",
    "rtt_ms",
    "uptime_pct",
    "reconnects",
    "last_message_age_s",
}
TREE_KEYS = {"name", "kind", "state", "restarts", "last_failure", "mailbox", "children"}


@pytest.fixture
def running() -> Iterator[Running]:
    """A tree of its own, for a test that changes what the actors report."""
    with running_tree() as tree:
        yield tree


@pytest.fixture(scope="module")
def shared() -> Iterator[Running]:
    """One tree for the tests that only read."""
    with running_tree() as tree:
        yield tree


def get(running: Running, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return requests.get(running.url + path, timeout=5, **kwargs)


# --- the token -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/status"),
        ("GET", "/api/health"),
        ("GET", "/api/tree"),
        ("GET", "/metrics"),
        ("POST", "/debug/crash/dedup"),
        ("GET", "/"),
    ],
)
def test_api_debug_dashboard_and_metrics_need_the_token(
    shared: Running, method: str, path: str
) -> None:
    url = shared.url + path
    assert requests.request(method, url, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.request(method, url, headers=wrong, timeout=5).status_code == 401
    assert requests.request(method, url, headers=AUTH, timeout=5).status_code != 401


@pytest.mark.parametrize("path", ["/", "/api/status", "/metrics"])
def test_a_token_in_the_url_opens_nothing(shared: Running, path: str) -> None:
    assert requests.get(f"{shared.url}{path}?token={TOKEN}", timeout=5).status_code == 401


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_probes_are_open(shared: Running, path: str) -> None:
    assert requests.get(shared.url + path, timeout=5).status_code == 200


def test_the_dashboard_with_the_token_is_a_page_that_needs_no_cdn(shared: Running) -> None:
    page = get(shared, "/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    script = requests.get(shared.url + "/static/dashboard.js", timeout=5)
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "<svg" in page.text
    for text in (page.text, script.text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), "no CDN"


def test_the_dashboard_without_a_token_answers_a_login_page(shared: Running) -> None:
    page = requests.get(shared.url + "/", timeout=5)
    assert page.status_code == 401
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'name="token"' in page.text


# --- shapes --------------------------------------------------------------------------------------


def test_api_health_lists_every_enabled_source_in_the_contract_shape(shared: Running) -> None:
    health = get(shared, "/api/health").json()
    assert health["status"] == "pass"
    (kills,) = health["connections"]
    assert set(kills) >= CONNECTION_KEYS
    assert kills["name"] == "kills"
    assert kills["kind"] == "websocket"
    assert kills["state"] == "connected"
    assert set(kills["quality"]) == {"score", "band"}
    assert kills["quality"]["band"] in {"excellent", "good", "poor", "critical"}


def test_api_status_has_every_contract_section(running: Running) -> None:
    running.tell(Names.KILLS, Emit(3))
    running.tell(Names.KILLS, RejectFrame("missing_killmail_id"))

    def settled() -> dict[str, Any]:
        status: dict[str, Any] = get(running, "/api/status").json()
        return status if status["metrics"]["throughput"]["total"] == 3 else {}

    status = wait_for(settled, timeout_s=5, what="events counted")
    for section in ("connections", "pipeline", "dedup", "flow", "journal", "notifier"):
        assert section in status
    for section in ("metrics", "alerts", "tree", "rejects"):
        assert section in status
    assert set(status["connections"][0]) >= CONNECTION_KEYS
    dedup = status["pipeline"]["dedup"]
    assert {"size", "capacity", "high_water"} <= set(dedup)
    assert dedup["capacity"] == 100
    assert status["dedup"] == STATUSES[Names.DEDUP]
    assert status["flow"]["backpressure"] is False
    assert status["journal"]["last_seq"] == 42
    assert status["notifier"]["sent"] == 5
    assert set(status["tree"]) >= TREE_KEYS
    assert status["rejects"] == {"invalid_json": 1, "missing_killmail_id": 1}
    assert status["rejects_by_source"]["kills"] == {"missing_killmail_id": 1}
    assert status["alerts"]["active"] == []
    assert status["metrics"]["latency"]["stages"]["journal"]["count"] == 3
    assert status["readiness"] == {"ready": True, "reasons": []}
    assert all(actor["answered"] for actor in status["actors"].values())


def test_api_tree_is_the_supervision_tree(shared: Running) -> None:
    tree = get(shared, "/api/tree").json()
    assert set(tree) >= TREE_KEYS
    assert [child["name"] for child in tree["children"]] == [
        "metrics",
        "journal",
        "pipeline",
        "sources",
        "web",
    ]


# --- readiness -----------------------------------------------------------------------------------


def test_readyz_is_200_when_sources_are_live_and_the_pipeline_runs(shared: Running) -> None:
    answer = requests.get(shared.url + "/readyz", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"status": "pass", "ready": True}


def test_readyz_is_503_with_reasons_when_the_source_drops_or_the_journal_fails(
    running: Running,
) -> None:
    running.tell(Names.KILLS, Drop())
    running.tell(Names.JOURNAL, SetStatus({**STATUSES[Names.JOURNAL], "error": "disk I/O error"}))

    def both_reasons() -> dict[str, Any]:
        # The two actors take their messages in any order: wait for both to show.
        answer = get(running, "/readyz")
        body: dict[str, Any] = answer.json() if answer.status_code == 503 else {}
        return body if len(body.get("reasons", [])) >= 2 else {}

    body = wait_for(both_reasons, timeout_s=5)
    assert body["ready"] is False
    assert "kills: connection disconnected" in body["reasons"]
    assert "journal: disk I/O error" in body["reasons"]
    assert get(running, "/api/health").json()["status"] == "fail"


def test_readyz_is_503_without_a_pipeline() -> None:
    with running_tree(pipeline=False) as running:
        answer = get(running, "/readyz")
        assert answer.status_code == 503
        reasons = answer.json()["reasons"]
        assert "journal: not in the supervision tree" in reasons
        assert "pipeline: not in the supervision tree" in reasons


def test_a_configured_source_that_is_not_running_shows_as_disconnected() -> None:
    config = dataclasses.replace(config_on_free_port(), maps=(MapConfig("demo"),))
    with running_tree(config) as running:
        health = get(running, "/api/health").json()
        demo = next(c for c in health["connections"] if c["name"] == "map:demo")
        assert set(demo) >= CONNECTION_KEYS
        assert demo["kind"] == "sse"
        assert demo["state"] == "disconnected"
        assert demo["error"] == "not running"
        assert health["status"] == "warn"  # kills is up, the map is not
        answer = get(running, "/readyz")
        assert answer.status_code == 503
        assert "map:demo: connection disconnected (not running)" in answer.json()["reasons"]


# --- a busy actor --------------------------------------------------------------------------------


def test_a_busy_actor_does_not_stall_api_status_and_is_asked_only_once(running: Running) -> None:
    running.block(Names.DEDUP)
    for _ in range(2):
        started = time.monotonic()
        status = get(running, "/api/status").json()
        assert time.monotonic() - started < 1.5
        assert status["dedup"] == {"error": "no answer within 0.5 s"}
        assert status["actors"]["dedup"]["answered"] is False
        assert status["journal"]["last_seq"] == 42, "the others still answer"
    dedup = running.tree.snapshot().find(Names.DEDUP)
    assert dedup is not None
    assert dedup.mailbox is not None
    # One question from the web (shared by both requests), one from metrics' poll.
    assert dedup.mailbox.control <= 2


# --- Prometheus ----------------------------------------------------------------------------------


def test_metrics_exposition_parses_with_conventional_names_and_units(running: Running) -> None:
    running.tell(Names.KILLS, Emit(5, latency_s=0.02))

    def families() -> dict[str, Metric]:
        text = get(running, "/metrics").text
        parsed = {family.name: family for family in text_string_to_metric_families(text)}
        events = parsed.get("wanderer_events")
        counted = events and events.samples and events.samples[0].value == 5
        # Statuses come from the metrics actor's last poll (one tick old at most).
        polled = "wanderer_journal_last_seq" in parsed and "wanderer_connection_up" in parsed
        return parsed if counted and polled else {}

    parsed = wait_for(families, timeout_s=5, what="events and statuses exported")
    assert parsed["wanderer_events"].type == "counter"
    (sample,) = parsed["wanderer_events"].samples
    assert sample.name == "wanderer_events_total"
    assert sample.labels == {"source": "wanderer-kills", "type": "killmail"}

    latency = parsed["wanderer_stage_latency_seconds"]
    assert latency.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in latency.samples if s.name.endswith("_bucket")}
    count = next(s.value for s in latency.samples if s.name.endswith("_count"))
    assert buckets["+Inf"] == count == 5
    assert buckets["0.01"] == 0
    assert buckets["0.025"] == 5

    def value(family_name: str, **labels: str) -> float:
        family = parsed[family_name]
        return float(next(s.value for s in family.samples if labels.items() <= s.labels.items()))

    assert value("wanderer_mailbox_capacity_messages", actor="dedup") == 100
    assert value("wanderer_connection_up", name="kills") == 1
    assert value("wanderer_connection_state", name="kills", state="connected") == 1
    assert value("wanderer_rejects", source="journal", reason="invalid_json") == 1
    assert value("wanderer_actor_restarts", actor="kills") == 0
    assert value("wanderer_journal_last_seq") == 42
    assert parsed["wanderer_actor_restarts"].type == "counter"
    assert "process_cpu_seconds" in parsed
    for name in parsed:
        assert name.startswith(("wanderer_", "process_")), name


# --- secrets -------------------------------------------------------------------------------------

MAP_KEY = "map-key-9c1e44"
BOT_TOKEN = "bot-token-77ab01"


def secret_config() -> Config:
    config = config_on_free_port()
    discord = dataclasses.replace(
        DiscordConfig(), bot_token=Secret(BOT_TOKEN, "env:DISCORD_BOT_TOKEN")
    )
    return dataclasses.replace(
        config,
        maps=(MapConfig("demo", api_key=Secret(MAP_KEY, "env:MAP_API_KEY")),),
        notify=dataclasses.replace(NotifyConfig(), discord=discord),
    )


def test_no_secret_appears_in_any_response() -> None:
    with running_tree(secret_config()) as running:
        leaky = {
            **STATUSES[Names.NOTIFIER],
            "sinks": {"discord": {"url": f"https://discord.test/api?key={BOT_TOKEN}"}},
            "api_key": "some-other-credential",
            "error": f"request failed for Bot {BOT_TOKEN} on map {MAP_KEY}",
        }
        running.tell(Names.NOTIFIER, SetStatus(leaky))
        running.tell(Names.ROUTER, Fail(f"GET https://map.test/api?key={MAP_KEY} failed"))

        def router_restarted() -> bool:
            router = running.tree.snapshot().find(Names.ROUTER)
            return router is not None and router.restarts == 1 and router.state == "running"

        wait_for(router_restarted, timeout_s=5)
        wait_for(
            lambda: (
                get(running, "/api/status").json()["notifier"]["sent"] == 5
                and "request failed" in str(get(running, "/api/status").json()["notifier"])
            ),
            timeout_s=5,
        )
        for path in ("/api/status", "/api/health", "/api/tree", "/metrics", "/readyz", "/livez"):
            body = get(running, path).text
            for secret in (TOKEN, MAP_KEY, BOT_TOKEN, "some-other-credential"):
                assert secret not in body, (path, secret)
        router = next(
            child
            for child in get(running, "/api/tree").json()["children"][2]["children"]
            if child["name"] == Names.ROUTER
        )
        assert router["last_failure"]["message"] == "GET https://map.test/api?key=*** failed"
        notifier = get(running, "/api/status").json()["notifier"]
        assert notifier["api_key"] == "***"
        assert notifier["error"] == "request failed for Bot *** on map ***"


def test_redact_masks_secret_values_and_secret_looking_keys() -> None:
    secrets = secret_values(secret_config())
    assert set(secrets) == {TOKEN, MAP_KEY, BOT_TOKEN}
    scrubbed = redact(
        {
            "url": f"https://x/{MAP_KEY}",
            "nested": [{"token": "abc", "tokens_sent": 3}, BOT_TOKEN],
            MAP_KEY: 1,
        },
        secrets,
    )
    assert scrubbed == {
        "url": "https://x/***",
        "nested": [{"token": "***", "tokens_sent": 3}, "***"],
        "***": 1,
    }


# --- pieces --------------------------------------------------------------------------------------


def test_a_source_that_does_not_answer_is_disconnected_with_the_reason() -> None:
    entry = connection_entry("kills", Answer(error="no answer within 0.5 s"))
    assert set(entry) >= CONNECTION_KEYS
    assert entry["state"] == "disconnected"
    assert entry["error"] == "no answer within 0.5 s"
    assert health_status([entry]) == "fail"
    live = connection_entry(
        "map:a",
        Answer(
            {"connection": {"state": "connected", "quality": {"score": 95, "band": "excellent"}}}
        ),
    )
    assert health_status([live]) == "pass"
    assert health_status([live, entry]) == "warn"
