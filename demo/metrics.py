"""The demo cluster's slurm-job-exporter series, from its accounting rows (``manage.py demo_metrics``).

The same jobs, users, accounts, cores, GPUs and memory limits as the demo Slurm database: the
jobs running at ``now`` and the jobs that ended within the backfilled window. A finished job's
CPU time is its steps' user + system time (sacct's TotalCPU) and its memory peak the steps'
MaxRSS; a running job burns a share of its cores fixed by its job id. Every series starts at
``since`` (the window's start, or the job's start if later), so the backfill and the live
endpoint write one continuous counter per core.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.db import connections

from demo.exporter_series import GPU_TYPES, Families, job_series
from slurm.hostlists import expand_hostlist
from slurm.router import SLURM_DB_ALIAS

RUNNING = 1
TRES_CPU, TRES_MEM = "1", "2"
GPU_TRES = {"1002": "a100", "1003": "v100"}  # demo/catalog's typed GPU TRES ids
IDLE_GPU_SHARE = 0.1  # of the GPU jobs hold their GPUs without using them (the idle-GPU page)
EXES = [("/opt/software/bin/simulate", 0.95), ("/usr/bin/bash", 0.05)]


@dataclass(frozen=True)
class DemoJob:
    jobid: int
    user: str
    account: str
    start: int
    end: int  # 0 while running
    nodes: list[str]
    cores: int
    mem_bytes: float
    gpus: list[tuple[str, int]]  # (gres type, count) per node
    cpu_seconds: float  # finished: the steps' TotalCPU
    max_rss: float  # finished: the steps' MaxRSS


def _tres(text: str | None) -> dict[str, str]:
    return dict(item.split("=", 1) for item in (text or "").split(",") if "=" in item)


def demo_jobs(cluster: str, now: int, since: int, *, using: str = SLURM_DB_ALIAS) -> list[DemoJob]:
    """The jobs running at ``now`` and those that ended between ``since`` and ``now``."""
    job_table, assoc_table, step_table = (f"{cluster}_{name}_table" for name in ("job", "assoc", "step"))
    sql = (
        f"SELECT j.job_db_inx, j.id_job, a.user, j.account, j.state, j.time_start, j.time_end, j.nodelist, "  # noqa: S608 - table names from settings
        f"j.tres_alloc FROM {job_table} j JOIN {assoc_table} a ON a.id_assoc = j.id_assoc "
        "WHERE j.time_start > 0 AND j.time_start < %s AND (j.state = %s OR (j.time_end > %s AND j.time_end <= %s))"
    )
    steps_sql = (
        f"SELECT job_db_inx, user_sec + sys_sec + (user_usec + sys_usec) / 1e6, tres_usage_in_max "  # noqa: S608
        f"FROM {step_table} WHERE job_db_inx IN (SELECT j.job_db_inx FROM {job_table} j "
        "WHERE j.state != %s AND j.time_end > %s AND j.time_end <= %s)"
    )
    with connections[using].cursor() as cursor:
        cursor.execute(steps_sql, [RUNNING, since, now])
        cpu: dict[int, float] = {}
        rss: dict[int, float] = {}
        for inx, seconds, usage in cursor.fetchall():
            cpu[inx] = cpu.get(inx, 0.0) + float(seconds or 0)
            rss[inx] = max(rss.get(inx, 0.0), float(_tres(usage).get(TRES_MEM, 0)))
        cursor.execute(sql, [now, RUNNING, since, now])
        rows = cursor.fetchall()
    jobs = []
    for inx, jobid, user, account, state, start, end, nodelist, tres_alloc in rows:
        tres = _tres(tres_alloc)
        nodes = expand_hostlist(nodelist) or ["node"]
        gpus = [(gtype, int(tres[tid]) // len(nodes)) for tid, gtype in GPU_TRES.items() if int(tres.get(tid, 0))]
        running = state == RUNNING
        jobs.append(
            DemoJob(
                jobid=jobid,
                user=user,
                account=account,
                start=start,
                end=0 if running else end,
                nodes=nodes,
                cores=max(1, int(tres.get(TRES_CPU, 1))),
                mem_bytes=int(tres.get(TRES_MEM, 1024)) * 2**20,
                gpus=gpus,
                cpu_seconds=cpu.get(inx, 0.0),
                max_rss=rss.get(inx, 0.0),
            )
        )
    return jobs


def add_job(fx: Families, job: DemoJob, since: int, until: int, step: int) -> None:
    """One job's series from max(start, since) to its end (or ``until`` while it runs), per node."""
    rng = random.Random(job.jobid)
    efficiency, memory = rng.uniform(0.15, 0.98), rng.uniform(0.2, 0.9)  # drawn first: the same for a running job
    gpu_load = 0.0 if rng.random() < IDLE_GPU_SHARE else 1.0
    t0 = max(job.start, since)
    t1 = job.end or until
    if t1 <= t0:
        return
    if job.end:  # the share of the steps' CPU time that falls in the window
        cpu_seconds = job.cpu_seconds * (t1 - t0) / max(1, job.end - job.start)
        peak = job.max_rss or memory * job.mem_bytes
    else:
        cpu_seconds = efficiency * job.cores * (t1 - t0)
        peak = memory * job.mem_bytes
    n = len(job.nodes)
    for k, node in enumerate(job.nodes):
        cores = max(1, job.cores // n)
        gpus = [(gtype, GPU_TYPES[gtype][4] + i) for gtype, count in job.gpus for i in range(count)]
        job_series(
            fx, jobid=str(job.jobid), user=job.user, account=job.account, node=node, cores=cores, t0=t0, t1=t1,
            step=min(step, t1 - t0), cpu_seconds=cpu_seconds / n, mem_limit=job.mem_bytes / n, mem_peak=peak / n,
            gpus=gpus, exes=EXES, seed=job.jobid + k, ncpu=max(cores, 64), gpu_load=gpu_load,
        )  # fmt: skip


def backfill(cluster: str, path: str, now: int, since: int, step: int) -> dict[str, int]:
    """Write the window's OpenMetrics file for promtool; returns counts."""
    fx = Families()
    jobs = demo_jobs(cluster, now, since)
    for job in jobs:
        add_job(fx, job, since, now, step)
    running = sum(1 for job in jobs if not job.end)
    return {"running": running, "finished": len(jobs) - running, "samples": fx.write(path)}


def live(jobs: list[DemoJob], since: int, now: int) -> str:
    """What the exporters of the running jobs' nodes would answer at ``now`` (text format)."""
    fx = Families()
    for job in jobs:
        if not job.end:
            add_job(fx, job, since, now, max(1, now - max(job.start, since)))
    return fx.latest()
