"""The submit time the uploader sends (the spool script's mtime) dates every upload, whatever its delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobstats.jobscripts import DuplicateScript, script_for, store_script
from jobstats.models import JobScript

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

CLUSTER = "testcluster"


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def test_an_upload_long_after_the_job_is_dated_by_the_hint_snapped_to_the_job_table(personas):
    # The case of issue 14: an upload arriving more than a week after the job ended was stored
    # with a NULL time_submit (taken for a new job with the same id).
    job = personas.owner_job
    late = at(job.time_end) + timedelta(days=30)
    row = store_script(
        cluster=CLUSTER, id_job=job.id_job, submit_script="old", time_submit=job.time_submit + 1, received_at=late
    )
    assert row.time_submit == job.time_submit  # the job table's own value, not the mtime
    assert script_for(cluster=CLUSTER, job=job) == "old"


def test_without_a_hint_such_an_upload_stays_unresolved(personas):
    # TrailblazingTurtle's uploader sends no time: the old rule stands (a reused id is likelier).
    job = personas.owner_job
    late = at(job.time_end) + timedelta(days=30)
    assert store_script(cluster=CLUSTER, id_job=job.id_job, submit_script="x", received_at=late).time_submit is None


def test_a_hint_slurmdbd_does_not_know_yet_is_kept_and_matches_the_record_when_it_comes(personas):
    slurm = personas.slurm
    submitted = 1_800_000_000
    row = store_script(
        cluster=CLUSTER, id_job=777_001, submit_script="early", time_submit=submitted + 1, received_at=at(submitted + 5)
    )
    assert row.time_submit == submitted + 1  # kept as sent: recorded, not NULL
    record = slurm.job("owner", "def-owner", id_job=777_001, time_submit=submitted, time_start=0, time_end=0)
    assert script_for(cluster=CLUSTER, job=record) == "early"
    # The uploader's queue resends it once slurmdbd knows the job: a duplicate, re-dated exactly.
    with pytest.raises(DuplicateScript):
        store_script(
            cluster=CLUSTER,
            id_job=777_001,
            submit_script="early",
            time_submit=submitted + 1,
            received_at=at(submitted + 60),
        )
    assert list(JobScript.objects.filter(id_job=777_001).values_list("time_submit", flat=True)) == [submitted]


def test_a_reused_id_is_not_dated_as_the_old_job(personas):
    job = personas.owner_job
    now = job.time_end + 86400 * 30
    row = store_script(cluster=CLUSTER, id_job=job.id_job, submit_script="new", time_submit=now, received_at=at(now))
    assert row.time_submit == now
    assert script_for(cluster=CLUSTER, job=job) is None


def test_a_requeued_job_is_dated_by_its_latest_record(personas):
    # slurmctld keeps the spool (its mtime is the first submission); slurmdbd dates the requeue anew.
    slurm = personas.slurm
    first = personas.owner_job
    requeued = slurm.job("owner", "def-owner", id_job=first.id_job, time_submit=first.time_end + 10)
    row = store_script(
        cluster=CLUSTER,
        id_job=first.id_job,
        submit_script="s",
        time_submit=first.time_submit,
        received_at=at(requeued.time_submit + 5),
    )
    assert row.time_submit == requeued.time_submit
    assert script_for(cluster=CLUSTER, job=requeued) == "s"


def test_the_api_takes_the_hint(service_account, personas):
    job = personas.owner_job
    response = service_account.client().post(
        "/api/jobscripts/", {"id_job": job.id_job, "submit_script": "s", "time_submit": job.time_submit}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["time_submit"] == job.time_submit
