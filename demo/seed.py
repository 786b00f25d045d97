"""``seed_demo()``: fill a (demo) Slurm database with a realistic synthetic cluster.

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

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import connections, transaction
from django.db.models import Q

from demo.catalog import MIN_JOBS, Row
from demo.cluster import Cluster
from demo.workload import Workload
from slurm.fields import UnsignedBigIntegerField, to_signed64
from slurm.models import Account, Qos, SlurmModel, SlurmUser, Tres, cluster_models
from slurm.router import SLURM_DB_ALIAS, allow_writes, check_writes_allowed
from slurm.schema import create_tables


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


def default_now() -> int:
    """The start of the current hour (UTC): re-seeding within the hour gives identical rows."""
    current = int(time.time())
    return current - current % 3600


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
    cluster_rows = Cluster(models, random.Random(seed), users=users, accounts=accounts, days=days, now=now)
    # The order of the Random's draws is the data: the job ids' start, then people, jobs, events.
    workload = Workload(cluster_rows, jobs=jobs)
    tres, qos = cluster_rows.tres_rows(), cluster_rows.qos_rows()
    account_rows, assoc_rows, user_rows = cluster_rows.account_and_assoc_rows()
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

        for job, steps in workload.iter_jobs():
            job_buffer.append(job)
            step_buffer.extend(steps)
            if len(job_buffer) >= batch_size:
                flush()
        if job_buffer:
            flush()

        events, scripts = cluster_rows.event_rows(), workload.jobs.script_rows_out()
        models.event.objects.using(using).bulk_create(events, batch_size=batch_size)
        models.job_script.objects.using(using).bulk_create(scripts, batch_size=batch_size)
        report(f"{cluster}: {len(events)} node events, {len(scripts)} job scripts")

    summary.users = len(user_rows)
    summary.accounts = len(account_rows)
    summary.associations = len(assoc_rows)
    summary.events = len(events)
    summary.scripts = len(scripts)
    summary.states = +workload.states
    summary.seconds = time.monotonic() - began
    return summary
