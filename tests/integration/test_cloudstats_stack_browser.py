"""Headless chromium draws a cloud project's page and an instance's page through the stack's Apache
as a member of the project: every graph gets its series, no console error, no failed request.
Saves docs/screenshots/stack-cloudstats-project.png and stack-cloudstats-instance.png."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from skipping import skip_or_fail
from stack_browser import open_page, wait_for_graphs
from stack_waiting import wait_for

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ALICE = {"X-Test-Remote-User": "alice@example.org", "X-Test-Affiliation": "member@example.org"}


def guest_uuid(name: str) -> str | None:
    answer = requests.get(
        f"{os.environ['PROMETHEUS_URL']}/api/v1/query",
        params={"query": f'rate(libvirt_domain_info_cpu_time_seconds_total{{name="{name}"}}[2m]) > 0'},
        timeout=10,
    ).json()["data"]["result"]
    return answer[0]["metric"]["uuid"] if answer else None


def draw(browser, path: str, shot: str, minimum: int) -> None:
    context, page, errors = open_page(browser, ALICE)
    try:
        page.goto(os.environ["PORTAL_STACK_URL"] + path)
        count = wait_for_graphs(page)
        assert count >= minimum, f"{path} lists {count} graphs"
        for index in range(count):
            plot = page.locator("figure.graph-figure .graph-plot").nth(index)
            assert plot.locator("g.trace").count() >= 1, f"graph {index} of {path} has no series drawn"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / shot), full_page=True)
    finally:
        context.close()
    assert errors == []


def test_project_and_instance_pages_draw_their_graphs(stack_dir, browser):
    if (stack_dir / "data" / "libvirt.failed").exists():
        skip_or_fail("the stack runs no VMs: " + (stack_dir / "data" / "libvirt.failed").read_text().strip())
    web = wait_for(lambda: guest_uuid("web-1"), 180, "a CPU rate in Prometheus for web-1", interval=2)
    draw(browser, "/secure/cloudstats/project/physics/?delta=3600", "stack-cloudstats-project.png", 5)
    draw(browser, f"/secure/cloudstats/project/physics/{web}/?delta=3600", "stack-cloudstats-instance.png", 5)
