"""Read-only, unmanaged models of the Slurm accounting database (slurmdbd on MariaDB).

Only columns that every supported Slurm release (22.05 through 25.x) has are declared, so a
plain ``Job.objects.filter(...)`` never selects a column a newer slurmdbd dropped: TT's assoc
pages broke on 25.05 with "Unknown column lft" for exactly that reason (domain 1.18). Column
names and types follow the 22.05 DDL; tinytext columns are CharField(max_length=255) (a
tinytext holds at most 255 bytes), which also lets the demo schema index them on MariaDB.

Global tables have fixed names (``qos_table`` ...). Per-cluster tables are named after the
cluster (``<cluster>_job_table``), so their model classes are built on first use by
:func:`cluster_models` for a cluster in ``settings.SLURM_CLUSTERS``, read at call time.

Writes raise :class:`slurm.router.ReadOnlySlurmDatabase` outside ``allow_writes()``: through
the router for everything Django routes, and again in ``save()``, ``delete()`` and the
queryset's write methods for code that names the database with ``using=``.

Notes for callers:

* ``Job``, ``Step``, ``Assoc``, ``Event`` and ``JobScript`` are abstract: use them in type
  hints, and ``cluster_models(cluster).job`` (etc.) for queries. Each concrete class has its
  own ``DoesNotExist``; catch ``django.core.exceptions.ObjectDoesNotExist`` (or use
  ``get_object_or_404``) in code that serves several clusters.
* The step and event tables have composite primary keys and use Django 5.2's
  ``CompositePrimaryKey`` (``step.pk == (job_db_inx, id_step, step_het_comp)``). Reads,
  ``pk``/``pk__in`` lookups and the demo's inserts work with it on SQLite, PostgreSQL and
  MySQL/MariaDB (row-value comparisons); nothing here needs what it lacks (foreign keys to
  these tables, the admin).
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from slurm import decoders
from slurm.decoders import NO_VAL, ExitCode, MemReq, StateInfo, TresCatalog
from slurm.fields import BlobTextField, UnsignedBigIntegerField, UnsignedIntegerField
from slurm.router import check_writes_allowed

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

_M = TypeVar("_M", bound=models.Model)


class SlurmQuerySet(models.QuerySet[_M]):
    """A queryset whose write methods refuse to run outside ``allow_writes()``.

    The router already refuses writes it is asked about, but ``.using("slurm")`` skips the
    router, so each write method checks again.
    """

    def update(self, **kwargs: Any) -> int:
        check_writes_allowed("QuerySet.update()")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        check_writes_allowed("QuerySet.delete()")
        return super().delete()

    def create(self, **kwargs: Any) -> _M:
        check_writes_allowed("QuerySet.create()")
        return super().create(**kwargs)

    def bulk_create(self, objs: Iterable[_M], *args: Any, **kwargs: Any) -> list[_M]:
        check_writes_allowed("QuerySet.bulk_create()")
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs: Iterable[_M], fields: Iterable[str], batch_size: int | None = None) -> int:
        check_writes_allowed("QuerySet.bulk_update()")
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def get_or_create(self, defaults: Any = None, **kwargs: Any) -> tuple[_M, bool]:
        check_writes_allowed("QuerySet.get_or_create()")
        return super().get_or_create(defaults=defaults, **kwargs)

    def update_or_create(self, defaults: Any = None, create_defaults: Any = None, **kwargs: Any) -> tuple[_M, bool]:
        check_writes_allowed("QuerySet.update_or_create()")
        return super().update_or_create(defaults=defaults, create_defaults=create_defaults, **kwargs)


SlurmManager = models.Manager.from_queryset(SlurmQuerySet)


class SlurmModel(models.Model):
    """Base of every slurm model: unmanaged, in the ``slurm`` app, writes only inside allow_writes()."""

    objects = SlurmManager()

    class Meta:
        abstract = True
        managed = False
        app_label = "slurm"

    def save(self, *args: Any, **kwargs: Any) -> None:
        check_writes_allowed(f"{type(self).__name__}.save()")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        check_writes_allowed(f"{type(self).__name__}.delete()")
        return super().delete(*args, **kwargs)


def _tinytext(**kwargs: Any) -> models.CharField[Any, Any]:
    return models.CharField(max_length=255, **kwargs)


# --- Global tables ----------------------------------------------------------------------------
class Qos(SlurmModel):
    """``qos_table``: unchanged from 22.05 to 26.05, so every column is declared."""

    creation_time = UnsignedBigIntegerField()
    mod_time = UnsignedBigIntegerField(default=0)
    deleted = models.SmallIntegerField(null=True, default=0)
    id = models.AutoField(primary_key=True)
    name = _tinytext(unique=True)
    description = models.TextField(null=True)
    flags = UnsignedIntegerField(null=True, default=0)
    grace_time = UnsignedIntegerField(null=True)
    max_jobs_pa = models.IntegerField(null=True)
    max_jobs_per_user = models.IntegerField(null=True)
    max_jobs_accrue_pa = models.IntegerField(null=True)
    max_jobs_accrue_pu = models.IntegerField(null=True)
    min_prio_thresh = models.IntegerField(null=True)
    max_submit_jobs_pa = models.IntegerField(null=True)
    max_submit_jobs_per_user = models.IntegerField(null=True)
    max_tres_pa = models.TextField(default="")
    max_tres_pj = models.TextField(default="")
    max_tres_pn = models.TextField(default="")
    max_tres_pu = models.TextField(default="")
    max_tres_mins_pj = models.TextField(default="")
    max_tres_run_mins_pa = models.TextField(default="")
    max_tres_run_mins_pu = models.TextField(default="")
    min_tres_pj = models.TextField(default="")
    max_wall_duration_per_job = models.IntegerField(null=True)  # minutes
    grp_jobs = models.IntegerField(null=True)
    grp_jobs_accrue = models.IntegerField(null=True)
    grp_submit_jobs = models.IntegerField(null=True)
    grp_tres = models.TextField(default="")
    grp_tres_mins = models.TextField(default="")
    grp_tres_run_mins = models.TextField(default="")
    grp_wall = models.IntegerField(null=True)  # minutes
    preempt = models.TextField(default="")
    preempt_mode = models.IntegerField(null=True, default=0)
    preempt_exempt_time = UnsignedIntegerField(null=True)
    priority = UnsignedIntegerField(null=True, default=0)
    usage_factor = models.FloatField(default=1.0)
    usage_thres = models.FloatField(null=True)
    limit_factor = models.FloatField(null=True)

    class Meta(SlurmModel.Meta):
        db_table = "qos_table"

    def __str__(self) -> str:
        return self.name

    @property
    def grp_tres_dict(self) -> dict[int, int]:
        return decoders.parse_tres(self.grp_tres)

    @property
    def max_tres_pu_dict(self) -> dict[int, int]:
        return decoders.parse_tres(self.max_tres_pu)


class Tres(SlurmModel):
    """``tres_table``: the id → (type, name) catalogue. Dynamic ids (≥ 1001) differ per site."""

    creation_time = UnsignedBigIntegerField()
    deleted = models.SmallIntegerField(default=0)
    id = models.AutoField(primary_key=True)
    type = _tinytext()
    name = _tinytext(default="")

    class Meta(SlurmModel.Meta):
        db_table = "tres_table"

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type

    @classmethod
    def catalog(cls, using: str | None = None) -> TresCatalog:
        """A :class:`~slurm.decoders.TresCatalog` of every row, deleted ones included: old jobs still use them."""
        queryset = cls.objects.using(using) if using else cls.objects.all()
        return TresCatalog(queryset.values_list("id", "type", "name"))


class Account(SlurmModel):
    """``acct_table`` (without ``flags``, which only 24.05 and later have)."""

    creation_time = UnsignedBigIntegerField()
    mod_time = UnsignedBigIntegerField(default=0)
    deleted = models.SmallIntegerField(null=True, default=0)
    name = _tinytext(primary_key=True)
    description = models.TextField()  # sacctmgr lowercases it
    organization = models.TextField()

    class Meta(SlurmModel.Meta):
        db_table = "acct_table"

    def __str__(self) -> str:
        return self.name


class AdminLevel(models.IntegerChoices):
    NOT_SET = 0, _("Not set")
    NONE = 1, _("None")
    OPERATOR = 2, _("Operator")
    ADMINISTRATOR = 3, _("Administrator")


class SlurmUser(SlurmModel):
    """``user_table``: Slurm users by name. There is no uid here; jobs carry the uid (``id_user``)."""

    creation_time = UnsignedBigIntegerField()
    mod_time = UnsignedBigIntegerField(default=0)
    deleted = models.SmallIntegerField(null=True, default=0)
    name = _tinytext(primary_key=True)
    admin_level = models.SmallIntegerField(default=AdminLevel.NONE, choices=AdminLevel.choices)

    class Meta(SlurmModel.Meta):
        db_table = "user_table"

    def __str__(self) -> str:
        return self.name


# --- Per-cluster tables (abstract; concrete classes come from cluster_models()) ---------------
class ClusterModel(SlurmModel):
    cluster: ClassVar[str]  # set on each concrete class

    class Meta(SlurmModel.Meta):
        abstract = True

    @classmethod
    def models_of_cluster(cls) -> ClusterModels:
        return cluster_models(cls.cluster)


class Job(ClusterModel):
    """``<cluster>_job_table``: one row per job record (requeues and resizes add rows, domain 1.4)."""

    job_db_inx = models.BigAutoField(primary_key=True)
    mod_time = UnsignedBigIntegerField(default=0)
    deleted = models.SmallIntegerField(default=0)
    account = _tinytext(null=True)
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
    job_name = _tinytext()
    id_assoc = UnsignedIntegerField()
    id_array_job = UnsignedIntegerField(default=0)
    id_array_task = UnsignedIntegerField(default=NO_VAL)
    id_block = _tinytext(null=True)
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
    mcs_label = _tinytext(null=True, default="")
    mem_req = UnsignedBigIntegerField(default=0)
    nodelist = models.TextField(null=True)
    nodes_alloc = UnsignedIntegerField(default=0)
    node_inx = models.TextField(null=True)
    partition = _tinytext()  # a reserved word in MySQL; Django quotes every column name
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
    wckey = _tinytext(default="")
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
        return decoders.format_job_id(
            self.id_job,
            self.id_array_job,
            self.id_array_task,
            self.het_job_id,
            self.het_job_offset,
            self.array_task_str,
            self.array_max_tasks,
        )

    @property
    def state_info(self) -> StateInfo:
        return decoders.decode_state(self.state)

    @property
    def exit(self) -> ExitCode:
        return decoders.decode_exit_code(self.exit_code)

    @property
    def derived_exit(self) -> ExitCode:
        return decoders.decode_exit_code(self.derived_ec)

    @property
    def submit_time(self) -> datetime | None:
        return decoders.epoch_to_datetime(self.time_submit)

    @property
    def eligible_time(self) -> datetime | None:
        return decoders.epoch_to_datetime(self.time_eligible)

    @property
    def start_time(self) -> datetime | None:
        return decoders.epoch_to_datetime(self.time_start)

    @property
    def end_time(self) -> datetime | None:
        # time_end is 0 while the job runs; None spares callers half-century runtimes.
        return decoders.epoch_to_datetime(self.time_end)

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
        return decoders.expand_hostlist(self.nodelist)

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

    @property
    def submit_line_text(self) -> str:
        # NULL for API submissions and old records; TT's `in` checks on it raised TypeError.
        return self.submit_line or ""

    def gpu_count(self, catalog: TresCatalog) -> int:
        return catalog.gpu_count(self.tres)

    def gpus_by_type(self, catalog: TresCatalog) -> dict[str, int]:
        return catalog.gpus_by_type(self.tres)

    def steps(self) -> SlurmQuerySet[Step]:
        return self.models_of_cluster().step.objects.filter(job_db_inx=self.job_db_inx)


class Step(ClusterModel):
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
        return decoders.step_name(self.id_step)

    def display_id(self, job_id: str | int) -> str:
        return decoders.format_step_id(job_id, self.id_step, self.step_het_comp)

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
        return decoders.epoch_to_datetime(self.time_end)

    @property
    def cpu_seconds(self) -> float:
        return decoders.step_cpu_seconds(self.user_sec, self.user_usec, self.sys_sec, self.sys_usec)

    @property
    def max_rss_bytes(self) -> int | None:
        """Peak memory (RSS) of the step in bytes; None before the first accounting sample."""
        return decoders.parse_tres(self.tres_usage_in_max).get(decoders.TRES_MEM)

    @property
    def nodes(self) -> list[str]:
        return decoders.expand_hostlist(self.nodelist)


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
    user = _tinytext(default="")
    acct = _tinytext()
    partition = _tinytext(default="")
    parent_acct = _tinytext(default="")
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

    @property
    def is_user(self) -> bool:
        return bool(self.user)

    @property
    def qos_ids(self) -> list[int]:
        return decoders.parse_qos_list(self.qos)

    @property
    def delta_qos_list(self) -> list[tuple[str, int]]:
        return decoders.parse_delta_qos(self.delta_qos)


class Event(ClusterModel):
    """``<cluster>_event_table``: node down/drain events (and cluster TRES rows with ``node_name=''``)."""

    pk = models.CompositePrimaryKey("node_name", "time_start")
    time_start = UnsignedBigIntegerField()
    time_end = UnsignedBigIntegerField(default=0)  # 0 = still open
    node_name = _tinytext(default="")
    cluster_nodes = models.TextField(default="")
    reason = _tinytext()
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


# --- Per-cluster model classes ----------------------------------------------------------------
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


GLOBAL_MODELS: tuple[type[SlurmModel], ...] = (Qos, Tres, Account, SlurmUser)

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_cache: dict[str, ClusterModels] = {}
_lock = threading.Lock()


def default_cluster() -> str:
    """The first cluster of ``settings.SLURM_CLUSTERS``, read at call time."""
    return str(settings.SLURM_CLUSTERS[0])


def cluster_models(cluster: str) -> ClusterModels:
    """The model classes for ``cluster``'s tables, built on first use and cached.

    The cluster must be in ``settings.SLURM_CLUSTERS`` (read on every call, so
    ``override_settings`` works and a cluster removed from the settings stops resolving).
    """
    clusters = [str(name) for name in settings.SLURM_CLUSTERS]
    if cluster not in clusters:
        raise ValueError(f"Unknown Slurm cluster {cluster!r}: SLURM_CLUSTERS is {clusters!r}.")
    found = _cache.get(cluster)
    if found is not None:
        return found
    with _lock:
        # Django refuses to register a model name twice, so build each cluster's classes once.
        found = _cache.get(cluster)
        if found is None:
            found = _build_cluster_models(cluster)
            _cache[cluster] = found
    return found


def _index_name(cluster: str, name: str) -> str:
    # Index names are global in SQLite and PostgreSQL and limited to 30 characters by Django's
    # checks: a short digest of the cluster keeps them unique and short.
    digest = hashlib.sha1(cluster.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{name}_{digest}"


def _concrete(base: type, cluster: str, table: str, meta: dict[str, Any]) -> type:
    # `base` is typed as a plain class: mypy refuses abstract models where type[Model] is expected.
    # The Meta options are explicit: a dynamically built class does not inherit an abstract
    # base's Meta unless it subclasses it, and the db_table must carry the cluster name.
    meta_class = type("Meta", (), {"managed": False, "app_label": "slurm", "db_table": f"{cluster}_{table}", **meta})
    attrs = {
        "__module__": __name__,
        "__qualname__": f"{base.__name__}_{cluster}",
        "Meta": meta_class,
        "cluster": cluster,
    }
    return type(f"{base.__name__}_{cluster}", (base,), attrs)


def _build_cluster_models(cluster: str) -> ClusterModels:
    if not _CLUSTER_NAME.match(cluster):
        raise ValueError(f"{cluster!r} is not a valid Slurm cluster name.")
    # The indexes and unique keys below are the 22.05 ones the portal relies on; they only
    # matter for tables that slurm.schema.create_tables() builds (the demo and the tests).
    job = _concrete(
        Job,
        cluster,
        "job_table",
        {
            "constraints": [
                models.UniqueConstraint(fields=["id_job", "time_submit"], name=_index_name(cluster, "job_id"))
            ],
            "indexes": [
                models.Index(fields=["id_assoc"], name=_index_name(cluster, "job_assoc")),
                models.Index(fields=["id_user", "time_start", "time_end"], name=_index_name(cluster, "job_sacct")),
                models.Index(fields=["time_end", "time_eligible"], name=_index_name(cluster, "job_rollup2")),
                models.Index(fields=["id_array_job"], name=_index_name(cluster, "job_array")),
                models.Index(fields=["time_submit", "time_end"], name=_index_name(cluster, "job_purge")),
            ],
        },
    )
    step = _concrete(
        Step,
        cluster,
        "step_table",
        {"indexes": [models.Index(fields=["time_start", "time_end"], name=_index_name(cluster, "step_time"))]},
    )
    assoc = _concrete(
        Assoc,
        cluster,
        "assoc_table",
        {
            "constraints": [
                models.UniqueConstraint(fields=["user", "acct", "partition"], name=_index_name(cluster, "assoc_udex"))
            ],
            "indexes": [models.Index(fields=["acct"], name=_index_name(cluster, "assoc_acct"))],
        },
    )
    event = _concrete(
        Event,
        cluster,
        "event_table",
        {"indexes": [models.Index(fields=["time_start", "time_end"], name=_index_name(cluster, "event_time"))]},
    )
    job_script = _concrete(JobScript, cluster, "job_script_table", {})
    return ClusterModels(
        job=cast("type[Job]", job),
        step=cast("type[Step]", step),
        assoc=cast("type[Assoc]", assoc),
        event=cast("type[Event]", event),
        job_script=cast("type[JobScript]", job_script),
    )


def cluster_model_by_name(model_name: str) -> type[ClusterModel] | None:
    """The per-cluster model named ``Job_<cluster>`` (any case), building it if needed; None if there is none."""
    base_name, sep, cluster = model_name.partition("_")
    bases = {"job": "job", "step": "step", "assoc": "assoc", "event": "event", "jobscript": "job_script"}
    if not sep or base_name.lower() not in bases:
        return None
    configured = {str(name).lower(): str(name) for name in settings.SLURM_CLUSTERS}
    if cluster.lower() not in configured:
        return None
    model: type[ClusterModel] = getattr(cluster_models(configured[cluster.lower()]), bases[base_name.lower()])
    return model


def models_for(clusters: Sequence[str] | None = None) -> list[type[SlurmModel]]:
    """The global models plus the per-cluster models of ``clusters`` (default: every configured cluster)."""
    names = list(settings.SLURM_CLUSTERS) if clusters is None else list(clusters)
    result: list[type[SlurmModel]] = list(GLOBAL_MODELS)
    for name in names:
        result.extend(cluster_models(name).all())
    return result
