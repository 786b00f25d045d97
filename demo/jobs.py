"""One demo job's row: resources, TRES, submit line, stored script and how it ended."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from demo.catalog import (
    DAY,
    FAIL_CODES,
    OUTCOME_WEIGHTS,
    SCRIPT_TEMPLATES,
    SIG_OOM,
    DemoUser,
    Resources,
    Row,
    Submitter,
)
from demo.cluster import Cluster
from demo.steps import step_rows
from slurm.decoders import (
    INFINITE,
    MEM_PER_CPU,
    NO_VAL64,
    TRES_BILLING,
    TRES_CPU,
    TRES_ENERGY,
    TRES_MEM,
    TRES_NODE,
    JobState,
    format_duration,
    format_tres,
)
from slurm.hostlists import compress_hostlist, format_ranges
from slurm.models import JobScript


@dataclass
class _Script:
    hash_inx: int
    text: str
    last_used: int  # epoch of the latest submit that used it


class JobRows:
    """Builds job rows (and, through step_rows(), their steps) for ``cluster``; hands out job ids and db indexes."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.rng = cluster.rng
        self.next_db_inx = 1
        self.next_job_id = 1_000_000 + self.rng.randrange(4_000_000)
        self.scripts: dict[str, _Script] = {}  # by job name

    def resources(self, person: DemoUser, *, partition: str | None = None) -> Resources:
        rng = self.rng
        if partition is None:
            roll = rng.random()
            partition = "gpu" if person.gpu_user and roll < 0.6 else "largemem" if roll > 0.97 else "cpu"
        gpus_per_node, gpu_type, n_nodes = 0, "", 1
        if partition == "gpu":
            gpu_type = (
                person.preferred_gpu if rng.random() < 0.8 else ("v100" if person.preferred_gpu == "a100" else "a100")
            )
            gpus_per_node = rng.choice((1, 1, 1, 2, 4))
            n_nodes = 2 if gpus_per_node == 4 and rng.random() < 0.25 else 1
            pool = [node for node in self.cluster.by_partition["gpu"] if node.group.gpu_type == gpu_type]
            per_node_cpus = gpus_per_node * rng.choice((4, 6, 8, 12))
        elif partition == "largemem":
            pool = self.cluster.by_partition["largemem"]
            per_node_cpus = rng.choice((8, 16, 32, 64))
        else:
            pool = self.cluster.by_partition["cpu"]
            if rng.random() < 0.1:
                n_nodes = rng.choice((2, 2, 2, 3, 4, 4, 6, 8))
                per_node_cpus = rng.choice((32, 64))
            else:
                per_node_cpus = rng.choice((1, 1, 1, 2, 4, 8, 16, 32, 48, 64))
        # Nodes are rarely contiguous in a busy cluster; sampling gives cn[...],cnx[...] lists.
        nodes = sorted(rng.sample(pool, n_nodes), key=lambda node: node.index)
        per_node_cpus = min(per_node_cpus, min(node.group.cpus for node in nodes))
        cpus = per_node_cpus * n_nodes
        node_mem = min(node.group.mem_mb for node in nodes)
        if (person.mem_per_cpu_habit and rng.random() < 0.8) or rng.random() < 0.08:
            per_cpu = min(rng.choice((1000, 2000, 3800, 4000, 8000)), node_mem // max(per_node_cpus, 1))
            mem_req, mem_total = MEM_PER_CPU | per_cpu, per_cpu * cpus
        else:
            choices = {
                "gpu": (16_000, 32_000, 64_000, 128_000),
                "largemem": (500_000, 1_000_000, 1_500_000, 2_000_000),
            }.get(partition, (2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 250_000))
            per_node = min(rng.choice(choices), node_mem)
            mem_req, mem_total = per_node, per_node * n_nodes
        if rng.random() < 0.005:
            timelimit, qos = INFINITE, 3
        else:
            timelimit = rng.choices(
                (30, 60, 180, 360, 720, 1440, 2880, 4320, 10080), weights=(10, 15, 20, 15, 12, 15, 6, 4, 2)
            )[0]
            qos = 3 if timelimit > 4320 else 2 if partition == "gpu" and rng.random() < 0.3 else 1
        return Resources(partition, nodes, cpus, gpus_per_node, gpu_type, mem_req, mem_total, timelimit, qos)

    def _tres(self, res: Resources, *, alloc: bool) -> str:
        gpus = res.gpus_per_node * len(res.nodes)
        billing = max(res.cpus, res.mem_total_mb // 4000) + gpus * (48 if res.gpu_type == "a100" else 32)
        tres = {TRES_CPU: res.cpus, TRES_MEM: res.mem_total_mb, TRES_NODE: len(res.nodes), TRES_BILLING: billing}
        if alloc:
            tres[TRES_ENERGY] = NO_VAL64  # no energy plugin: slurmdbd records NO_VAL64
        if gpus:
            tres[self.cluster.tres_gpu] = gpus  # generic and typed are both recorded; count the generic one
            tres[self.cluster.tres_gpu_types[res.gpu_type]] = gpus
        return format_tres(tres)

    def outcome(self) -> str:
        return self.rng.choices(tuple(OUTCOME_WEIGHTS), weights=tuple(OUTCOME_WEIGHTS.values()))[0]

    def submit_line(self, res: Resources, account: str, name: str, *, array: str = "", extra: str = "") -> str | None:
        rng = self.rng
        if rng.random() < 0.08:
            return None  # slurmrestd submissions and old records have no submit line
        parts = ["sbatch", f"--account={account}"]
        if res.timelimit != INFINITE:
            parts.append(f"--time={format_duration(res.timelimit * 60)}")
        if res.mem_req & MEM_PER_CPU:
            parts.append(f"--mem-per-cpu={res.mem_req & ~MEM_PER_CPU}M")
        else:
            parts.append(f"--mem={res.mem_req}M")
        if len(res.nodes) > 1:
            parts += [f"--nodes={len(res.nodes)}", f"--ntasks-per-node={res.cpus // len(res.nodes)}"]
        else:
            parts.append(f"--cpus-per-task={res.cpus}")
        if res.gpus_per_node:
            parts.append(f"--gpus-per-node={res.gpu_type}:{res.gpus_per_node}")
        if res.partition == "largemem":
            parts.append("--partition=largemem")
        if array:
            parts.append(f"--array={array}")
        if extra:
            parts.append(extra)
        parts.append(f"{name}.sh")
        return " ".join(parts)

    def _script(self, name: str, submit: int) -> int:
        """hash_inx of the stored script for jobs of the last two weeks (AccountingStoreFlags=job_script was enabled then)."""
        if submit < self.cluster.now - 14 * DAY or name not in SCRIPT_TEMPLATES:
            return 0
        if name not in self.scripts:
            text = f"#!/bin/bash\n#SBATCH --job-name={name}\n" + SCRIPT_TEMPLATES[name].format(hours=24)
            self.scripts[name] = _Script(len(self.scripts) + 1, text, submit)
        script = self.scripts[name]
        script.last_used = max(script.last_used, submit)
        return script.hash_inx

    def job(
        self,
        who: Submitter,
        submit: int,
        res: Resources,
        *,
        outcome: str,
        name: str,
        id_job: int | None = None,
        force_running: bool = False,
        force_pending: bool = False,
        must_end: bool = False,
        submit_line: str | None = "",
        **extra: int | str,
    ) -> tuple[Row, list[Row]]:
        person, account, assoc_id = who.person, who.account, who.assoc_id
        rng, now = self.rng, self.cluster.now
        limit_s = (30 * DAY) if res.timelimit == INFINITE else res.timelimit * 60
        big = len(res.nodes) > 2 or res.gpus_per_node >= 4
        wait = int(min(rng.expovariate(1 / (7200 if big else 3600 if res.gpus_per_node else 600)), 3 * DAY))
        start = submit + wait
        if outcome == "COMPLETED":
            run = max(5, int(limit_s * rng.betavariate(1.2, 3.0)))
        elif outcome == "FAILED":
            run = 1 + int(rng.expovariate(1 / 300)) if rng.random() < 0.7 else int(limit_s * rng.random())
        elif outcome == "TIMEOUT":
            run = limit_s + rng.randint(5, 90)
        elif outcome == "BOOT_FAIL":
            run = rng.randint(60, 600)
        else:
            run = max(5, int(limit_s * rng.random() * 0.7))
        if must_end:
            # Records that must be closed by "now" (a requeued or resized first record, a forced
            # outcome in a small demo): keep them short and well before now.
            run = min(run, rng.randint(60, 1800))
            start = max(submit, min(start, now - run - 600))
        state = {
            "COMPLETED": JobState.COMPLETED,
            "FAILED": JobState.FAILED,
            "TIMEOUT": JobState.TIMEOUT,
            "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
            "CANCELLED": JobState.CANCELLED,
            "CANCELLED_PENDING": JobState.CANCELLED,
            "NODE_FAIL": JobState.NODE_FAIL,
            "PREEMPTED": JobState.PREEMPTED,
            "BOOT_FAIL": JobState.BOOT_FAIL,
            "DEADLINE": JobState.DEADLINE,
        }.get(outcome, JobState.COMPLETED)
        exit_code = {"FAILED": rng.choice(FAIL_CODES), "OUT_OF_MEMORY": SIG_OOM}.get(outcome, 0)
        never_started = outcome in ("CANCELLED_PENDING", "DEADLINE")
        end = submit + int(rng.expovariate(1 / 3600)) + 30 if never_started else start + run
        if must_end and never_started:
            end = min(end, now - 60)
        timelimit = res.timelimit
        if force_running:
            start = max(submit, min(start, now - rng.randint(60, 6 * 3600)))
            end = now + 3600
            never_started = False
            if timelimit != INFINITE and (now - start) >= timelimit * 60:
                timelimit = 10080  # a job running for two days did not ask for one hour
        if force_pending or (not never_started and start >= now):
            state, start, end, exit_code, never_started = JobState.PENDING, 0, 0, 0, True
        elif not never_started and end >= now:
            state, end, exit_code = JobState.RUNNING, 0, 0
        elif never_started and end >= now:
            state, end, exit_code = JobState.PENDING, 0, 0
        if never_started:
            start = 0  # cancelled while pending, past its deadline, or still waiting: never ran
        started = start > 0
        nodes = res.nodes if started else []
        kill = (
            rng.choice((person.uid,) * 6 + (0,))
            if outcome.startswith("CANCELLED") and int(state) == JobState.CANCELLED
            else None
        )
        id_job = id_job if id_job is not None else self.new_job_id()
        job: Row = dict(
            job_db_inx=self._new_db_inx(),
            mod_time=(end or start or submit) + rng.randint(0, 5),
            account=account,
            cpus_req=res.cpus,
            exit_code=exit_code,
            flags=rng.choice((12, 20)) if started else 0,
            job_name=name,
            id_assoc=assoc_id,
            id_job=id_job,
            id_qos=res.qos,
            id_user=person.uid,
            id_group=person.uid,
            kill_requid=kill,
            mem_req=res.mem_req,
            nodelist=compress_hostlist(node.name for node in nodes) if nodes else "None assigned",
            nodes_alloc=len(nodes),
            node_inx=format_ranges(node.index for node in nodes),
            partition=res.partition,
            priority=rng.randint(1000, 250_000) if not started else rng.randint(1000, 90_000),
            script_hash_inx=self._script(name, submit) if submit_line is not None else 0,
            state=int(state),
            timelimit=timelimit,
            time_submit=submit,
            time_eligible=submit,
            time_start=start,
            time_end=end,
            work_dir=f"/home/{person.name}/projects/{account}/{name}"
            if rng.random() < 0.6
            else f"/scratch/{person.name}/{name}",
            submit_line=self.submit_line(res, account, name) if submit_line == "" else submit_line,
            tres_req=self._tres(res, alloc=False),
            tres_alloc=self._tres(res, alloc=True) if started else "",
        )
        job.update(extra)
        steps = step_rows(self.cluster, job, res, outcome, person) if started and outcome != "BOOT_FAIL" else []
        if steps:
            job["derived_ec"] = max(step["exit_code"] & 0xFFFF for step in steps)
        return job, steps

    def _new_db_inx(self) -> int:
        self.next_db_inx += 1
        return self.next_db_inx - 1

    def new_job_id(self, count: int = 1) -> int:
        first = self.next_job_id
        self.next_job_id += count + self.rng.randint(0, 2)  # other clusters' jobs and failed submissions use ids too
        return first

    def script_rows_out(self) -> list[JobScript]:
        model = self.cluster.models.job_script
        return [
            model(
                hash_inx=script.hash_inx,
                script_hash=hashlib.sha256(script.text.encode()).hexdigest(),
                batch_script=script.text,
                last_used=datetime.fromtimestamp(script.last_used, tz=UTC),
            )
            for script in self.scripts.values()
        ]
