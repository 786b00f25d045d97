"""Billing fixtures: a few finished jobs of the personas with known quantities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slurm.jobsource.frame import JobQuery


@pytest.fixture
def billing_jobs(personas):
    """owner: a 2-hour 4-CPU job and a 1-hour 1×a100 job; member: one job. All ended 10 minutes ago."""
    slurm = personas.slurm
    now = slurm.now
    cpu_job = slurm.job("owner", "def-owner", cpus_req=4, mem_req=4096, time_start=now - 600 - 7200, time_end=now - 600)
    slurm.step(cpu_job, user_sec=4 * 3600)  # half of the 8 allocated CPU-hours used
    gpu_job = slurm.job("owner", "def-owner", gpus=1, gpu_type="a100", time_start=now - 600 - 3600, time_end=now - 600)
    return {"cpu": cpu_job, "gpu": gpu_job}


@pytest.fixture
def owner_query(personas):
    now = datetime.fromtimestamp(personas.slurm.now, tz=UTC)
    return JobQuery(now - timedelta(days=1), now, "testcluster", user="owner")
