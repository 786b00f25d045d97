"""Headless chromium opens a real job's page through the stack's Apache as its owner: every graph
is drawn by Plotly from the stack's Prometheus, with no console error and no failed request.
Saves docs/screenshots/stack-job.png."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from stack_browser import open_page, wait_for_graphs

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ALICE = {"X-Test-Remote-User": "alice@example.org", "X-Test-Affiliation": "member@example.org"}


def batch_job(stack_dir: Path, name: str) -> str:
    for line in (stack_dir / "data" / "jobs" / "batch.txt").read_text().split():
        job_name, jobid, _wait = line.split("|")
        if job_name == name:
            return jobid
    pytest.fail(f"no job {name} in the stack's batch.txt")


def test_job_page_draws_its_graphs(stack_dir, browser):
    jobid = batch_job(stack_dir, "gpu-a100")
    context, page, errors = open_page(browser, ALICE)
    try:
        page.goto(f"{os.environ['PORTAL_STACK_URL']}/secure/jobstats/alice/{jobid}/")
        count = wait_for_graphs(page)  # every graph container gets Plotly's SVG once its JSON has arrived
        assert count >= 5, "the GPU job's page lists its graphs"
        for name in ("cpu", "mem", "gpu_utilization"):
            plot = page.locator(f'figure[data-graph-name="{name}"] .graph-plot')
            assert plot.locator("svg.main-svg").count() >= 1
            assert plot.locator("g.trace").count() >= 1, f"graph {name} has no series drawn"
        assert page.locator("#cost").is_visible()  # cost.js filled it from cost.json
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "stack-job.png"), full_page=True)
    finally:
        context.close()
    assert errors == []
