"""The jobstats pages in Debian's chromium: the table loads, graphs draw and zoom, no console errors."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from skipping import skip_or_fail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "slurm"], transaction=True)]

CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")


class BrowserThread:
    """Chromium driven from a thread of its own.

    Playwright's sync API refuses to start where an event loop already runs, which is the case
    once tests/browser's session-wide Playwright has started: a thread has its own loop.
    """

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobstats-chromium")
        self.browser = self.run(self._start)

    def _start(self):
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        return self.playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        )

    def run(self, function, *args):
        return self.executor.submit(function, *args).result(timeout=180)

    def close(self) -> None:
        def stop():
            self.browser.close()
            self.playwright.stop()

        self.run(stop)
        self.executor.shutdown()


@pytest.fixture(scope="module")
def chromium():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        skip_or_fail(f"{CHROMIUM} not found: apt-get install chromium")
    thread = BrowserThread()
    yield thread
    thread.close()


@pytest.fixture
def as_owner(chromium, live_server, client, personas):
    """Run ``scenario(page)`` in the browser thread with the owner signed in; return the page's errors."""
    client.force_login(personas.owner)
    cookie = client.cookies["sessionid"].value

    def run(scenario):
        def body():
            context = chromium.browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
            context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on(
                "response",
                lambda resp: errors.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None,
            )
            try:
                scenario(page)
            finally:
                context.close()
            return errors

        return chromium.run(body)

    return run


def test_user_page_table_filters_and_graphs(as_owner, live_server, jobs, prometheus):
    def scenario(page):
        page.goto(f"{live_server.url}/secure/jobstats/owner/")
        page.wait_for_load_state("networkidle")
        page.wait_for_selector("figure[data-graph-name=cpu] .main-svg")
        assert page.locator("figure .main-svg").count() >= 4
        assert "Used: mean" in page.locator("figure[data-graph-name=cpu] figcaption").inner_text()
        assert page.locator(".dt-info").count() == 1  # DataTables took over the server-rendered table
        with page.expect_response(lambda r: "/api/jobs/" in r.url and "format=datatables" in r.url):
            page.select_option("#filter-state", "PENDING")
        page.wait_for_timeout(300)
        assert page.locator("#jobs-table tbody tr").count() == 1
        assert "waiting" in page.locator("#jobs-table tbody").inner_text()

    assert as_owner(scenario) == []


def test_job_page_graphs_zoom_and_cost(as_owner, live_server, jobs, prometheus):
    def scenario(page):
        page.goto(f"{live_server.url}/secure/jobstats/owner/{jobs.gpu.id_job}/")
        page.wait_for_load_state("networkidle")
        page.wait_for_selector("figure[data-graph-name=gpu_power] .main-svg")
        assert "kWh" in page.locator("#cost").inner_text()
        drag = page.locator("figure[data-graph-name=cpu] .nsewdrag").first
        drag.scroll_into_view_if_needed()
        box = drag.bounding_box()
        with page.expect_request(lambda r: "graph/cpu.json?start=" in r.url):
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
        page.wait_for_load_state("networkidle")

    assert as_owner(scenario) == []


def test_pages_with_prometheus_down_make_no_failing_requests(as_owner, live_server, jobs):
    def scenario(page):
        for path in ("/secure/jobstats/owner/", f"/secure/jobstats/owner/{jobs.gpu.id_job}/"):
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            assert "Prometheus is not answering" in page.content()

    assert as_owner(scenario) == []
