"""The job queue's nodes, dashboard and load balancing through the stack's Apache and Celery (issue 17).

The stack has two GPU nodes for the ssh executor, each its own sshd on this machine behind the
jump host: gpu01 (port 2222) and gpu02 (port 2224). `/jobqueue/api/nodes` and
`/jobqueue/api/dashboard` are compared field by field with the seed server's documented answers
(tests/seed_shapes.py); jobs submitted with tokens go to the node with the least expected wait and
run there (each node's sshd logs the job's sessions).
"""

from __future__ import annotations

import os
from pathlib import Path

import jobqueue_seed_client as seed
import requests
from seed_shapes import dashboard_mismatches, nodes_mismatches
from stack_jobqueue import cancel_every_active, issue_token, submit_bearer
from stack_portal import daemon_env

NODE_PORTS = {"gpu01": 2222, "gpu02": 2224}
SESSION = "Starting session: command for jobqueue"


def dashboard(admin: str) -> dict:
    response = requests.get(f"{seed.BASE_URL}/api/dashboard?user_id=staffer", headers=seed.headers(admin), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def sshd_log(port: int) -> Path:
    return Path(os.environ["PORTAL_STACK_DIR"]) / "log" / f"sshd-{port}.log"


def test_the_stack_runs_two_gpu_nodes(stack_dir):
    assert daemon_env(stack_dir)["JOBQUEUE_NODES"] == "gpu01=127.0.0.1:2222,gpu02=127.0.0.1:2224"
    body = seed.get_nodes().json()
    assert nodes_mismatches(body) == []
    assert [(node["node_id"], node["node_name"]) for node in body] == [(0, "gpu01"), (1, "gpu02")]


def test_jobs_spread_over_both_nodes_by_expected_wait_and_the_dashboard_has_the_seed_shape(stack_dir):
    admin = issue_token(stack_dir, "staffer", admin=True)  # admins: no active-job limit
    cancel_every_active(admin)
    assert [node["total_wait_time"] for node in seed.get_nodes().json()] == [0, 0]
    logs = {name: sshd_log(port) for name, port in NODE_PORTS.items()}
    offsets = {name: log.stat().st_size for name, log in logs.items()}

    placed = []
    for sleep, expected_time in ((12, 120), (8, 60), (2, 20)):
        before = {node["node_id"]: node["total_wait_time"] for node in seed.get_nodes().json()}
        job = submit_bearer(admin, sleep, expected_time=expected_time, competition_id="spread")
        least = min(before.values())
        assert job["node_id"] == min(node for node, wait in before.items() if wait == least), (before, job)
        placed.append(job)
    # 120 s -> gpu01 (both empty: the first); 60 s -> gpu02 (0 < 120); 20 s -> gpu02 (60 < ~120)
    assert [(job["node_id"], job["node_name"]) for job in placed] == [(0, "gpu01"), (1, "gpu02"), (1, "gpu02")]

    # while they run: the dashboard, field by field against the seed's example
    seed.wait_for_job(placed[0]["job_id"], admin, until=("running", "completed", "failed", "cancelled"))
    body = dashboard(admin)
    assert dashboard_mismatches(body) == []
    queues = {entry["node_id"]: entry for entry in body["queue_information"]}
    assert set(queues) == {0, 1}
    assert queues[0]["is_busy"] and queues[0]["current_job"]["job_id"] == placed[0]["job_id"]
    assert queues[1]["queue_time_seconds"] > 0
    assert {job["job_id"] for job in body["active_jobs"]} >= {job["job_id"] for job in placed[1:]}

    finals = [seed.wait_for_job(job["job_id"], admin, timeout=180) for job in placed]
    assert [(final["status"], final["node_name"]) for final in finals] == [
        ("completed", "gpu01"), ("completed", "gpu02"), ("completed", "gpu02"),
    ]  # fmt: skip
    # results (and the results file) name the node as status does: its number and its name
    for job, node in zip(placed, ((0, "gpu01"), (1, "gpu02"), (1, "gpu02")), strict=True):
        status, results = seed.get_status(job["job_id"], admin), seed.get_results(job["job_id"], admin)
        assert status.status_code == results.status_code == 200, (status.text, results.text)
        assert (status.json()["node_id"], status.json()["node_name"]) == node
        assert (results.json()["node_id"], results.json()["node_name"]) == node
    # gpu02's two jobs ran one after the other, while gpu01 ran its own
    assert finals[2]["started_at"] >= finals[1]["completed_at"]
    assert finals[1]["started_at"] < finals[0]["completed_at"]
    # each job ran through its own node's sshd (start, poll, collect, clean up: ssh commands there)
    sessions = {
        name: log.read_bytes()[offsets[name] :].decode(errors="replace").count(SESSION) for name, log in logs.items()
    }  # byte offsets
    assert sessions["gpu01"] >= 3 and sessions["gpu02"] >= 6, sessions
    after = dashboard(admin)
    assert dashboard_mismatches(after) == []
    assert after["health_metrics"]["success_rate_percent"] > 0
