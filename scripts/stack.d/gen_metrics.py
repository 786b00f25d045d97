#!/usr/bin/env python3
"""Write OpenMetrics text shaped like slurm-job-exporter v0.4.12 sends it, for promtool backfill.

    gen_metrics.py OUT --state STATE.json [--synthetic-hours 6] [--sacct [--prometheus URL]] [--now EPOCH]

* --synthetic-hours H: H hours of history up to --now for a few synthetic job ids (9000xx) so
  graphs have shape, 30 s apart, the way slurm-job-exporter scrapes them.
* --sacct: every finished job in `sacct` (run with the caller's SLURM_CONF, TZ=UTC) that is not
  in STATE yet, over its real start..end window, one sample a second (jobs last seconds); with
  --prometheus, not the jobs that server already has series of (job_exporter.py scraped them live).
* Both also write prometheus-slurm-exporter series (slurm_account_levelfs ...) from where the
  previous run stopped (STATE["covered_until"]) to now. Node series come from the real
  node_exporter the stack runs (node_exporter.sh), not from here.

The series behave as the real exporter's do (shared/reference/domain.md 4.2), checked against its
source: labels user, account, slurmjobid (+ core, state, exe, gpu, gpu_type); **no `cluster`
label** (a site adds one in its scrape config: set PROMETHEUS_EXTRA_LABELS, e.g. `cluster=x`, and
these series carry it too); `core` is the CPU number of the job's cpuset; CPU counters in
nanoseconds per core from zero at the job's start; `slurm_job_process_usage_total` (seconds)
only for executables past 60 CPU-seconds and never bash, ssh, sshd or srun; thread states only
when present; memory in bytes; GPU power in milliwatts; utilisation in percent. Two stack jobs
show the exporter's gaps: `srun-steps` runs as on cgroup v2 before kernel 6.8 (no
`slurm_job_memory_max`; its usage reaches the steps' MaxRSS) and `gpu-v100` as on a node
without NVML/DCGM (CPU, memory and processes, no GPU series).
Standard library only. Prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: the demo's writers, shared
from demo.exporter_series import GPU_TYPES, Families, job_series

# Labels a site's scrape config would add (PROMETHEUS_EXTRA_LABELS, "name=value,name=value"); none by default.
EXTRA_LABELS = dict(
    item.split("=", 1) for item in os.environ.get("PROMETHEUS_EXTRA_LABELS", "").split(",") if "=" in item
)
CGROUP_V2_JOBS = ("srun-steps",)  # no slurm_job_memory_max (cgroup v2, kernel < 6.8)
GPU_UNMEASURED_JOBS = ("gpu-v100",)  # no NVML/DCGM: no GPU series at all
NODES = {"gpu01": 8, "cpu01": 8}  # name -> CPUs, as in slurm.conf
ACCOUNTS = ("physics", "chem", "staff")
CLUSTER_COUNTS = {"cpus": (16, 6, 10), "gpus": (4, 2, 2)}  # slurm-exporter: total, alloc, idle

# synthetic jobs: id, user, account, node, cores, cpu efficiency, mem GiB (limit), gpus (type, n)
SYNTHETIC = [
    ("900001", "alice", "physics", "cpu01", 4, 0.95, 8, None),
    ("900002", "bob", "chem", "cpu01", 2, 0.30, 4, None),
    ("900003", "alice", "physics", "gpu01", 4, 0.60, 32, ("a100", 2)),
    ("900004", "bob", "chem", "gpu01", 2, 0.85, 16, ("v100", 2)),
    ("900005", "carol", "chem", "cpu01", 1, 0.99, 60, None),
]


def stack_job_series(fx: Families, **job: Any) -> None:
    """demo.exporter_series.job_series with the stack's node sizes and the site's extra labels."""
    job_series(fx, ncpu=NODES.get(job["node"], 8), extra_labels=EXTRA_LABELS, **job)


# ---------------------------------------------------------------------------- slurm-exporter series
def slurm_exporter_series(fx: Families, t0: int, t1: int, step: int, base_t: int) -> None:
    """prometheus-slurm-exporter's fair share and cluster counts (node series come from the real node_exporter)."""
    ts = list(range(t0, t1 + 1, step))
    se = {**EXTRA_LABELS, "instance": "slurmctld:8080", "job": "slurm-exporter"}
    for t in ts:
        h = (t - base_t) / 3600.0
        for k, acct in enumerate(ACCOUNTS):
            levelfs = max(0.05, 1.0 + 0.6 * math.sin(h / 2.0 + k * 2.1))
            labels = {**se, "account": acct}
            fx.add("slurm_account_levelfs", labels, t, round(levelfs, 4))
            fx.add("slurm_account_normusage", labels, t, round(0.4 / levelfs * 0.4, 4))
            fx.add("slurm_account_normshares", labels, t, (0.4, 0.4, 0.2)[k])
        for kind, counts in CLUSTER_COUNTS.items():
            for state, v in zip(("total", "alloc", "idle"), counts, strict=True):
                fx.add(f"slurm_{kind}_{state}", se, t, v)


