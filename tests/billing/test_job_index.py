"""billing's job index (billing.job_index): the same frame as the direct read, kept in sync.

On SQLite (the packed reads' SQL and parsing are the MariaDB ones; bench/billing/run.py compares
both frames on the 2,000,000-job MariaDB database). Blocks of 4 job ids, so a window spans many.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from billing import job_index, services
from billing.job_index import IndexedSource
from billing.models import JobIndexBlock, JobIndexState
from slurm.decoders import JobState
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.frame import JobQuery
from slurm.router import allow_writes

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch, settings):
    monkeypatch.setattr(job_index, "BLOCK_IDS", 4)
    settings.BILLING_JOB_INDEX = True
    settings.BILLING_JOB_INDEX_GRACE_SECONDS = 600
    settings.BILLING_JOB_INDEX_CHECK_SECONDS = 0  # every sync a full one, unless a test says otherwise


@pytest.fixture
def jobs(slurm):
    """Finished jobs over two days (GPU, steps, a NULL account, one that never started), a running and a pending job."""
    slurm.tres()
    slurm.user("alice", ["physics", "chem"])
    slurm.user("bob", ["physics"])
    now = slurm.now
    made = []
    for i in range(23):
        end = now - 3600 - 7000 * i
        job = slurm.job(
            ["alice", "bob"][i % 2],
            ["physics", "chem", "physics"][i % 3],
            gpus=i % 4 == 0 and 2,
            cpus_req=1 + i % 5,
            time_submit=end - 1900,
            time_start=end - 1800,
            time_end=end,
            mod_time=end,
        )
        if i % 3:
            slurm.step(job, user_sec=100 * i, user_usec=250000, sys_sec=i, sys_usec=999999)
            slurm.step(job, id_step=0, step_name="python", user_sec=7, sys_usec=500000)
        made.append(job)
    made.append(slurm.job("bob", "physics", state=JobState.RUNNING, time_start=now - 900, mod_time=now - 900))
    made.append(slurm.job("bob", "physics", state=JobState.PENDING, mod_time=now - 800))
    nameless = slurm.job("alice", "chem", time_end=now - 7200, mod_time=now - 7200)
    with allow_writes():  # a NULL account reads as ""
        slurm.models.job.objects.using("slurm").filter(job_db_inx=nameless.job_db_inx).update(account=None)
    made.append(nameless)
    made.append(slurm.job("bob", "physics", time_start=0, time_end=now - 8000, mod_time=now - 8000))
    return made


def window(slurm, days: int = 3) -> JobQuery:
    now = datetime.fromtimestamp(slurm.now, tz=UTC)
    return JobQuery(now - timedelta(days=days), now + timedelta(hours=1), "testcluster")


def assert_same(query: JobQuery) -> pd.DataFrame:
    direct = DatabaseSource().fetch(query)
    indexed = IndexedSource().fetch(query)
    pd.testing.assert_frame_equal(indexed, direct)
    return indexed


def update_job(slurm, job, **fields):
    """What slurmdbd does on a change: the row's fields and its mod_time (now)."""
    with allow_writes():
        slurm.models.job.objects.using("slurm").filter(job_db_inx=job.job_db_inx).update(
            mod_time=int(timezone.now().timestamp()), **fields
        )


def test_the_index_gives_the_direct_frame(slurm, jobs):
    report = job_index.sync("testcluster")
    assert report.blocks == report.rebuilt == 7  # 27 job ids in blocks of 4
    assert report.jobs == 25  # the finished jobs: not the running or the pending one
    for days in (3, 1):
        frame = assert_same(window(slurm, days))
        assert len(frame) > 0
    assert len(assert_same(window(slurm))) == 25
    # Read from the index indeed: the blocks hold them, and the live reads only the open rows.
    assert sum(JobIndexBlock.objects.values_list("jobs", flat=True)) == 25


def test_a_job_that_finishes_after_the_sync_is_read_live(slurm, jobs):
    job_index.sync("testcluster")
    running = jobs[23]
    update_job(slurm, running, state=int(JobState.COMPLETED), time_end=slurm.now - 60)
    frame = assert_same(window(slurm))
    assert running.id_job in set(frame["job_id"])
    newer = slurm.job("alice", "chem", time_end=slurm.now - 30, mod_time=slurm.now - 30)  # a row after the sync
    assert newer.id_job in set(assert_same(window(slurm))["job_id"])
    # Backdated ends (a runaway job fixed, rows written late after a slurmdbd outage) are read live too.
    update_job(slurm, jobs[24], state=int(JobState.CANCELLED), time_start=0, time_end=slurm.now - 50_000)
    late = slurm.job("bob", "physics", time_end=slurm.now - 40_000, mod_time=slurm.now)
    found = set(assert_same(window(slurm))["job_id"])
    assert {jobs[24].id_job, late.id_job} <= found


