"""Headless chromium against the portal served by Apache in the stack: sign in the Shibboleth
way, open every module's main page, fail on any console error, failed request or HTTP error,
and save screenshots for the README (docs/screenshots/stack-*.png)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def open_page(browser, headers: dict[str, str], *, viewport=(1280, 860)):
    context = browser.new_context(extra_http_headers=headers, viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} {req.failure}"))
    page.on("response", lambda resp: errors.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None)
    return page, errors


@pytest.mark.parametrize(
    ("who", "headers"),
    [
        ("user", {"X-Test-Remote-User": "alice@example.org", "X-Test-Affiliation": "member@example.org"}),
        ("staff", {"X-Test-Remote-User": "staffer@example.org", "X-Test-Affiliation": "staff@example.org"}),
    ],
)
def test_every_module_main_page_opens_cleanly(stack_dir, browser, who, headers):
    base = os.environ["PORTAL_STACK_URL"]
    page, errors = open_page(browser, headers)
    page.goto(f"{base}/")
    page.wait_for_load_state("networkidle")
    assert page.locator("main h1").first.is_visible()
    links = page.locator("#portal-nav .navbar-nav a.nav-link, #portal-nav .navbar-nav a.dropdown-item")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs, "the navigation lists no module"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"stack-home-{who}.png"), full_page=True)
    for href in hrefs:
        page.goto(f"{base}{href}")
        page.wait_for_load_state("networkidle")
        assert page.locator("main").is_visible()
        name = href.strip("/").replace("/", "-") or "home"
        page.screenshot(path=str(SHOTS / f"stack-{who}-{name}.png"), full_page=True)
    assert errors == []
