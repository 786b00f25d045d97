"""/jobqueue/api/nodes and /jobqueue/api/dashboard answer the seed server's shapes field by field,
and jobs are spread over the nodes by expected wait (tests/seed_shapes.py has the seed's examples)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from jobqueue_helpers import bearer, submission
from seed_shapes import dashboard_mismatches, example, mismatches, nodes_mismatches

from jobqueue.models import Job, JobStatus

pytestmark = pytest.mark.django_db

NODES = ["gpu-node-0=127.0.0.1:22", "gpu-node-1=127.0.0.1:22", "gpu-node-2=127.0.0.1:22"]


def submit(client, key, user_id, expected_time):
    response = client.post("/jobqueue/api/submit", submission(user_id, expected_time=expected_time), **bearer(key))
    assert response.status_code == 200, response.json()
    return response.json()


def finished(user, status, node="gpu-node-0", **fields):
    now = timezone.now()
    return Job.objects.create(
        user=user, competition_id="cifar10", project_id="p", expected_time=60, code="x", executor="fake",
        node=node, status=status, created=now - timedelta(minutes=10), started=now - timedelta(minutes=8),
        finished=now - timedelta(minutes=5), **fields,
    )  # fmt: skip


def test_the_checker_sees_missing_fields_and_other_types():
    seed = example("dashboard")
    assert dashboard_mismatches(seed) == []
    broken = {**seed, "is_admin": 1, "health_metrics": {**seed["health_metrics"], "success_rate_percent": 98}}
    del broken["job_statistics"]["cancelled"]
    broken["queue_information"] = [{**seed["queue_information"][0], "node_id": "gpu01", "current_job": None}]
    broken["user_statistics"] = {"alice": {**seed["user_statistics"]["john_doe"], "failed": None}}
    broken["node_statistics"] = [{"node_id": 0, "queue_length": 1, "total_wait_time": 1.5}]
    assert sorted(dashboard_mismatches(broken)) == [
        "$.health_metrics.success_rate_percent: int, the seed has float",
        "$.is_admin: int, the seed has bool",
        "$.job_statistics.cancelled: missing",
        "$.node_statistics[0].total_wait_time: float, the seed has int",
        "$.queue_information[0].node_id: str, the seed has int",
        "$.user_statistics.alice.failed: null, the seed has int",
    ]
    assert mismatches([{"node_id": 0}], [{"node_id": True}]) == ["$[0].node_id: bool, the seed has int"]


def test_nodes_answer_the_seed_shape_with_integer_ids(client, alice_key, settings):
    settings.JOBQUEUE_NODES = NODES
    submit(client, alice_key, "alice", 600)
    body = client.get("/jobqueue/api/nodes").json()
    assert nodes_mismatches(body) == []
    assert [(n["node_id"], n["node_name"]) for n in body] == [(0, "gpu-node-0"), (1, "gpu-node-1"), (2, "gpu-node-2")]
    assert (body[0]["queue_length"], body[0]["is_busy"]) == (0, True)  # running, not waiting
    assert 590 <= body[0]["total_wait_time"] <= 600
    assert [n["total_wait_time"] for n in body[1:]] == [0, 0]


def test_dashboard_answers_every_field_of_the_seed_example(client, alice, bob, alice_key, bob_key, admin_key):
    finished(alice, JobStatus.COMPLETED)
    finished(bob, JobStatus.FAILED, exit_code=1)
    finished(bob, JobStatus.CANCELLED, node="")
    running = submit(client, alice_key, "alice", 600)
    waiting = submit(client, bob_key, "bob", 60)  # node 1: its expected wait was 0
    Job.objects.filter(job_id=waiting["job_id"]).update(status=JobStatus.PENDING)
    response = client.get("/jobqueue/api/dashboard?user_id=queueadmin", **bearer(admin_key))
    assert response.status_code == 200
    body = response.json()
    assert dashboard_mismatches(body) == []
    assert body["job_statistics"] == {
        "total": 5, "pending": 1, "running": 1, "completed": 1, "failed": 1, "cancelled": 1,
    }  # fmt: skip
    assert body["user_statistics"]["bob"] == {
        "total": 3, "pending": 1, "running": 0, "completed": 0, "failed": 1, "cancelled": 1,
    }  # fmt: skip
    busy, queued = body["queue_information"]
    assert busy["current_job"] == {"job_id": running["job_id"], "user_id": "alice", "competition_id": "comp-001"}
    assert (busy["node_id"], busy["is_busy"], busy["queue_size"]) == (0, True, 0)
    assert (queued["node_id"], queued["is_busy"], queued["queue_size"], queued["queue_time_seconds"]) == (
        1, False, 1, 60,
    )  # fmt: skip
    assert [job["node_id"] for job in body["active_jobs"]] == [0, 1]
    assert body["health_metrics"] == {
        "node_utilization_percent": 50.0,
        "average_queue_time_seconds": 120.0,
        "total_active_jobs": 2,
        "success_rate_percent": 50.0,
        "jobs_last_24h": 5,
    }


def test_an_empty_dashboard_has_the_seed_types_too(client, admin_key):
    body = client.get("/jobqueue/api/dashboard", **bearer(admin_key)).json()
    assert dashboard_mismatches(body) == []
    assert body["health_metrics"]["success_rate_percent"] == 0.0
    assert [n["queue_size"] for n in body["queue_information"]] == [0, 0]


def test_jobs_spread_over_the_nodes_by_expected_wait(client, settings, admin_key):
    """Each job goes to the node with the least expected wait then (ties: the lowest node_id)."""
    settings.JOBQUEUE_NODES = NODES
    placed = []
    for expected_time in (300, 200, 100, 50, 30, 400):
        before = {n["node_id"]: n["total_wait_time"] for n in client.get("/jobqueue/api/nodes").json()}
        body = submit(client, admin_key, "queueadmin", expected_time)  # admins: no active-job limit
        least = min(before.values())
        assert body["node_id"] == min(node for node, wait in before.items() if wait == least), (before, body)
        placed.append(body["node_id"])
    # 300 -> 0, 200 -> 1, 100 -> 2; 50 -> 2 (100 < 200 < 300); 30 -> 2 (150 < 200); 400 -> 2 (180 < 200)
    assert placed == [0, 1, 2, 2, 2, 2]
    waits = [n["total_wait_time"] for n in client.get("/jobqueue/api/nodes").json()]
    assert waits[0] > 290 and waits[1] > 190 and 575 <= waits[2] <= 580
    jobs = client.get("/jobqueue/api/jobs", **bearer(admin_key)).json()["jobs"]
    assert {(job["node_id"], job["node_name"]) for job in jobs} == {
        (0, "gpu-node-0"),
        (1, "gpu-node-1"),
        (2, "gpu-node-2"),
    }


def test_a_node_no_longer_configured_has_no_number(client, alice, alice_key, settings):
    job = finished(alice, JobStatus.COMPLETED, node="gpu-old")
    body = client.get(f"/jobqueue/api/status/{job.job_id}", **bearer(alice_key)).json()
    assert (body["node_id"], body["node_name"]) == (None, "gpu-old")


def test_status_and_results_give_the_same_node_number_and_name(client, alice, alice_key, settings, tmp_path):
    import json

    from jobqueue import steps

    settings.JOBQUEUE_NODES = NODES
    settings.JOBQUEUE_DIR = str(tmp_path)
    job = finished(alice, JobStatus.COMPLETED, node="gpu-node-1")
    status = client.get(f"/jobqueue/api/status/{job.job_id}", **bearer(alice_key)).json()
    results = client.get(f"/jobqueue/api/results/{job.job_id}", **bearer(alice_key)).json()
    assert (status["node_id"], status["node_name"]) == (results["node_id"], results["node_name"]) == (1, "gpu-node-1")
    record = json.loads(steps.write_results(job).read_text())
    assert (record["node_id"], record["node_name"]) == (1, "gpu-node-1")
    gone = finished(alice, JobStatus.COMPLETED, node="gpu-old")
    results = client.get(f"/jobqueue/api/results/{gone.job_id}", **bearer(alice_key)).json()
    assert (results["node_id"], results["node_name"]) == (None, "gpu-old")
