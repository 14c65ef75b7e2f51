"""The dashboard in a real browser: Debian's chromium driven by Playwright.

Runs a real tree (metrics, web, and the stand-ins of tests.metrics_support,
``kills`` with a real ConnectionHealth). Without ``/usr/bin/chromium`` the
tests fail, saying what to install; they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from actors.protocol import Names
from tests.metrics_support import TOKEN, Drop, Emit, Running, running_tree

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


class Watched:
    """A page whose console errors and off-host requests are recorded."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
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
    page.goto(f"{running.url}/?token={TOKEN}")
    state = page.locator('.conn[data-name="kills"] [data-field="state"]')
    expect(state).to_have_text("connected")
    assert "token=" not in page.url, "the token leaves the address bar"
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

    assert watched.errors == []
    assert watched.foreign == [], "the page works offline: no request leaves the instance"


def test_without_a_token_the_login_page_opens_the_dashboard_and_a_reload_keeps_it(
    running: Running, watched: Watched
) -> None:
    page = watched.page
    answer = page.goto(f"{running.url}/")
    assert answer is not None
    assert answer.status == 401
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    state = page.locator('.conn[data-name="kills"] [data-field="state"]')
    expect(state).to_have_text("connected")
    page.reload()  # "/" again: the login page finds the token in sessionStorage
    expect(state).to_have_text("connected")
    assert "token=" not in page.url
    assert watched.foreign == []
