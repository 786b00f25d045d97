"""make run's Prometheus (demo/prometheus.py): series for the demo's running jobs, consistent with its accounting rows."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from demo.metrics import GPU_TRES, TRES_CPU, TRES_MEM
from slurm.models import cluster_models

pytestmark = pytest.mark.django_db(databases=["default", "slurm"], transaction=True)


def query(url: str, expr: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=10) as r:  # noqa: S310 - loopback
        return json.load(r)["data"]["result"]


def running_jobs() -> list:
    return list(cluster_models("testcluster").job.objects.filter(state=1, time_start__gt=0))


def test_running_jobs_have_their_accounting_cores_memory_and_gpus(demo_prometheus):
    jobs = running_jobs()
    assert jobs
    for job in jobs[:10]:
        tres = dict(item.split("=", 1) for item in job.tres_alloc.split(","))
        sel = f'{{slurmjobid="{job.id_job}"}}'
        cores = query(demo_prometheus.url, f"count(slurm_job_core_usage_total{sel})")
        assert int(cores[0]["value"][1]) == int(tres[TRES_CPU])
        memory = query(demo_prometheus.url, f"sum(slurm_job_memory_limit{sel})")
        assert float(memory[0]["value"][1]) == pytest.approx(int(tres[TRES_MEM]) * 2**20, rel=0.01)
        gpus = sum(int(tres.get(tid, 0)) for tid in GPU_TRES)
        measured = query(demo_prometheus.url, f"count(slurm_job_utilization_gpu{sel})")
        assert (int(measured[0]["value"][1]) if measured else 0) == gpus
        labels = query(demo_prometheus.url, f"slurm_job_memory_usage{sel}")[0]["metric"]
        assert "cluster" not in labels  # the real exporter sends none
        assert labels["account"] == job.account


def test_history_is_backfilled_and_live_values_keep_coming(demo_prometheus):
    job = running_jobs()[0]
    sel = f'slurm_job_core_usage_total{{slurmjobid="{job.id_job}"}}'
    assert float(query(demo_prometheus.url, f"min(count_over_time({sel}[1h]))")[0]["value"][1]) >= 50
    deadline = time.monotonic() + 60  # the first scrape of the live exporter (every 30 s)
    while not query(demo_prometheus.url, 'up{job="slurm-job-exporter"} == 1') and time.monotonic() < deadline:
        time.sleep(1)
    assert query(demo_prometheus.url, f"rate({sel}[2m]) > 0")


def test_a_users_jobstats_graphs_have_data(demo_prometheus, client, django_user_model):
    job = running_jobs()[0]
    user = cluster_models("testcluster").assoc.objects.get(id_assoc=job.id_assoc).user
    client.force_login(django_user_model.objects.get_or_create(username=user)[0])
    for name in ("cpu", "mem"):
        response = client.get(f"/secure/jobstats/{user}/graph/{name}.json")
        assert response.status_code == 200
        assert any(trace["y"] for trace in response.json()["data"]), name
