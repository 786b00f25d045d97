"""nodes, scheduler and the public pages as Apache serves them in the stack (mod_wsgi, www-data,
the daemons' settings), not in-process: who may open them, and their figures against Slurm.

The in-process tests (test_nodes_stack.py, test_scheduler_stack.py, test_pages_stack.py) check the
figures in detail; these check that the deployed portal mounts the modules, runs scontrol as its own
user, reads Prometheus and the accounting database, and keeps the access rules.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
from collections import Counter

import pytest
import requests

pytestmark = pytest.mark.integration

TIMEOUT = 30
STAFF = {"X-Test-Remote-User": "staffer@example.org", "X-Test-Affiliation": "staff@example.org"}
ALICE = {"X-Test-Remote-User": "alice@example.org", "X-Test-Affiliation": "member@example.org"}
USERS = ("alice", "bob", "carol", "dave", "staffer")


def get(path: str, headers: dict[str, str] | None = None, **params: str) -> requests.Response:
    return requests.get(
        os.environ["PORTAL_STACK_URL"] + path,
        headers=headers or {},
        params=params,
        timeout=TIMEOUT,
        allow_redirects=False,
    )


def scontrol_nodes(stack_dir) -> dict[str, str]:
    """node -> its state as `scontrol show node` prints it (the portal host's Slurm)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "node"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return {
        m.group(1): s.group(1).split("+")[0]
        for line in out.splitlines()
        if (m := re.search(r"NodeName=(\S+)", line)) and (s := re.search(r"State=(\S+)", line))
    }


@pytest.mark.parametrize("path", ["/secure/nodes/", "/secure/scheduler/"])
def test_staff_pages_are_staff_only(path):
    assert get(path, ALICE).status_code == 403
    assert get(path, STAFF).status_code == 200


def test_nodes_lists_every_node_scontrol_knows_with_its_state(stack_dir):
    page = get("/secure/nodes/", STAFF).text
    nodes = scontrol_nodes(stack_dir)
    assert set(nodes) >= {"cpu01", "gpu01"}
    for node, state in nodes.items():
        assert f"/secure/nodes/{node}/" in page
        assert state.split("*")[0].lower() in page.lower()


def test_node_page_draws_node_exporter_graphs(stack_dir):
    assert get("/secure/nodes/cpu01/", STAFF).status_code == 200
    body = get("/secure/nodes/cpu01/graph/cpu/", STAFF, delta="3600")
    assert body.status_code == 200, body.text[:300]
    traces = body.json()["data"]
    assert traces and any(y is not None for trace in traces for y in trace["y"])


def test_scheduler_csv_counts_the_jobs_sacct_says_started(slurm_cmd):
    days = 30
    response = get("/secure/scheduler/scheduler.csv", STAFF, delta=str(days * 86400))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    shown = {row[0]: int(row[1]) for row in rows[1:]}
    out = slurm_cmd(["sacct", "-a", "-X", "-n", "-P", "-S", f"now-{days}days", "-E", "now", "-o", "Partition,Start"])
    started = Counter(
        partition for partition, start in (line.split("|") for line in out.stdout.splitlines()) if start[:1].isdigit()
    )
    assert shown == dict(started)


def test_public_page_needs_no_sign_in_and_names_no_user():
    response = get("/pages/")
    assert response.status_code == 200
    text = re.sub(r"<[^>]+>", " ", response.text)
    for user in USERS:
        assert not re.search(rf"\b{user}\b", text), user
    assert "pages-software" in response.text  # the software in use, a table
    for figure in ("cores", "gpus", "login_load"):
        graph = get(f"/pages/graph/{figure}.json", delta="604800")
        assert graph.status_code == 200, (figure, graph.text[:200])
        assert not any(user in graph.text for user in USERS)
