"""A realistic synthetic Slurm cluster for the demo database (``manage.py seed_demo``).

The rows look like what slurmdbd 22.05 writes (domain.md section 1): TRES ids resolved per site,
generic and typed GPU TRES both recorded, ``mem_req`` with the MEM_PER_CPU bit, raw wait
statuses, requeue/resize/revoke records closed with bare flag states, array and
heterogeneous jobs, multi-prefix node lists, steps whose CPU time and peak memory agree with
their job, a few node events and stored job scripts.

Determinism: every random choice comes from one ``random.Random(seed)``, and every time is
relative to ``now`` (an epoch; by default the current hour, UTC). The same seed, sizes and
``now`` give identical rows.

Idempotence: seeding wipes the cluster's per-cluster tables and replaces the global rows it
owns (its TRES ids, QOS, accounts and users; other rows are left alone), all in one
transaction, so a second run leaves the same data as the first.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from django.db import connections, transaction
from django.db.models import Q

from slurm.decoders import (
    INFINITE,
    MEM_PER_CPU,
    NO_VAL,
    NO_VAL64,
    TRES_BILLING,
    TRES_CPU,
    TRES_ENERGY,
    TRES_MEM,
    TRES_NODE,
    JobState,
    compress_hostlist,
    decode_state,
    format_duration,
    format_ranges,
    format_tres,
)
from slurm.fields import UnsignedBigIntegerField, to_signed64
from slurm.models import Account, ClusterModels, Qos, SlurmModel, SlurmUser, Tres, cluster_models
from slurm.router import SLURM_DB_ALIAS, allow_writes, check_writes_allowed
from slurm.schema import create_tables

Row = dict[str, Any]  # a job or step row by column attribute name, as fast_insert() takes it
MIB = 1024 * 1024
DAY = 86400
REQUEUE, RESIZING, REVOKED = 0x400, 0x2000, 0x80000
SIG_OOM = 253  # slurmstepd's exit status for an OOM kill; sacct prints it as 0:125
MIN_JOBS = 50

FIRST_NAMES = (
    "carol dave erin frank grace heidi ivan judy mallory nina oscar peggy quentin rupert sybil trent "
    "ursula victor wendy xavier yvonne zack amelia benjamin chloe daniel emma felix gabriel hannah isaac "
    "julia kevin laura marco nadia olivia pablo rosa samuel tara ulrich vera william ximena yusuf zoe "
    "aditya beatriz chen dmitri elif fatima goran hiroshi ingrid jamal kenji leila mateo noor orla priya "
    "qiang ravi sofia tomas uma valentina wei yara zeynep anouk bjorn camille diego eitan farah gianni "
    "helene ilse jorge katarina lucas maeve nikolai omar petra rafael sana thibault ugo vikram xin yohan"
).split()
SURNAMES = (
    "smith martin tremblay roy gagnon cote bouchard gauthier morin lavoie fortin gagne ouellet pelletier "
    "belanger levesque bergeron leblanc paquette girard simard boucher caron beaulieu cloutier dube poirier "
    "fournier lapointe leclerc lefebvre poulin thibault dion nguyen wong chen patel singh kim li wang zhang "
    "brown wilson taylor anderson thomas jackson white harris clark lewis walker hall young allen wright "
    "scott green baker adams nelson hill campbell mitchell roberts carter phillips evans turner torres"
).split()
DEPARTMENTS = ("physics", "chem", "biology", "engineering", "compsci")


@dataclass(frozen=True)
class NodeGroup:
    prefix: str
    width: int
    count: int
    partition: str
    cpus: int
    mem_mb: int
    gpus: int = 0
    gpu_type: str = ""


# Two CPU generations in one partition make multi-node jobs span prefixes: cn[0012,0040],cnx[007].
NODE_GROUPS = (
    NodeGroup("cn", 4, 128, "cpu", 64, 256_000),
    NodeGroup("cnx", 3, 64, "cpu", 96, 384_000),
    NodeGroup("lm", 2, 4, "largemem", 64, 2_048_000),
    NodeGroup("ga", 2, 16, "gpu", 48, 512_000, 4, "a100"),
    NodeGroup("gv", 2, 24, "gpu", 32, 192_000, 4, "v100"),
)


@dataclass(frozen=True)
class Node:
    name: str
    index: int  # position in slurm.conf order, which is what node_inx counts
    group: NodeGroup


@dataclass
class DemoUser:
    name: str
    uid: int
    weight: float
    gpu_user: bool
    mem_per_cpu_habit: bool
    efficiency: float
    preferred_gpu: str
    accounts: list[tuple[str, int]] = field(default_factory=list)  # live (account, id_assoc), default first
    old_assocs: list[tuple[str, int, int]] = field(default_factory=list)  # deleted: (account, id_assoc, removed at)


@dataclass
class SeedSummary:
    cluster: str
    seed: int
    now: int
    users: int = 0
    accounts: int = 0
    associations: int = 0
    jobs: int = 0
    steps: int = 0
    events: int = 0
    scripts: int = 0
    states: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


@dataclass
class _Resources:
    partition: str
    nodes: list[Node]
    cpus: int
    gpus_per_node: int
    gpu_type: str
    mem_req: int
    mem_total_mb: int
    timelimit: int  # minutes or INFINITE
    qos: int


SCRIPT_TEMPLATES = {
    "run_md": "module load gromacs/2023.2\nsrun gmx_mpi mdrun -deffnm md -maxh {hours}\n",
    "train": "module load python/3.11 cuda/12.2\nsource ~/venvs/torch/bin/activate\npython train.py --epochs 40\n",
    "preprocess": "module load python/3.11\npython preprocess.py --input $SCRATCH/raw --output $SCRATCH/clean\n",
    "analysis": "module load r/4.3.1\nRscript analysis.R\n",
    "sim": "module load openmpi/4.1.5\nsrun ./simulate --steps 100000\n",
    "align": "module load bwa samtools\nbwa mem -t $SLURM_CPUS_PER_TASK ref.fa reads.fq | samtools sort -o out.bam\n",
    "sweep": "python sweep.py --index $SLURM_ARRAY_TASK_ID\n",
    "lammps": "module load lammps/2Aug2023\nsrun lmp -in in.melt\n",
}
SRUN_COMMANDS = ("python", "gmx_mpi", "lmp", "simulate", "bash", "orted", "hydra_pmi_proxy", "namd2")
FAIL_CODES = (256, 256, 256, 256, 512, 127 << 8, 139 << 8, 11, 6, 9)  # raw wait statuses
EVENT_REASONS = (
    ("Not responding", NO_VAL, 1),
    ("Kill task failed", NO_VAL, 0x200 | 2),
    ("GPU ECC errors, RMA ticket 4711", 0, 0x200 | 2),
    ("maintenance: firmware update", 0, 0x200 | 2),
    ("NHC: check_fs_mount: /scratch not mounted", 0, 0x200 | 1),
)


def default_now() -> int:
    """The start of the current hour (UTC): re-seeding within the hour gives identical rows."""
    current = int(time.time())
    return current - current % 3600


class _Builder:
    """Builds the rows; one instance per seeding run, driven by one seeded Random."""

    def __init__(self, models: ClusterModels, *, seed: int, users: int, accounts: int, jobs: int, days: int, now: int):
        self.models = models
        self.rng = random.Random(seed)
        self.n_users, self.n_accounts, self.n_jobs, self.days, self.now = users, accounts, jobs, days, now
        self.window_start = now - days * DAY
        self.installed = self.window_start - 30 * DAY
        self.nodes = self._nodes()
        self.by_partition: dict[str, list[Node]] = {}
        for node in self.nodes:
            self.by_partition.setdefault(node.group.partition, []).append(node)
        self.tres_gpu, self.tres_gpu_types = 1001, {"a100": 1002, "v100": 1003}
        self.users: list[DemoUser] = []
        self.leaf_accounts: list[str] = []
        self.next_db_inx = 1
        self.next_job_id = 1_000_000 + self.rng.randrange(4_000_000)
        self.script_rows: dict[str, list[Any]] = {}  # job name -> [hash_inx, text, last used]
        self.states: Counter[str] = Counter()
        self._cum_weights: list[float] = []
        self._unlimited_shown = False

    # --- inventory and global tables --------------------------------------------------------
    @staticmethod
    def _nodes() -> list[Node]:
        nodes: list[Node] = []
        for group in NODE_GROUPS:
            for number in range(1, group.count + 1):
                nodes.append(Node(f"{group.prefix}{number:0{group.width}d}", len(nodes), group))
        return nodes

    def tres_rows(self) -> list[Tres]:
        static = [(1, "cpu", ""), (2, "mem", ""), (3, "energy", ""), (4, "node", ""), (5, "billing", "")]
        static += [(6, "fs", "disk"), (7, "vmem", ""), (8, "pages", "")]
        rows = [Tres(id=i, type=t, name=n, creation_time=self.installed, deleted=0) for i, t, n in static]
        rows.append(Tres(id=1000, type="dynamic_offset", name="", creation_time=self.installed, deleted=1))
        # AccountingStorageTRES=gres/gpu,gres/gpu:a100,gres/gpu:v100: dynamic ids in that order.
        for tres_id, name in ((1001, "gpu"), (1002, "gpu:a100"), (1003, "gpu:v100")):
            rows.append(Tres(id=tres_id, type="gres", name=name, creation_time=self.installed + 1, deleted=0))
        return rows

    def qos_rows(self) -> list[Qos]:
        made = self.installed + 60
        return [
            Qos(id=1, name="normal", description="Normal QOS default", priority=0, creation_time=made, mod_time=made),
            Qos(
                id=2,
                name="gpuprio",
                description="gpuprio",
                priority=1000,
                grp_tres=f"{self.tres_gpu_types['a100']}=8",
                max_wall_duration_per_job=20160,
                creation_time=made,
                mod_time=made,
            ),
            Qos(
                id=3,
                name="long",
                description="long jobs, few at a time",
                priority=0,
                max_jobs_per_user=4,
                max_wall_duration_per_job=43200,
                creation_time=made,
                mod_time=made,
            ),
        ]

    def _usernames(self) -> list[str]:
        names = ["alice", "bob"]
        taken = set(names)
        pool = [name for name in FIRST_NAMES if name not in taken]
        self.rng.shuffle(pool)
        round_ = 0
        while len(names) < self.n_users:
            for first in pool:
                if len(names) >= self.n_users:
                    break
                # First names first; later rounds use first initial + surname, as many sites do.
                candidate = first if round_ == 0 else f"{first[0]}{self.rng.choice(SURNAMES)}"
                suffix = 2
                base = candidate
                while candidate in taken:
                    candidate = f"{base}{suffix}"
                    suffix += 1
                taken.add(candidate)
                names.append(candidate)
            round_ += 1
        return names

    def account_and_assoc_rows(self) -> tuple[list[Account], list[Any], list[SlurmUser]]:
        rng = self.rng
        assoc_model = self.models.assoc
        made = self.installed + 120
        surnames = SURNAMES[:]
        rng.shuffle(surnames)
        leaves: list[tuple[str, str]] = []
        for i in range(self.n_accounts):
            surname = surnames[i % len(surnames)] + (str(i // len(surnames) + 1) if i >= len(surnames) else "")
            kind = "rrg" if i % 4 == 3 else "def"
            # The first lab sits under physics, so alice's second account is a physics lab.
            parent = "physics" if i == 0 else rng.choice(DEPARTMENTS)
            leaves.append((f"{kind}-{surname}", parent))
        self.leaf_accounts = [name for name, _parent in leaves]

        accounts = [
            Account(
                name="root", description="default root account", organization="root", creation_time=made, mod_time=made
            )
        ]
        accounts += [
            Account(
                name=dept,
                description=f"department of {dept}",
                organization="science",
                creation_time=made,
                mod_time=made,
            )
            for dept in DEPARTMENTS
        ]
        accounts += [
            Account(
                name=name,
                description=f"{name.split('-', 1)[1]} lab",
                organization=parent,
                creation_time=made,
                mod_time=made,
            )
            for name, parent in leaves
        ]

        assocs: list[Any] = []

        def add(**values: Any) -> int:
            row = assoc_model(id_assoc=len(assocs) + 1, creation_time=made, mod_time=made, **values)
            assocs.append(row)
            return len(assocs)

        add(user="", acct="root", parent_acct="", qos=",1,", shares=1)
        add(user="root", acct="root", is_def=1)
        for dept in DEPARTMENTS:
            add(user="", acct=dept, parent_acct="root", shares=rng.choice((1000, 2000, 5000)))
        for name, parent in leaves:
            gpu_alloc = name.startswith("rrg-")
            add(
                user="",
                acct=name,
                parent_acct=parent,
                shares=rng.randint(1, 100),
                qos=",1,2," if gpu_alloc else "",
                grp_tres=f"{self.tres_gpu}=16" if gpu_alloc else "",
            )

        users: list[SlurmUser] = [
            SlurmUser(name="root", admin_level=3, creation_time=self.installed, mod_time=self.installed)
        ]
        for index, username in enumerate(self._usernames()):
            person = DemoUser(
                name=username,
                uid=1001 + index,
                weight=min(rng.paretovariate(1.3), 20.0),
                gpu_user=username == "alice" or (username != "bob" and rng.random() < 0.3),
                mem_per_cpu_habit=rng.random() < 0.25,
                efficiency=0.8 if username == "alice" else rng.betavariate(2.0, 1.6),
                preferred_gpu="a100" if rng.random() < 0.55 else "v100",
            )
            if username == "alice":
                memberships = ["physics", self.leaf_accounts[0]]
            elif username == "bob":
                memberships = ["chem", "physics"]
            else:
                memberships = [self.leaf_accounts[(index - 2) % len(self.leaf_accounts)]]
                extra = rng.choices((0, 1, 2), weights=(60, 30, 10))[0]
                for candidate in rng.sample(self.leaf_accounts, min(extra, len(self.leaf_accounts))):
                    if candidate not in memberships:
                        memberships.append(candidate)
            for position, account in enumerate(memberships):
                person.accounts.append(
                    (
                        account,
                        add(
                            user=username,
                            acct=account,
                            is_def=int(position == 0),
                            delta_qos=",+2," if person.gpu_user and position == 0 and rng.random() < 0.3 else "",
                        ),
                    )
                )
            # Some people left an account during the window: a deleted association whose old jobs remain.
            if username == "bob" or (username != "alice" and rng.random() < 0.05):
                old = "biology" if username == "bob" else rng.choice(self.leaf_accounts)
                if old not in memberships:
                    removed = self.window_start + self.days * DAY // 2
                    assoc_id = add(user=username, acct=old, deleted=1)
                    assocs[-1].mod_time = removed
                    person.old_assocs.append((old, assoc_id, removed))
            users.append(SlurmUser(name=username, admin_level=1, creation_time=made, mod_time=made))
            self.users.append(person)
        return accounts, assocs, users

    # --- jobs -------------------------------------------------------------------------------
    def _plans(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """(body, tail): job kinds with their row counts. The tail runs at "now"."""
        rng, n = self.rng, self.n_jobs
        specials = [("requeue", 2)] * max(2, n // 400) + [("resize", 2)] * max(1, n // 3000)
        specials += [("revoked", 1)] * max(1, n // 3000) + [("het", 2)] * max(1, n // 3000)
        tail = [("pending", 1)] * max(3, n // 250) + [("running", 1)] * max(3, n // 200) + [("array_pending", 3)]
        remaining = n - sum(rows for _k, rows in specials) - sum(rows for _k, rows in tail)
        body: list[tuple[str, int]] = []
        forced_arrays = 1
        while remaining > 0:
            if remaining >= 4 and (forced_arrays or rng.random() < 0.02):
                size = min(rng.randint(4, 30), remaining)
                body.append(("array", size))
                remaining -= size
                forced_arrays = 0
            else:
                body.append(("single", 1))
                remaining -= 1
        body += specials
        rng.shuffle(body)
        return body, tail

    def _pick_user(self) -> tuple[DemoUser, str, int]:
        if len(self._cum_weights) != len(self.users):
            self._cum_weights = list(accumulate(person.weight for person in self.users))
        person = self.rng.choices(self.users, cum_weights=self._cum_weights)[0]
        account, assoc_id = self.rng.choice(person.accounts)
        return person, account, assoc_id

    def _resources(self, person: DemoUser, *, partition: str | None = None) -> _Resources:
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
            pool = [node for node in self.by_partition["gpu"] if node.group.gpu_type == gpu_type]
            per_node_cpus = gpus_per_node * rng.choice((4, 6, 8, 12))
        elif partition == "largemem":
            pool = self.by_partition["largemem"]
            per_node_cpus = rng.choice((8, 16, 32, 64))
        else:
            pool = self.by_partition["cpu"]
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
        return _Resources(partition, nodes, cpus, gpus_per_node, gpu_type, mem_req, mem_total, timelimit, qos)

    def _tres(self, res: _Resources, *, alloc: bool) -> str:
        gpus = res.gpus_per_node * len(res.nodes)
        billing = max(res.cpus, res.mem_total_mb // 4000) + gpus * (48 if res.gpu_type == "a100" else 32)
        tres = {TRES_CPU: res.cpus, TRES_MEM: res.mem_total_mb, TRES_NODE: len(res.nodes), TRES_BILLING: billing}
        if alloc:
            tres[TRES_ENERGY] = NO_VAL64  # no energy plugin: slurmdbd records NO_VAL64
        if gpus:
            tres[self.tres_gpu] = gpus  # generic and typed are both recorded; count the generic one
            tres[self.tres_gpu_types[res.gpu_type]] = gpus
        return format_tres(tres)

    def _outcome(self) -> str:
        return self.rng.choices(
            (
                "COMPLETED",
                "FAILED",
                "TIMEOUT",
                "OUT_OF_MEMORY",
                "CANCELLED",
                "CANCELLED_PENDING",
                "NODE_FAIL",
                "PREEMPTED",
                "BOOT_FAIL",
                "DEADLINE",
            ),
            weights=(70, 9, 5, 4, 4, 3, 0.6, 0.4, 0.1, 0.1),
        )[0]

    def _submit_line(self, res: _Resources, account: str, name: str, *, array: str = "", extra: str = "") -> str | None:
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
        if submit < self.now - 14 * DAY or name not in SCRIPT_TEMPLATES:
            return 0
        if name not in self.script_rows:
            text = f"#!/bin/bash\n#SBATCH --job-name={name}\n" + SCRIPT_TEMPLATES[name].format(hours=24)
            self.script_rows[name] = [len(self.script_rows) + 1, text, submit]
        row = self.script_rows[name]
        row[2] = max(row[2], submit)
        return int(row[0])

    def _job(
        self,
        person: DemoUser,
        account: str,
        assoc_id: int,
        submit: int,
        res: _Resources,
        *,
        outcome: str,
        name: str,
        id_job: int | None = None,
        force_running: bool = False,
        force_pending: bool = False,
        must_end: bool = False,
        submit_line: str | None = "",
        **extra: Any,
    ) -> tuple[Row, list[Row]]:
        rng, now = self.rng, self.now
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
        id_job = id_job if id_job is not None else self._new_job_id()
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
            submit_line=self._submit_line(res, account, name) if submit_line == "" else submit_line,
            tres_req=self._tres(res, alloc=False),
            tres_alloc=self._tres(res, alloc=True) if started else "",
        )
        job.update(extra)
        steps = self._steps(job, res, outcome, person) if started and outcome != "BOOT_FAIL" else []
        if steps:
            job["derived_ec"] = max(step["exit_code"] & 0xFFFF for step in steps)
        return job, steps

    def _new_db_inx(self) -> int:
        self.next_db_inx += 1
        return self.next_db_inx - 1

    def _new_job_id(self, count: int = 1) -> int:
        first = self.next_job_id
        self.next_job_id += count + self.rng.randint(0, 2)  # other clusters' jobs and failed submissions use ids too
        return first

    def _steps(self, job: Row, res: _Resources, outcome: str, person: DemoUser) -> list[Row]:
        rng = self.rng
        running = job["time_end"] == 0
        end = job["time_end"] or self.now
        elapsed = max(end - job["time_start"], 1)
        nodes = res.nodes
        per_node_gpus = res.gpus_per_node
        first_node = nodes[0]
        efficiency = max(0.01, min(0.99, person.efficiency + rng.uniform(-0.15, 0.15)))
        if outcome == "FAILED":
            efficiency *= 0.3
        total_cpu = elapsed * res.cpus * efficiency
        n_srun = 0 if job["job_name"] == "interactive" else rng.choice((0, 0, 1, 1, 2, 3))
        if len(nodes) > 1:
            n_srun = max(n_srun, 1)  # multi-node work needs srun

        def tres_alloc(n_nodes: int, cpus: int, mem: int) -> str:
            tres = {TRES_CPU: cpus, TRES_MEM: mem, TRES_NODE: n_nodes}
            if per_node_gpus:
                tres[self.tres_gpu] = per_node_gpus * n_nodes
                tres[self.tres_gpu_types[res.gpu_type]] = per_node_gpus * n_nodes
            return format_tres(tres)

        def usage(cpu_seconds: float, mem_mb: int, fraction: float) -> dict[str, str]:
            cpu_ms = int(cpu_seconds * 1000)
            rss = int(mem_mb * MIB * fraction)
            read, written = rng.randint(10, 50_000) * MIB, rng.randint(1, 20_000) * MIB
            ids = "1=0,2=0,3=0,6=0,7=0,8=0"
            return {
                "tres_usage_in_max": f"1={cpu_ms},2={rss},3=0,6={read},7={rss + 200 * MIB},8=0",
                "tres_usage_in_ave": f"1={cpu_ms},2={rss * 9 // 10},3=0,6={read},7={rss + 150 * MIB},8=0",
                "tres_usage_in_min": f"1={cpu_ms},2={rss * 8 // 10},3=0,6={read},7={rss + 100 * MIB},8=0",
                "tres_usage_in_tot": f"1={cpu_ms},2={rss},3=0,6={read},7={rss + 200 * MIB},8=0",
                "tres_usage_in_max_taskid": ids,
                "tres_usage_in_max_nodeid": ids,
                "tres_usage_in_min_taskid": ids,
                "tres_usage_in_min_nodeid": ids,
                "tres_usage_out_max": f"3=0,6={written}",
                "tres_usage_out_ave": f"3=0,6={written}",
                "tres_usage_out_min": f"3=0,6={written}",
                "tres_usage_out_tot": f"3=0,6={written}",
                "tres_usage_out_max_taskid": "3=0,6=0",
                "tres_usage_out_max_nodeid": "3=0,6=0",
                "tres_usage_out_min_taskid": "3=0,6=0",
                "tres_usage_out_min_nodeid": "3=0,6=0",
            }

        def cpu_split(seconds: float) -> dict[str, int]:
            user = seconds * 0.92
            system = seconds - user
            return {
                "user_sec": int(user),
                "user_usec": int((user % 1) * 1e6),
                "sys_sec": int(system),
                "sys_usec": int((system % 1) * 1e6),
            }

        # How each step ends, by the job's outcome: (state, raw exit) for batch/last srun, extern.
        final = {
            "COMPLETED": ((JobState.COMPLETED, 0), (JobState.COMPLETED, 0)),
            "FAILED": ((JobState.FAILED, job["exit_code"] or 256), (JobState.COMPLETED, 0)),
            "TIMEOUT": ((JobState.CANCELLED, 15), (JobState.COMPLETED, 0)),
            "OUT_OF_MEMORY": ((JobState.OUT_OF_MEMORY, SIG_OOM), (JobState.OUT_OF_MEMORY, SIG_OOM)),
            "CANCELLED": ((JobState.CANCELLED, 15), (JobState.CANCELLED, 0)),
            "NODE_FAIL": ((JobState.NODE_FAIL, 0), (JobState.NODE_FAIL, 0)),
            "PREEMPTED": ((JobState.CANCELLED, 15), (JobState.COMPLETED, 0)),
            "BOOT_FAIL": ((JobState.BOOT_FAIL, 0), (JobState.BOOT_FAIL, 0)),
            "REQUEUED": ((JobState.CANCELLED, 15), (JobState.COMPLETED, 0)),
        }.get(outcome, ((JobState.COMPLETED, 0), (JobState.COMPLETED, 0)))
        (main_state, main_exit), (extern_state, extern_exit) = final
        if running:
            main_state, main_exit, extern_state, extern_exit = JobState.RUNNING, 0, JobState.RUNNING, 0
        mem_per_node = res.mem_total_mb // len(nodes)
        mem_fraction = 1.0 if outcome == "OUT_OF_MEMORY" else rng.uniform(0.05, 0.9)
        common = {"job_db_inx": job["job_db_inx"], "step_het_comp": NO_VAL, "time_start": job["time_start"]}
        steps = [
            dict(
                **common,
                id_step=-4,
                step_name="extern",
                nodelist=job["nodelist"],
                nodes_alloc=len(nodes),
                node_inx=job["node_inx"],
                task_cnt=len(nodes),
                state=int(extern_state),
                exit_code=extern_exit,
                time_end=job["time_end"],
                user_usec=rng.randint(500, 5000),
                sys_usec=rng.randint(500, 5000),
                tres_alloc=tres_alloc(len(nodes), res.cpus, res.mem_total_mb),
                **usage(0.01, 1, 0.5),
            )
        ]
        srun_share = 0.95 if n_srun else 0.0
        interactive = job["job_name"] == "interactive"
        steps.append(
            dict(
                **common,
                # salloc jobs have no batch script; their shell runs as the interactive step
                id_step=-6 if interactive else -5,
                step_name="interactive" if interactive else "batch",
                nodelist=first_node.name,
                nodes_alloc=1,
                node_inx=str(first_node.index),
                task_cnt=1,
                state=int(main_state),
                exit_code=main_exit,
                time_end=job["time_end"],
                tres_alloc=tres_alloc(1, res.cpus // len(nodes), mem_per_node),
                **cpu_split(total_cpu * (1 - srun_share)),
                **usage(total_cpu * (1 - srun_share), mem_per_node, mem_fraction if not n_srun else 0.05),
            )
        )
        if n_srun:
            cuts = sorted(rng.uniform(0, elapsed) for _ in range(n_srun - 1))
            bounds = [0.0, *cuts, float(elapsed)]
            for index in range(n_srun):
                last = index == n_srun - 1
                seg_start = job["time_start"] + int(bounds[index]) + 2
                seg_end = job["time_start"] + int(bounds[index + 1])
                share = (bounds[index + 1] - bounds[index]) / elapsed
                cpu = total_cpu * srun_share * share
                state, exit_raw = (
                    (main_state, main_exit if main_exit != 15 else 15) if last else (JobState.COMPLETED, 0)
                )
                if outcome == "FAILED" and last:
                    exit_raw = rng.choice((256, 256, 512, 9, 11))
                steps.append(
                    dict(
                        **{**common, "time_start": seg_start},
                        id_step=index,
                        step_name=rng.choice(SRUN_COMMANDS),
                        nodelist=job["nodelist"],
                        nodes_alloc=len(nodes),
                        node_inx=job["node_inx"],
                        task_cnt=res.cpus if len(nodes) > 1 else 1,
                        state=int(state),
                        exit_code=exit_raw,
                        time_end=0 if running and last else max(seg_end, seg_start),
                        tres_alloc=tres_alloc(len(nodes), res.cpus, res.mem_total_mb),
                        **cpu_split(cpu),
                        **usage(cpu, mem_per_node, mem_fraction if last else mem_fraction * 0.7),
                    )
                )
        return steps

    def iter_jobs(self) -> Iterator[tuple[Row, list[Row]]]:
        """Every job row with its steps, in submit order (and so in job_db_inx order)."""
        rng, now = self.rng, self.now
        body, tail = self._plans()
        body_end = now - 3600
        times = sorted(rng.randint(self.window_start, body_end) for _ in body)
        singles = [i for i, (kind, _rows) in enumerate(body) if kind == "single"]
        outcomes = (
            "FAILED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "CANCELLED",
            "CANCELLED_PENDING",
            "NODE_FAIL",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
        )
        # Small demos still show every outcome: give each one to a random single job of the first 80 %.
        early = singles[: max(len(outcomes), int(len(singles) * 0.8))]
        forced = dict(zip(rng.sample(early, min(len(outcomes), len(early))), outcomes, strict=False))
        old_assoc_users = [person for person in self.users if person.old_assocs]
        plans = [
            (kind, rows, submit, forced.get(position))
            for position, ((kind, rows), submit) in enumerate(zip(body, times, strict=True))
        ]
        for kind, rows in tail:
            submit = now - rng.randint(60, 12 * 3600) if kind == "pending" else now - rng.randint(600, 2 * DAY)
            plans.append((kind, rows, submit, None))
        for kind, rows, submit, outcome in plans:
            for job, steps in self._kind(kind, rows, submit, outcome, old_assoc_users):
                self.states[decode_state(job["state"]).name] += 1
                yield job, steps

    def _kind(
        self, kind: str, rows: int, submit: int, outcome: str | None, old_assoc_users: list[DemoUser]
    ) -> Iterator[tuple[Row, list[Row]]]:
        rng = self.rng
        person, account, assoc_id = self._pick_user()
        # Jobs of the first half of the window sometimes ran under associations deleted since.
        if old_assoc_users and submit < self.window_start + self.days * DAY // 2 and rng.random() < 0.05:
            person = rng.choice(old_assoc_users)
            account, assoc_id, _removed = person.old_assocs[0]
        res = self._resources(person)
        name = rng.choice(
            ("run_md", "train" if res.gpus_per_node else "sim", "preprocess", "analysis", "align", "lammps")
        )
        if kind == "single":
            if rng.random() < 0.03 and outcome is None:
                res.timelimit = 60  # as the salloc line says
                yield self._job(
                    person,
                    account,
                    assoc_id,
                    submit,
                    res,
                    outcome="COMPLETED",
                    name="interactive",
                    submit_line=f"salloc --account={account} --time=01:00:00",
                )
            else:
                if res.partition != "gpu" and outcome == "PREEMPTED":
                    res = self._resources(person, partition="gpu")
                yield self._job(
                    person,
                    account,
                    assoc_id,
                    submit,
                    res,
                    outcome=outcome or self._outcome(),
                    name=name,
                    must_end=outcome is not None,
                )
        elif kind == "pending":
            yield self._job(person, account, assoc_id, submit, res, outcome="COMPLETED", name=name, force_pending=True)
        elif kind == "running":
            if not self._unlimited_shown:
                # One long-QOS job without a time limit (timelimit INFINITE) is always running.
                res.timelimit, res.qos, self._unlimited_shown = INFINITE, 3, True
            yield self._job(person, account, assoc_id, submit, res, outcome="COMPLETED", name=name, force_running=True)
        elif kind == "array":
            yield from self._array(person, account, assoc_id, submit, res, rows)
        elif kind == "array_pending":
            yield from self._array(person, account, assoc_id, submit, res, rows - 1, pending_tasks=rng.randint(5, 40))
        elif kind == "requeue":
            line = self._submit_line(res, account, name, extra="--requeue")
            job_id = self._new_job_id()
            first, steps = self._job(
                person,
                account,
                assoc_id,
                submit,
                res,
                outcome="REQUEUED",
                name=name,
                id_job=job_id,
                submit_line=line,
                must_end=True,
            )
            first.update(state=REQUEUE, exit_code=0)  # slurmdbd closes the old record with the bare flag
            yield first, steps
            # The requeued job is a new record: same id_job, a later time_submit.
            resubmit = max(first["time_end"], first["time_start"], submit) + rng.randint(1, 120)
            yield self._job(
                person,
                account,
                assoc_id,
                resubmit,
                res,
                outcome=self._outcome_not_pending(),
                name=name,
                id_job=job_id,
                submit_line=line,
            )
        elif kind == "resize":
            job_id = self._new_job_id()
            first, steps = self._job(
                person, account, assoc_id, submit, res, outcome="RESIZING", name=name, id_job=job_id, must_end=True
            )
            first["state"] = RESIZING
            yield first, [step for step in steps if step["id_step"] == -4]
            resized = max(first["time_end"], first["time_start"], submit) + 1
            yield self._job(person, account, assoc_id, resized, res, outcome="COMPLETED", name=name, id_job=job_id)
        elif kind == "revoked":
            job, _steps = self._job(
                person, account, assoc_id, submit, res, outcome="CANCELLED_PENDING", name=name, must_end=True
            )
            job.update(state=REVOKED, kill_requid=None)  # a federation sibling that ran elsewhere
            yield job, []
        elif kind == "het":
            leader = self._new_job_id(2)
            outcome = self._outcome_not_pending()
            yield self._job(
                person,
                account,
                assoc_id,
                submit,
                res,
                outcome=outcome,
                name=name,
                id_job=leader,
                het_job_id=leader,
                het_job_offset=0,
            )
            gpu_res = self._resources(person, partition="gpu")
            job, steps = self._job(
                person,
                account,
                assoc_id,
                submit,
                gpu_res,
                outcome=outcome,
                name=name,
                id_job=leader + 1,
                het_job_id=leader,
                het_job_offset=1,
            )
            yield job, [step for step in steps if step["id_step"] != -5]  # the batch script runs in component 0

    def _outcome_not_pending(self) -> str:
        outcome = self._outcome()
        return "COMPLETED" if outcome in ("CANCELLED_PENDING", "DEADLINE") else outcome

    def _array(
        self,
        person: DemoUser,
        account: str,
        assoc_id: int,
        submit: int,
        res: _Resources,
        tasks: int,
        *,
        pending_tasks: int = 0,
    ) -> Iterator[tuple[Row, list[Row]]]:
        rng = self.rng
        total = tasks + pending_tasks
        throttle = rng.choice((0, 0, 4, 10))
        spec = f"0-{total - 1}" + (f"%{throttle}" if throttle else "")
        line = self._submit_line(res, account, "sweep", array=spec)
        master = self._new_job_id(total + 1)
        for index in range(tasks):
            # The last task to start runs under the master id; the others get their own ids.
            task_id = master if index == total - 1 else master + 1 + index
            outcome = "COMPLETED" if rng.random() < 0.9 else rng.choice(("FAILED", "OUT_OF_MEMORY", "TIMEOUT"))
            yield self._job(
                person,
                account,
                assoc_id,
                submit,
                res,
                outcome=outcome,
                name="sweep",
                id_job=task_id,
                submit_line=line,
                force_running=bool(pending_tasks) and index >= tasks - 1,
                id_array_job=master,
                id_array_task=index,
            )
        if pending_tasks:
            # The meta record of the tasks not started yet: hex bitmask as slurmctld sends it.
            mask = sum(1 << i for i in range(tasks, total))
            job, _steps = self._job(
                person,
                account,
                assoc_id,
                submit,
                res,
                outcome="COMPLETED",
                name="sweep",
                id_job=master,
                submit_line=line,
                force_pending=True,
                id_array_job=master,
                id_array_task=NO_VAL,
                array_task_str=f"0x{mask:X}",
                array_max_tasks=throttle,
                array_task_pending=pending_tasks,
            )
            yield job, []

    # --- events and scripts -----------------------------------------------------------------
    def event_rows(self) -> list[Any]:
        rng, event_model = self.rng, self.models.event
        total = {TRES_CPU: 0, TRES_MEM: 0, TRES_ENERGY: 0, TRES_NODE: len(self.nodes), TRES_BILLING: 0}
        gpus: Counter[int] = Counter()
        for node in self.nodes:
            total[TRES_CPU] += node.group.cpus
            total[TRES_MEM] += node.group.mem_mb
            total[TRES_BILLING] += node.group.cpus
            if node.group.gpus:
                gpus[self.tres_gpu] += node.group.gpus
                gpus[self.tres_gpu_types[node.group.gpu_type]] += node.group.gpus
        cluster_tres = format_tres({**total, **gpus})
        all_nodes = compress_hostlist(node.name for node in self.nodes)
        rows: dict[tuple[str, int], Any] = {}
        # Cluster-level rows (node_name ''): the TRES the cluster registered, the current one open.
        registered = self.installed + 300
        rows[("", registered)] = event_model(
            node_name="",
            time_start=registered,
            time_end=self.window_start + DAY,
            cluster_nodes=all_nodes,
            reason="",
            state=0,
            tres=cluster_tres,
        )
        rows[("", self.window_start + DAY)] = event_model(
            node_name="",
            time_start=self.window_start + DAY,
            time_end=0,
            cluster_nodes=all_nodes,
            reason="",
            state=0,
            tres=cluster_tres,
        )
        for index in range(max(4, self.days // 4)):
            node = rng.choice(self.nodes)
            reason, uid, state = rng.choice(EVENT_REASONS)
            if node.group.gpus == 0 and "GPU" in reason:
                reason, uid, state = EVENT_REASONS[0]
            start = rng.randint(self.window_start, self.now - 3600)
            end = 0 if index == 0 else min(start + rng.randint(600, 3 * DAY), self.now - 60)
            node_tres = {
                TRES_CPU: node.group.cpus,
                TRES_MEM: node.group.mem_mb,
                TRES_NODE: 1,
                TRES_BILLING: node.group.cpus,
            }
            if node.group.gpus:
                node_tres[self.tres_gpu] = node.group.gpus
                node_tres[self.tres_gpu_types[node.group.gpu_type]] = node.group.gpus
            rows[(node.name, start)] = event_model(
                node_name=node.name,
                time_start=start,
                time_end=end,
                cluster_nodes="",
                reason=reason,
                reason_uid=uid,
                state=state,
                tres=format_tres(node_tres),
            )
        return list(rows.values())

    def script_rows_out(self) -> list[Any]:
        model = self.models.job_script
        return [
            model(
                hash_inx=hash_inx,
                script_hash=hashlib.sha256(text.encode()).hexdigest(),
                batch_script=text,
                last_used=datetime.fromtimestamp(last_used, tz=UTC),
            )
            for hash_inx, text, last_used in self.script_rows.values()
        ]


def fast_insert(model: type[SlurmModel], rows: Sequence[Row], *, using: str) -> None:
    """Insert ``rows`` (dicts by field attname; missing fields take their default) with executemany().

    bulk_create instantiates every model and compiles every value through the SQL compiler,
    and on SQLite it binds at most 999 parameters per statement (18 job rows): for 200,000
    job and step rows that was three quarters of a 45-second run. The statement here is built
    from the model's own metadata (names quoted by the backend) and every value is a bound
    parameter. Callers hold allow_writes(), checked again because this path skips the router.
    """
    check_writes_allowed(f"insert into {model._meta.db_table}")
    if not rows:
        return
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if f.column]
    columns = ", ".join(quote(f.column or "") for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608 - names from model metadata
    defaults = [f.get_default() for f in fields]
    # Only the unsigned 64-bit columns need converting (two's complement outside MySQL);
    # the builder supplies plain ints and strings for everything else.
    unsigned = connection.vendor != "mysql"
    converters = [to_signed64 if unsigned and isinstance(f, UnsignedBigIntegerField) else None for f in fields]
    names = [f.attname for f in fields]
    values = [
        tuple(
            (row.get(name, default) if conv is None else conv(row.get(name, default)))
            for name, default, conv in zip(names, defaults, converters, strict=True)
        )
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def seed_demo(
    *,
    cluster: str,
    seed: int = 1,
    users: int = 200,
    accounts: int = 40,
    jobs: int = 50_000,
    days: int = 90,
    now: int | None = None,
    using: str = SLURM_DB_ALIAS,
    batch_size: int = 5000,
    progress: Callable[[str], None] | None = None,
) -> SeedSummary:
    """Fill ``cluster``'s tables (and the global ones) in ``using`` with a synthetic cluster.

    Creates missing tables first. Wipes the cluster's tables and replaces the global rows it
    owns, then inserts everything in one transaction. The caller decides whether the
    database may be written (the command refuses anything but SQLite by default).
    """
    if users < 2 or accounts < 1 or jobs < MIN_JOBS or days < 1:
        raise ValueError(f"seed_demo needs at least 2 users, 1 account, {MIN_JOBS} jobs and 1 day.")
    report = progress or (lambda _line: None)
    began = time.monotonic()
    now = now if now is not None else default_now()
    models = cluster_models(cluster)
    create_tables(using=using, clusters=[cluster])
    builder = _Builder(models, seed=seed, users=users, accounts=accounts, jobs=jobs, days=days, now=now)
    tres, qos = builder.tres_rows(), builder.qos_rows()
    account_rows, assoc_rows, user_rows = builder.account_and_assoc_rows()
    summary = SeedSummary(cluster=cluster, seed=seed, now=now)

    with allow_writes(), transaction.atomic(using=using):
        for model in models.all():
            model.objects.using(using).all().delete()
        Tres.objects.using(using).filter(id__in=[row.id for row in tres]).delete()
        Qos.objects.using(using).filter(
            Q(id__in=[row.id for row in qos]) | Q(name__in=[row.name for row in qos])
        ).delete()
        Account.objects.using(using).filter(name__in=[row.name for row in account_rows]).delete()
        SlurmUser.objects.using(using).filter(name__in=[row.name for row in user_rows]).delete()
        Tres.objects.using(using).bulk_create(tres)
        Qos.objects.using(using).bulk_create(qos)
        Account.objects.using(using).bulk_create(account_rows, batch_size=batch_size)
        SlurmUser.objects.using(using).bulk_create(user_rows, batch_size=batch_size)
        models.assoc.objects.using(using).bulk_create(assoc_rows, batch_size=batch_size)
        report(
            f"{cluster}: {len(tres)} TRES, {len(qos)} QOS, {len(account_rows)} accounts, "
            f"{len(user_rows)} users, {len(assoc_rows)} associations"
        )

        job_buffer: list[Row] = []
        step_buffer: list[Row] = []

        def flush() -> None:
            fast_insert(models.job, job_buffer, using=using)
            fast_insert(models.step, step_buffer, using=using)
            summary.jobs += len(job_buffer)
            summary.steps += len(step_buffer)
            job_buffer.clear()
            step_buffer.clear()
            report(f"{cluster}: jobs {summary.jobs}/{jobs} ({summary.jobs * 100 // jobs}%), steps {summary.steps}")

        for job, steps in builder.iter_jobs():
            job_buffer.append(job)
            step_buffer.extend(steps)
            if len(job_buffer) >= batch_size:
                flush()
        if job_buffer:
            flush()

        events, scripts = builder.event_rows(), builder.script_rows_out()
        models.event.objects.using(using).bulk_create(events, batch_size=batch_size)
        models.job_script.objects.using(using).bulk_create(scripts, batch_size=batch_size)
        report(f"{cluster}: {len(events)} node events, {len(scripts)} job scripts")

    summary.users = len(user_rows)
    summary.accounts = len(account_rows)
    summary.associations = len(assoc_rows)
    summary.events = len(events)
    summary.scripts = len(scripts)
    summary.states = +builder.states
    summary.seconds = time.monotonic() - began
    return summary


def is_sqlite(using: str = SLURM_DB_ALIAS) -> bool:
    return connections[using].vendor == "sqlite"
