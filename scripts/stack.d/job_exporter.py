#!/usr/bin/env python3
"""The stack's live stand-in for slurm-job-exporter: running jobs' series, read from their cgroups.

    job_exporter.py --listen 127.0.0.1:9797 [--cgroup /sys/fs/cgroup/memory]

Prometheus scrapes ``/metrics?node=<node>`` once per stack node (the stack's slurmd processes
all run on this machine; Slurm's task/cgroup plugin keeps each node's jobs under
``<cgroup>/slurm_<node>/uid_<uid>/job_<id>``). Written for the stack from the exporter's
documented behaviour (shared/reference/domain.md 4.2), standard library only:

* a job whose cgroup holds no process is skipped, as the exporter skips it;
* labels ``user`` (from the uid), ``account`` (``SLURM_JOB_ACCOUNT`` of a job process, else
  ``error``), ``slurmjobid``; no ``cluster`` label;
* ``slurm_job_core_usage_total``: nanoseconds of CPU since the job started, spread evenly over its
  cores as the exporter does on cgroup v2 (the stack's jobs have no cpuset of their own). The CPU
  time is the user + system time of the job's processes, their reaped children included; a
  process that ends keeps counting through this exporter's memory, so the counter never goes back;
* memory gauges from the cgroup v1 files (``slurm_job_memory_max`` = ``max_usage_in_bytes``);
* ``slurm_job_process_count``, ``slurm_job_threads_count`` (states present only) and
  ``slurm_job_process_usage_total`` (seconds, executables past 60 s, never bash/ssh/sshd/srun);
* no GPU series: the stack's GPUs are not real, there is no NVML (a GPU job is "not measured").

Only jobs still running are exported: finished jobs get their series from gen_metrics.py, which
leaves out any job this exporter was scraped for.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

TICKS = os.sysconf("SC_CLK_TCK")
EXCLUDED_EXES = ("bash", "ssh", "sshd", "srun")
MIN_EXE_SECONDS = 60
STATES = {"R": "running", "S": "sleeping", "D": "disk-sleep", "T": "stopped", "t": "tracing-stop",
          "Z": "zombie", "X": "dead", "I": "idle", "W": "waking", "K": "wake-kill", "P": "parked"}  # fmt: skip
MEMORY_STAT = {"cache": "total_cache", "rss": "total_rss", "rss_huge": "total_rss_huge",
               "mapped_file": "total_mapped_file", "active_file": "total_active_file",
               "inactive_file": "total_inactive_file", "unevictable": "total_unevictable"}  # fmt: skip
HELP = {
    "slurm_job_core_usage": ("counter", "Cpu usage of cores allocated to a job"),
    "slurm_job_memory_usage": ("gauge", "Memory used by a job"),
    "slurm_job_memory_max": ("gauge", "Maximum memory used by a job"),
    "slurm_job_memory_limit": ("gauge", "Memory limit of a job"),
    **{f"slurm_job_memory_{k}": ("gauge", f"Memory {k} of a job") for k in MEMORY_STAT},
    "slurm_job_process_count": ("gauge", "Number of processes in a job"),
    "slurm_job_threads_count": ("gauge", "Number of threads in a job"),
    "slurm_job_process_usage": ("counter", "Cpu usage of processes within a job"),
}


class Job:
    """What this exporter remembers of a running job between scrapes (its ended processes' CPU time)."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[float, int]] = {}  # pid -> (CPU seconds incl. reaped children, ppid)
        self.retired = 0.0  # CPU of processes that ended without a parent in the job to inherit it
        self.highest = 0.0

    def cpu(self, now: dict[int, tuple[float, int]]) -> float:
        for pid, (seconds, ppid) in self.seen.items():
            if pid not in now and ppid not in now:
                self.retired += seconds
        self.seen = dict(now)
        total = self.retired + sum(seconds for seconds, _ppid in now.values())
        self.highest = max(self.highest, total)  # never back
        return self.highest


JOBS: dict[str, Job] = {}
LOCK = threading.Lock()


def read(path: Path, default: str = "") -> str:
    try:
        return path.read_text()
    except OSError:
        return default


def stat_of(pid: int) -> tuple[str, int, float] | None:
    """(state, ppid, user + system + children's CPU seconds) of a process."""
    text = read(Path(f"/proc/{pid}/stat"))
    if not text:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return fields[0], int(fields[1]), ticks / TICKS


def pids_of(job_dir: Path) -> list[int]:
    found = []
    for procs in job_dir.rglob("cgroup.procs"):
        found += [int(p) for p in read(procs).split() if p.isdigit()]
    return sorted(set(found))


def environ(pid: int) -> dict[str, str]:
    raw = read(Path(f"/proc/{pid}/environ"))
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def labels(**values: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{name}="{escape(value)}"' for name, value in values.items())


def job_lines(job_dir: Path, uid: int, jobid: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    pids = [p for p in pids_of(job_dir) if p > 1]
    stats = {p: s for p in pids if (s := stat_of(p)) is not None}
    if not stats:
        return out  # no process: the exporter skips the job
    env = next((e for p in stats if (e := environ(p)).get("SLURM_JOB_ID")), {})
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    base = {"user": user, "account": env.get("SLURM_JOB_ACCOUNT", "error"), "slurmjobid": jobid}

    def put(family: str, value: float, **extra: str) -> None:
        name = family + "_total" if HELP[family][0] == "counter" else family
        out.setdefault(family, []).append(f"{name}{{{labels(**base, **extra)}}} {value}")

    with LOCK:
        job = JOBS.setdefault(jobid, Job())
        cpu = job.cpu({p: (s[2], s[1]) for p, s in stats.items()})
    cores = max(int(env.get("SLURM_CPUS_ON_NODE", "1") or 1), 1)
    for core in range(cores):
        put("slurm_job_core_usage", round(cpu * 1e9 / cores), core=str(core))
    put("slurm_job_memory_usage", int(read(job_dir / "memory.usage_in_bytes", "0")))
    put("slurm_job_memory_max", int(read(job_dir / "memory.max_usage_in_bytes", "0")))
    put("slurm_job_memory_limit", int(read(job_dir / "memory.limit_in_bytes", "0")))
    memstat = dict(line.split() for line in read(job_dir / "memory.stat").splitlines() if " " in line)
    for family, key in MEMORY_STAT.items():
        put(f"slurm_job_memory_{family}", int(memstat.get(key, 0)))
    processes, threads, per_exe = 0, {}, {}
    for pid, (_state, _ppid, seconds) in stats.items():
        cmdline = read(Path(f"/proc/{pid}/cmdline")).split("\0")
        if not cmdline[0] or (cmdline[0].endswith("bash") and "slurm_script" in " ".join(cmdline[1:])):
            continue
        processes += 1
        for task in Path(f"/proc/{pid}/task").glob("*/stat"):
            text = read(task)
            if text:
                name = STATES.get(text[text.rfind(")") + 2], "?")
                threads[name] = threads.get(name, 0) + 1
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if os.path.basename(exe) not in EXCLUDED_EXES:
            per_exe[exe] = per_exe.get(exe, 0.0) + seconds
    put("slurm_job_process_count", processes)
    for state, count in sorted(threads.items()):
        put("slurm_job_threads_count", count, state=state)
    for exe, seconds in sorted(per_exe.items()):
        if seconds >= MIN_EXE_SECONDS:
            put("slurm_job_process_usage", round(seconds, 2), exe=exe)
    return out


def metrics(root: Path, node: str) -> str:
    families: dict[str, list[str]] = {}
    running = set()
    for job_dir in sorted((root / f"slurm_{node}").glob("uid_*/job_*")):
        uid = int(job_dir.parent.name.removeprefix("uid_"))
        jobid = job_dir.name.removeprefix("job_")
        if not re.fullmatch(r"\d+", jobid):
            continue
        running.add(jobid)
        for family, lines in job_lines(job_dir, uid, jobid).items():
            families.setdefault(family, []).extend(lines)
    with LOCK:  # forget the jobs that ended (on any node)
        for gone in [j for j in JOBS if j not in running and not any(root.glob(f"slurm_*/uid_*/job_{j}"))]:
            JOBS.pop(gone, None)
    text = []
    for family, lines in families.items():
        kind, help_ = HELP[family]
        text += [f"# HELP {family} {help_}", f"# TYPE {family} {kind}", *lines]
    return "\n".join(text) + "\n"


class Handler(BaseHTTPRequestHandler):
    root = Path("/sys/fs/cgroup/memory")

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != "/metrics":
            self.send_error(404)
            return
        node = parse_qs(url.query).get("node", [""])[0]
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", node):
            self.send_error(400, "node=<a Slurm node name> is required")
            return
        body = metrics(self.root, node).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:9797")
    ap.add_argument("--cgroup", default="/sys/fs/cgroup/memory")
    args = ap.parse_args()
    Handler.root = Path(args.cgroup)
    host, port = args.listen.rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
