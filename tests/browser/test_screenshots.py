"""Screenshots of the main pages for docs/screenshots/ (shown in README.md), in both themes.

Fails on any console error, failed request or HTTP error on the page.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "slurm"], transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def demo_cluster(personas):
    """A small synthetic cluster beside the personas, so the pages have data to show."""
    from demo.seed import seed_demo

    seed_demo(cluster="testcluster", seed=7, users=12, accounts=4, jobs=400, days=14)
    return personas


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshots_home(demo_cluster, signed_in_page, live_server, theme):
    from django.contrib.auth import get_user_model

    alice, _ = get_user_model().objects.get_or_create(username="alice")
    page = signed_in_page(alice, color_scheme=theme)
    page.goto(f"{live_server.url}/")
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("data-bs-theme") == theme
    assert page.locator("#card-jobstats").is_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"home-{theme}.png"), full_page=True)
    assert page.portal_errors == []


def test_theme_toggle_switches_and_remembers(demo_cluster, signed_in_page, live_server):
    from django.contrib.auth import get_user_model

    alice, _ = get_user_model().objects.get_or_create(username="alice")
    page = signed_in_page(alice, color_scheme="light")
    page.goto(f"{live_server.url}/")
    page.click("#theme-toggle")
    assert page.locator("html").get_attribute("data-bs-theme") == "dark"
    page.reload()
    assert page.locator("html").get_attribute("data-bs-theme") == "dark"
    assert page.portal_errors == []


def test_jobs_page_on_a_phone(demo_cluster, signed_in_page, live_server):
    from django.contrib.auth import get_user_model

    alice, _ = get_user_model().objects.get_or_create(username="alice")
    page = signed_in_page(alice, viewport=(390, 844))
    page.goto(f"{live_server.url}/secure/jobstats/alice/")
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("table").count() == 1
    # The page itself does not scroll sideways on a phone; the table scrolls in its own box.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(SHOTS / "jobs-phone.png"), full_page=False)
    assert page.portal_errors == []


def test_screenshots_demo_prometheus(demo_prometheus, signed_in_page, live_server, django_user_model):
    """make run's pages with the demo Prometheus: alice's graphs and the top pages' rows (README's screenshots)."""
    from integration.stack_browser import wait_for_graphs

    alice, _ = django_user_model.objects.get_or_create(username="alice")
    page = signed_in_page(alice)
    page.goto(f"{live_server.url}/secure/jobstats/alice/")
    assert wait_for_graphs(page) >= 2
    points = page.evaluate(
        "[...document.querySelectorAll('figure.graph-figure .graph-plot')]"
        ".map(p => (p.data || []).reduce((n, trace) => n + (trace.y || []).length, 0))"
    )
    assert points[:2] and all(points[:2]), points  # CPU and memory drawn from the demo's series
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "demo-jobstats-alice.png"), full_page=True)
    assert page.portal_errors == []

    import json
    import time
    import urllib.request

    rule = f"{demo_prometheus.url}/api/v1/query?query=slurm_job:allocated_core:count_user_account"
    deadline = time.monotonic() + 90  # the recording rules' first evaluation (every 30 s)
    while time.monotonic() < deadline:
        with urllib.request.urlopen(rule, timeout=10) as response:  # noqa: S310 - the fixture's loopback URL
            if json.load(response)["data"]["result"]:
                break
        time.sleep(1)
    admin = django_user_model.objects.create_user(username="demo-staff", is_staff=True)
    page = signed_in_page(admin)
    page.goto(f"{live_server.url}/secure/top/compute/?window=now")
    page.wait_for_load_state("networkidle")
    assert page.locator("table tbody tr").count() > 0
    page.screenshot(path=str(SHOTS / "demo-top-compute.png"), full_page=False)
    assert page.portal_errors == []
