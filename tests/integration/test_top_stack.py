"""top against the stack: staff only; large-memory jobs cross-checked with sacct."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm"])]


@pytest.fixture
def staff(stack_dir):
    return get_user_model().objects.create_user("staffer", is_staff=True)


def test_users_get_403(client, stack_dir):
    client.force_login(get_user_model().objects.create_user("alice"))
    assert client.get(reverse("top:compute")).status_code == 403


def test_compute_over_90_days_lists_the_stack_users(client, staff):
    client.force_login(staff)
    rows = client.get(reverse("top:compute") + "?window=90d").context["rows"]
    pairs = {(r.user, r.account) for r in rows}
    assert {("alice", "physics"), ("bob", "chem"), ("carol", "chem")} <= pairs
    assert [r.get("cpu_alloc") for r in rows] == sorted((r.get("cpu_alloc") for r in rows), reverse=True)


def test_gpu_users(client, staff):
    client.force_login(staff)
    users = {r.user for r in client.get(reverse("top:gpucompute") + "?window=90d").context["rows"]}
    assert {"alice", "bob"} <= users
    assert "carol" not in users


def test_largemem_jobs_are_carols_with_sacct_s_memory(client, staff, slurm_cmd):
    out = slurm_cmd(
        ["sacct", "-a", "-n", "-P", "-r", "largemem", "-S", "2020-01-01", "-o", "JobIDRaw,User,ReqMem"]
    ).stdout
    ids = {line.split("|")[0] for line in out.splitlines() if line and "." not in line.split("|")[0]}
    client.force_login(staff)
    jobs = client.get(reverse("top:largemem") + "?window=90d").context["jobs"]
    assert {str(j.id_job) for j in jobs} == ids
    for job in jobs:
        assert job.user == "carol"
        assert job.mem_alloc_gib == pytest.approx(20.0)
        assert job.mem_used_gib is not None
        assert job.mem_used_gib < 1
        assert job.mem_flag == "danger"
