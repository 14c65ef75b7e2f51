"""Who may use the web face, and how: Host allow-list, login cookie, CSRF, headers, probes.

Runs a real tree (tests.support.metrics_tree) and talks HTTP to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from actors.protocol import Names
from actors.web_app import CONTENT_SECURITY_POLICY, SESSION_COOKIE
from realtime.config import DebugConfig, Secret
from tests.support.metrics_tree import TOKEN, Drop, Running, config_on_free_port, running_tree
from tests.support.waiting import wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def shared() -> Iterator[Running]:
    """One tree with a token and fault injection on, for tests that do not change it."""
    config = config_on_free_port(allowed_hosts=("dash.example.com",))
    config = dataclasses.replace(config, debug=DebugConfig(allow_fault_injection=True))
    with running_tree(config) as tree:
        yield tree


def request(running: Running, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, running.url + path, timeout=5, allow_redirects=False, **kwargs)


def login(running: Running, token: str = TOKEN) -> requests.Response:
    return request(running, "POST", "/login", data={"token": token})


# --- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/api/status", "/livez", "/metrics", "/static/dashboard.js", "/no-such-page"]
)
def test_every_response_forbids_sniffing_framing_referrers_and_foreign_code(
    shared: Running, path: str
) -> None:
    headers = request(shared, "GET", path, headers=AUTH).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY  # no inline script
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_the_pages_hold_no_inline_script_or_style() -> None:
    from actors.web_app import static_bytes

    for page in ("dashboard.html", "login.html"):
        text = static_bytes(page).decode()
        assert "<script>" not in text
        assert "<style" not in text
        assert " style=" not in text
        assert " on" not in text.replace(" one", "")  # no onclick= and the like


# --- Host ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "localhost.evil.example"])
def test_a_host_name_not_allowed_is_refused_even_with_the_token(shared: Running, host: str) -> None:
    for path in ("/api/status", "/", "/metrics"):
        answer = request(shared, "GET", path, headers={**AUTH, "Host": host})
        assert answer.status_code == 400, path
        assert "allowed_hosts" in answer.json()["error"]


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8765", "127.0.0.1:1", "[::1]:8765", "DASH.example.com:443"]
)
def test_loopback_names_addresses_and_allowed_hosts_are_answered(
    shared: Running, host: str
) -> None:
    assert request(shared, "GET", "/api/status", headers={**AUTH, "Host": host}).status_code == 200


def test_the_probes_answer_whatever_the_host(shared: Running) -> None:
    for path in ("/livez", "/readyz"):
        assert request(shared, "GET", path, headers={"Host": "10.0.0.7.nip.io"}).status_code == 200


# --- login ---------------------------------------------------------------------------------------


def test_login_sets_an_httponly_strict_cookie_that_is_not_the_token(shared: Running) -> None:
    answer = login(shared)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in cookie
    assert TOKEN not in cookie
    session = answer.cookies[SESSION_COOKIE]
    for path in ("/", "/api/status", "/api/tree", "/metrics"):
        assert request(shared, "GET", path, cookies={SESSION_COOKIE: session}).status_code == 200


def test_a_refused_login_shows_the_login_page_again_with_an_error(shared: Running) -> None:
    answer = login(shared, "not-the-token")
    assert answer.status_code == 401
    assert "That token was refused." in answer.text
    assert "Set-Cookie" not in answer.headers
    forged = {SESSION_COOKIE: "0" * 64}
    assert request(shared, "GET", "/api/status", cookies=forged).status_code == 401


def test_the_login_form_posts_the_token_and_no_page_puts_it_in_a_url(shared: Running) -> None:
    page = request(shared, "GET", "/").text
    assert 'method="post" action="/login"' in page
    script = request(shared, "GET", "/static/dashboard.js").text
    assert "token" not in script.lower(), "the page never handles the token itself"
    assert request(shared, "GET", f"/?token={TOKEN}").status_code == 401


# --- state-changing routes -------------------------------------------------------------------


def test_fault_injection_needs_the_token_in_the_header_not_the_cookie(shared: Running) -> None:
    session = login(shared).cookies[SESSION_COOKIE]
    path = f"/debug/crash/{Names.TRACKING}"
    assert request(shared, "POST", path, cookies={SESSION_COOKIE: session}).status_code == 401
    assert request(shared, "POST", path, data={"token": TOKEN}).status_code == 401
    assert request(shared, "GET", path, headers=AUTH).status_code == 405
    assert request(shared, "POST", path, headers=AUTH).status_code == 202


def test_without_a_token_fault_injection_needs_a_header_no_form_can_send() -> None:
    config = config_on_free_port(token=Secret("", "inline"))
    config = dataclasses.replace(config, debug=DebugConfig(allow_fault_injection=True))
    with running_tree(config) as running:
        path = f"/debug/crash/{Names.TRACKING}"
        refused = request(running, "POST", path, data={"a": "b"})
        assert refused.status_code == 401
        assert "X-Requested-With" in refused.json()["error"]
        answer = request(running, "POST", path, headers={"X-Requested-With": "curl"})
        assert answer.status_code == 202
        # Everything else is open without a token (loopback only).
        assert request(running, "GET", "/api/status").status_code == 200


def test_an_unknown_method_is_405_naming_the_allowed_ones(shared: Running) -> None:
    answer = request(shared, "DELETE", "/api/status", headers=AUTH)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET"
    assert request(shared, "OPTIONS", "/debug/crash/dedup").status_code == 405  # no CORS grant


# --- /metrics and the probes ---------------------------------------------------------------------


def test_metrics_public_opens_metrics_and_nothing_else() -> None:
    with running_tree(config_on_free_port(metrics_public=True)) as running:
        assert request(running, "GET", "/metrics").status_code == 200
        assert request(running, "GET", "/api/status").status_code == 401


def test_probes_show_the_reasons_only_to_the_token() -> None:
    with running_tree() as running:
        running.tell(Names.KILLS, Drop())

        def not_ready() -> dict[str, Any]:
            answer = request(running, "GET", "/readyz")
            return answer.json() if answer.status_code == 503 else {}

        anonymous = wait_for(not_ready, timeout_s=5, what="/readyz failing")
        assert anonymous == {"status": "fail", "ready": False}
        detailed = request(running, "GET", "/readyz", headers=AUTH).json()
        assert "kills: connection disconnected" in detailed["reasons"]


def test_the_web_counts_what_it_refused_and_its_connections(shared: Running) -> None:
    request(shared, "GET", "/api/status", headers={"Host": "evil.example"})
    request(shared, "GET", "/api/status")
    status = request(shared, "GET", "/api/status", headers=AUTH).json()
    web = status["statuses"][Names.WEB]
    assert web["requests"]["refused_host"] >= 1
    assert web["requests"]["refused_token"] >= 1
    assert web["server"]["max_connections"] == 100
    metrics = request(shared, "GET", "/metrics", headers=AUTH).text
    assert 'wanderer_http_requests_total{outcome="refused_host"}' in metrics
    assert "wanderer_http_connections " in metrics


def test_a_cookie_or_header_out_of_ascii_is_refused_not_an_error(shared: Running) -> None:
    odd = {"Cookie": f"{SESSION_COOKIE}=caf\xe9", "Authorization": "Bearer caf\xe9"}
    assert request(shared, "GET", "/api/status", headers=odd).status_code == 401
