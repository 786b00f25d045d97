"""Factories for Slurm accounting rows in tests: a small, readable way to build the slurm database.

Usage (the tables must exist first: call ``slurm.schema.create_tables()`` once per test session, outside
a transaction, e.g. from a session fixture wrapped in ``django_db_blocker.unblock()``)::

    slurm = SlurmFixtures()                       # the default cluster
    gpus = slurm.tres()                           # TresCatalog with gres/gpu, gres/gpu:a100, gres/gpu:v100
    slurm.account("def-owner")
    slurm.user("owner", ["def-owner"])
    job = slurm.job("owner", "def-owner", gpus=2, gpu_type="a100")
    slurm.step(job)                               # its batch step

Every write happens inside ``allow_writes()``; tests need ``django_db(databases=[..., "slurm"])``.
Defaults describe a plain completed one-CPU job; pass any column name to override it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from django.db.models import Max
from django.utils import timezone

from slurm.decoders import (
    MEM_PER_CPU,
    NO_VAL,
    NO_VAL64,
    TRES_BILLING,
    TRES_CPU,
    TRES_ENERGY,
    TRES_MEM,
    TRES_NODE,
    JobState,
    TresCatalog,
    format_tres,
    parse_tres,
)
from slurm.hostlists import expand_hostlist
from slurm.models import Account, Assoc, Job, Qos, SlurmUser, Step, Tres, cluster_models, default_cluster
from slurm.router import SLURM_DB_ALIAS, allow_writes

# (id, type, name) as the reference slurmdbd created them, plus a second GPU model.
STANDARD_TRES: tuple[tuple[int, str, str, int], ...] = (
    (1, "cpu", "", 0),
    (2, "mem", "", 0),
    (3, "energy", "", 0),
    (4, "node", "", 0),
    (5, "billing", "", 0),
    (6, "fs", "disk", 0),
    (7, "vmem", "", 0),
    (8, "pages", "", 0),
    (1000, "dynamic_offset", "", 1),  # placeholder row slurmdbd keeps deleted
    (1001, "gres", "gpu", 0),
    (1002, "gres", "gpu:a100", 0),
    (1003, "gres", "gpu:v100", 0),
)

# Fixed uids for the personas the whole suite uses; others get a stable uid from their name.
KNOWN_UIDS = {"root": 0, "alice": 1001, "bob": 1002}


def uid_for(username: str) -> int:
    """A stable uid for a test user: the persona's fixed uid, else one derived from the name."""
    if username in KNOWN_UIDS:
        return KNOWN_UIDS[username]
    return 20000 + zlib.crc32(username.encode()) % 40000


