"""Ground truth: the portal's figures of the stack's real jobs equal Slurm's own (sacct, seff's formula).

For every finished job of the stack's first batch, in-process (this checkout's code, the stack's
slurmdbd, Prometheus and the Django test client):

| figure | portal | truth | tolerance |
|---|---|---|---|
| elapsed time | the job record (time_end − time_start − suspended) | sacct ElapsedRaw | exact |
| CPU time | the job page's usage | sacct TotalCPU | 2 %, or sacct's display resolution (1 ms) |
| CPU efficiency | the job page's CPU measure | TotalCPU ÷ (AllocCPUS × ElapsedRaw), seff's formula | 2 % of it, or 1 ms of CPU time |
| memory peak | the job page's usage | sacct MaxRSS (largest step) | 2 %, or 1 KiB (sacct prints KiB) |
| GPU-hours | billing's job frame | AllocTRES gres/gpu × ElapsedRaw | exact |
| billing's cost inputs | billing's job frame (elapsed, CPU time, cores, memory, GPUs) | sacct | as above |

A page of the stack (the job page through the test client) shows seff's CPU efficiency within
2 points. The cgroup v2-style job (``srun-steps``: no ``slurm_job_memory_max``) and the GPU job
without GPU series (``gpu-v100``) are checked on their own. A job running while the test runs
(scraped live from scripts/stack.d/job_exporter.py) shows a live efficiency within 5 points of
what its core counters give.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.urls import reverse

from jobstats.jobpage import job_page
from jobstats.jobusage import prometheus_usage
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.frame import JobQuery
from slurm.models import cluster_models
from slurm.sacct import parse_total_cpu  # sacct's four TotalCPU forms (tests/slurm/test_sacct.py)
from userportal.prometheus import MetricsSession, get_client

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases=["default", "slurm"])]

CLUSTER = "testcluster"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "DEADLINE"}
FIELDS = "JobIDRaw,JobID,JobName,User,State,ElapsedRaw,TotalCPU,MaxRSS,AllocCPUS,AllocTRES"
CPU_RESOLUTION = 0.001  # sacct prints TotalCPU to the millisecond
MEM_RESOLUTION = 1024  # and MaxRSS in KiB


def kib(text: str) -> float | None:
    match = re.fullmatch(r"([\d.]+)([KMGT]?)", text.strip())
    if not match:
        return None
    return float(match.group(1)) * 1024 ** (" KMGT".index(match.group(2) or "K"))


def tres(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def mb(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)([KMGT]?)", text)
    assert match, text
    return float(match.group(1)) * 1024 ** ("KMGT".index(match.group(2) or "M") - 1)


@pytest.fixture(scope="module")
def sacct(stack_dir: Path, slurm_cmd) -> dict[str, dict]:
    """The first batch's finished jobs as sacct reports them, by job name (array tasks: name_<n>)."""
    lines = (stack_dir / "data" / "jobs" / "batch.txt").read_text().split()
    ids = {jobid: name for name, jobid, _wait in (line.split("|") for line in lines if line)}
    out = slurm_cmd(["sacct", "-a", "-P", "-n", "-S", "2000-01-01", "-E", "now", f"--format={FIELDS}"]).stdout
    jobs: dict[str, dict] = {}
    by_raw: dict[str, dict] = {}
    for line in out.splitlines():
        raw, jobid, _name, user, state, elapsed, total_cpu, max_rss, cpus, alloc = line.split("|")
        if "." in raw:  # a step: its MaxRSS
            job = by_raw.get(raw.split(".")[0])
            rss = kib(max_rss) if max_rss else None
            if job is not None and rss is not None:
                job["max_rss"] = max(job["max_rss"] or 0, rss)
            continue
        master = jobid.split("_")[0]
        if master not in ids or state.split()[0] not in FINAL or not int(elapsed or 0):
            continue
        key = ids[master] + (f"_{jobid.split('_')[1]}" if "_" in jobid else "")
        by_raw[raw] = jobs[key] = {
            "raw": raw, "name": ids[master], "user": user, "state": state.split()[0], "elapsed": int(elapsed),
            "total_cpu": parse_total_cpu(total_cpu), "max_rss": None, "cpus": int(cpus), "tres": tres(alloc),
        }  # fmt: skip
    assert {"cpu-busy", "srun-steps", "gpu-a100", "gpu-v100", "exit-3"} <= set(jobs), sorted(jobs)
    return jobs


