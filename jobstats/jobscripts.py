"""Job scripts: where a job's batch script comes from, and storing the ones the uploader sends.

Two sources, in order (domain 1.16 and 6):

1. ``<cluster>_job_script_table``, which slurmdbd fills when slurm.conf has
   ``AccountingStoreFlags=job_script``: the job row's ``script_hash_inx`` points at it.
2. :class:`jobstats.models.JobScript`, filled by the uploader in ``slurm_prolog/`` through
   ``POST /api/jobscripts/`` on clusters without that flag (or for jobs submitted before it).

A job is (cluster, id_job, time_submit). Our uploader sends the submit time it read from
slurmctld's spool (the script's mtime, written at submission): :func:`store_script` snaps it to
the job table's own value (within CLOCK_SLACK), or keeps it as sent when slurmdbd has no record
yet. TrailblazingTurtle's uploader sends the id only: time_submit is then looked up in the job
table when the script arrives; when that finds nothing the row keeps a NULL time_submit and
:func:`script_for` matches it by its arrival time.
Array tasks have no script of their own in slurmctld's spool: they fall back to the master's.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import Field, Model, Q, QuerySet
from django.utils import timezone

from jobstats.models import JobScript
from jobstats.services import read_prepared
from slurm.decoders import NO_VAL
from slurm.models import Job, cluster_models
from userportal.access import is_service_account
from userportal.errors import SlurmDatabaseUnavailable
from userportal.powers import may

logger = logging.getLogger(__name__)

# TrailblazingTurtle's uploader recognises a duplicate by this exact text (DRF's unique-validator
# message for TT's model, whose primary key was id_job). Never translate or reword it.
DUPLICATE_MESSAGE = "job script with this id job already exists."

# Clocks of the slurmctld host, slurmdbd and the portal differ a little.
CLOCK_SLACK = timedelta(minutes=2)
# An upload with no time_submit matches a job if it arrived between its submission and this long
# after its end: slurmctld keeps a finished job's spool for MinJobAge (300 s by default), and the
# uploader retries its queue on the next run.
MATCH_AFTER_END = timedelta(hours=1)
# The uploader keeps failed uploads for 7 days. A job record that ended longer ago than this
# before an upload arrived belongs to an earlier job with the same id (ids wrap and restart).
MAX_UPLOAD_DELAY = timedelta(days=8)

# The job-table columns script_for reads.
JOB_COLUMNS = (
    "job_db_inx", "id_job", "time_submit", "time_start", "time_end", "script_hash_inx",
    "id_array_job", "id_array_task", "het_job_id", "het_job_offset",
)  # fmt: skip

UPLOAD_PERMISSION = "jobstats.add_jobscript"
VIEW_PERMISSION = "jobstats.view_jobscript"
DELETE_PERMISSION = "jobstats.delete_jobscript"


class DuplicateScript(Exception):
    """The script of this job is already stored."""


def clean_script(text: str) -> str:
    """The script as stored: NUL characters removed, unpaired surrogates replaced.

    PostgreSQL refuses NUL in text columns, and a lone surrogate (valid in JSON's \\u escapes,
    invalid in UTF-8) would make every database driver fail to encode the row.
    """
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def script_bytes(text: str) -> int:
    return len(text.encode("utf-8", "replace"))


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


# --- storing uploads ------------------------------------------------------------------------
def resolve_time_submit(*, cluster: str, id_job: int, received_at: datetime, hint: int | None = None) -> int | None:
    """time_submit of the job record `id_job` that a script arriving at `received_at` belongs to.

    The most recent record submitted before the script arrived, unless it ended long before:
    then it is an older job with the same id and the new job's record is not in slurmdbd yet.
    With `hint` (the submit time the uploader read, as old as the job whatever the upload's
    delay), the most recent record submitted between the hint (less CLOCK_SLACK) and the
    arrival: the job's own, or its requeue's (a requeue dates a new record, not the spool).
    None when there is no such record, or when the Slurm database does not answer (an upload
    must not fail because of it: the row is matched later by its arrival time or its hint).
    """
    at = _epoch(received_at)
    slack = int(CLOCK_SLACK.total_seconds())
    lowest = max(hint - slack, 1) if hint is not None else 1
    try:
        alias, sql = _latest_record_sql(cluster)
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, [id_job, lowest, max(at, hint or 0) + slack])
            row = cursor.fetchone()
    except DatabaseError:
        logger.warning(
            "job %s/%s: Slurm database unavailable, time_submit left unknown", cluster, id_job, exc_info=True
        )
        return None
    return pick_time_submit([row] if row else [], at=at, hint=hint)


_LATEST_RECORD_SQL: dict[tuple[type, str], str] = {}


def _fields(model: type[Model], names: tuple[str, ...]) -> list[Field[Any, Any]]:
    fields = {field.name: field for field in model._meta.concrete_fields}
    return [fields[name] for name in names]


def _latest_record_sql(cluster: str) -> tuple[str, str]:
    """(alias, SQL) of the newest record ``(time_submit, time_end)`` of an id submitted in a range.

    The statement the ORM would build (filter on id_job and a time_submit range, newest first,
    one row), written once per cluster: an upload's one Slurm query without the ORM's cost.
    """
    model = cluster_models(cluster).job
    alias = router.db_for_read(model)
    key = (model, alias)
    sql = _LATEST_RECORD_SQL.get(key)
    if sql is None:
        quote = connections[alias].ops.quote_name
        table = quote(model._meta.db_table)
        job, submit, end = (quote(str(field.column)) for field in _fields(model, ("id_job", "time_submit", "time_end")))
        where = f"{job} = %s AND {submit} >= %s AND {submit} <= %s"
        sql = f"SELECT {submit}, {end} FROM {table} WHERE {where} ORDER BY {submit} DESC LIMIT 1"  # noqa: S608 - quoted
        _LATEST_RECORD_SQL[key] = sql
    return alias, sql


def pick_time_submit(records: list[tuple[int, int | None]], *, at: int, hint: int | None) -> int | None:
    """resolve_time_submit's choice among a job id's records ``(time_submit, time_end)``, newest first."""
    slack = int(CLOCK_SLACK.total_seconds())
    lowest = max(hint - slack, 1) if hint is not None else 1
    highest = max(at, hint or 0) + slack
    for time_submit, time_end in records:
        if not lowest <= time_submit <= highest:
            continue
        if hint is None and time_end and time_end < at - int(MAX_UPLOAD_DELAY.total_seconds()):
            return None
        return int(time_submit)
    return None


def store_script(
    *,
    cluster: str,
    id_job: int,
    submit_script: str,
    time_submit: int | None = None,
    uploaded_by: Any = None,
    received_at: datetime | None = None,
) -> JobScript:
    """Store an uploaded script; raise DuplicateScript when this job's script is already stored.

    Without `time_submit` it is looked up in the job table (resolve_time_submit); a sent one is
    snapped to the job table's value, or kept as sent when slurmdbd has no record yet. A known
    submission is a duplicate when its (cluster, id_job, time_submit) row exists, which the
    unique constraint also enforces under concurrency. An unresolved upload is a duplicate when
    the same script arrived recently for the same id (an uploader restarted and resent it).
    """
    received_at = received_at or timezone.now()
    script = clean_script(submit_script)
    if time_submit is None:
        time_submit = resolve_time_submit(cluster=cluster, id_job=id_job, received_at=received_at)
    else:
        hint = time_submit
        time_submit = resolve_time_submit(cluster=cluster, id_job=id_job, received_at=received_at, hint=hint) or hint
    row = JobScript(
        cluster=cluster,
        id_job=id_job,
        time_submit=time_submit,
        received_at=received_at,
        submit_script=script,
        # by id: a session's user is a lazy object, which database routers cannot inspect
        uploaded_by_id=getattr(uploaded_by, "pk", None),
    )
    if _insert_first(row):  # the usual upload: its job id's first script
        return row
    same_job = JobScript.objects.filter(cluster=cluster, id_job=id_job)
    if time_submit is not None:
        # One read: this submission's row (a duplicate), or the same script sent before slurmdbd
        # knew the job (a NULL row, or one dated by the uploader's hint: now dated exactly).
        slack = int(CLOCK_SLACK.total_seconds())
        earlier = Q(time_submit__isnull=True, received_at__gte=_moment(time_submit) - CLOCK_SLACK) | Q(
            time_submit__range=(time_submit - slack, time_submit + slack)
        )
        rows = list(
            same_job.filter(Q(time_submit=time_submit) | earlier)
            .order_by("-received_at")
            .values_list("pk", "time_submit", "submit_script")[:20]
        )
        if any(row_submit == time_submit for _pk, row_submit, _text in rows):
            raise DuplicateScript(f"{cluster}/{id_job}@{time_submit}")
        matches = [pk for pk, _row_submit, text in rows if text == script]
        if matches:
            try:
                with transaction.atomic(using=router.db_for_write(JobScript)):
                    JobScript.objects.filter(pk=matches[0]).exclude(time_submit=time_submit).update(
                        time_submit=time_submit
                    )
            except IntegrityError:  # a concurrent upload stored this submission meanwhile
                pass
            raise DuplicateScript(f"{cluster}/{id_job}@{time_submit}")
    elif _same_script(same_job.filter(received_at__gte=received_at - MAX_UPLOAD_DELAY), script):
        raise DuplicateScript(f"{cluster}/{id_job}")
    _write(row, lambda: row.save(force_insert=True))
    return row


def _write(row: JobScript, statement: Any, connection: Any = None) -> Any:
    """Run `statement` (a write of `row`, on `connection`: JobScript's by default): DuplicateScript
    when a concurrent upload of the same submission won the race. A savepoint only inside a
    transaction (where a failed statement must not break it); in autocommit the statement is its
    own transaction."""
    if connection is None:
        connection = connections[router.db_for_write(JobScript)]
    try:
        if connection.in_atomic_block:
            with transaction.atomic(using=connection.alias):
                return statement()
        return statement()
    except IntegrityError as exc:
        raise DuplicateScript(f"{row.cluster}/{row.id_job}@{row.time_submit}") from exc


# The columns _insert_first writes, in its statement's order.
INSERT_COLUMNS = ("cluster", "id_job", "time_submit", "received_at", "submit_script", "uploaded_by")


_INSERT_FIRST_SQL: dict[str, str] = {}


@functools.cache
def _insert_fields() -> list[Field[Any, Any]]:
    return _fields(JobScript, INSERT_COLUMNS)


def _insert_first_sql(connection: Any, fields: list[Field[Any, Any]]) -> str:
    quote = connection.ops.quote_name
    table = quote(JobScript._meta.db_table)
    if connection.vendor == "postgresql":  # its SELECT types a bare NULL as text: say each column's type
        values = ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in fields)
    else:
        values = ", ".join("%s" for _field in fields)
    columns = ", ".join(quote(field.column) for field in fields)
    dual = " FROM DUAL" if connection.vendor == "mysql" else ""
    same_id = f"{quote(fields[0].column)} = %s AND {quote(fields[1].column)} = %s"
    sql = f"INSERT INTO {table} ({columns}) SELECT {values}{dual} WHERE NOT EXISTS "
    sql += f"(SELECT 1 FROM {table} WHERE {same_id})"  # noqa: S608 - quoted names
    if connection.vendor == "postgresql":
        sql += f" RETURNING {quote(JobScript._meta.pk.column)}"
    return sql


def _insert_first(row: JobScript) -> bool:
    """INSERT `row` unless a script of its (cluster, id_job) is stored: whether it was (its pk set).

    One statement (INSERT ... SELECT ... WHERE NOT EXISTS, served by the unique key's prefix)
    instead of a read then an INSERT. When no row of the id exists, store_script's duplicate
    checks (all among that id's rows) find nothing: the same result as they would give.
    """
    alias = router.db_for_write(JobScript)
    connection = connections[alias]
    fields = _insert_fields()
    sql = _INSERT_FIRST_SQL.get(alias) or _INSERT_FIRST_SQL.setdefault(alias, _insert_first_sql(connection, fields))
    returning = connection.vendor == "postgresql"
    params = [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
    params += params[:2]

    def insert() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if returning:
                found = cursor.fetchone()
                return found[0] if found else None
            return cursor.lastrowid if cursor.rowcount == 1 else None

    pk = _write(row, insert, connection)
    if pk is None:
        return False
    row.pk = pk
    row._state.adding = False
    row._state.db = alias
    return True


def _same_script(scripts: QuerySet[JobScript], script: str) -> list[int]:
    """Ids of the (at most 20 most recent) rows of `scripts` whose text is `script`.

    Compared in Python, not SQL: MariaDB's default collation compares text case-insensitively.
    """
    recent = scripts.order_by("-received_at").values_list("pk", "submit_script")[:20]
    return [pk for pk, text in recent if text == script]


# --- who may upload and read them -----------------------------------------------------------
def may_upload(user: Any) -> bool:
    """Service accounts upload; staff need the power (userportal.powers)."""
    return is_service_account(user) or may(user, UPLOAD_PERMISSION)


def can_read_jobscripts(user: Any) -> bool:
    """Staff with the view permission: job scripts hold users' paths, and sometimes their secrets."""
    return bool(user.is_authenticated and user.is_staff and user.has_perm(VIEW_PERMISSION))


def can_delete_jobscripts(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_staff and user.has_perm(DELETE_PERMISSION))


def jobscripts_visible_to(user: Any) -> QuerySet[JobScript]:
    """The uploaded scripts `user` may read through the API: all of them, or none."""
    scripts = JobScript.objects.select_related("uploaded_by")
    return scripts.all() if can_read_jobscripts(user) else scripts.none()


# --- the job page's question ----------------------------------------------------------------
@dataclass(frozen=True)
class _Record:
    id_job: int
    time_submit: int
    time_end: int
    script_hash_inx: int
    parent: int  # the array master or het-job leader whose script this job runs; 0 if none


def script_for(*, cluster: str, job: Any) -> str | None:
    """The batch script of `job` (a job-table row of `cluster`), or None when none was kept.

    `job` is a model instance from ``cluster_models(cluster).job`` (fields missing from a
    ``.only()`` queryset are read in one query), or any object with the row's ``job_db_inx``.
    Reads the Slurm database only; raises SlurmDatabaseUnavailable when it does not answer.
    """
    try:
        record = _record(cluster, job)
        if record is None:
            return None
        script = _slurm_script(cluster, record)
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    if script is None:
        script = _uploaded_script(cluster, record.id_job, record)
    if script is None and record.parent:
        script = _parent_script(cluster, record)
    return script


def _record(cluster: str, job: Any) -> _Record | None:
    model = cluster_models(cluster).job
    row: Any = job
    if not isinstance(job, model) or set(JOB_COLUMNS) & job.get_deferred_fields():
        row = model.objects.filter(job_db_inx=job.job_db_inx).only(*JOB_COLUMNS).first()
        if row is None:
            return None
    return _as_record(row)


def _as_record(row: Job) -> _Record:
    parent = 0
    if row.id_array_job and row.id_array_task != NO_VAL and row.id_array_job != row.id_job:
        parent = row.id_array_job
    elif row.het_job_id and row.het_job_offset != NO_VAL and row.het_job_id != row.id_job:
        parent = row.het_job_id
    return _Record(
        id_job=row.id_job,
        time_submit=row.time_submit or 0,
        time_end=row.time_end or 0,
        script_hash_inx=row.script_hash_inx or 0,
        parent=parent,
    )


def _slurm_script(cluster: str, record: _Record) -> str | None:
    if not record.script_hash_inx:
        return None
    found = (
        cluster_models(cluster)
        .job_script.objects.filter(hash_inx=record.script_hash_inx)
        .values_list("batch_script", flat=True)
        .first()
    )
    if isinstance(found, bytes):  # a binary collation hands back bytes
        found = found.decode("utf-8", "replace")
    return found or None


def _uploaded_script(cluster: str, id_job: int, record: _Record) -> str | None:
    """The upload for `id_job` that belongs to `record`'s submission (or to its lifetime)."""

    def uploads(job: int) -> QuerySet[JobScript]:
        return JobScript.objects.filter(cluster=cluster, id_job=job).order_by("-received_at", "-id")

    if record.time_submit:
        # This submission's upload, or one dated by the uploader's hint (the spool's mtime) before
        # slurmdbd knew the job, within the slack: one query (compiled once), the exact one preferred.
        slack = int(CLOCK_SLACK.total_seconds())
        near = read_prepared(
            ("uploaded-near", cluster),
            lambda job, first, last: (
                uploads(job).filter(time_submit__range=(first, last)).only("time_submit", "submit_script")[:10]
            ),
            id_job,
            record.time_submit - slack,
            record.time_submit + slack,
        )
        if near:
            return next(
                (row.submit_script for row in near if row.time_submit == record.time_submit), near[0].submit_script
            )
        start = _moment(record.time_submit) - CLOCK_SLACK
        end = (_moment(record.time_end) if record.time_end else timezone.now()) + MATCH_AFTER_END
        return (
            uploads(id_job)
            .filter(time_submit__isnull=True, received_at__range=(start, end))
            .values_list("submit_script", flat=True)
            .first()
        )
    return None


def _parent_script(cluster: str, record: _Record) -> str | None:
    """An array task's (or het-job component's) script: the master's, which slurmctld spooled."""
    try:
        parent = (
            cluster_models(cluster)
            .job.objects.filter(id_job=record.parent, time_submit__lte=record.time_submit or 2**62)
            .order_by("-time_submit")
            .only(*JOB_COLUMNS)
            .first()
        )
        parent_record = _as_record(parent) if parent is not None else None
        script = _slurm_script(cluster, parent_record) if parent_record else None
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    if script is not None:
        return script
    # The master's own record (or, if it is gone, the task's) dates the upload made under its id.
    return _uploaded_script(cluster, record.parent, parent_record or record)