class SlurmFixtures:
    """Builders for one cluster's rows (and the global tables) on the ``slurm`` test database."""

    def __init__(self, cluster: str | None = None, *, using: str = SLURM_DB_ALIAS, now: int | None = None) -> None:
        self.cluster = cluster or default_cluster()
        self.models = cluster_models(self.cluster)
        self.using = using
        self.now = now if now is not None else int(timezone.now().timestamp())
        self._next_job_id: int | None = None

    # --- global tables ----------------------------------------------------------------------
    def tres(self) -> TresCatalog:
        """Make sure the standard TRES rows exist (ids 1-8, 1000, gres/gpu 1001-1003); return the catalog."""
        with allow_writes():
            existing = set(Tres.objects.using(self.using).values_list("id", flat=True))
            rows = [
                Tres(id=tres_id, type=type_, name=name, deleted=deleted, creation_time=self.now - 86400)
                for tres_id, type_, name, deleted in STANDARD_TRES
                if tres_id not in existing
            ]
            Tres.objects.using(self.using).bulk_create(rows)
        return Tres.catalog(using=self.using)

    def qos(self, name: str, **fields: Any) -> Qos:
        """The QOS ``name``, created with ``fields`` if missing (``normal`` gets id 1 when first)."""
        found = Qos.objects.using(self.using).filter(name=name).first()
        if found is not None:
            return found
        values: dict[str, Any] = {"name": name, "description": name, "creation_time": self.now - 86400, **fields}
        with allow_writes():
            qos = Qos(**values)
            qos.save(using=self.using, force_insert=True)
        return qos

    def account(self, name: str, parent: str = "root", **fields: Any) -> Assoc:
        """The account association row of ``name`` under ``parent`` (created with its acct_table row)."""
        assoc_model = self.models.assoc
        found = assoc_model.objects.using(self.using).filter(user="", acct=name, partition="").first()
        if found is not None:
            return found
        if name != "root" and parent != "root":
            self.account(parent)
        elif name != "root":
            self._root()
        with allow_writes():
            if not Account.objects.using(self.using).filter(name=name).exists():
                Account(
                    name=name,
                    description=f"{name} account",
                    organization=parent if name != "root" else "root",
                    creation_time=self.now - 86400,
                ).save(using=self.using, force_insert=True)
            row = assoc_model(
                user="",
                acct=name,
                parent_acct="" if name == "root" else parent,
                creation_time=self.now - 86400,
                **fields,
            )
            row.save(using=self.using, force_insert=True)
        return row

    def _root(self) -> Assoc:
        root = self.account("root", qos=",1,")
        if not self.models.assoc.objects.using(self.using).filter(user="root", acct="root").exists():
            self.user("root", ["root"])
        return root

    def user(
        self,
        name: str,
        accounts: Sequence[str] | str,
        default: str | None = None,
        *,
        deleted: Sequence[str] = (),
        **fields: Any,
    ) -> dict[str, int]:
        """Associate ``name`` with ``accounts`` (created under root if missing); return ``{account: id_assoc}``.

        ``default`` (the first account if not given) gets ``is_def=1``. Accounts listed in
        ``deleted`` get a removed (``deleted=1``) association, as after ``sacctmgr remove user``.
        """
        account_names = [accounts] if isinstance(accounts, str) else list(accounts)
        default = default or (account_names[0] if account_names else None)
        result: dict[str, int] = {}
        assoc_model = self.models.assoc
        with allow_writes():
            if not SlurmUser.objects.using(self.using).filter(name=name).exists():
                SlurmUser(name=name, admin_level=3 if name == "root" else 1, creation_time=self.now - 86400).save(
                    using=self.using, force_insert=True
                )
            for account in account_names:
                if account != "root":
                    self.account(account)
                row = assoc_model.objects.using(self.using).filter(user=name, acct=account, partition="").first()
                if row is None:
                    row = assoc_model(
                        user=name,
                        acct=account,
                        is_def=int(account == default),
                        deleted=int(account in deleted),
                        creation_time=self.now - 86400,
                        **fields,
                    )
                    row.save(using=self.using, force_insert=True)
                result[account] = row.id_assoc
        return result

    # --- jobs and steps ---------------------------------------------------------------------
    def assoc_id(self, user: str, account: str) -> int:
        """The id of ``user``'s association with ``account``, creating the association if missing."""
        found = (
            self.models.assoc.objects.using(self.using)
            .filter(user=user, acct=account)
            .order_by("deleted", "-id_assoc")
            .values_list("id_assoc", flat=True)
            .first()
        )
        return found if found is not None else self.user(user, [account])[account]

    def next_job_id(self) -> int:
        if self._next_job_id is None:
            highest = self.models.job.objects.using(self.using).aggregate(top=Max("id_job"))["top"]
            self._next_job_id = (highest or 0) + 1
        job_id = self._next_job_id
        self._next_job_id += 1
        return job_id

    def job(
        self,
        user: str,
        account: str,
        *,
        gpus: int = 0,
        gpu_type: str | None = "a100",
        mem_per_cpu: int | None = None,
        **overrides: Any,
    ) -> Job:
        """A job row for ``user`` in ``account``: by default a completed 1-CPU, 1000 MB job that ran 30 min.

        ``gpus`` adds generic and typed GPU TRES (both, as Slurm records them); ``mem_per_cpu``
        sets ``mem_req`` with the MEM_PER_CPU flag. A PENDING state clears the start, the end and
        the allocation; RUNNING clears the end. Any column can be overridden.
        """
        state = overrides.get("state", JobState.COMPLETED)
        cpus = overrides.get("cpus_req", 1)
        nodes = overrides.get("nodes_alloc", 1)
        if mem_per_cpu is not None:
            mem_req = MEM_PER_CPU | mem_per_cpu
            mem_total = mem_per_cpu * cpus
        else:
            mem_req = overrides.get("mem_req", 1000)
            mem_total = (mem_req & ~MEM_PER_CPU) * (cpus if mem_req & MEM_PER_CPU else nodes)
        tres = {TRES_CPU: cpus, TRES_MEM: mem_total, TRES_NODE: nodes, TRES_BILLING: cpus}
        if gpus:
            catalog = Tres.catalog(using=self.using)
            if catalog.gpu is None:
                catalog = self.tres()
            assert catalog.gpu is not None
            tres[catalog.gpu] = gpus
            typed = catalog.id_of("gres", f"gpu:{gpu_type}") if gpu_type else None
            if typed is not None:
                tres[typed] = gpus
        tres_alloc = {**tres, TRES_ENERGY: NO_VAL64}
        uid = uid_for(user)
        end = self.now - 600
        start = end - 1800
        submit = start - 60
        values: dict[str, Any] = {
            "id_job": self.next_job_id(),
            "id_assoc": self.assoc_id(user, account),
            "account": account,
            "id_user": uid,
            "id_group": uid,
            "id_qos": 1,
            "job_name": "job",
            "partition": "gpu" if gpus else "cpu",
            "state": int(state),
            "exit_code": 0,
            "cpus_req": cpus,
            "mem_req": mem_req,
            "nodes_alloc": nodes,
            "nodelist": "node01" if nodes == 1 else f"node[01-{nodes:02d}]",
            "node_inx": "0" if nodes == 1 else f"0-{nodes - 1}",
            "timelimit": 60,
            "time_submit": submit,
            "time_eligible": submit,
            "time_start": start,
            "time_end": end,
            "mod_time": end,
            "priority": 1000,
            "tres_req": format_tres(tres),
            "tres_alloc": format_tres(tres_alloc),
            "work_dir": f"/home/{user}",
            "submit_line": "sbatch job.sh",
        }
        if int(state) == JobState.PENDING:
            values.update(time_start=0, time_end=0, tres_alloc="", nodelist="None assigned", node_inx="", nodes_alloc=0)
        elif int(state) == JobState.RUNNING:
            values.update(time_end=0)
        values.update(overrides)
        with allow_writes():
            job = self.models.job(**values)
            job.save(using=self.using, force_insert=True)
        return job

    def step(self, job: Job, **overrides: Any) -> Step:
        """A step of ``job``: by default its batch step (id -5), on its first node, ending as the job did."""
        alloc = parse_tres(job.tres_alloc)
        alloc.pop(TRES_BILLING, None)  # steps carry no billing
        alloc.pop(TRES_ENERGY, None)
        nodes = expand_hostlist(job.nodelist)
        values: dict[str, Any] = {
            "job_db_inx": job.job_db_inx,
            "id_step": -5,
            "step_het_comp": NO_VAL,
            "step_name": "batch",
            "nodelist": nodes[0] if nodes else "",
            "nodes_alloc": 1,
            "node_inx": "0",
            "task_cnt": 1,
            "state": job.state & 0xFF,
            "exit_code": job.exit_code,
            "time_start": job.time_start,
            "time_end": job.time_end,
            "tres_alloc": format_tres(alloc),
        }
        values.update(overrides)
        with allow_writes():
            step = self.models.step(**values)
            step.save(using=self.using, force_insert=True)
        return step