def record(raw: str):
    job = cluster_models(CLUSTER).job.objects.filter(id_job=int(raw)).order_by("-time_submit").first()
    assert job is not None, raw
    return job


def page_of(truth: dict):
    get_client.cache_clear()
    return job_page(truth["user"], CLUSTER, [record(truth["raw"])], MetricsSession())


def close(portal: float, truth: float, resolution: float) -> bool:
    return abs(portal - truth) <= max(0.02 * abs(truth), resolution)


def test_every_finished_jobs_figures_equal_saccts(sacct):
    failures = []
    for key, truth in sorted(sacct.items()):
        detail = page_of(truth)
        job = detail.job
        elapsed = job.elapsed_seconds()
        if elapsed != truth["elapsed"]:
            failures.append(f"{key}: elapsed {elapsed} != sacct {truth['elapsed']}")
        usage = detail.usage
        if usage is None or usage.cpu_seconds is None:
            failures.append(f"{key}: no CPU time on the job page")
            continue
        if not close(usage.cpu_seconds, truth["total_cpu"], CPU_RESOLUTION):
            failures.append(f"{key}: CPU time {usage.cpu_seconds:.4f} s != TotalCPU {truth['total_cpu']:.3f} s")
        seff = truth["total_cpu"] / (truth["cpus"] * truth["elapsed"])
        cpu = detail.efficiency.get("cpu") if detail.efficiency else None
        resolution = CPU_RESOLUTION / (truth["cpus"] * truth["elapsed"])
        if cpu is None or not close(cpu.fraction, seff, resolution):
            failures.append(f"{key}: CPU efficiency {cpu.fraction if cpu else None} != seff's {seff:.5f}")
        if truth["max_rss"] is not None:
            if usage.mem_max_bytes is None or not close(usage.mem_max_bytes, truth["max_rss"], MEM_RESOLUTION):
                failures.append(f"{key}: memory peak {usage.mem_max_bytes} != MaxRSS {truth['max_rss']}")
            if usage.mem_source != "maxrss":
                failures.append(f"{key}: memory peak from {usage.mem_source!r}, not from accounting's MaxRSS")
    assert not failures, "\n".join(failures)


def test_billing_cost_inputs_and_gpu_hours_equal_saccts(sacct):
    first = min(record(t["raw"]).time_start for t in sacct.values())
    frame = DatabaseSource().fetch(JobQuery(datetime.fromtimestamp(first - 60, tz=UTC), datetime.now(tz=UTC), CLUSTER))
    rows = {str(row.job_id): row for row in frame.itertuples()}
    for key, truth in sacct.items():
        row = rows[truth["raw"]]
        gpus = int(truth["tres"].get("gres/gpu", 0))
        assert row.elapsed == truth["elapsed"], key
        assert row.alloc_cpus == truth["cpus"], key
        assert row.alloc_gpus == gpus, key
        assert row.alloc_mem_mb == pytest.approx(mb(truth["tres"]["mem"])), key
        assert close(row.total_cpu, truth["total_cpu"], CPU_RESOLUTION), key
        assert row.alloc_gpus * row.elapsed / 3600 == pytest.approx(gpus * truth["elapsed"] / 3600), key  # GPU-hours


def test_the_cgroup_v2_job_has_no_memory_max_and_its_peak_still_equals_maxrss(sacct):
    truth = sacct["srun-steps"]
    job = record(truth["raw"])
    range_answer = requests.get(
        os.environ["PROMETHEUS_URL"] + "/api/v1/series",
        params={"match[]": f'slurm_job_memory_max{{slurmjobid="{truth["raw"]}"}}'},
        timeout=30,
    ).json()
    assert range_answer["data"] == []  # never sent, as on cgroup v2 before kernel 6.8
    measured = prometheus_usage(MetricsSession(), job.id_job, job.time_start, job.time_end)
    assert measured is not None and measured.mem_source == "memory_usage"
    assert truth["max_rss"] is not None
    assert close(measured.mem_max_bytes, truth["max_rss"], MEM_RESOLUTION)  # the exporter's fallback peak
    assert page_of(truth).usage.mem_max_bytes == pytest.approx(truth["max_rss"], abs=MEM_RESOLUTION)


