"""A page of the stack's portal in headless chromium: every console error, page error, failed request
and HTTP error recorded, and a wait until each graph of the page is drawn."""

from __future__ import annotations

from typing import Any


def open_page(
    browser: Any, headers: dict[str, str], *, viewport: tuple[int, int] = (1280, 900)
) -> tuple[Any, Any, list[str]]:
    """(context, page, errors): a new browser context sending ``headers``; close the context after."""
    context = browser.new_context(extra_http_headers=headers, viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} {req.failure}"))
    page.on("response", lambda resp: errors.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None)
    return context, page, errors


def wait_for_graphs(page: Any, *, timeout_ms: int = 30_000) -> int:
    """Wait until every graph container has Plotly's SVG (its JSON has arrived); returns how many there are."""
    count = page.locator("figure.graph-figure").count()
    page.wait_for_function(
        "n => [...document.querySelectorAll('figure.graph-figure .graph-plot')]"
        ".filter(p => p.querySelector('svg.main-svg')).length === n",
        arg=count,
        timeout=timeout_ms,
    )
    page.wait_for_load_state("networkidle")
    return count