def test_a_change_to_a_settled_job_shows_after_the_next_sync(slurm, jobs):
    job_index.sync("testcluster")
    changed = jobs[5]
    update_job(slurm, changed, cpus_req=32, account="chem", tres_alloc="1=32,2=64000,4=1")
    slurm.step(changed, id_step=1, step_name="late", user_sec=5000)
    report = job_index.sync("testcluster")
    assert report.rebuilt == 1  # only its block is read again
    frame = assert_same(window(slurm))
    row = frame[frame["job_id"] == changed.id_job].iloc[0]
    assert (row.account, row.alloc_cpus) == ("chem", 32)


def test_a_step_written_after_its_job_settled_is_synced(slurm, jobs):
    job_index.sync("testcluster")
    slurm.step(jobs[7], id_step=3, step_name="late", user_sec=1234)  # the step table has no mod_time
    assert job_index.sync("testcluster").rebuilt == 1
    assert_same(window(slurm))


def test_a_purge_of_old_rows_is_synced(slurm, jobs):
    job_index.sync("testcluster")
    cutoff = slurm.now - 7000 * 12
    job_model = slurm.models.job
    with allow_writes():  # what slurmdbd's PurgeJobAfter deletes: finished jobs submitted before the cut-off
        old = list(job_model.objects.using("slurm").filter(time_submit__lte=cutoff).exclude(time_end=0))
        slurm.models.step.objects.using("slurm").filter(job_db_inx__in=[j.job_db_inx for j in old]).delete()
        job_model.objects.using("slurm").filter(job_db_inx__in=[j.job_db_inx for j in old]).delete()
    assert len(old) >= 8  # two whole blocks and part of a third
    report = job_index.sync("testcluster")
    assert report.dropped == 2 and report.rebuilt == 1
    frame = assert_same(window(slurm))
    assert not set(frame["job_id"]) & {j.id_job for j in old}


def test_a_sync_is_idempotent_and_a_cut_one_leaves_the_index_as_it_was(slurm, jobs, monkeypatch):
    job_index.sync("testcluster")
    before = list(JobIndexBlock.objects.order_by("block").values_list("block", "built_at", "data"))
    assert job_index.sync("testcluster").rebuilt == 0  # nothing changed: nothing read again
    update_job(slurm, jobs[2], cpus_req=9)
    update_job(slurm, jobs[20], cpus_req=9)
    calls = []

    def dies(*args, **kwargs):  # the worker is killed (a restart) while reading the second block
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = job_index.build_block
    monkeypatch.setattr(job_index, "build_block", dies)
    with pytest.raises(KeyboardInterrupt):
        job_index.sync("testcluster")
    assert list(JobIndexBlock.objects.order_by("block").values_list("block", "built_at", "data")) == before
    monkeypatch.setattr(job_index, "build_block", real)
    assert job_index.sync("testcluster").rebuilt == 2
    assert_same(window(slurm))


def test_a_stale_index_is_not_read_and_its_lag_is_shown(slurm, jobs, settings, client, personas):
    query = window(slurm)
    assert job_index.status("testcluster").usable is False  # never synced: read live
    job_index.sync("testcluster")
    assert job_index.status("testcluster").usable is True
    JobIndexState.objects.update(
        synced_at=timezone.now() - timedelta(seconds=settings.BILLING_JOB_INDEX_MAX_LAG_SECONDS + 1)
    )
    update_job(slurm, jobs[3], tres_alloc="1=17,2=1000,4=1")  # not synced: only a live read shows it
    found = job_index.status("testcluster")
    assert found.usable is False and found.lag > timedelta(seconds=settings.BILLING_JOB_INDEX_MAX_LAG_SECONDS)
    frame = assert_same(query)
    assert frame.loc[frame["job_id"] == jobs[3].id_job, "alloc_cpus"].item() == 17
    synced = JobIndexState.objects.get().synced_at
    client.force_login(personas.staff)
    page = client.get(reverse("billing:staff_usage"), {"start": (query.start.date()).isoformat()})
    assert page.status_code == 200
    text = page.content.decode()
    assert f"Job data synced at {timezone.localtime(synced):%Y-%m-%d %H:%M}" in text
    assert "read live" in text


def test_the_staff_usage_page_reads_the_index(slurm, jobs, client, personas, django_assert_max_num_queries):
    job_index.sync("testcluster")
    sources = services.job_sources()
    assert isinstance(sources[0], IndexedSource)
    client.force_login(personas.staff)
    page = client.get(reverse("billing:staff_usage"), {"start": window(slurm).start.date().isoformat()})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Job data synced at" in text
    checked = timezone.localtime(JobIndexState.objects.get().checked_at)
    assert f"Changes to jobs that ended earlier, and purges, were last checked at {checked:%Y-%m-%d %H:%M}." in text


