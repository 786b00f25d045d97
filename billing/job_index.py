"""Billing's job index: the finished jobs' billing inputs kept in the portal's own database.

Why: a million-job window read from slurmdbd costs about 4 s of MariaDB CPU (bench/billing/),
more than the 2 s the costs of such a window may take on a 2-core machine (issue 14). The index
holds the same columns the database source reads (:class:`slurm.jobsource.packed.JobColumns`:
the jobs' integers and their texts, and their steps' CPU time summed per job) in blocks of
BLOCK_IDS job ids (``job_db_inx``), compressed numpy arrays, so a window is read from a few
blobs and turned into the frame by the same :func:`~slurm.jobsource.packed.build_frame`.

What is in a block: the rows (``deleted = 0``) that ended before ``settled_before`` (the sync's
time minus BILLING_JOB_INDEX_GRACE_SECONDS: a job's last steps may be written after its end).
Everything else is read live from slurmdbd at each request, by indexed reads only
(:class:`IndexedSource`): rows newer than the last sync (``job_db_inx > max_inx``), the block's
*open* rows (running, pending, or ended after ``settled_before`` at the sync), and every row
ending after ``settled_before`` (``rollup2``). A live row replaces its stored copy. So the frame
equals the direct read's except for a change to an already settled row (or a purge) made since
the last sync, which the next sync applies: the lag, at most BILLING_JOB_INDEX_MAX_LAG_SECONDS;
past it the source reads everything live.

The sync (:func:`sync`, the beat task ``billing.sync_job_index``, ``manage.py billing_job_index``):
one pass over the job table grouped by block (row count, highest ``mod_time``, which slurmdbd
sets on every insert and update) and one over the step table (count and sums of the billed
fields); a block whose figures differ from those it was built with (an insert, an update, a
purge: a count that fell), or whose open rows have now settled, is read again whole. Blocks
that no longer have rows are dropped. It runs in one transaction of the portal's database: a
sync cut short (a restart) leaves the index as it was, and the next one does the work again.
Nothing is written to the Slurm database.
"""

from __future__ import annotations

import io
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Max
from django.utils import timezone

from billing.models import JobIndexBlock, JobIndexState
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.expressions import INT_FIELDS, TEXT_GROUPS
from slurm.jobsource.frame import JobQuery
from slurm.jobsource.packed import JobColumns, StepArrays, TextIndex, no_steps
from slurm.models import cluster_models
from slurm.router import SLURM_DB_ALIAS

logger = logging.getLogger(__name__)

#: Job ids per block: a block is read again whole when one of its rows changes (50,000 rows: about
#: 0.2 s of MariaDB), and a million-job window is about 20 blocks (about 1 MB each, compressed).
BLOCK_IDS = 50_000
#: The blocks' data format, part of each block's signature: a new format reads every block again
#: at the next sync, and the pages read live until then.
FORMAT = 2
#: A block whose newest change is this close to its read is read again at the next sync: a change
#: in the second of the read leaves the block's highest mod_time as it was (slurmdbd's clock may
#: also differ from the portal's by some seconds).
HOT_SECONDS = 120
#: Open ids per live query (``job_db_inx IN (...)``).
OPEN_IDS_PER_QUERY = 5_000
_INX, _END = INT_FIELDS.index("job_db_inx"), INT_FIELDS.index("time_end")


# --- a block's data --------------------------------------------------------------------------
def _narrow(values: np.ndarray) -> np.ndarray:
    """int32 when every value fits (ids, times and counts mostly do): half the bytes to inflate."""
    if not len(values) or (values.min() >= np.iinfo("int32").min and values.max() <= np.iinfo("int32").max):
        return values.astype("int32")
    return values


def encode(columns: JobColumns, steps: StepArrays) -> bytes:
    """Columns and the per-job step sums (``steps``: one row per job, in the columns' order) as
    compressed ``.npz`` bytes (no pickle)."""
    arrays: dict[str, np.ndarray] = {f"int{k}": _narrow(columns.ints[:, k]) for k in range(len(INT_FIELDS))}
    for k, (codes, texts) in enumerate(zip(columns.codes, columns.texts, strict=True)):
        arrays[f"codes{k}"] = codes.astype("int32")
        arrays[f"texts{k}"] = np.array(texts.tolist() or np.zeros((0, texts.shape[1])), dtype=str)
    arrays["sec"], arrays["usec"] = _narrow(steps[1]), _narrow(steps[2])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub reads ** as allow_pickle
    return zlib.compress(buffer.getvalue(), 1)


