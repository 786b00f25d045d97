"""The per-cluster tables (``<cluster>_job_table`` ...), as abstract models.

Their concrete classes, one set per cluster, come from :func:`slurm.models.clusters.cluster_models`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from django.db import models
from django.utils import timezone

from slurm import decoders, ids
from slurm.decoders import NO_VAL, ExitCode, MemReq, StateInfo, TresCatalog
from slurm.fields import BlobTextField, UnsignedBigIntegerField, UnsignedIntegerField
from slurm.hostlists import expand_hostlist
from slurm.models.base import SlurmModel, SlurmQuerySet, tinytext


class ClusterModel(SlurmModel):
    # Set on each concrete class when its cluster's classes are built.
    cluster: ClassVar[str]
    cluster_classes: ClassVar[ClusterModels]

    class Meta(SlurmModel.Meta):
        abstract = True


class RunRecord(ClusterModel):
    """What a job and a step share: a state, an exit code, a start and an end (0 while running)."""

    state: int
    exit_code: int
    time_start: int
    time_end: int

    @property
    def state_info(self) -> StateInfo:
        return decoders.decode_state(self.state)

    @property
    def exit(self) -> ExitCode:
        return decoders.decode_exit_code(self.exit_code)

    @property
    def start_time(self) -> datetime | None:
        return decoders.epoch_to_datetime(self.time_start)

    @property
    def end_time(self) -> datetime | None:
        # time_end is 0 while the record runs; None spares callers half-century runtimes.
        return decoders.epoch_to_datetime(self.time_end)

    class Meta(ClusterModel.Meta):
        abstract = True


class Job(RunRecord):
    """``<cluster>_job_table``: one row per job record (requeues and resizes add rows, domain 1.4)."""

    job_db_inx = models.BigAutoField(primary_key=True)
    mod_time = UnsignedBigIntegerField(default=0)
    deleted = models.SmallIntegerField(default=0)
    account = tinytext(null=True)
    admin_comment = models.TextField(null=True)
    array_task_str = models.TextField(null=True)
    array_max_tasks = UnsignedIntegerField(default=0)
    array_task_pending = UnsignedIntegerField(default=0)
    constraints = models.TextField(null=True, default="")
    container = models.TextField(null=True)
    cpus_req = UnsignedIntegerField()
    derived_ec = UnsignedIntegerField(default=0)
    derived_es = models.TextField(null=True)
    env_hash_inx = UnsignedBigIntegerField(default=0)
    exit_code = UnsignedIntegerField(default=0)
    flags = UnsignedIntegerField(default=0)
    job_name = tinytext()
    id_assoc = UnsignedIntegerField()
    id_array_job = UnsignedIntegerField(default=0)
    id_array_task = UnsignedIntegerField(default=NO_VAL)
    id_block = tinytext(null=True)
    id_job = UnsignedIntegerField()
    id_qos = UnsignedIntegerField(default=0)
    id_resv = UnsignedIntegerField(default=0)
    id_wckey = UnsignedIntegerField(default=0)
    id_user = UnsignedIntegerField()
    id_group = UnsignedIntegerField()
    het_job_id = UnsignedIntegerField(default=0)
    het_job_offset = UnsignedIntegerField(default=NO_VAL)
    kill_requid = UnsignedIntegerField(null=True)
    state_reason_prev = UnsignedIntegerField(default=0)
    mcs_label = tinytext(null=True, default="")
    mem_req = UnsignedBigIntegerField(default=0)
    nodelist = models.TextField(null=True)
    nodes_alloc = UnsignedIntegerField(default=0)
    node_inx = models.TextField(null=True)
    partition = tinytext()  # a reserved word in MySQL; Django quotes every column name
    priority = UnsignedIntegerField(default=0)
    script_hash_inx = UnsignedBigIntegerField(default=0)
    state = UnsignedIntegerField()
    timelimit = UnsignedIntegerField(default=0)  # minutes
    time_submit = UnsignedBigIntegerField(default=0)
    time_eligible = UnsignedBigIntegerField(default=0)
    time_start = UnsignedBigIntegerField(default=0)
    time_end = UnsignedBigIntegerField(default=0)
    time_suspended = UnsignedBigIntegerField(default=0)
    gres_used = models.TextField(default="")
    wckey = tinytext(default="")
    work_dir = models.TextField(default="")
    submit_line = models.TextField(null=True)
    system_comment = models.TextField(null=True)
    tres_alloc = models.TextField(default="")
    tres_req = models.TextField(default="")

    class Meta(ClusterModel.Meta):
        abstract = True

    def __str__(self) -> str:
        return self.display_id

    @property
    def display_id(self) -> str:
        """The JobID as sacct prints it: ``1234``, ``1234_7``, ``1234_[8-20%4]``, ``1240+1``."""
        return ids.format_job_id(
            self.id_job,
            self.id_array_job,
            self.id_array_task,
            self.het_job_id,
            self.het_job_offset,
            self.array_task_str,
            self.array_max_tasks,
        )

    @property
    def submit_time(self) -> datetime | None:
        return decoders.epoch_to_datetime(self.time_submit)

    @property
    def eligible_time(self) -> datetime | None:
        return decoders.epoch_to_datetime(self.time_eligible)

    def elapsed_seconds(self, now: datetime | None = None) -> int:
        """Run time so far: 0 before the start, up to ``now`` while running, minus suspended time."""
        if not self.time_start:
            return 0
        end = self.time_end or int((now or timezone.now()).timestamp())
        return max(end - self.time_start - self.time_suspended, 0)

    @property
    def is_array_task(self) -> bool:
        return bool(self.id_array_job) and self.id_array_task != NO_VAL

    @property
    def nodes(self) -> list[str]:
        return expand_hostlist(self.nodelist)

    @property
    def tres_req_dict(self) -> dict[int, int]:
        return decoders.parse_tres(self.tres_req)

    @property
    def tres_alloc_dict(self) -> dict[int, int]:
        return decoders.parse_tres(self.tres_alloc)

    @property
    def tres(self) -> dict[int, int]:
        """What the job has, or asks for while it has nothing yet: tres_alloc, else tres_req."""
        return self.tres_alloc_dict or self.tres_req_dict

    @property
    def mem_request(self) -> MemReq:
        return decoders.decode_mem_req(self.mem_req)

    @property
    def memory_mb(self) -> int | None:
        return decoders.job_memory_mb(
            self.mem_req, cpus=self.cpus_req, nodes=self.nodes_alloc, tres_alloc=self.tres_alloc_dict
        )

    @property
    def timelimit_minutes(self) -> int | None:
        """None: unlimited, or no limit recorded."""
        return decoders.decode_timelimit(self.timelimit)

    def gpu_count(self, catalog: TresCatalog) -> int:
        return catalog.gpu_count(self.tres)

    def gpus_by_type(self, catalog: TresCatalog) -> dict[str, int]:
        return catalog.gpus_by_type(self.tres)

    def steps(self) -> SlurmQuerySet[Step]:
        return self.cluster_classes.step.objects.filter(job_db_inx=self.job_db_inx)


class Step(RunRecord):
    """``<cluster>_step_table``: batch, extern and srun steps, with CPU time and usage statistics."""

    # Django 5.2's CompositePrimaryKey mirrors the real key; unmanaged read-only models need
    # nothing it does not support (reads, tuple lookups, the factories' inserts, the demo's wipe).
    pk = models.CompositePrimaryKey("job_db_inx", "id_step", "step_het_comp")
    job_db_inx = UnsignedBigIntegerField()
    deleted = models.SmallIntegerField(default=0)
    exit_code = models.IntegerField(default=0)  # signed, unlike the job table's
    id_step = models.IntegerField()  # signed: -5 batch, -4 extern, ...
    step_het_comp = UnsignedIntegerField(default=NO_VAL)
    kill_requid = UnsignedIntegerField(null=True)
    nodelist = models.TextField()
    nodes_alloc = UnsignedIntegerField()
    node_inx = models.TextField(null=True)
    state = models.IntegerField()  # smallint unsigned in MySQL: more than PostgreSQL's smallint holds
    step_name = models.TextField()
    task_cnt = UnsignedIntegerField()
    task_dist = models.IntegerField(default=0)
    time_start = UnsignedBigIntegerField(default=0)
    time_end = UnsignedBigIntegerField(default=0)
    time_suspended = UnsignedBigIntegerField(default=0)
    user_sec = UnsignedBigIntegerField(default=0)
    user_usec = UnsignedIntegerField(default=0)
    sys_sec = UnsignedBigIntegerField(default=0)
    sys_usec = UnsignedIntegerField(default=0)
    act_cpufreq = models.FloatField(default=0.0)
    consumed_energy = UnsignedBigIntegerField(default=0)
    container = models.TextField(null=True)
    req_cpufreq_min = UnsignedIntegerField(default=0)
    req_cpufreq = UnsignedIntegerField(default=0)
    req_cpufreq_gov = UnsignedIntegerField(default=0)
    submit_line = models.TextField(null=True)
    tres_alloc = models.TextField(default="")
    tres_usage_in_ave = models.TextField(default="")
    tres_usage_in_max = models.TextField(default="")
    tres_usage_in_max_taskid = models.TextField(default="")
    tres_usage_in_max_nodeid = models.TextField(default="")
    tres_usage_in_min = models.TextField(default="")
    tres_usage_in_min_taskid = models.TextField(default="")
    tres_usage_in_min_nodeid = models.TextField(default="")
    tres_usage_in_tot = models.TextField(default="")
    tres_usage_out_ave = models.TextField(default="")
    tres_usage_out_max = models.TextField(default="")
    tres_usage_out_max_taskid = models.TextField(default="")
    tres_usage_out_max_nodeid = models.TextField(default="")
    tres_usage_out_min = models.TextField(default="")
    tres_usage_out_min_taskid = models.TextField(default="")
    tres_usage_out_min_nodeid = models.TextField(default="")
    tres_usage_out_tot = models.TextField(default="")

    class Meta(ClusterModel.Meta):
        abstract = True

    def __str__(self) -> str:
        return f"{self.job_db_inx}.{self.step_id_text}"

    @property
    def step_id_text(self) -> str:
        """``batch``, ``extern``, ``0``: the part after the dot in sacct's JobID."""
        return ids.step_name(self.id_step)

    def display_id(self, job_id: str | int) -> str:
        return ids.format_step_id(job_id, self.id_step, self.step_het_comp)

    @property
    def cpu_seconds(self) -> float:
        return decoders.step_cpu_seconds(self.user_sec, self.user_usec, self.sys_sec, self.sys_usec)

    @property
    def max_rss_bytes(self) -> int | None:
        """Peak memory (RSS) of the step in bytes; None before the first accounting sample."""
        return decoders.parse_tres(self.tres_usage_in_max).get(decoders.TRES_MEM)

    @property
    def nodes(self) -> list[str]:
        return expand_hostlist(self.nodelist)


