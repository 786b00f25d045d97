"""The job page's figures equal seff's, on series shaped like the real slurm-job-exporter's (evaluated by promtool)."""

from __future__ import annotations

import pytest
from exporter_series import GIB, ExporterJob, all_series
from promtool_client import PromtoolClient

from jobstats.jobpage import job_page
from slurm.decoders import JobState
from userportal.prometheus import MetricsSession

pytestmark = [pytest.mark.django_db(databases=["default", "slurm"]), pytest.mark.usefixtures("promtool")]

NOW = 400_000


def page_of(personas, job, exporter_jobs, now=NOW):
    session = MetricsSession(PromtoolClient(all_series(exporter_jobs, now), now=now))
    return job_page("owner", personas.slurm.cluster, [job], session, now=now)


def test_a_running_jobs_efficiency_is_its_counters_growth(personas):
    """The issue's job: 2 cores kept busy (1.92) for 7.5 minutes; averaging rate() points said 83 %."""
    s = personas.slurm
    s.qos("normal")
    job = s.job("owner", "def-owner", cpus_req=2, state=JobState.RUNNING, time_start=NOW - 450, time_end=0)
    counted = ExporterJob(job.id_job, start=NOW - 450, end=None, busy=1.92)
    detail = page_of(personas, job, [counted])
    cpu = detail.efficiency.get("cpu")
    last = counted.scrapes(NOW)[-1]
    truth = counted.cpu_seconds(last) / (2 * (last - (NOW - 450)))
    assert detail.usage.source == "prometheus"
    assert cpu.fraction == pytest.approx(truth, abs=0.005)
    assert cpu.percent == 96
    assert detail.efficiency.running


def test_a_finished_jobs_cpu_and_memory_are_saccts_even_with_series(personas):
    s = personas.slurm
    s.qos("normal")
    job = s.job("owner", "def-owner", cpus_req=2, time_start=NOW - 1000, time_end=NOW - 550, mem_req=4000)
    s.step(job, user_sec=860, sys_sec=5, tres_usage_in_max=f"2={GIB}")  # TotalCPU 14:25, MaxRSS 1 GiB
    series = ExporterJob(job.id_job, start=NOW - 1000, end=NOW - 550, busy=1.92, mem_usage=1.4 * GIB)
    detail = page_of(personas, job, [series])
    cpu, memory = detail.efficiency.get("cpu"), detail.efficiency.get("memory")
    assert cpu.fraction == pytest.approx(865 / (2 * 450))  # seff: 96.11 %
    assert memory.used == "1.0 GiB"  # MaxRSS, as seff's "Memory Utilized"
    assert detail.usage.source == "accounting" and detail.usage.mem_source == "maxrss"


def test_a_cgroup_v2_job_without_memory_max_takes_the_highest_usage(personas):
    s = personas.slurm
    s.qos("normal")
    job = s.job("owner", "def-owner", cpus_req=1, state=JobState.RUNNING, time_start=NOW - 600, time_end=0)
    v2 = ExporterJob(
        job.id_job, start=NOW - 600, end=None, cores=(3,), busy=0.9, memory_max=False, cgroup_v2=True,
        mem_usage=lambda t: (2.5 if 200 < t < 300 else 0.8) * GIB,
    )  # fmt: skip
    detail = page_of(personas, job, [v2])
    assert detail.usage.mem_source == "memory_usage"
    assert detail.usage.mem_max_bytes == pytest.approx(2.5 * GIB)


def test_a_gpu_job_without_gpu_series_is_not_measured(personas):
    s = personas.slurm
    s.qos("normal")
    job = s.job("owner", "def-owner", gpus=1, cpus_req=2, state=JobState.RUNNING, time_start=NOW - 600, time_end=0)
    blind = ExporterJob(job.id_job, start=NOW - 600, end=None, gpus=(("0", "NVIDIA A100-SXM4-40GB", 0.0),))
    blind.gpu_measured = False
    detail = page_of(personas, job, [blind])
    assert detail.efficiency.get("gpu") is None  # not 0 %
    assert any("GPUs not measured" in note for note in detail.efficiency.notes)
    assert detail.efficiency.get("cpu") is not None  # its CPU and memory are measured
    assert not any(f.rule in ("idle-gpus", "unseen-gpus") for f in detail.advice)  # unknown, not idle


def test_a_7_day_cpu_graph_shows_a_short_jobs_use_against_its_allocation(personas):
    """Points 10 minutes apart: the 7.5-minute job's point is ~1.92 used of 2, not its use spread over the step."""
    from jobstats.graphs.user import user_expressions
    from userportal.promql import by_tag, union
    from userportal.windows import step_for

    step = step_for(7 * 86400)  # 606 s
    job = ExporterJob(77, start=NOW - 700, end=NOW - 250, busy=1.92, user="owner")
    client = PromtoolClient(all_series([job], NOW), now=NOW)
    expressions = user_expressions("owner", step)
    found = by_tag(client.query(union({k: expressions[k] for k in ("cores_used", "cores_alloc")})))
    used, alloc = found["cores_used"][0].value, found["cores_alloc"][0].value
    assert alloc == pytest.approx(2.0)
    assert used == pytest.approx(1.92, abs=0.03)
    # rate() over a window widened to the step spread the job over the whole point
    [widened] = client.query(f'sum(rate(slurm_job_core_usage_total{{user="owner"}}[{step}s])) / 1e9')
    assert widened.value < 1.5


def test_current_use_says_gpus_not_measured_instead_of_zero(personas):
    from jobstats.listing import current_use

    s = personas.slurm
    job = s.job("owner", "def-owner", gpus=1, cpus_req=2, state=JobState.RUNNING, time_start=NOW - 900, time_end=0)
    blind = ExporterJob(
        job.id_job, start=NOW - 900, end=None, user="owner", gpus=(("0", "NVIDIA A100-SXM4-40GB", 0.0),)
    )
    blind.gpu_measured = False
    session = MetricsSession(PromtoolClient(all_series([blind], NOW), now=NOW))
    use = current_use("owner", s.cluster, session, now=NOW)
    assert use.gpus.allocated == 1
    assert use.gpus.used is None and "GPUs not measured" in use.gpus.reason
    assert use.cores.used == pytest.approx(1.92, abs=0.03)