def decode(data: bytes | memoryview) -> tuple[JobColumns, StepArrays]:
    with np.load(io.BytesIO(zlib.decompress(bytes(data))), allow_pickle=False) as found:
        ints = np.empty((len(found["int0"]), len(INT_FIELDS)), dtype="int64")
        for k in range(len(INT_FIELDS)):
            ints[:, k] = found[f"int{k}"]
        codes = [found[f"codes{k}"].astype("intp") for k in range(len(TEXT_GROUPS))]
        texts = [found[f"texts{k}"].reshape(-1, len(group)).astype(object) for k, group in enumerate(TEXT_GROUPS)]
        steps = (ints[:, _INX].copy(), found["sec"].astype("int64"), found["usec"].astype("int64"))
    return JobColumns(ints, codes, texts), steps


def encode_ids(ids: np.ndarray) -> bytes:
    return zlib.compress(np.asarray(ids, dtype="<i8").tobytes(), 1)


def decode_ids(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(zlib.decompress(bytes(data)), dtype="<i8") if data else np.zeros(0, dtype="int64")


def select_rows(columns: JobColumns, keep: np.ndarray) -> JobColumns:
    """The rows where ``keep``, each text table cut to the values they use."""
    codes, texts = [], []
    for group_codes, table in zip(columns.codes, columns.texts, strict=True):
        used, recoded = np.unique(group_codes[keep], return_inverse=True)
        codes.append(recoded.astype("intp").reshape(-1))
        texts.append(table[used] if len(used) else table[:0])
    return JobColumns(columns.ints[keep], codes, texts)


def job_cpu(inx: np.ndarray, steps: StepArrays) -> StepArrays:
    """The steps of the jobs ``inx`` (sorted) summed per job: (inx, seconds, microseconds), integers."""
    step_inx, sec, usec = steps
    if not len(inx):
        return no_steps()
    at = np.minimum(np.searchsorted(inx, step_inx), len(inx) - 1)
    hit = inx[at] == step_inx
    sums = [np.bincount(at[hit], weights=v[hit].astype("float64"), minlength=len(inx)) for v in (sec, usec)]
    return inx.copy(), sums[0].astype("int64"), sums[1].astype("int64")


def steps_of(steps: StepArrays, inx: np.ndarray) -> StepArrays:
    """Only the steps of the jobs ``inx``."""
    keep = np.isin(steps[0], inx)
    return steps[0][keep], steps[1][keep], steps[2][keep]


# --- sync ------------------------------------------------------------------------------------
@dataclass
class SyncReport:
    cluster: str
    blocks: int  # blocks in the index after the sync
    rebuilt: int
    dropped: int
    jobs: int  # jobs in the index
    seconds: float
    full: bool = True  # every block's figures compared (else the incremental look)


def _grouped(
    sql_table: str, select: str, using: str, where: str = "", params: Sequence[Any] = ()
) -> dict[int, tuple[Any, ...]]:
    """``select`` per block of ``sql_table`` (rows matching ``where``, SQL with ``%s`` for ``params``)."""
    connection = connections[using]
    div = "DIV" if connection.vendor == "mysql" else "/"
    inx = connection.ops.quote_name("job_db_inx")
    condition = f" WHERE {where}" if where else ""
    sql = f"SELECT {inx} {div} %s, {select} FROM {sql_table}{condition} GROUP BY 1"  # noqa: S608 - quoted names
    with connection.cursor() as cursor:
        cursor.execute(sql, [BLOCK_IDS, *params])
        return {int(row[0]): tuple(row[1:]) for row in cursor.fetchall()}


def signatures(
    cluster: str, using: str = SLURM_DB_ALIAS, block: int | None = None
) -> dict[int, tuple[int, int, int, str]]:
    """Per block of slurmdbd's tables: (rows, highest mod_time, highest job_db_inx, the steps' sums).

    Every block: two grouped passes (the job table: 0.65 s of MariaDB CPU for 2,000,000 rows; the
    step table). One ``block``: two primary-key ranges of BLOCK_IDS ids.
    """
    models = cluster_models(cluster)
    qn = connections[using].ops.quote_name
    where, params = "", []
    if block is not None:
        where, params = f"{qn('job_db_inx')} BETWEEN %s AND %s", [block * BLOCK_IDS, (block + 1) * BLOCK_IDS - 1]

    def grouped(model: Any, select: str) -> dict[int, tuple[Any, ...]]:
        return _grouped(qn(model._meta.db_table), select, using, where, params)

    jobs = grouped(models.job, f"COUNT(*), MAX({qn('mod_time')}), MAX({qn('job_db_inx')})")
    billed = " + ".join(qn(c) for c in ("user_sec", "sys_sec"))
    micros = " + ".join(qn(c) for c in ("user_usec", "sys_usec"))
    steps = grouped(models.step, f"COUNT(*), SUM({qn('time_end')}), SUM({billed}), SUM({micros})")
    return {
        block: (int(rows), int(mod or 0), int(top), _steps_signature(steps.get(block, ())))
        for block, (rows, mod, top) in jobs.items()
    }


def _steps_signature(sums: Iterable[Any]) -> str:
    return f"v{FORMAT}|" + ":".join(str(int(v or 0)) for v in sums)


def _dirty(stored: JobIndexBlock | None, found: tuple[int, int, int, str], settled: int) -> bool:
    if stored is None:
        return True
    rows, mod, _top, steps = found
    return (stored.rows, stored.max_mod_time, stored.steps_sum) != (rows, mod, steps) or _due(stored, settled)


def _due(stored: JobIndexBlock, settled: int) -> bool:
    """Whether a block must be read again whatever slurmdbd's figures say."""
    return (stored.next_settle is not None and stored.next_settle < settled) or (
        # Changed about when it was read (the same second, give or take the two hosts' clocks): once more.
        stored.max_mod_time >= stored.built_at - HOT_SECONDS
    )


def _candidates(
    cluster: str, using: str, state: JobIndexState, stored: dict[int, JobIndexBlock], settled: int
) -> dict[int, tuple[int, int, int, str]]:
    """The blocks an incremental sync looks at, with their figures: indexed reads only.

    Blocks of rows newer than the last sync (the primary key), of rows whose end has settled since
    (``rollup2``, index only), and those due by their own figures.
    """
    job = cluster_models(cluster).job
    qn = connections[using].ops.quote_name
    top = job.objects.using(using).aggregate(top=Max("job_db_inx"))["top"]
    blocks = {b for b, block in stored.items() if _due(block, settled)}
    if top is not None and top > state.max_inx:
        blocks |= set(range(max(state.max_inx, 0) // BLOCK_IDS, top // BLOCK_IDS + 1))
    ended = _grouped(
        qn(job._meta.db_table),
        "COUNT(*)",
        using,
        f"{qn('time_end')} >= %s AND {qn('time_end')} < %s",
        [state.settled_before, settled],
    )
    blocks |= set(ended)
    found = {}
    for block in sorted(blocks):
        found.update(signatures(cluster, using, block))
    return found


def build_block(
    cluster: str, block: int, found: tuple[int, int, int, str], now: int, settled: int, source: DatabaseSource
) -> JobIndexBlock:
    """Read one block's rows from slurmdbd; keep the settled ones, list the others as open."""
    columns, steps = source.read_id_range(cluster, block * BLOCK_IDS, (block + 1) * BLOCK_IDS - 1)
    order = np.argsort(columns.ints[:, _INX], kind="stable")
    columns = select_rows(columns, order)
    inx, end = columns.ints[:, _INX], columns.ints[:, _END]
    keep = (end > 0) & (end < settled)
    kept = select_rows(columns, keep)
    later = end[end >= settled]
    return JobIndexBlock(
        cluster=cluster,
        block=block,
        rows=found[0],
        max_mod_time=found[1],
        steps_sum=found[3],
        built_at=now,
        next_settle=int(later.min()) if len(later) else None,
        min_end=int(end[keep].min()) if keep.any() else None,
        max_end=int(end[keep].max()) if keep.any() else None,
        jobs=int(keep.sum()),
        data=encode(kept, job_cpu(inx[keep], steps)),
        open_ids=encode_ids(inx[~keep]),
    )


def sync(
    cluster: str,
    *,
    rebuild: bool = False,
    full: bool = False,
    progress: Callable[[str], None] | None = None,
    source: DatabaseSource | None = None,
) -> SyncReport:
    """Bring the index of ``cluster`` up to date with slurmdbd (``rebuild``: every block read again).

    A *full* sync (``full``, or its last one is BILLING_JOB_INDEX_CHECK_SECONDS old) compares every
    block's figures with slurmdbd's grouped passes; the others look only at the blocks of new rows,
    of rows whose end has just settled, and of blocks due (:func:`_candidates`): they cost the
    same at 2 M and 100 M jobs, and what they miss (a change to a settled job, a purge) the next
    full one applies.
    """
    started = time.monotonic()
    source = source or DatabaseSource()
    synced_at = timezone.now()
    now = int(synced_at.timestamp())
    settled = now - settings.BILLING_JOB_INDEX_GRACE_SECONDS
    with transaction.atomic():
        JobIndexState.objects.get_or_create(
            cluster=cluster, defaults={"synced_at": synced_at, "settled_before": 0, "max_inx": -1}
        )
        state = JobIndexState.objects.select_for_update().get(cluster=cluster)  # one sync of a cluster at a time
        stored = {b.block: b for b in JobIndexBlock.objects.filter(cluster=cluster).defer("data", "open_ids")}
        checked = state.checked_at
        due = checked is None or (synced_at - checked).total_seconds() >= settings.BILLING_JOB_INDEX_CHECK_SECONDS
        full = full or rebuild or due
        if full:
            found = signatures(cluster, source.using)
            gone = [b for b in stored if b not in found]
        else:
            found, gone = _candidates(cluster, source.using, state, stored, settled), []
        dirty = [b for b in sorted(found) if rebuild or _dirty(stored.get(b), found[b], settled)]
        JobIndexBlock.objects.filter(cluster=cluster, block__in=gone).delete()
        for block in gone:
            del stored[block]
        for count, block in enumerate(dirty, 1):
            made = build_block(cluster, block, found[block], now, settled, source)
            JobIndexBlock.objects.filter(cluster=cluster, block=block).delete()
            made.save(force_insert=True)
            stored[block] = made
            if progress:
                progress(f"block {count}/{len(dirty)} (ids {block * BLOCK_IDS}-): {made.jobs} finished jobs")
        jobs = sum(block.jobs for block in stored.values())
        state.synced_at, state.settled_before = synced_at, settled
        top = max((top for _rows, _mod, top, _steps in found.values()), default=-1)
        state.max_inx = top if full else max(state.max_inx, top)
        if full:
            state.checked_at = synced_at
        state.blocks, state.jobs, state.seconds = len(stored), jobs, time.monotonic() - started
        state.save()
    return SyncReport(cluster, len(stored), len(dirty), len(gone), jobs, state.seconds, full)


# --- lag -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexStatus:
    cluster: str
    synced_at: datetime | None
    checked_at: datetime | None  # the last full sync: changes to settled jobs and purges applied
    lag: timedelta | None
    usable: bool  # within BILLING_JOB_INDEX_MAX_LAG_SECONDS: pages read it
    jobs: int


def status(cluster: str, state: JobIndexState | None = None) -> IndexStatus:
    """How far behind slurmdbd the index of ``cluster`` is, and whether pages read it."""
    state = state or JobIndexState.objects.filter(cluster=cluster).first()
    if state is None or not settings.BILLING_JOB_INDEX:
        return IndexStatus(cluster, None, None, None, False, 0)
    lag = timezone.now() - state.synced_at
    usable = lag.total_seconds() <= settings.BILLING_JOB_INDEX_MAX_LAG_SECONDS
    return IndexStatus(cluster, state.synced_at, state.checked_at, lag, usable, state.jobs)


# --- reads -----------------------------------------------------------------------------------
class IndexedSource:
    """The ``database`` source, its settled finished jobs read from the index (the same frame).

    A user's or an account's jobs (an indexed read of slurmdbd already), and any query while the
    index is missing or older than BILLING_JOB_INDEX_MAX_LAG_SECONDS, are read live.
    """

    name = "database"

    def __init__(self, live: DatabaseSource | None = None) -> None:
        self.live = live or DatabaseSource()

    def fetch(self, query: JobQuery) -> pd.DataFrame:
        if query.user or query.account:
            return self.live.fetch(query)
        state = JobIndexState.objects.filter(cluster=query.cluster).first()
        if state is None or not status(query.cluster, state).usable:
            return self.live.fetch(query)
        start, end = int(query.start.timestamp()), int(query.end.timestamp())
        stored = self._stored(query.cluster, start, end)
        if stored is None:  # a block of an older format (until the next sync)
            return self.live.fetch(query)
        live = self._live(query.cluster, state, start, end)
        columns, steps = combine(stored, live)
        return self.live.assemble(columns, steps, query.cluster)

    def _stored(self, cluster: str, start: int, end: int) -> list[tuple[JobColumns, StepArrays]] | None:
        blocks = JobIndexBlock.objects.filter(cluster=cluster, max_end__gte=start, min_end__lte=end)
        parts = []
        for data, signature in blocks.order_by("block").values_list("data", "steps_sum").iterator():
            if not signature.startswith(f"v{FORMAT}|"):
                return None
            columns, steps = decode(data)
            ends = columns.ints[:, _END]
            keep = (ends >= start) & (ends <= end)
            if keep.all():
                parts.append((columns, steps))
            elif keep.any():
                parts.append((select_rows(columns, keep), steps))
        return parts

    def _live(self, cluster: str, state: JobIndexState, start: int, end: int) -> list[tuple[JobColumns, StepArrays]]:
        """Rows newer than the sync, its open rows, and rows ending after settled_before: indexed reads."""
        window = cluster_models(cluster).job.objects.filter(deleted=0, time_end__gte=start, time_end__lte=end)
        selections = [window.filter(job_db_inx__gt=state.max_inx)]
        if end >= state.settled_before:
            selections.append(window.filter(time_end__gte=max(start, state.settled_before)))
        open_ids = [
            decode_ids(d) for d in JobIndexBlock.objects.filter(cluster=cluster).values_list("open_ids", flat=True)
        ]
        ids = np.concatenate(open_ids) if open_ids else np.zeros(0, dtype="int64")
        for first in range(0, len(ids), OPEN_IDS_PER_QUERY):
            chunk = [int(i) for i in ids[first : first + OPEN_IDS_PER_QUERY]]
            selections.append(window.filter(job_db_inx__in=chunk))
        return [self.live.read_selection(jobs, cluster) for jobs in selections]


def combine(
    stored: Sequence[tuple[JobColumns, StepArrays]], live: Sequence[tuple[JobColumns, StepArrays]]
) -> tuple[JobColumns, StepArrays]:
    """One set of columns in job id order: each job once (a live read first), with its own steps only."""
    indexes = [TextIndex(len(group)) for group in TEXT_GROUPS]
    ints, codes, steps = [], [[] for _ in TEXT_GROUPS], []  # type: ignore[var-annotated]
    seen = np.zeros(0, dtype="int64")
    for columns, step_arrays in [*live, *stored]:
        if not len(columns):
            continue
        inx = columns.ints[:, _INX]
        _unique, first = np.unique(inx, return_index=True)
        keep = np.zeros(len(inx), dtype=bool)
        keep[first] = True
        keep &= ~np.isin(inx, seen)
        if not keep.any():
            continue
        kept = columns if keep.all() else select_rows(columns, keep)
        kept_inx = kept.ints[:, _INX]
        seen = np.concatenate([seen, kept_inx])
        ints.append(kept.ints)
        for k, index in enumerate(indexes):
            codes[k].append(index.recode(kept.codes[k], kept.texts[k]))
        steps.append(steps_of(step_arrays, kept_inx))
    if not ints:
        return JobColumns.empty(), no_steps()
    all_ints = np.concatenate(ints)
    order = np.argsort(all_ints[:, _INX], kind="stable")
    columns = JobColumns(
        all_ints[order],
        [np.concatenate(c)[order] for c in codes],
        [index.texts() for index in indexes],
    )
    step_inx, sec, usec = (np.concatenate(parts) for parts in zip(*steps, strict=True))
    return columns, (step_inx, sec, usec)


def clusters_to_sync() -> Iterable[str]:
    """Every cluster, when the index is on and the database source is one of BILLING_SOURCES."""
    wanted = settings.BILLING_JOB_INDEX and "database" in settings.BILLING_SOURCES
    return list(settings.SLURM_CLUSTERS) if wanted else []