class Assoc(ClusterModel):
    """``<cluster>_assoc_table`` without ``lft``/``rgt`` (gone in 25.05) and newer columns.

    Build trees from ``acct`` and ``parent_acct``, which every version has (domain 1.12).
    Account rows have ``user=''``; user rows have the user's name and ``parent_acct=''``.
    """

    creation_time = UnsignedBigIntegerField()
    mod_time = UnsignedBigIntegerField(default=0)
    deleted = models.SmallIntegerField(default=0)
    is_def = models.SmallIntegerField(default=0)
    id_assoc = models.AutoField(primary_key=True)
    user = tinytext(default="")
    acct = tinytext()
    partition = tinytext(default="")
    parent_acct = tinytext(default="")
    shares = models.IntegerField(default=1)
    max_jobs = models.IntegerField(null=True)
    max_jobs_accrue = models.IntegerField(null=True)
    min_prio_thresh = models.IntegerField(null=True)
    max_submit_jobs = models.IntegerField(null=True)
    max_tres_pj = models.TextField(default="")
    max_tres_pn = models.TextField(default="")
    max_tres_mins_pj = models.TextField(default="")
    max_tres_run_mins = models.TextField(default="")
    max_wall_pj = models.IntegerField(null=True)  # minutes
    grp_jobs = models.IntegerField(null=True)
    grp_jobs_accrue = models.IntegerField(null=True)
    grp_submit_jobs = models.IntegerField(null=True)
    grp_tres = models.TextField(default="")
    grp_tres_mins = models.TextField(default="")
    grp_tres_run_mins = models.TextField(default="")
    grp_wall = models.IntegerField(null=True)  # minutes
    priority = UnsignedIntegerField(null=True)
    def_qos_id = models.IntegerField(null=True)
    qos = BlobTextField(default="")
    delta_qos = BlobTextField(default="")

    class Meta(ClusterModel.Meta):
        abstract = True

    def __str__(self) -> str:
        return f"{self.user}/{self.acct}" if self.user else self.acct


