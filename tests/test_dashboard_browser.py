"""The dashboard in a real browser: Debian's chromium driven by Playwright.

Runs a real tree (metrics, web, and the stand-ins of tests.support.metrics_tree,
``kills`` with a real ConnectionHealth). The page runs under the server's
Content-Security-Policy: any violation (an inline script or style, a foreign
request) is recorded and fails the test. Without ``/usr/bin/chromium`` the
tests fail, saying what to install; they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from actors.protocol import Names
from actors.web_app import SESSION_COOKIE
from tests.support.metrics_tree import TOKEN, Drop, Emit, Running, running_tree

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            "the dashboard tests need Debian's chromium at /usr/bin/chromium: "
            "apt-get update && apt-get install -y chromium"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def running() -> Iterator[Running]:
    with running_tree() as tree:
        yield tree


RECORD_CSP_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


class Watched:
    """A page whose console errors, CSP violations and off-host requests are recorded."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.add_init_script(RECORD_CSP_VIOLATIONS)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

        def route(request_route: Route) -> None:
            url = request_route.request.url
            if url.startswith((origin, "data:")):
                request_route.continue_()
            else:
                self.foreign.append(url)
                request_route.abort()

        page.route("**/*", route)

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__violations || []")
        return found

    def log_in(self, url: str, token: str = TOKEN) -> None:
        """Through the login page, as a user does."""
        answer = self.page.goto(f"{url}/")
        assert answer is not None
        assert answer.status == 401
        self.errors.remove(  # chromium logs the login page's own status; nothing else may fail
            "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
        )
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")


@pytest.fixture
def watched(browser: Browser, running: Running) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        yield Watched(context.new_page(), running.url)
    finally:
        context.close()


def test_the_dashboard_shows_connections_and_updates_as_events_flow(
    running: Running, watched: Watched
) -> None:
    page = watched.page
    watched.log_in(running.url)
    state = page.locator('.conn[data-name="kills"] [data-field="state"]')
    expect(state).to_have_text("connected")
    expect(page.locator("#health")).to_have_text("pass")
    expect(page.locator('[data-actor="kills"]')).to_contain_text("running")
    expect(page.locator("#events-total")).to_have_text("0")
    expect(page.locator('[data-route="kills"] [data-field="sent"]')).to_have_text("5")
    expect(page.locator('[data-route="ops"] [data-field="state"]')).to_have_text("stopped")
    expect(page.locator('[data-route="ops"] [data-field="failed"]')).to_have_text("1")
    expect(page.locator("#route-summary")).to_have_text("unrouted: rally_point 3")

    running.tell(Names.KILLS, Emit(25, latency_s=0.008))
    expect(page.locator("#events-total")).to_have_text("25", timeout=10_000)
    expect(page.locator("#series")).to_contain_text("wanderer-kills")
    expect(page.locator("#latency")).to_contain_text("journal")

    running.tell(Names.KILLS, Drop())
    expect(state).to_have_text("disconnected", timeout=10_000)
    expect(page.locator("#ready")).to_have_text("no")
    expect(page.locator("#reasons")).to_contain_text("kills: connection disconnected")

    assert watched.violations() == [], "the page runs under its Content-Security-Policy"
    assert watched.errors == []
    assert watched.foreign == [], "the page works offline: no request leaves the instance"


def test_the_login_sets_a_cookie_the_page_cannot_read_and_a_reload_keeps_the_session(
    running: Running, watched: Watched
) -> None:
    page = watched.page
    watched.log_in(running.url)
    state = page.locator('.conn[data-name="kills"] [data-field="state"]')
    expect(state).to_have_text("connected")
    assert page.url == f"{running.url}/", "no token in the address bar"
    page.reload()  # the cookie, not the page, carries the session
    expect(state).to_have_text("connected")
    (cookie,) = page.context.cookies()
    assert cookie["name"] == SESSION_COOKIE
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["value"] != TOKEN
    assert page.evaluate("document.cookie") == "", "HttpOnly: scripts cannot read it"
    assert watched.violations() == []
    assert watched.errors == []
    assert watched.foreign == []


def test_a_wrong_token_keeps_the_login_page_with_an_error(
    running: Running, watched: Watched
) -> None:
    page = watched.page
    watched.log_in(running.url, "not-the-token")
    expect(page.locator("#error")).to_have_text("That token was refused.")
    assert page.context.cookies() == []
    assert watched.violations() == []