# ---------------------------------------------------------------------------- sacct
def parse_mem(s: str, default_unit: str = "M") -> float:
    m = re.fullmatch(r"([\d.]+)([KMGTP]?)", s.strip())
    if not m:
        return 0.0
    unit = m.group(2) or default_unit
    return float(m.group(1)) * float(1024 ** "BKMGTP".index(unit))


def parse_cpu_time(s: str) -> float:
    """sacct TotalCPU: [D-][HH:]MM:SS[.mmm]"""
    s = s.strip()
    if not s:
        return 0.0
    days = 0
    if "-" in s:
        d, s = s.split("-", 1)
        days = int(d)
    parts = [float(p) for p in s.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    h, m, sec = parts
    return days * 86400 + h * 3600 + m * 60 + sec


def parse_ts(s: str) -> int | None:
    s = s.strip()
    if not s or s in ("Unknown", "None") or not s[0].isdigit():
        return None
    return int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())


def sacct_jobs() -> list[dict[str, Any]]:
    fields = "JobIDRaw,JobID,JobName,User,Account,State,Start,End,AllocTRES,NodeList,TotalCPU,MaxRSS,AllocCPUS"
    out = subprocess.run(
        ["sacct", "-a", "-P", "-n", "-S", "2000-01-01", "-E", "now", "--format", fields],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},
        timeout=60,
    ).stdout
    jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for line in out.splitlines():
        cols = line.split("|")
        if len(cols) != 13:
            continue
        raw, jid, name, user, acct, state, start, end, tres, nodes, totalcpu, maxrss, ncpu = cols
        if "." in raw:  # a step: keep the largest MaxRSS for its job
            j = jobs.get(raw.split(".")[0])
            if j is not None and maxrss:
                j["maxrss"] = max(j["maxrss"], parse_mem(maxrss, "K"))
            continue
        jobs[raw] = {
            "raw": raw,
            "jobid": jid,
            "name": name,
            "user": user,
            "account": acct,
            "state": state.split(" ")[0],
            "start": parse_ts(start),
            "end": parse_ts(end),
            "tres": tres,
            "nodes": nodes,
            "cpu": parse_cpu_time(totalcpu),
            "maxrss": parse_mem(maxrss, "K") if maxrss else 0.0,
            "ncpu": int(ncpu or 0),
        }
    return list(jobs.values())


def live_jobs(prometheus: str) -> set[str]:
    """Job ids the server has core counters of already: scraped live from job_exporter.py."""
    query = "group by (slurmjobid) (last_over_time(slurm_job_core_usage_total[3650d]))"
    url = f"{prometheus.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=60) as answer:
        found = json.load(answer)
    return {item["metric"].get("slurmjobid", "") for item in found["data"]["result"]}


def tres_dict(tres: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in tres.split(",") if "=" in item)


# ---------------------------------------------------------------------------- the runs
def synthetic_jobs(fx: Families, now: int, hours: float) -> int:
    """The SYNTHETIC jobs over the last `hours`, 30 s apart; returns where they start."""
    step = 30
    end = now - now % step
    start = end - int(hours * 3600)
    for k, (jid, user, acct, node, cores, eff, mem_gib, gpu) in enumerate(SYNTHETIC):
        gpus = [(gpu[0], GPU_TYPES[gpu[0]][4] + i) for i in range(gpu[1])] if gpu else []
        stack_job_series(
            fx, jobid=jid, user=user, account=acct, node=node, cores=cores, t0=start, t1=end, step=step,
            cpu_seconds=cores * eff * (end - start), mem_limit=mem_gib * 2**30, mem_peak=mem_gib * 2**30 * 0.7,
            gpus=gpus, exes=[("/opt/software/bin/simulate", 0.97), ("/usr/bin/bash", 0.03)], seed=k,
        )  # fmt: skip
    return start


