"""The job-queue API, as the seed server's clients use it (tests/jobqueue/fake_executor runs jobs)."""

from __future__ import annotations

from datetime import timedelta

import jobqueue_fake_executor as fake_executor
import pytest
from django.core.management import call_command
from django.utils import timezone
from jobqueue_helpers import bearer, submission

from jobqueue import steps
from jobqueue.models import Job, JobStatus, JobToken

pytestmark = pytest.mark.django_db

SUBMIT = "/jobqueue/api/submit"


def submit(client, key=None, **kwargs):
    headers = bearer(key) if key else {}
    return client.post(SUBMIT, submission(**kwargs), **headers)


def test_seed_client_submits_with_the_token_in_its_config_only(client, alice_key):
    response = submit(client, token=alice_key)
    assert response.status_code == 200, response.json()
    body = response.json()
    job = Job.objects.get(job_id=body["job_id"])
    assert body["status"] == "pending"
    assert job.status == "running"  # the fake node was free: the first step started it
    assert job.user.username == "alice"
    assert job.node == "gpu-node-0"
    assert fake_executor.CALLS == [("start", job.job_id)]


def test_bearer_header_works_too(client, alice_key):
    assert submit(client, alice_key).status_code == 200


def test_submit_without_token_is_401(client):
    assert submit(client).status_code in (401, 403)
    assert Job.objects.count() == 0


def test_expired_token_is_401(client, alice, alice_key):
    JobToken.objects.filter(user=alice).update(expires=timezone.now() - timedelta(seconds=1))
    response = submit(client, alice_key)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert client.get("/jobqueue/api/jobs", **bearer(alice_key)).status_code == 401


def test_revoked_token_is_401_and_a_new_token_revokes_the_old(client, alice, alice_key):
    from jobqueue.tokens import issue_token

    _token, new_key = issue_token(alice)
    assert client.get("/jobqueue/api/jobs", **bearer(alice_key)).status_code == 401
    assert client.get("/jobqueue/api/jobs", **bearer(new_key)).status_code == 200
    assert JobToken.objects.filter(user=alice, revoked=False).count() == 1


def test_token_is_bound_to_its_user(client, alice_key):
    response = submit(client, alice_key, user_id="bob")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"expected_time": 0}, "expected_time"),
        ({"expected_time": 10**9}, "expected_time"),
        ({"expected_time": "soon"}, "expected_time"),
        ({"competition_id": "../etc"}, "competition_id"),
        ({"project_id": ""}, "project_id"),
        ({"filename": "solution.sh"}, "code"),
        ({"code": ""}, "code"),
        ({"code": "def broken(:\n"}, "code"),
        ({"code": "import os\nos.system('rm -rf /')\n"}, "code"),
        ({"code": "import subprocess\n"}, "code"),
    ],
)
def test_bad_submissions_get_a_clear_400(client, alice_key, kwargs, field):
    response = submit(client, alice_key, **kwargs)
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert Job.objects.count() == 0


def test_oversized_code_is_400(client, alice_key, settings):
    settings.JOBQUEUE_MAX_FILE_BYTES = 1024
    response = submit(client, alice_key, code="import numpy\n" + "#" * 2000)
    assert response.status_code == 400
    assert "larger" in response.json()["detail"]


def test_missing_config_is_400(client, alice_key):
    data = submission()
    del data["config_file"]
    response = client.post(SUBMIT, data, **bearer(alice_key))
    assert response.status_code == 400
    assert "config_file" in response.json()["errors"]


def test_code_unrelated_to_ml_is_queued_with_a_warning(client, alice_key):
    body = submit(client, alice_key, code="print('hello')\n").json()
    assert any("machine-learning" in w for w in body["warnings"])


def test_one_active_job_per_user_is_a_409(client, alice_key):
    assert submit(client, alice_key).status_code == 200
    response = submit(client, alice_key)
    assert response.status_code == 409
    assert "active job" in response.json()["detail"]


