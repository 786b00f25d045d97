"""Playwright for Python driving Debian's chromium (/usr/bin/chromium): no browser download."""

from __future__ import annotations

import pytest


@pytest.fixture
def signed_in_page(browser, live_server, client):
    """A browser page carrying the session of `page_user` (set by the test with indirect params)."""

    def open_as(user, *, color_scheme: str = "light", viewport=(1280, 860)):
        client.force_login(user)
        cookie = client.cookies["sessionid"]
        context = browser.new_context(
            color_scheme=color_scheme, viewport={"width": viewport[0], "height": viewport[1]}, locale="en-GB"
        )
        context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])
        page = context.new_page()
        errors: list[str] = []
        page.on(
            "console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        )
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} {req.failure}"))
        page.on(
            "response", lambda resp: errors.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None
        )
        page.portal_errors = errors  # type: ignore[attr-defined]
        return page

    return open_as
