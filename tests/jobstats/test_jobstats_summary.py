"""jobstats' sections of the user summary: jobs now with why they wait, and the last jobs' efficiency and advice."""

from __future__ import annotations

import pytest
from django.urls import reverse

from jobstats import summary
from slurm.decoders import JobState
from userportal.summary import SummaryContext

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def context(personas, username="owner") -> SummaryContext:
    return SummaryContext(username=username, viewer=personas.staff, cluster="testcluster", user=None)


def test_jobs_now_lists_running_and_pending_with_the_databases_reason(personas, settings):
    settings.SLURM_SQUEUE = ""
    running = personas.slurm.job("owner", "def-owner", state=JobState.RUNNING)
    waiting = personas.slurm.job("owner", "def-owner", state=JobState.PENDING, state_reason_prev=1)
    data = summary.jobs_now(context(personas))
    assert [row.job.id_job for row in data["running"]] == [running.id_job]
    [row] = data["pending"]
    assert row.job.id_job == waiting.id_job
    assert row.reason == "Priority"
    assert "higher priority" in row.sentence
    assert not data["reasons_from_squeue"]


def test_pending_reasons_come_from_one_squeue_call(personas, settings, tmp_path):
    waiting = personas.slurm.job("owner", "def-owner", state=JobState.PENDING, state_reason_prev=1)
    calls = tmp_path / "calls"
    script = tmp_path / "squeue"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "{waiting.id_job}|QOSGrpGRES"\n')
    script.chmod(0o755)
    settings.SLURM_SQUEUE = str(script)
    [row] = summary.jobs_now(context(personas))["pending"]
    assert row.reason == "QOSGrpGRES"
    summary.jobs_now(context(personas))  # cached: squeue runs once
    assert calls.read_text().splitlines() == ["--noheader --states=PENDING --user=owner --format=%A|%r"]


def test_the_last_jobs_have_a_verdict_and_an_advice_count(personas):
    slurm = personas.slurm
    idle = slurm.job("owner", "def-owner", cpus_req=8, time_start=slurm.now - 3600 - 600, time_end=slurm.now - 600)
    slurm.step(idle, user_sec=60)  # one minute of CPU over 8 cores × 1 hour
    rows = {row.job.id_job: row for row in summary.recent_jobs(context(personas))["jobs"]}
    row = rows[idle.id_job]
    assert row.verdict == "poor"
    assert row.efficiency.get("cpu").percent == 0
    assert row.advice >= 1
    assert len(rows) <= summary.RECENT


def test_pending_jobs_are_not_among_the_last_jobs(personas):
    waiting = personas.slurm.job("owner", "def-owner", state=JobState.PENDING)
    ids = [row.job.id_job for row in summary.recent_jobs(context(personas))["jobs"]]
    assert waiting.id_job not in ids
    assert personas.owner_job.id_job in ids


def test_the_sections_link_each_job_to_its_page(client, personas, settings):
    settings.SLURM_SQUEUE = ""
    personas.slurm.job("owner", "def-owner", state=JobState.RUNNING)
    client.force_login(personas.owner)
    html = client.get(reverse("usersummary:user", kwargs={"username": "owner"})).content.decode()
    assert reverse("jobstats:job", kwargs={"username": "owner", "job_id": personas.owner_job.id_job}) in html
    assert reverse("jobstats:user", kwargs={"username": "owner"}) in html


@pytest.mark.parametrize("n", [1, 5])
def test_the_sections_cost_a_fixed_number_of_queries(personas, settings, n, django_assert_max_num_queries):
    settings.SLURM_SQUEUE = ""
    for _ in range(n):
        job = personas.slurm.job("owner", "def-owner")
        personas.slurm.step(job)
        personas.slurm.job("owner", "def-owner", state=JobState.PENDING)
        personas.slurm.job("owner", "def-owner", state=JobState.RUNNING)
    with django_assert_max_num_queries(8, using="slurm"):
        summary.jobs_now(context(personas))
        summary.recent_jobs(context(personas))
