"""notes against the stack's Slurm database, in-process: subjects checked against real users, accounts
and jobs (an array task found as sacct names it), and the marks on the jobstats pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from notes.models import Note
from userportal.powers import grant

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm"])]


@pytest.fixture
def staff_client(client, stack_dir):
    staffer = get_user_model().objects.create_user("staffer", is_staff=True)
    grant(staffer, ["note-writers"])
    client.force_login(staffer)
    return client


def sacct_jobs(slurm_cmd) -> dict[str, tuple[str, str, str]]:
    """{JobID as sacct prints it: (JobIDRaw, user, account)} of every job."""
    out = slurm_cmd(["sacct", "-n", "-X", "-P", "-a", "-S", "2020-01-01", "-o", "JobID,JobIDRaw,User,Account"]).stdout
    return {row[0]: (row[1], row[2], row[3]) for row in (line.split("|") for line in out.splitlines() if line)}


def post(client, **fields):
    data = {"username": "", "account": "", "job": "", "title": "t", "text": "x", "ticket": ""}
    return client.post(reverse("notes:new"), {**data, **fields})


def test_an_array_task_is_the_record_sacct_names(staff_client, slurm_cmd):
    jobs = sacct_jobs(slurm_cmd)
    task = next(job for job in sorted(jobs) if "_" in job and "[" not in job)
    raw, user, account = jobs[task]
    response = post(staff_client, username=user, account=account, job=task)
    assert response.status_code == 302, response.context["form"].errors
    note = Note.objects.get()
    assert (note.job_ref, str(note.job_id), note.job_user) == (task, raw, user)
    page = reverse("jobstats:job", kwargs={"username": user, "job_id": raw})
    assert "1 staff note" in staff_client.get(page).content.decode()


def test_subjects_that_slurm_does_not_know_are_refused(staff_client, slurm_cmd):
    jobs = sacct_jobs(slurm_cmd)
    job = next(job for job, row in jobs.items() if row[1] == "alice")
    errors = post(staff_client, username="nobody-here").context["form"].errors
    assert "username" in errors
    assert "account" in post(staff_client, account="no-such-account").context["form"].errors
    assert "job" in post(staff_client, job="99999999").context["form"].errors
    assert "job" in post(staff_client, username="carol", job=job).context["form"].errors
    assert post(staff_client, username="alice", account="physics").status_code == 302
    assert not Note.objects.filter(username="nobody-here").exists()