class Event(ClusterModel):
    """``<cluster>_event_table``: node down/drain events (and cluster TRES rows with ``node_name=''``)."""

    pk = models.CompositePrimaryKey("node_name", "time_start")
    time_start = UnsignedBigIntegerField()
    time_end = UnsignedBigIntegerField(default=0)  # 0 = still open
    node_name = tinytext(default="")
    cluster_nodes = models.TextField(default="")
    reason = tinytext()
    reason_uid = UnsignedIntegerField(default=NO_VAL)
    state = UnsignedIntegerField(default=0)
    tres = models.TextField(default="")

    class Meta(ClusterModel.Meta):
        abstract = True

    def __str__(self) -> str:
        return f"{self.node_name or '(cluster)'}@{self.time_start}"

    @property
    def start_time(self) -> datetime | None:
        return decoders.epoch_to_datetime(self.time_start)

    @property
    def end_time(self) -> datetime | None:
        return decoders.epoch_to_datetime(self.time_end)


class JobScript(ClusterModel):
    """``<cluster>_job_script_table`` (only with ``AccountingStoreFlags=job_script``); no ``deleted`` before 24.11."""

    hash_inx = models.BigAutoField(primary_key=True)
    last_used = models.DateTimeField(default=timezone.now)
    script_hash = models.TextField()
    batch_script = models.TextField(null=True)

    class Meta(ClusterModel.Meta):
        abstract = True

    def __str__(self) -> str:
        return self.script_hash


@dataclass(frozen=True)
class ClusterModels:
    """The concrete per-cluster model classes of one cluster."""

    job: type[Job]
    step: type[Step]
    assoc: type[Assoc]
    event: type[Event]
    job_script: type[JobScript]

    @property
    def cluster(self) -> str:
        return self.job.cluster

    def all(self) -> tuple[type[ClusterModel], ...]:
        return (self.job, self.step, self.assoc, self.event, self.job_script)
