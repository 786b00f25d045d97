"""jobstats test fixtures: a fake Prometheus on loopback, and a richer set of jobs for the owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from fake_prometheus import FakePrometheus, start

from slurm.decoders import JobState
from userportal.prometheus import get_client

GIB = 1024**3


@pytest.fixture(autouse=True)
def _isolated(settings):
    """No cached answers, no real squeue, a fresh Prometheus client for every test."""
    cache.clear()
    settings.SLURM_SQUEUE = ""
    get_client.cache_clear()
    yield
    cache.clear()
    get_client.cache_clear()


@pytest.fixture
def prometheus(settings):
    """The fake Prometheus (tests/jobstats/fake_prometheus.py); set ``.mode`` to misbehave."""
    server, url = start()
    FakePrometheus.mode = "ok"
    FakePrometheus.seen = []
    settings.PROMETHEUS_URL = url
    get_client.cache_clear()
    yield FakePrometheus
    server.shutdown()
    server.server_close()


@dataclass
class Jobs:
    gpu: Any  # completed, 1 A100, 4 cores, depends on `dep`, with steps
    dep: Any
    dependent: Any
    pending: Any
    running: Any
    array_master: int
    array_tasks: list[Any]
    requeued: list[Any]  # two records of one id, oldest first
    member: Any  # a job of the owner's teammate


@pytest.fixture
def jobs(personas) -> Jobs:
    s = personas.slurm
    now = s.now
    s.qos("normal")  # id 1, the QOS the factory's jobs run under
    dep = s.job("owner", "def-owner", job_name="prep")
    gpu = s.job(
        "owner",
        "def-owner",
        gpus=1,
        cpus_req=4,
        mem_req=16000,
        job_name="train",
        time_submit=now - 7300,
        time_eligible=now - 7300,
        time_start=now - 7200,
        time_end=now - 600,
        timelimit=240,
        submit_line=f"sbatch --dependency=afterok:{dep.id_job} -x node09 --requeue train.sh",
    )
    s.step(gpu, user_sec=3600, sys_sec=400, tres_usage_in_max=f"2={2 * GIB}")
    s.step(gpu, id_step=0, step_name="python", user_sec=9000, tres_usage_in_max=f"2={3 * GIB}")
    dependent = s.job(
        "owner",
        "def-owner",
        job_name="post",
        time_submit=gpu.time_submit + 30,
        time_eligible=gpu.time_end,
        time_start=gpu.time_end + 5,
        time_end=now - 60,
        submit_line=f"sbatch -d afterany:{gpu.id_job} post.sh",
    )
    qos = s.qos("gpuprio", grp_tres="1002=8", max_jobs_per_user=2, max_wall_duration_per_job=20160)
    pending = s.job("owner", "def-owner", state=JobState.PENDING, id_qos=qos.id, job_name="waiting")
    running = s.job("owner", "def-owner", state=JobState.RUNNING, job_name="busy", cpus_req=2)
    master = s.next_job_id()
    tasks = [
        s.job("owner", "def-owner", id_job=s.next_job_id(), id_array_job=master, id_array_task=i, job_name="sweep")
        for i in range(3)
    ]
    requeue_id = s.next_job_id()
    first = s.job(
        "owner",
        "def-owner",
        id_job=requeue_id,
        state=0x400,
        time_submit=now - 5000,
        time_start=now - 4900,
        time_end=now - 4000,
    )
    second = s.job("owner", "def-owner", id_job=requeue_id, time_submit=now - 3900)
    member = next(iter(s.models.job.objects.filter(id_assoc=s.assoc_id("member", "def-owner"))))
    return Jobs(gpu, dep, dependent, pending, running, master, tasks, [first, second], member)