def test_the_active_job_limit_is_configurable(client, alice_key, settings):
    settings.JOBQUEUE_MAX_ACTIVE_JOBS = 2
    assert submit(client, alice_key).status_code == 200
    assert submit(client, alice_key).status_code == 200
    assert submit(client, alice_key).status_code == 409


def test_five_submissions_a_minute_then_429(client, alice_key, settings):
    settings.JOBQUEUE_MAX_ACTIVE_JOBS = 100
    settings.JOBQUEUE_IP_RATES = {}
    for _ in range(5):
        assert submit(client, alice_key).status_code == 200
    response = submit(client, alice_key)
    assert response.status_code == 429
    assert "Too many submissions" in response.json()["detail"]
    assert "Retry-After" in response.headers


def test_per_ip_endpoint_limit(client, alice_key, settings):
    settings.JOBQUEUE_IP_RATES = {"jobs": "2/min"}
    assert client.get("/jobqueue/api/jobs", **bearer(alice_key)).status_code == 200
    assert client.get("/jobqueue/api/jobs", **bearer(alice_key)).status_code == 200
    assert client.get("/jobqueue/api/jobs", **bearer(alice_key)).status_code == 429


def test_admins_are_exempt_from_the_submission_limits(client, admin_key, settings):
    settings.JOBQUEUE_IP_RATES = {}
    for _ in range(7):
        assert submit(client, admin_key, user_id="queueadmin").status_code == 200


def test_status_results_and_cancel_are_the_owners(client, alice_key, bob_key):
    job_id = submit(client, alice_key).json()["job_id"]
    for path in (f"/jobqueue/api/status/{job_id}", f"/jobqueue/api/results/{job_id}"):
        assert client.get(path, **bearer(bob_key)).status_code == 404
        assert client.get(path, **bearer(alice_key)).status_code == 200
    assert client.post(f"/jobqueue/api/cancel/{job_id}", **bearer(bob_key)).status_code == 404


def test_a_finished_job_gives_its_results(client, alice_key, settings):
    job_id = submit(client, alice_key).json()["job_id"]
    assert client.get(f"/jobqueue/api/results/{job_id}", **bearer(alice_key)).json()["output"] is None
    fake_executor.finish(job_id, stdout='{"accuracy": 0.9}\n')
    assert steps.advance(job_id) is None
    status = client.get(f"/jobqueue/api/status/{job_id}", **bearer(alice_key)).json()
    assert status["status"] == "completed"
    assert status["exit_code"] == 0
    results = client.get(f"/jobqueue/api/results/{job_id}", **bearer(alice_key)).json()
    assert results["output"] == '{"accuracy": 0.9}\n'
    assert results["results_file"].startswith("alice_comp-001_")
    assert results["results_file"].endswith(".jsonl")
    assert (settings.JOBQUEUE_DIR / "results" / results["results_file"]).exists()


def test_cancel_stops_the_job(client, alice_key):
    job_id = submit(client, alice_key).json()["job_id"]
    response = client.post(f"/jobqueue/api/cancel/{job_id}", **bearer(alice_key))
    assert response.status_code == 200
    assert ("cancel", job_id) in fake_executor.CALLS
    assert Job.objects.get(job_id=job_id).status == JobStatus.CANCELLED
    assert client.post(f"/jobqueue/api/cancel/{job_id}", **bearer(alice_key)).status_code == 409


def test_admin_cancels_anyones_job(client, alice_key, admin_key):
    job_id = submit(client, alice_key).json()["job_id"]
    assert client.post(f"/jobqueue/api/cancel/{job_id}", **bearer(admin_key)).status_code == 200


