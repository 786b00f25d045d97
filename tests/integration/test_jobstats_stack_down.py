"""jobstats when a data source is down, on the real stack.

Prometheus: stopped by its recorded pid, the pages through Apache still render with a notice
and the graph JSON answers a JSON 503; `scripts/stack up --no-jobs` starts it again.
The Slurm database: in-process (Django test client), the `slurm` connection swapped for one
to a closed port; the pages render with a notice and /api/jobs/ answers a JSON 503.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests
from django.db import connections
from stack_waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30
ALICE = {"X-Test-Remote-User": "alice@example.org", "X-Test-Affiliation": "member@example.org"}


def first_job(stack_dir: Path, name: str) -> str:
    for line in (stack_dir / "data" / "jobs" / "batch.txt").read_text().split():
        job_name, jobid, _wait = line.split("|")
        if job_name == name:
            return jobid
    pytest.fail(f"no job {name} in the stack's batch.txt")


def prometheus_ready() -> bool:
    try:
        return requests.get(os.environ["PROMETHEUS_URL"] + "/-/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_until(predicate, seconds: float, what: str) -> None:
    wait_for(predicate, seconds, what)


def portal_sees_prometheus(stack_dir: Path) -> bool:
    """The portal (Apache) answers a graph again: it remembers a failure for 30 s (userportal.sources)."""
    url = f"{os.environ['PORTAL_STACK_URL']}/secure/jobstats/alice/{first_job(stack_dir, 'cpu-busy')}/graph/cpu.json"
    try:
        return requests.get(url, headers=ALICE, timeout=TIMEOUT).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def prometheus_down(stack_dir: Path):
    """Stop the stack's Prometheus by its pid; afterwards `scripts/stack up --no-jobs`, and wait until
    Prometheus is ready and the portal uses it again (so later tests see it up)."""
    pid = int((stack_dir / "run" / "prometheus.pid").read_text().split()[0])
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not prometheus_ready(), 20, "Prometheus to stop")
        yield
    finally:
        up = subprocess.run(
            [str(ROOT / "scripts" / "stack"), "up", "--no-jobs"], capture_output=True, text=True, timeout=300
        )
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        wait_until(prometheus_ready, 60, "Prometheus to be ready again")
        wait_until(lambda: portal_sees_prometheus(stack_dir), 60, "the portal to use Prometheus again")


def test_pages_render_with_a_notice_and_graphs_answer_503_while_prometheus_is_down(stack_dir, prometheus_down):
    base = os.environ["PORTAL_STACK_URL"]
    jobid = first_job(stack_dir, "cpu-busy")
    user_page = requests.get(f"{base}/secure/jobstats/alice/", headers=ALICE, timeout=TIMEOUT)
    assert user_page.status_code == 200
    assert "metrics server" in user_page.text or "Prometheus" in user_page.text
    job_page = requests.get(f"{base}/secure/jobstats/alice/{jobid}/", headers=ALICE, timeout=TIMEOUT)
    assert job_page.status_code == 200
    assert "Graphs are not available while the metrics server is not answering." in job_page.text
    assert "cpu-busy" in job_page.text  # the Slurm side of the page is all there
    assert "plotly" not in job_page.text  # no graph is drawn
    for url in (f"/secure/jobstats/alice/{jobid}/graph/cpu.json", "/secure/jobstats/alice/graph/cpu.json"):
        response = requests.get(base + url, headers=ALICE, timeout=TIMEOUT)
        assert response.status_code == 503, (url, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["source"] == "prometheus"


@pytest.fixture
def slurm_db_down():
    """The `slurm` connection swapped for one to a closed port (a real driver error)."""
    original = connections["slurm"]
    settings_dict = copy.deepcopy(original.settings_dict)
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", 9
    broken = original.__class__(settings_dict, alias="slurm")
    connections["slurm"] = broken
    yield
    broken.close()
    connections["slurm"] = original


@pytest.mark.django_db(databases=["default", "slurm"])
def test_pages_render_with_a_notice_and_the_api_answers_503_while_the_slurm_db_is_down(
    stack_dir, client, django_user_model, slurm_db_down
):
    alice = django_user_model.objects.create_user("alice")
    client.force_login(alice)
    jobid = first_job(stack_dir, "cpu-busy")
    notice = "The Slurm accounting database is not answering"
    for url in ("/secure/jobstats/alice/", f"/secure/jobstats/alice/{jobid}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert notice in response.content.decode(), url
    response = client.get("/api/jobs/", {"format": "datatables", "draw": "1", "start": "0", "length": "10"})
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["source"] == "slurmdb"