def sacct_job_series(fx: Families, j: dict[str, Any]) -> None:
    """One finished sacct job over its real window, a sample a second."""
    t0, t1 = j["start"], max(j["end"], j["start"] + 1)
    tres = tres_dict(j["tres"])
    gpus: list[tuple[str, int]] = []
    for gtype, info in GPU_TYPES.items():
        gpus += [(gtype, info[4] + i) for i in range(int(tres.get(f"gres/gpu:{gtype}", 0) or 0))]
    node = (j["nodes"].split(",")[0] or "cpu01").split("[")[0]
    mem_limit = parse_mem(tres.get("mem", "0"))
    peak = j["maxrss"] or min(mem_limit, 8 * 2**20) or 8 * 2**20
    if j["state"] == "OUT_OF_MEMORY":
        peak = mem_limit
    exe = "/usr/bin/python3.11" if "memory" in j["name"] else "/usr/bin/timeout"
    stack_job_series(
        fx, jobid=j["raw"], user=j["user"], account=j["account"], node=node, cores=j["ncpu"] or 1, t0=t0, t1=t1,
        step=1, cpu_seconds=j["cpu"], mem_limit=mem_limit, mem_peak=peak, gpus=gpus,
        exes=[(exe, 0.9), ("/usr/bin/bash", 0.1)], seed=int(j["raw"]),
        memory_max=j["name"] not in CGROUP_V2_JOBS, gpu_measured=j["name"] not in GPU_UNMEASURED_JOBS,
    )  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--state", required=True)
    ap.add_argument("--synthetic-hours", type=float, default=0)
    ap.add_argument("--sacct", action="store_true")
    ap.add_argument("--prometheus", default="", help="leave out the jobs this server already has series of")
    ap.add_argument("--now", type=int, default=int(time.time()))
    args = ap.parse_args()

    state: dict[str, Any] = {"jobs": [], "covered_until": None, "base_t": None}
    if os.path.exists(args.state):
        with open(args.state) as f:
            state.update(json.load(f))
    now = args.now
    base_t = state["base_t"] = state["base_t"] or now - 7 * 86400  # counters start a week before the first run

    fx = Families()
    summary: dict[str, Any] = {"synthetic_jobs": 0, "jobs": [], "samples": 0}
    first_t = None

    if args.synthetic_hours > 0:
        first_t = synthetic_jobs(fx, now, args.synthetic_hours)
        summary["synthetic_jobs"] = len(SYNTHETIC)

    if args.sacct:
        done = set(state["jobs"])
        live = live_jobs(args.prometheus) - done if args.prometheus else set()
        summary["live"] = sorted(live)
        done |= live
        for j in sacct_jobs():
            if j["raw"] in done or j["start"] is None or j["end"] is None or not j["user"] or j["end"] > now:
                continue
            sacct_job_series(fx, j)
            first_t = j["start"] if first_t is None else min(first_t, j["start"])
            state["jobs"].append(j["raw"])
            summary["jobs"].append(j["raw"])
            summary["first_t"] = min(summary.get("first_t") or j["start"], j["start"])

    if not args.synthetic_hours and not summary["jobs"]:
        # nothing new: leave the state alone (the slurm-exporter series continue at the next real backfill)
        with open(args.out, "w") as f:
            f.write("# EOF\n")
        print(json.dumps({**summary, "covered_until": state["covered_until"]}))
        return 0

    # slurm-exporter series: from where the last run stopped (or the first job/synthetic start) to now
    covered = state["covered_until"]
    if covered is not None and first_t is not None:
        first_t = min(first_t, covered + 15)
    elif covered is not None:
        first_t = covered + 15
    if first_t is not None and first_t <= now:
        step = 30 if args.synthetic_hours > 0 else 15
        t0 = first_t - first_t % step
        if covered is not None:
            t0 = max(t0, covered + step)
        t0 = min(t0, now)
        slurm_exporter_series(fx, t0, now, step, base_t=base_t)
        state["covered_until"] = max(now - (now - t0) % step, covered or 0)

    summary["samples"] = fx.write(args.out)
    with open(args.state + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(args.state + ".tmp", args.state)
    summary["covered_until"] = state["covered_until"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