def test_the_gpu_job_without_gpu_series_is_not_measured(sacct):
    truth = sacct["gpu-v100"]
    job = record(truth["raw"])
    measured = prometheus_usage(MetricsSession(), job.id_job, job.time_start, job.time_end)
    assert measured is not None and measured.cores_seen  # its CPU, memory and processes are there
    assert measured.gpus_seen is None and measured.gpu_state(2) == "not-measured"
    detail = page_of(truth)
    assert detail.efficiency.get("gpu") is None
    assert any("GPUs not measured" in note for note in detail.efficiency.notes)


def test_a_page_of_the_stack_shows_seffs_cpu_efficiency(client, sacct):
    truth = sacct["cpu-busy"]
    client.force_login(get_user_model().objects.create_user(truth["user"]))
    response = client.get(reverse("jobstats:job", kwargs={"username": truth["user"], "job_id": truth["raw"]}))
    assert response.status_code == 200
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    shown = re.search(r"(\d+)%:\s+\S+ of CPU time of (\d+) cores", text)
    assert shown, text[:3000]
    seff = 100 * truth["total_cpu"] / (truth["cpus"] * truth["elapsed"])
    assert abs(int(shown.group(1)) - seff) <= 2


# --- a job running while the test runs -------------------------------------------------------
def prometheus(query: str) -> list[dict]:
    answer = requests.get(os.environ["PROMETHEUS_URL"] + "/api/v1/query", params={"query": query}, timeout=30)
    return answer.json()["data"]["result"]


@pytest.fixture
def running_job(slurm_cmd, stack_dir):
    """A 2-core busy job of alice, running while the test runs; cancelled at the end."""
    out = slurm_cmd(
        ["sbatch", "--parsable", "-J", "ground-truth-live", "-A", "physics", "-p", "cpu", "-c", "2", "--mem=200M",
         "-t", "10", "-o", str(stack_dir / "data" / "jobs" / "%x-%j.out"),
         "--wrap", 'for i in 1 2; do timeout 600 sh -c "while :; do :; done" & done; wait'],
        user="alice",
    ).stdout  # fmt: skip
    job_id = out.strip().split(";")[0]
    yield job_id
    subprocess.run(["scancel", job_id], check=False, env={**os.environ, "TZ": "UTC"})


@pytest.mark.adds_jobs
def test_a_running_jobs_live_efficiency_is_what_its_counters_give(running_job):
    deadline = time.monotonic() + 240
    selector = f'slurm_job_core_usage_total{{slurmjobid="{running_job}"}}'
    samples = []
    while time.monotonic() < deadline:
        samples = prometheus(f"count_over_time({selector}[10m])")
        if samples and min(float(s["value"][1]) for s in samples) >= 3:  # three scrapes at least
            break
        time.sleep(5)
    assert samples, (
        "Prometheus has no live series of the running job: the stack must run job_exporter.py and scrape it "
        "(scripts/stack restart after upgrading the stack)"
    )
    job = record(running_job)
    detail = job_page("alice", CLUSTER, [job], MetricsSession(), now=time.time())
    cpu = detail.efficiency.get("cpu")
    assert detail.usage.source == "prometheus" and cpu is not None
    # what the counters give: their sum at the last scrape over the cores × the time since the start
    [last] = prometheus(f"sum({selector}) / 1e9")
    [at] = prometheus(f"max(timestamp({selector}))")
    counters = float(last["value"][1]) / (2 * (float(at["value"][1]) - job.time_start))
    assert abs(100 * cpu.fraction - 100 * counters) <= 5, (cpu.fraction, counters)
