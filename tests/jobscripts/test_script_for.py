"""script_for(): the job_script_table first, then uploads matched to the submission, then the array master."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from django.test import override_settings

from jobstats.jobscripts import MATCH_AFTER_END, DuplicateScript, script_for, store_script
from jobstats.models import JobScript
from slurm.router import allow_writes
from userportal.errors import SlurmDatabaseUnavailable

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

CLUSTER = "testcluster"


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def slurm_script(slurm, text: str) -> int:
    """A row of <cluster>_job_script_table, as slurmdbd writes with AccountingStoreFlags=job_script."""
    with allow_writes():
        row = slurm.models.job_script(script_hash=f"hash-{len(text)}-{text[:8]}", batch_script=text)
        row.save(using="slurm", force_insert=True)
    return row.hash_inx


@pytest.fixture
def job(personas):
    return personas.owner_job


def test_no_script_anywhere_is_none(job):
    assert script_for(cluster=CLUSTER, job=job) is None


def test_script_from_slurms_job_script_table(personas):
    slurm = personas.slurm
    hash_inx = slurm_script(slurm, "#!/bin/bash\necho from slurmdbd\n")
    job = slurm.job("owner", "def-owner", script_hash_inx=hash_inx)
    JobScript.objects.create(cluster=CLUSTER, id_job=job.id_job, time_submit=job.time_submit, submit_script="uploaded")
    assert script_for(cluster=CLUSTER, job=job) == "#!/bin/bash\necho from slurmdbd\n"


def test_a_purged_job_script_row_falls_back_to_the_upload(personas):
    job = personas.slurm.job("owner", "def-owner", script_hash_inx=987654)
    JobScript.objects.create(cluster=CLUSTER, id_job=job.id_job, time_submit=job.time_submit, submit_script="uploaded")
    assert script_for(cluster=CLUSTER, job=job) == "uploaded"


def test_uploaded_script_of_the_same_submission(job):
    store_script(cluster=CLUSTER, id_job=job.id_job, submit_script="echo mine\n", received_at=at(job.time_start))
    assert JobScript.objects.get().time_submit == job.time_submit
    assert script_for(cluster=CLUSTER, job=job) == "echo mine\n"


def test_reused_job_ids_each_get_their_own_script(personas):
    slurm = personas.slurm
    old = personas.owner_job
    new = slurm.job(
        "owner", "def-owner", id_job=old.id_job, time_submit=old.time_submit + 3600, time_start=0, time_end=0
    )
    # As the uploader sends them: the id only, each when its job starts.
    store_script(cluster=CLUSTER, id_job=old.id_job, submit_script="old\n", received_at=at(old.time_start))
    store_script(cluster=CLUSTER, id_job=new.id_job, submit_script="new\n", received_at=at(new.time_submit + 5))
    assert script_for(cluster=CLUSTER, job=old) == "old\n"
    assert script_for(cluster=CLUSTER, job=new) == "new\n"


def test_requeued_job_gets_each_records_upload(personas):
    slurm = personas.slurm
    first = personas.owner_job
    second = slurm.job("owner", "def-owner", id_job=first.id_job, time_submit=first.time_end + 10)
    JobScript.objects.create(cluster=CLUSTER, id_job=first.id_job, time_submit=first.time_submit, submit_script="1")
    JobScript.objects.create(cluster=CLUSTER, id_job=first.id_job, time_submit=second.time_submit, submit_script="2")
    assert script_for(cluster=CLUSTER, job=first) == "1"
    assert script_for(cluster=CLUSTER, job=second) == "2"


def test_unresolved_upload_matches_the_job_it_arrived_during(job):
    JobScript.objects.create(
        cluster=CLUSTER, id_job=job.id_job, time_submit=None, received_at=at(job.time_start + 1), submit_script="late"
    )
    assert script_for(cluster=CLUSTER, job=job) == "late"


def test_unresolved_upload_long_after_the_job_is_not_its_script(job):
    JobScript.objects.create(
        cluster=CLUSTER,
        id_job=job.id_job,
        time_submit=None,
        received_at=at(job.time_end) + MATCH_AFTER_END + timedelta(minutes=1),
        submit_script="another job with the same id",
    )
    assert script_for(cluster=CLUSTER, job=job) is None


def test_upload_long_after_an_old_job_with_the_same_id_is_not_given_to_it(job):
    # A cluster reset restarted ids; slurmdbd has not recorded the new job yet.
    late = at(job.time_end) + timedelta(days=30)
    row = store_script(cluster=CLUSTER, id_job=job.id_job, submit_script="new job", received_at=late)
    assert row.time_submit is None
    assert script_for(cluster=CLUSTER, job=job) is None


def test_array_task_falls_back_to_the_masters_upload(personas):
    slurm = personas.slurm
    master = slurm.job("owner", "def-owner", id_job=5000, id_array_job=5000, id_array_task=0)
    task = slurm.job(
        "owner", "def-owner", id_job=5003, id_array_job=5000, id_array_task=3, time_submit=master.time_submit
    )
    store_script(
        cluster=CLUSTER,
        id_job=5000,
        submit_script="#!/bin/bash\n#SBATCH --array=0-9\n",
        received_at=at(master.time_start),
    )
    assert script_for(cluster=CLUSTER, job=task) == "#!/bin/bash\n#SBATCH --array=0-9\n"


def test_array_task_falls_back_to_the_masters_slurm_script(personas):
    slurm = personas.slurm
    hash_inx = slurm_script(slurm, "array script")
    master = slurm.job("owner", "def-owner", id_job=6000, id_array_job=6000, id_array_task=0, script_hash_inx=hash_inx)
    task = slurm.job(
        "owner", "def-owner", id_job=6001, id_array_job=6000, id_array_task=1, time_submit=master.time_submit
    )
    assert script_for(cluster=CLUSTER, job=task) == "array script"


def test_array_task_without_the_masters_record_still_finds_the_upload(personas):
    slurm = personas.slurm
    task = slurm.job("owner", "def-owner", id_job=7001, id_array_job=7000, id_array_task=1)
    JobScript.objects.create(cluster=CLUSTER, id_job=7000, time_submit=task.time_submit, submit_script="master's")
    assert script_for(cluster=CLUSTER, job=task) == "master's"


@dataclass
class RowLike:
    job_db_inx: int


def test_job_given_as_any_object_with_job_db_inx(job):
    JobScript.objects.create(cluster=CLUSTER, id_job=job.id_job, time_submit=job.time_submit, submit_script="by inx")
    assert script_for(cluster=CLUSTER, job=RowLike(job.job_db_inx)) == "by inx"
    assert script_for(cluster=CLUSTER, job=RowLike(-1)) is None


def test_job_from_an_only_queryset_is_completed_in_one_query(job, django_assert_num_queries):
    model = type(job)
    partial = model.objects.only("job_db_inx", "id_job").get(job_db_inx=job.job_db_inx)
    JobScript.objects.create(cluster=CLUSTER, id_job=job.id_job, time_submit=job.time_submit, submit_script="x")
    with django_assert_num_queries(1, connection=connections["slurm"]):
        assert script_for(cluster=CLUSTER, job=partial) == "x"


def test_a_full_job_row_with_an_upload_costs_no_slurm_query(job, django_assert_num_queries):
    JobScript.objects.create(cluster=CLUSTER, id_job=job.id_job, time_submit=job.time_submit, submit_script="x")
    with django_assert_num_queries(0, connection=connections["slurm"]):
        assert script_for(cluster=CLUSTER, job=job) == "x"


@override_settings(SLURM_CLUSTERS=["testcluster", "notables"])
def test_slurm_database_error_is_slurm_database_unavailable(db):
    # The tables of "notables" do not exist: the query fails as it would with slurmdbd's MariaDB down.
    with pytest.raises(SlurmDatabaseUnavailable):
        script_for(cluster="notables", job=RowLike(1))


@override_settings(SLURM_CLUSTERS=["testcluster", "notables"])
def test_upload_still_works_when_the_slurm_database_fails(db):
    row = store_script(cluster="notables", id_job=1, submit_script="kept")
    assert row.time_submit is None


def test_a_resend_after_slurmdbd_caught_up_dates_the_earlier_upload(job, slurm):
    # Sent while slurmdbd did not know the job yet (e.g. its database was down): no submit time.
    JobScript.objects.create(
        cluster=CLUSTER, id_job=job.id_job, time_submit=None, received_at=at(job.time_submit + 1), submit_script="s"
    )
    # The uploader restarts and sends it again; now the job table has the record.
    with pytest.raises(DuplicateScript):
        store_script(cluster=CLUSTER, id_job=job.id_job, submit_script="s", received_at=at(job.time_start))
    assert list(JobScript.objects.values_list("time_submit", flat=True)) == [job.time_submit]