def test_jobs_lists_own_jobs_and_all_for_admins(client, alice_key, bob_key, admin_key):
    submit(client, alice_key)
    submit(client, bob_key, user_id="bob")
    mine = client.get("/jobqueue/api/jobs?user_id=alice", **bearer(alice_key)).json()
    assert [job["user_id"] for job in mine["jobs"]] == ["alice"]
    assert client.get("/jobqueue/api/jobs?user=bob", **bearer(alice_key)).status_code == 403
    everyone = client.get("/jobqueue/api/jobs?user_id=queueadmin", **bearer(admin_key)).json()
    assert {job["user_id"] for job in everyone["jobs"]} == {"alice", "bob"}
    only_bob = client.get("/jobqueue/api/jobs?user=bob", **bearer(admin_key)).json()
    assert [job["user_id"] for job in only_bob["jobs"]] == ["bob"]


@pytest.mark.parametrize("n_jobs", [1, 3])
def test_jobs_list_query_count_is_flat(client, alice, admin_key, n_jobs, django_assert_max_num_queries):
    for _ in range(n_jobs):
        Job.objects.create(user=alice, competition_id="c", project_id="p", expected_time=5, code="x", executor="fake")
    with django_assert_max_num_queries(6):
        assert client.get("/jobqueue/api/jobs", **bearer(admin_key)).json()["count"] == n_jobs


def test_nodes_are_public_and_jobs_go_to_the_least_loaded_node(client, alice_key, bob_key):
    submit(client, alice_key, expected_time=600)
    body = submit(client, bob_key, user_id="bob", expected_time=60).json()
    assert (body["node_id"], body["node_name"]) == (1, "gpu-node-1")
    nodes = client.get("/jobqueue/api/nodes").json()
    assert [(n["node_id"], n["node_name"]) for n in nodes] == [(0, "gpu-node-0"), (1, "gpu-node-1")]
    assert nodes[0]["is_busy"]
    assert nodes[0]["total_wait_time"] > 500


def test_dashboard_is_for_admins(client, alice_key, admin_key):
    submit(client, alice_key)
    assert client.get("/jobqueue/api/dashboard", **bearer(alice_key)).status_code == 403
    body = client.get("/jobqueue/api/dashboard?user_id=queueadmin", **bearer(admin_key)).json()
    assert body["is_admin"] is True
    assert body["job_statistics"]["running"] == 1
    assert body["job_statistics"]["total"] == 1
    assert body["user_statistics"]["alice"]["running"] == 1
    assert set(body["health_metrics"]) == {
        "node_utilization_percent", "average_queue_time_seconds", "total_active_jobs",
        "success_rate_percent", "jobs_last_24h",
    }  # fmt: skip
    assert len(body["active_jobs"]) == 1
    assert body["queue_information"]


def test_schema_lists_the_api(client, admin_user):
    client.force_login(admin_user)
    schema = client.get("/api/schema/?format=json").json()
    assert "/jobqueue/api/submit" in schema["paths"]
    assert "/jobqueue/api/dashboard" in schema["paths"]


def test_token_command_create_list_revoke(alice, admin_user, capsys):
    call_command("jobqueue_token", "create", "alice", "--days", "7")
    key = capsys.readouterr().out.strip()
    token = JobToken.objects.get(user=alice, revoked=False)
    assert token.key_hash != key
    assert (token.expires - timezone.now()).days in (6, 7)
    call_command("jobqueue_token", "list")
    assert "alice" in capsys.readouterr().out
    call_command("jobqueue_token", "revoke", key)
    assert JobToken.objects.get(pk=token.pk).revoked
    call_command("jobqueue_token", "create", "queueadmin", "--admin")
    call_command("jobqueue_token", "revoke-user", "queueadmin")
    assert not JobToken.objects.filter(user=admin_user, revoked=False).exists()


def test_token_command_refuses_long_tokens_and_non_staff_admins(alice):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("jobqueue_token", "create", "alice", "--days", "31")
    with pytest.raises(CommandError):
        call_command("jobqueue_token", "create", "alice", "--admin")
