"""The ``database`` job source: the Slurm accounting database through the read-only models.

Jobs, and their steps' CPU time summed per job (as sacct's TotalCPU is), read *packed* on
MariaDB: GROUP_CONCAT returns a chunk of jobs as a few strings parsed by numpy and pandas
(:mod:`slurm.jobsource.packed`), no Python object per row. Other vendors read rows.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from django.db import DatabaseError, connections
from django.db.models import Count, F, Max, Min, Sum

from slurm.jobsource.expressions import (
    INT_FIELDS,
    ROW_SEPARATOR,
    ROW_TEXTS,
    TEXT_GROUPS,
    VALUE_SEPARATOR,
    GroupConcat,
    Joined,
    int_values,
    job_values,
    joined_texts,
    step_values,
)
from slurm.jobsource.frame import JobQuery, JobSourceError, empty_frame, int_array, text_column
from slurm.jobsource.packed import (
    JobColumns,
    Packed,
    StepArrays,
    TextIndex,
    as_text,
    build_frame,
    concat_steps,
    id_ranges,
    no_steps,
    parse_packed,
    text_table,
)
from slurm.models import Tres, cluster_models
from slurm.router import SLURM_DB_ALIAS
from slurm.visibility import jobs_of_account, jobs_of_user_by_uid

#: Rows read per fetchmany() on the row path (other vendors, and the packed path's fallback).
DB_CHUNK_ROWS = 100_000
#: Job ids (``job_db_inx``) per packed query of a whole-cluster window: at most that many rows,
#: about 6 MB of text at ~140 bytes a row. MariaDB cuts a GROUP_CONCAT at max_allowed_packet
#: (16 MB by default, as slurmdbd's documentation asks); a chunk that was cut is read again in halves.
PACKED_CHUNK_IDS = 40_000
#: Connections reading the chunks of a whole-cluster window at once: MariaDB runs a query on one
#: core, and converting each row is most of a million-job fetch's time.
PACKED_CONNECTIONS = 2
#: Vendors whose GROUP_CONCAT packs rows into one string (slurmdbd's MariaDB/MySQL; SQLite for the
#: demo and the tests). Others (PostgreSQL in the tests) read rows.
PACKED_VENDORS = ("mysql", "sqlite")
#: MariaDB's warning "Row N was cut by GROUP_CONCAT()".
ER_CUT_VALUE_GROUP_CONCAT = 1260
#: Selected jobs per job id in their id range from which steps are read by id range, not by a join.
STEP_RANGE_DENSITY = 0.25


def records_frame(rows: Sequence[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """Rows as column arrays: int64 where every value is an int, else objects (no per-cell inference)."""
    data: dict[str, np.ndarray] = {}
    for name, values in zip(columns, zip(*rows, strict=True), strict=True):
        array = None
        if isinstance(values[0], int):
            try:
                array = np.array(values, dtype="int64")
            except (TypeError, ValueError, OverflowError):  # a NULL, or an unsigned value past int64
                array = None
        data[name] = array if array is not None else np.array(values, dtype=object)
    return pd.DataFrame(data, copy=False)


class DatabaseSource:
    """The Slurm accounting database through the read-only models.

    Built for a million rows (bench/billing/). The window is a ``time_end`` range. A whole
    cluster's window is first bounded by job id (an index-only range of ``rollup2``), then read in
    chunks of PACKED_CHUNK_IDS ids, each a primary-key range: one query per chunk returns the
    chunk's jobs *packed* (GROUP_CONCAT: their integers in one string, their texts in two more)
    and one its steps, so no Python object is made per row or per value. On MariaDB the chunks
    are read by PACKED_CONNECTIONS connections at once (outside a transaction: a test's
    uncommitted rows are not visible to other connections). A user's or an account's jobs are
    packed by one query, and their steps summed in SQL. A packed read that MariaDB cut (longer
    than max_allowed_packet) is read again in halves; one that cannot be parsed (a text holding
    a tab or a newline) is read row by row, as are all reads on other vendors.
    """

    name = "database"

    def __init__(self, using: str = SLURM_DB_ALIAS, *, workers: int | None = None) -> None:
        self.using = using
        self.workers = workers  # connections for a whole-cluster window; None: PACKED_CONNECTIONS

    def fetch(self, query: JobQuery) -> pd.DataFrame:
        try:
            return self._fetch(query)
        except DatabaseError as exc:
            raise JobSourceError(f"slurmdb: {exc}") from exc

    def _fetch(self, query: JobQuery) -> pd.DataFrame:
        models = cluster_models(query.cluster)
        if query.user:
            # Same rows as jobs_of_user(), found through the job table's (id_user, time_end, ...)
            # index instead of every row of the user's associations.
            jobs = jobs_of_user_by_uid(query.user, query.cluster)
        elif query.account:
            jobs = jobs_of_account(query.account, query.cluster)
        else:
            jobs = models.job.objects.filter(deleted=0)
        start, end = int(query.start.timestamp()), int(query.end.timestamp())
        jobs = jobs.using(self.using).filter(time_end__gte=start, time_end__lte=end).order_by()
        steps = models.step.objects.using(self.using).order_by()
        packed = connections[self.using].vendor in PACKED_VENDORS
        if query.user or query.account:
            selection = self._packed_selection(jobs) if packed else None
            columns = selection if selection is not None else self._row_columns(jobs)
            step_arrays = self._row_steps(jobs, steps, columns) if len(columns) else no_steps()
        else:
            # The whole cluster: bound the primary key by the window first (an index-only range of
            # rollup2), so the server reads the window's part of the table, not all of it.
            found = self._id_bounds(models.job, start, end)
            if found is None:
                return empty_frame()
            low, high = found
            if packed:
                columns, step_arrays = self._read_ranges(jobs, steps, id_ranges(low, high, PACKED_CHUNK_IDS))
            else:
                columns = self._row_columns(jobs.filter(job_db_inx__gte=low, job_db_inx__lte=high))
                step_arrays = self._row_steps(jobs, steps, columns) if len(columns) else no_steps()
        return self.assemble(columns, step_arrays, query.cluster)

    # -- for a store of these columns (billing's job index) --
    def assemble(self, columns: JobColumns, step_arrays: StepArrays, cluster: str) -> pd.DataFrame:
        """The frame of read columns: their users (association table) and TRES names looked up now."""
        if not len(columns):
            return empty_frame()
        assoc_ids = [int(a) for a in pd.unique(columns.ints[:, INT_FIELDS.index("id_assoc")])]
        assoc = cluster_models(cluster).assoc
        users = dict(assoc.objects.using(self.using).filter(id_assoc__in=assoc_ids).values_list("id_assoc", "user"))
        catalog = Tres.catalog(using=self.using)
        return build_frame(columns, step_arrays, users, catalog, cluster)

    def read_id_range(self, cluster: str, low: int, high: int) -> tuple[JobColumns, StepArrays]:
        """Every row (``deleted = 0``, finished or not) of the id range ``[low, high]`` and its steps, in id order."""
        models = cluster_models(cluster)
        jobs = models.job.objects.using(self.using).filter(deleted=0).order_by()
        steps = models.step.objects.using(self.using).order_by()
        if connections[self.using].vendor in PACKED_VENDORS:
            return self._read_ranges(jobs, steps, id_ranges(low, high, PACKED_CHUNK_IDS))
        return self._rows_of_range(jobs, steps, (low, high))

    def read_selection(self, jobs: Any, cluster: str) -> tuple[JobColumns, StepArrays]:
        """The rows of a job queryset (a few: one packed query) and their steps' CPU time."""
        jobs = jobs.using(self.using).order_by()
        steps = cluster_models(cluster).step.objects.using(self.using).order_by()
        selection = self._packed_selection(jobs) if connections[self.using].vendor in PACKED_VENDORS else None
        columns = selection if selection is not None else self._row_columns(jobs)
        return columns, (self._row_steps(jobs, steps, columns) if len(columns) else no_steps())

    def _id_bounds(self, job: Any, start: int, end: int) -> tuple[int, int] | None:
        """The lowest and highest job id ending in [start, end]: an index-only range of rollup2.

        Only indexed columns (no ``deleted``): rollup2 answers alone, and a superset bounds as
        well. With several connections, each half of the window is bounded by its own.
        """

        def bounds(first: int, last: int) -> dict[str, Any]:
            window = job.objects.using(self.using).filter(time_end__gte=first, time_end__lte=last)
            return window.order_by().aggregate(low=Min("job_db_inx"), high=Max("job_db_inx"))

        if self._workers(2) > 1 and end > start:
            middle = (start + end) // 2
            found = self._in_threads([lambda: bounds(start, middle), lambda: bounds(middle + 1, end)])
        else:
            found = [bounds(start, end)]
        lows = [int(f["low"]) for f in found if f["low"] is not None]
        highs = [int(f["high"]) for f in found if f["high"] is not None]
        return (min(lows), max(highs)) if lows else None

    def _in_threads(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        """Each call on a thread and a connection of its own; their results, or the first error."""
        results: list[Any] = [None] * len(calls)
        errors: list[BaseException] = []

        def run(i: int, call: Callable[[], Any]) -> None:
            try:
                results[i] = call()
            except BaseException as exc:  # handed to the calling thread, which raises it
                errors.append(exc)
            finally:
                connections[self.using].close()  # this thread's own connection

        threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    # -- packed reads (GROUP_CONCAT) --
    def _prepare(self, connection: Any) -> int | None:
        """Let a GROUP_CONCAT be as long as a packet may be (MariaDB's default: 1 KB); return that length.

        None: no limit (SQLite's string limit is an error, not a cut).
        """
        if connection.vendor != "mysql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION group_concat_max_len = @@global.max_allowed_packet")
            cursor.execute("SELECT @@session.group_concat_max_len")
            return int(cursor.fetchone()[0])

    @staticmethod
    def _was_cut(connection: Any, limit: int | None, values: Sequence[str | None]) -> bool:
        """Whether MariaDB cut one of ``values``: its warning 1260, or a value as long as the limit.

        The cut can fall inside the last value, which then still parses: the length is checked
        too (a value a few bytes short of the limit counts: the cut keeps whole characters).
        """
        if limit is None:
            return False
        for value in values:
            if value is not None and len(value) * 4 >= limit - 4 and len(value.encode()) >= limit - 4:
                return True
        with connection.cursor() as cursor:
            cursor.execute("SHOW WARNINGS")
            return any(int(row[1]) == ER_CUT_VALUE_GROUP_CONCAT for row in cursor.fetchall())

    def _read_packed(self, jobs: Any, steps: Any | None, bounds: tuple[int, int] | None, limit: int | None) -> Packed:
        """One chunk's jobs (and steps, for an id range) packed, on the calling thread's connection.

        ``limit``: what :meth:`_prepare` returned for that connection.
        """
        connection = connections[self.using]
        if bounds is not None:
            jobs = jobs.filter(job_db_inx__gte=bounds[0], job_db_inx__lte=bounds[1])
        texts = {
            f"texts_{i}": GroupConcat(joined_texts(jobs.model, group), ROW_SEPARATOR)
            for i, group in enumerate(TEXT_GROUPS)
        }
        found = jobs.aggregate(
            rows=Count("*"),
            ints=GroupConcat(Joined(*int_values(), separator=VALUE_SEPARATOR), VALUE_SEPARATOR),
            **texts,
        )
        packed = Packed(int(found["rows"]), as_text(found["ints"]), [as_text(found[name]) for name in texts], False)
        packed.cut = self._was_cut(connection, limit, [packed.ints, *packed.texts])
        if steps is not None and bounds is not None and packed.rows and not packed.cut:
            summed = steps.filter(job_db_inx__gte=bounds[0], job_db_inx__lte=bounds[1]).aggregate(
                rows=Count("*"), values=GroupConcat(Joined(*step_values(), separator=VALUE_SEPARATOR), VALUE_SEPARATOR)
            )
            packed.step_rows, packed.steps = int(summed["rows"]), as_text(summed["values"])
            packed.cut = self._was_cut(connection, limit, [packed.steps])
        return packed

    def _packed_selection(self, jobs: Any) -> JobColumns | None:
        """A user's or an account's jobs in one packed query; None when it must be read row by row."""
        limit = self._prepare(connections[self.using])
        parsed = parse_packed(self._read_packed(jobs, None, None, limit))
        return parsed[0] if parsed else None

    def _workers(self, chunks: int) -> int:
        connection = connections[self.using]
        if connection.vendor != "mysql":
            return 1
        if self.workers is not None:
            count = self.workers
        else:
            count = 1 if connection.in_atomic_block else PACKED_CONNECTIONS
        return max(1, min(count, chunks))

    def _read_ranges(self, jobs: Any, steps: Any, ranges: list[tuple[int, int]]) -> tuple[JobColumns, StepArrays]:
        """The jobs and steps of consecutive id ranges, packed, in id order."""
        parts: dict[int, tuple[np.ndarray, list[np.ndarray], StepArrays]] = {}
        indexes = [TextIndex(len(group)) for group in TEXT_GROUPS]

        def take(bounds: tuple[int, int], packed: Packed) -> list[tuple[int, int]]:
            """Keep a chunk (parsed while the next ones are read); or the halves to read instead of a cut one."""
            parsed = parse_packed(packed)
            if parsed is None and packed.cut and bounds[1] > bounds[0]:
                middle = (bounds[0] + bounds[1]) // 2
                return [(bounds[0], middle), (middle + 1, bounds[1])]
            columns, step_arrays = parsed or self._rows_of_range(jobs, steps, bounds)
            codes = [
                index.recode(group_codes, texts)
                for index, group_codes, texts in zip(indexes, columns.codes, columns.texts, strict=True)
            ]
            parts[bounds[0]] = (columns.ints, codes, step_arrays)
            return []

        workers = self._workers(len(ranges))
        if workers > 1:
            self._read_in_threads(jobs, steps, ranges, workers, take)
        else:
            limit = self._prepare(connections[self.using])
            todo = deque(ranges)
            while todo:
                bounds = todo.popleft()
                todo.extendleft(reversed(take(bounds, self._read_packed(jobs, steps, bounds, limit))))
        ordered = [parts[start] for start in sorted(parts)]
        if not ordered:
            return JobColumns.empty(), no_steps()
        columns = JobColumns(
            np.concatenate([p[0] for p in ordered]),
            [np.concatenate([p[1][g] for p in ordered]) for g in range(len(TEXT_GROUPS))],
            [index.texts() for index in indexes],
        )
        return columns, concat_steps([p[2] for p in ordered])

    def _read_in_threads(
        self,
        jobs: Any,
        steps: Any,
        ranges: list[tuple[int, int]],
        workers: int,
        take: Callable[[tuple[int, int], Packed], list[tuple[int, int]]],
    ) -> None:
        """Read chunks on ``workers`` connections of their own; parse them here as they come."""
        todo: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        done: queue.SimpleQueue[tuple[tuple[int, int] | None, Packed | BaseException]] = queue.SimpleQueue()
        stop = threading.Event()

        def work() -> None:
            try:
                limit = self._prepare(connections[self.using])
                while not stop.is_set() and (bounds := todo.get()) is not None:
                    try:
                        done.put((bounds, self._read_packed(jobs, steps, bounds, limit)))
                    except Exception as exc:  # handed to the calling thread, which raises it
                        done.put((bounds, exc))
            except BaseException as exc:  # no connection, or an interrupt: the calling thread raises it
                done.put((None, exc))
            finally:
                connections[self.using].close()  # this thread's own connection

        for chunk in ranges:
            todo.put(chunk)
        pending = len(ranges)
        threads = [threading.Thread(target=work, name=f"jobsource-{i}", daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        try:
            while pending:
                read, result = done.get()
                if isinstance(result, BaseException):
                    raise result
                assert read is not None
                pending -= 1
                for half in take(read, result):
                    todo.put(half)
                    pending += 1
        finally:
            stop.set()
            for _thread in threads:
                todo.put(None)
            for thread in threads:
                thread.join()

    # -- row reads (other vendors, and fallbacks) --
    def _row_columns(self, selected: Any) -> JobColumns:
        frame = self._frame(job_values(selected), [*INT_FIELDS, *ROW_TEXTS])
        if frame.empty:
            return JobColumns.empty()
        ints = np.column_stack([int_array(frame[name]) for name in INT_FIELDS])
        codes, texts, column = [], [], 0
        for group in TEXT_GROUPS:
            values = [text_column(frame[ROW_TEXTS[column + k]]) for k in range(len(group))]
            column += len(group)
            group_codes, distinct = pd.factorize(pd.Series(list(zip(*values, strict=True)), dtype=object))
            codes.append(group_codes)
            texts.append(text_table([tuple(v) for v in distinct], len(group)))
        return JobColumns(ints, codes, texts)

    def _rows_of_range(self, jobs: Any, steps: Any, bounds: tuple[int, int]) -> tuple[JobColumns, StepArrays]:
        columns = self._row_columns(jobs.filter(job_db_inx__gte=bounds[0], job_db_inx__lte=bounds[1]))
        return columns, self._step_rows(*self._summed_steps(steps, *bounds).query.get_compiler(self.using).as_sql())

    @staticmethod
    def _summed_steps(steps: Any, low: int, high: int) -> Any:
        return (
            steps.filter(job_db_inx__gte=low, job_db_inx__lte=high)
            .values("job_db_inx")
            .annotate(sec=Sum(F("user_sec") + F("sys_sec")), usec=Sum(F("user_usec") + F("sys_usec")))
            .order_by()
            .values_list("job_db_inx", "sec", "usec")
        )

    def _row_steps(self, jobs: Any, steps: Any, columns: JobColumns) -> StepArrays:
        """CPU time of the selected jobs' steps, summed per job in SQL over those steps only.

        Job ids (``job_db_inx``) grow with submission, so a time window selects a dense id range:
        then one primary-key range scan of the steps (the few steps of unselected jobs inside it
        are dropped when the sums are matched to the jobs). A sparse selection (one user over a
        long window) joins the job query instead, driven from the selected jobs.
        """
        inx = columns.ints[:, 0]
        low, high = int(inx.min()), int(inx.max())
        if len(inx) >= STEP_RANGE_DENSITY * (high - low + 1):
            sql, params = self._summed_steps(steps, low, high).query.get_compiler(using=self.using).as_sql()
            return self._step_rows(sql, tuple(params))
        connection = connections[self.using]
        qn = connection.ops.quote_name
        inner, params = jobs.values_list("job_db_inx").query.get_compiler(using=self.using).as_sql()
        step = qn(steps.model._meta.db_table)
        sql = (
            f"SELECT s.{qn('job_db_inx')}, SUM(s.{qn('user_sec')} + s.{qn('sys_sec')}),"  # noqa: S608 - names quoted
            f" SUM(s.{qn('user_usec')} + s.{qn('sys_usec')})"
            f" FROM {step} s INNER JOIN ({inner}) j ON s.{qn('job_db_inx')} = j.{qn('job_db_inx')}"
            f" GROUP BY s.{qn('job_db_inx')}"
        )
        return self._step_rows(sql, tuple(params))

    def _step_rows(self, sql: str, params: Sequence[Any]) -> StepArrays:
        frame = self._frame_sql(sql, tuple(params), ["job_db_inx", "sec", "usec"])
        if frame.empty:
            return no_steps()
        return int_array(frame["job_db_inx"]), int_array(frame["sec"]), int_array(frame["usec"])

    def _frame(self, queryset: Any, columns: list[str]) -> pd.DataFrame:
        # A raw cursor: a million rows through values_list cost seconds of Python per row.
        sql, params = queryset.query.get_compiler(using=self.using).as_sql()
        return self._frame_sql(sql, tuple(params), columns)

    def _frame_sql(self, sql: str, params: tuple[Any, ...], columns: list[str]) -> pd.DataFrame:
        connection = connections[self.using]
        chunks: list[pd.DataFrame] = []
        if connection.vendor == "mysql":
            from MySQLdb.cursors import SSCursor  # the server streams rows as it finds them

            connection.ensure_connection()
            with connection.wrap_database_errors:
                cursor = connection.connection.cursor(SSCursor)
                try:
                    cursor.execute(sql, params)
                    while rows := cursor.fetchmany(DB_CHUNK_ROWS):
                        chunks.append(records_frame(rows, columns))
                finally:
                    cursor.close()
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(DB_CHUNK_ROWS):
                    chunks.append(records_frame(rows, columns))
        if not chunks:
            return pd.DataFrame({name: [] for name in columns})
        return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)
