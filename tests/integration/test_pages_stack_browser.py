"""The public cluster status in headless chromium, served in-process (this checkout) with the stack's
Prometheus, as an anonymous visitor: every graph drawn, no error, and a screenshot for the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from integration.stack_browser import open_page, wait_for_graphs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_public_page_as_anonymous(stack_dir, browser, live_server, settings):
    settings.PAGES_SECTIONS = ["scheduler", "logins", "software"]
    settings.PAGES_LOGIN_NODES = ["login=cpu01:9100"]  # the stack has no login node: cpu01 stands in
    settings.PAGES_INTRO = "**Welcome.** Maintenance is announced on [the status page](https://status.example.org)."
    context, page, errors = open_page(browser, {})
    page.goto(f"{live_server.url}/pages/?delta=604800")
    assert wait_for_graphs(page) == 6
    assert page.locator("#pages-software table").is_visible()
    assert page.locator(".pages-intro strong").inner_text() == "Welcome."
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "stack-pages-anonymous.png"), full_page=True)
    context.close()
    assert errors == []
