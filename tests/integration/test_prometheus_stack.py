"""The Prometheus client against the stack's Prometheus and its backfilled exporter series."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from slurm.models import cluster_models
from userportal.prometheus import get_client
from userportal.promql import selector
from userportal.windows import MAX_POINTS

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture(scope="module")
def backfilled(stack_dir) -> list[str]:
    get_client.cache_clear()
    return json.loads((stack_dir / "data" / "prometheus-backfill.json").read_text())["jobs"]


def test_real_jobs_have_core_usage_series(backfilled):
    job_id = backfilled[0]
    job = cluster_models("testcluster").job.objects.filter(id_job=int(job_id)).order_by("-time_submit").first()
    assert job is not None
    start = job.start_time - timedelta(minutes=1)
    end = (job.end_time or datetime.now(tz=UTC)) + timedelta(minutes=5)
    query = selector("slurm_job_core_usage_total", {"slurmjobid": job_id})
    series = get_client().query_range(query, start=start, end=end)
    assert series, f"no core usage series for job {job_id}"
    assert {s.labels["core"] for s in series}  # one series per allocated core
    assert all(len(s.values) <= MAX_POINTS for s in series)
    assert series[0].labels["slurmjobid"] == job_id


def test_range_queries_stay_under_the_point_budget(backfilled):
    end = datetime.now(tz=UTC)
    series = get_client().query_range("up", start=end - timedelta(hours=6), end=end)
    assert all(len(s.values) <= MAX_POINTS for s in series)


def test_label_values_are_escaped_not_interpreted(backfilled):
    # A value that would widen a regex or break out of the string matches nothing, and is no error.
    samples = get_client().query(selector("slurm_job_memory_usage", {"user": 'alice"} or vector(1) #'}))
    assert samples == []
    samples = get_client().query(selector("slurm_job_memory_usage", regex={"user": [".*"]}))
    assert samples == []


def test_recording_rules_answer_instant_queries(backfilled):
    # Backfilled series end when their jobs ended: look back a day rather than the 5-minute default.
    samples = get_client().query("count(last_over_time(slurm_job:allocated_core:count_user_account[1d]))")
    assert samples
    assert samples[0].value > 0