def test_the_beat_schedule_syncs_the_index():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "billing.sync_job_index"]
    assert entries and entries[0]["schedule"] == float(settings.BILLING_JOB_INDEX_SYNC_SECONDS)
    assert settings.BILLING_JOB_INDEX_MAX_LAG_SECONDS >= settings.BILLING_JOB_INDEX_SYNC_SECONDS


def test_the_command_builds_the_index_with_progress(slurm, jobs, capsys):
    from django.core.management import call_command

    call_command("billing_job_index", "--cluster", "testcluster")
    out = capsys.readouterr().out
    assert "block 7/7" in out and "25 finished jobs" in out and "read by the pages" in out
    call_command("billing_job_index", "--status")
    assert "synced at" in capsys.readouterr().out


def test_a_new_data_format_is_read_live_until_the_next_sync_reads_every_block(slurm, jobs, monkeypatch):
    job_index.sync("testcluster")
    monkeypatch.setattr(job_index, "FORMAT", job_index.FORMAT + 1)
    calls = []
    monkeypatch.setattr(job_index, "decode", lambda data: calls.append(data))
    assert_same(window(slurm))  # the old blocks are not decoded: read live
    assert calls == []
    monkeypatch.undo()
    monkeypatch.setattr(job_index, "BLOCK_IDS", 4)
    monkeypatch.setattr(job_index, "FORMAT", job_index.FORMAT + 1)
    assert job_index.sync("testcluster").rebuilt == 7
    assert_same(window(slurm))


def test_the_sync_s_last_success_is_in_metrics(slurm, jobs, settings):
    """/metrics exports the beat task's last success (userportal.beat): the index's lag, for alerting."""
    from test_metrics import value

    from userportal import metrics, metrics_store
    from userportal.models import BeatRun

    settings.PORTAL_METRICS_REDIS_URL = ""
    metrics_store.reset()
    from billing.tasks import sync_job_index

    assert sync_job_index.apply_async().get()["testcluster"]["rebuilt"] == 7
    success = BeatRun.objects.get(task="billing.sync_job_index").last_success
    text = metrics.exposition().decode()
    name = "portal_beat_last_success_timestamp_seconds"
    assert value(text, name, task="billing.sync_job_index") == pytest.approx(success.timestamp())
    assert value(text, "portal_beat_late", task="billing.sync_job_index") == 0
    metrics_store.reset()


def test_a_cluster_that_fails_does_not_stop_the_others(slurm, jobs, settings, monkeypatch):
    from django.db import DatabaseError

    from billing.tasks import sync_job_index

    settings.SLURM_CLUSTERS = ["gone", "testcluster"]
    real = job_index.sync

    def sync(cluster, **kwargs):
        if cluster == "gone":
            raise DatabaseError("no such table: gone_job_table")
        return real(cluster, **kwargs)

    monkeypatch.setattr(job_index, "sync", sync)
    with pytest.raises(DatabaseError, match="gone_job_table"):
        sync_job_index.apply_async().get()
    assert JobIndexState.objects.filter(cluster="testcluster").exists()


def test_without_the_database_source_nothing_is_synced(settings):
    from billing.tasks import sync_job_index

    settings.BILLING_SOURCES = ["slurmrestd", "sacct"]
    assert sync_job_index.apply_async().get() == {}
    assert not JobIndexState.objects.exists()


def test_syncs_between_full_ones_read_only_new_and_settling_rows(slurm, jobs, settings):
    settings.BILLING_JOB_INDEX_CHECK_SECONDS = 3600
    assert job_index.sync("testcluster").full  # the first is full
    assert not job_index.sync("testcluster").full
    # A row written late (after a slurmdbd outage), already settled: its block is read again.
    late = slurm.job("bob", "physics", time_end=slurm.now - 40_000, mod_time=slurm.now)
    report = job_index.sync("testcluster")
    assert (report.full, report.rebuilt, report.jobs) == (False, 1, 26)
    assert late.id_job in set(assert_same(window(slurm))["job_id"])
    # The running job ends; once its end settles, its block is read again.
    update_job(slurm, jobs[23], state=int(JobState.COMPLETED), time_end=slurm.now - 300)
    settings.BILLING_JOB_INDEX_GRACE_SECONDS = 60
    report = job_index.sync("testcluster")
    assert (report.full, report.jobs) == (False, 27)  # its block (and the late row's, changed within HOT_SECONDS)
    assert_same(window(slurm))
    # A purge is not seen by these syncs (the index lags), but by the next full one.
    with allow_writes():
        slurm.models.job.objects.using("slurm").filter(
            job_db_inx__in=[jobs[21].job_db_inx, jobs[22].job_db_inx]
        ).delete()
    assert job_index.sync("testcluster").dropped == 0
    assert len(IndexedSource().fetch(window(slurm))) == len(DatabaseSource().fetch(window(slurm))) + 2
    JobIndexState.objects.update(checked_at=timezone.now() - timedelta(seconds=3601))
    report = job_index.sync("testcluster")
    assert report.full and report.jobs == 25
    assert_same(window(slurm))
