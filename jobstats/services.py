"""jobstats' shared reads of the job table: records by id, their table rows, cached counts, the home card.

The pages are composed elsewhere: jobstats.listing (the user page: jobs table and current use),
jobstats.jobpage (one job's page; jobstats.waiting says why a pending job waits, jobstats.energy
prices it), jobstats.windows (graph periods) and jobstats.queries (the jobs API). Every function
runs a bounded number of queries, whatever the number of jobs; a failing accounting database
raises SlurmDatabaseUnavailable.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, overload

from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, connections
from django.db.models import Count, F, Model, Q, QuerySet, Sum
from django.db.models.base import ModelState
from django.utils.translation import gettext_lazy

from jobstats.graphs.common import JobScope
from slurm.decoders import (
    StateInfo,
    TresCatalog,
    decode_exit_code,
    decode_state,
    epoch_to_datetime,
    format_duration,
    format_timelimit,
    job_memory_mb,
    parse_tres,
)
from slurm.hostlists import expand_hostlist
from slurm.models import Tres
from slurm.visibility import jobs_of_user_by_uid, stand_in_uid, uid_of
from userportal.errors import SlurmDatabaseUnavailable

MAX_RECORDS = 20  # records of one reused job id shown on its page
MAX_ARRAY_TASKS = 1000

# Only the columns the pages show: never "all model fields" of a Slurm table.
LIST_COLUMNS = (
    "job_db_inx", "id_job", "id_array_job", "id_array_task", "het_job_id", "het_job_offset", "array_task_str",
    "array_max_tasks", "job_name", "account", "partition", "state", "exit_code", "time_submit", "time_start",
    "time_end", "timelimit", "cpus_req", "mem_req", "nodes_alloc", "nodelist", "tres_alloc", "tres_req",
)  # fmt: skip


@dataclass(frozen=True)
class HeadlineFigure:
    """One figure of the home page's jobstats card."""

    label: Any
    value: Any


@dataclass(frozen=True)
class JobSummary:
    """One record as the job tables show it (the user page, a job's other records, array tasks, a job list)."""

    job_db_inx: int
    id_job: int
    display_id: str
    name: str
    account: str
    partition: str
    state: StateInfo
    exit_code: str
    submit: datetime | None
    start: datetime | None
    end: datetime | None
    elapsed: str
    timelimit: str
    cpus: int
    memory_mb: int | None
    gpus: int
    gpu_types: dict[str, int]
    nodes: list[str]


def epoch_now(now: float | None = None) -> int:
    """``now`` (epoch seconds, for tests), or the current time, as whole seconds."""
    return int(now if now is not None else time.time())


def job_summary(job: Any, catalog: TresCatalog, *, now: float | None = None) -> JobSummary:
    alloc = parse_tres(job.tres_alloc)
    tres = alloc or parse_tres(job.tres_req)
    start = job.time_start or 0
    end = job.time_end or 0
    if start and not end:
        end = int(now or time.time())
    cpus = tres.get(catalog.cpu or 1, 0) or int(job.cpus_req or 0)
    return JobSummary(
        job_db_inx=job.job_db_inx,
        id_job=job.id_job,
        display_id=job.display_id,
        name=job.job_name or "",
        account=job.account or "",
        partition=job.partition or "",
        state=decode_state(job.state),
        exit_code=str(decode_exit_code(job.exit_code)),
        submit=epoch_to_datetime(job.time_submit),
        start=epoch_to_datetime(job.time_start),
        end=epoch_to_datetime(job.time_end),
        elapsed=format_duration(end - start) if start else "",
        timelimit=format_timelimit(job.timelimit),
        cpus=cpus,
        memory_mb=job_memory_mb(job.mem_req, cpus=cpus, nodes=job.nodes_alloc or 1, tres_alloc=alloc),
        gpus=catalog.gpu_count(tres),
        gpu_types=catalog.gpus_by_type(tres),
        nodes=expand_hostlist(job.nodelist),
    )


# The jobs table's order: the pending jobs (not started, not ended) first, newest first; then
# the others most recently started first, as TT's API (pending_first_page). Ties are broken as
# the job table's sacct_def index (id_user, time_start, time_end) orders its entries, so a
# user's listing is read backwards along that index and stops after one page (no sort of all
# the rows); the pending jobs are that index's range (uid, 0, 0).
DEFAULT_ORDER = ("-time_start", "-time_end", "-job_db_inx")
ASCENDING_ORDER = ("time_start", "time_end", "job_db_inx")
# Every user's jobs (staff, no user named): most recently submitted first, the order of the job
# table's archive_purge index (time_submit, time_end; InnoDB appends the key): a page is read
# backwards along it, where the started-first order would sort the whole table. Pending jobs,
# being the latest submitted, come first without a second query.
ALL_JOBS_ORDER = ("-time_submit", "-time_end", "-job_db_inx")
ALL_JOBS_ASCENDING = ("time_submit", "time_end", "job_db_inx")
PENDING = Q(time_start=0, time_end=0)
PENDING_ORDER = ("-job_db_inx",)


# A page reader: read(build, offset, limit, part) -> rows, where build() makes the queryset of
# ``part`` ("all", "pending" or "started"), so a reader that knows the part's SQL need not build it.
PageReader = Callable[[Callable[[], QuerySet[Any]], int, int, str], list[Any]]
# read_parts([(build, part), ...], limit) -> the first ``limit`` rows of each part, in one
# statement (UNION ALL of the parts), in no particular order.
PartsReader = Callable[[Sequence[tuple[Callable[[], QuerySet[Any]], str]]], list[Any]]


def pending_first_page(
    jobs: QuerySet[Any],
    offset: int,
    limit: int,
    read: PageReader,
    *,
    size: int | None = None,
    read_parts: PartsReader | None = None,
) -> list[Any]:
    """``limit`` jobs from ``offset`` in DEFAULT_ORDER with the pending ones moved to the front.

    In DEFAULT_ORDER the pending jobs are the last rows (time_start = time_end = 0), so the
    started part of the page is DEFAULT_ORDER's rows from ``offset - pending``. ``read(build,
    offset, limit, part)`` reads rows of ``build()`` (pending ones in PENDING_ORDER, the others in
    DEFAULT_ORDER). The first page reads the pending rows and the rest (no count); a later one
    counts the pending jobs first (a range of the sacct_def index for a user: live, never
    cached). When the whole list (``size`` rows, if known) fits in the page, one query reads it
    and the pending rows (DEFAULT_ORDER's last, already newest first) are moved to the front.
    """
    if offset == 0 and size is not None and size <= limit:
        rows = read(lambda: jobs.order_by(*DEFAULT_ORDER), 0, limit, "all")
        waiting_rows = [job for job in rows if not job.time_start and not job.time_end]
        return waiting_rows + [job for job in rows if job.time_start or job.time_end]

    def waiting() -> QuerySet[Any]:
        return jobs.filter(PENDING).order_by(*PENDING_ORDER)

    def started_jobs() -> QuerySet[Any]:
        return jobs.exclude(PENDING).order_by(*DEFAULT_ORDER)

    if offset == 0 and read_parts is not None and connections[jobs.db].features.supports_slicing_ordering_in_compound:
        # One round trip: the first ``limit`` rows of each part, ordered here (a UNION keeps no order).
        both = read_parts([(waiting, "pending"), (started_jobs, "started")])
        waiting_rows = sorted((job for job in both if _pending(job)), key=_pending_order, reverse=True)
        started_rows = sorted((job for job in both if not _pending(job)), key=_started_order, reverse=True)
        return (waiting_rows + started_rows)[:limit]
    if offset == 0:
        rows = read(waiting, 0, limit, "pending")
        pending = len(rows)
    else:
        pending = waiting().count()
        rows = read(waiting, offset, limit, "pending") if offset < pending else []
    if len(rows) >= limit:
        return rows
    started = read(started_jobs, max(offset - pending, 0), limit - len(rows), "started")
    return rows + started


def _pending(job: Any) -> bool:  # PENDING, of a row read
    return not job.time_start and not job.time_end


def _pending_order(job: Any) -> int:  # PENDING_ORDER, reversed
    return int(job.job_db_inx)


def _started_order(job: Any) -> tuple[int, int, int]:  # DEFAULT_ORDER, reversed
    return (job.time_start, job.time_end, job.job_db_inx)


# newest_submitted_page() reads at most this deep (offset + limit); deeper pages sort in MariaDB.
SUBMIT_ORDER_MAX = 1000


def _submit_order(job: Any) -> tuple[int, int, int]:
    return (job.time_submit or 0, job.time_end or 0, job.job_db_inx)


def newest_submitted_page(jobs: QuerySet[Any], offset: int, limit: int, read: PageReader) -> list[Any] | None:
    """``limit`` of one user's jobs from ``offset`` in ALL_JOBS_ORDER (newest submitted first), or None.

    No index of the job table orders one user's jobs by submit time (TT's page asks for it): the
    plain query sorts all 50,000 rows of a heavy user. A job is submitted before it starts, so
    here the rows never started (time_start = 0: pending, or cancelled while pending) are read
    whole, and the started ones along sacct_def, latest start first, in growing batches, until
    the page's last row was submitted after the last start read: no row further on can be
    newer. Same rows and order as the plain query; None (run the plain query) for a page deeper
    than SUBMIT_ORDER_MAX, or when a row read breaks the rule (submitted after it started).
    """
    need = offset + limit
    if need > SUBMIT_ORDER_MAX:
        return None
    candidates = read(lambda: jobs.filter(time_start=0).order_by(*ALL_JOBS_ORDER), 0, need, "never-started")

    def started() -> QuerySet[Any]:
        return jobs.filter(time_start__gt=0).order_by(*DEFAULT_ORDER)

    read_so_far, batch = 0, max(2 * need, 50)
    for _attempt in range(4):  # batches of b, 2b, 4b, 8b rows (each offset under twice its size)
        rows = read(started, read_so_far, batch, "started")
        if any(job.time_submit > job.time_start for job in rows):
            return None
        read_so_far += len(rows)
        top = heapq.nlargest(need, [*candidates, *rows], key=_submit_order)
        if len(rows) < batch or (len(top) == need and top[-1].time_submit > rows[-1].time_start):
            return top[offset:need]
        candidates, batch = top, 2 * batch
    return None


COUNT_CACHE_SECONDS = 300
# A count older than COUNT_CACHE_SECONDS is still answered (stale while it is recounted in the
# background) for this long; past it, or when absent, the request counts.
COUNT_STALE_SECONDS = 86400
COUNT_REFRESH_LOCK_SECONDS = 120

logger = logging.getLogger(__name__)


# A queryset, or what makes it: building one costs a request that only reads a cached count.
Jobs = QuerySet[Any] | Callable[[], QuerySet[Any]]


def _made(jobs: Jobs) -> QuerySet[Any]:
    return jobs() if callable(jobs) else jobs


def cached_count(queryset: Jobs, *, seconds: int = COUNT_CACHE_SECONDS, key: str | None = None) -> int:
    """``queryset.count()``, cached under its SQL: a count of 50,000 rows every few minutes, not per page.

    Stale while revalidating: a count older than ``seconds`` is answered at once and recounted
    in a background thread (one per count portal-wide when the cache is shared, e.g. Redis), so
    no request waits for a recount; a count stays at most ``seconds`` plus one recount behind.
    Only a count never made (or unused for COUNT_STALE_SECONDS) is counted in the request.
    ``key``: count_key(queryset), when the caller kept it (it compiles the query).
    """
    key = key or count_key(_made(queryset))
    found = cache.get(key)
    if isinstance(found, tuple) and len(found) == 2:
        value, counted_at = found
        if time.time() - counted_at >= seconds and cache.add(f"{key}:recount", 1, COUNT_REFRESH_LOCK_SECONDS):
            in_background(lambda: _recount(_made(queryset), key, unlock=True))
        return int(value)
    return _recount(_made(queryset), key)


def count_key(queryset: QuerySet[Any]) -> str:
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    return _count_key(queryset.db, sql, tuple(params))


def _count_key(db: str, sql: str, params: tuple[Any, ...]) -> str:
    return "jobstats:count:" + hashlib.sha256(f"{db}|{sql}|{params!r}".encode()).hexdigest()


def count_after_page(queryset: Jobs, count: int, offset: int, limit: int, rows: int, *, key: str | None = None) -> int:
    """``count`` checked against a page just read of ``queryset`` (``rows`` of ``limit`` from ``offset``).

    A cached count can lag the table (a job submitted since); a page read shows it: a short
    page ends the list, so the count is ``offset + rows``; a full page past the count, or an
    empty one before it, proves it wrong without giving it, so it is counted now. A corrected
    count replaces the cached one, so the totals shown always agree with the rows shown.
    """
    if rows < limit and (rows or offset == 0):
        proven = offset + rows
        if proven != count:
            cache.set(key or count_key(_made(queryset)), (proven, time.time()), COUNT_STALE_SECONDS)
        return proven
    if offset + rows > count or (rows == 0 and offset < count):
        made = _made(queryset)
        return _recount(made, key or count_key(made))
    return count


def _recount(queryset: QuerySet[Any], key: str, *, unlock: bool = False) -> int:
    value = queryset.count()
    cache.set(key, (value, time.time()), COUNT_STALE_SECONDS)
    if unlock:  # the fresh count needs no recount for COUNT_CACHE_SECONDS anyway
        cache.delete(f"{key}:recount")
    return int(value)


# Work in_background() was given during a request: started when the response has been sent.
_after_response = threading.local()


def _request_started(**_kwargs: Any) -> None:
    _after_response.work = []


def _request_finished(**_kwargs: Any) -> None:
    work, _after_response.work = getattr(_after_response, "work", None), None
    for item in work or ():
        _start(item)


request_started.connect(_request_started, dispatch_uid="jobstats-after-response-started")
request_finished.connect(_request_finished, dispatch_uid="jobstats-after-response-finished")


def in_background(work: Callable[[], object]) -> None:
    """Run ``work`` in a daemon thread with its own database connections, closed when it ends.

    During a request the thread starts once the response is sent (request_finished), so the
    request that found a count stale does not share the machine with its recount.
    """
    pending = getattr(_after_response, "work", None)
    if pending is None:
        _start(work)
    else:
        pending.append(work)


def _start(work: Callable[[], object]) -> None:

    def run() -> None:
        try:
            work()
        except Exception:  # a failed recount keeps the stale count; the next request after the lock tries again
            logger.warning("background recount failed", exc_info=True)
        finally:
            connections.close_all()

    threading.Thread(target=run, name="jobstats-recount", daemon=True).start()


class Recent(OrderedDict[Any, Any]):
    """A small least-recently-used map (one per process)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get(self, key: Any, default: Any = None) -> Any:
        found = super().get(key, default)
        if found is not default:
            with contextlib.suppress(KeyError):  # another thread's put() evicted it meanwhile
                self.move_to_end(key)
        return found

    def put(self, key: Any, value: Any) -> Any:
        self[key] = value
        if len(self) > self.size:
            with contextlib.suppress(KeyError):  # another thread evicted the oldest first
                self.popitem(last=False)
        return value


# The compiled SQL of the job pages near the top of a list, by what the SQL depends on (a list's
# shape, the part of the page, offset, limit): a page seen before is neither built nor compiled.
_STATEMENTS = Recent(2048)


@dataclass(frozen=True)
class Statement:
    """A sliced queryset compiled once: its SQL, the attribute each column fills and the columns' converters."""

    model: type[Model]
    db: str
    sql: str
    params: tuple[Any, ...]
    names: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]

    @classmethod
    def of(cls, queryset: QuerySet[Any]) -> Statement:
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        names: list[str] = [""] * len(compiler.select)
        for index in compiler.klass_info["select_fields"] if compiler.klass_info else ():
            names[index] = compiler.select[index][0].target.attname
        for alias, index in compiler.annotation_col_map.items():
            names[index] = alias
        if "" in names or (compiler.klass_info or {}).get("related_klass_infos"):
            raise ValueError("read_statement reads a model's own columns and annotations only")
        converters = compiler.get_converters([expression for expression, _sql, _alias in compiler.select])
        return cls(
            queryset.model,
            queryset.db,
            sql,
            tuple(params),
            tuple(names),
            tuple((index, tuple(functions), expression) for index, (functions, expression) in converters.items()),
        )

    def read(self, params: tuple[Any, ...] | None = None) -> list[Any]:
        """The rows, as instances of the model (only their selected fields set; the others load when read).

        ``params``: other values for the statement's placeholders (read_prepared's).
        """
        connection = connections[self.db]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.params if params is None else params)
            rows = cursor.fetchall()
        model, db, names, converters = self.model, self.db, self.names, self.converters
        found = []
        for row in rows:
            values = list(row)
            for index, functions, expression in converters:
                for function in functions:
                    values[index] = function(values[index], expression, connection)
            instance = model.__new__(model)  # what Model.from_db makes, without __init__'s per-field work
            instance.__dict__.update(zip(names, values, strict=True))
            instance._state = ModelState()
            instance._state.adding = False
            instance._state.db = db
            found.append(instance)
        return found


def read_statement(key: Hashable, build: Callable[[], QuerySet[Any]]) -> list[Any]:
    """The model instances of ``build()`` (a sliced queryset), whose SQL is compiled once per ``key``.

    ``key`` must name everything the SQL depends on; the rows are read anew every time. The
    instances are the queryset's (same fields, annotations and deferred loading), made without
    Django's per-row model machinery: half the time of a page of rows.
    """
    statement: Statement | None = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS.put(key, Statement.of(build()))
    return statement.read()


# read_prepared's stand-ins: integers inside every integer column's range that no job id (at most
# 67,108,863 in Slurm), count or epoch before 2038 reaches; words no SQL or name contains.
_INT_MARKERS = range(2_147_480_000, 2_147_480_100)
_WORD_MARKER = "portalprepared{}marker"
_INT_LIMIT = 2**62  # beyond, a field may encode the value (UnsignedBigIntegerField on PostgreSQL, SQLite)
_PREPARED: Recent = Recent(2048)


def stand_ins(values: Sequence[Any]) -> tuple[int | str, ...] | None:
    """The stand-in of each of ``values`` (integers within +-2**62, non-empty words), or None if one cannot have one."""
    markers: list[int | str] = []
    for index, value in enumerate(values):
        if type(value) is int and -_INT_LIMIT < value < _INT_LIMIT and value not in _INT_MARKERS:
            markers.append(_INT_MARKERS[index])
        elif type(value) is str and value and "portalprepared" not in value:
            markers.append(_WORD_MARKER.format(index))
        else:
            return None
    return tuple(markers)


def has_stand_in(values: Sequence[Any]) -> bool:
    """Whether one of ``values`` (or of the tuples among them) is or holds a stand-in: the statement
    of a shape whose other values hold one would take them for the request's (read_shared)."""
    for value in values:
        if isinstance(value, tuple | list) and has_stand_in(value):
            return True
        if (type(value) is int and value in _INT_MARKERS) or (isinstance(value, str) and "portalprepared" in value):
            return True
    return False


Places = tuple[tuple[int, int, bool], ...]  # (parameter's index, value's index, the whole parameter)


def _marker_places(params: Sequence[Any], markers: Sequence[int | str]) -> Places | None:
    """Every place of each marker in ``params``, or None if one stands nowhere (or twice in one parameter)."""
    places: list[tuple[int, int, bool]] = []
    for index, marker in enumerate(markers):
        found = []
        for position, param in enumerate(params):
            if isinstance(marker, int):
                if type(param) is int and param == marker:
                    found.append((position, index, True))
            elif isinstance(param, str) and marker in param:
                if param.count(marker) != 1:
                    return None
                found.append((position, index, param == marker))
        if not found:
            return None
        places += found
    return tuple(places)


def _substituted(
    params: tuple[Any, ...], places: Places, markers: Sequence[int | str], values: Sequence[Any]
) -> tuple[Any, ...] | None:
    """``params`` with each value in its marker's places; None if a word stands inside a parameter
    (a ``__contains`` pattern, escaped by Django) and has other characters than letters and digits."""
    found = list(params)
    for position, index, whole in places:
        value = values[index]
        if whole:
            found[position] = value
        elif isinstance(value, str) and value.isalnum():
            found[position] = found[position].replace(markers[index], value)
        else:
            return None
    return tuple(found)


def _prepared(key: Hashable, markers: tuple[int | str, ...], build: Callable[[], QuerySet[Any]]) -> Any:
    """(Statement, places of the markers or None) of ``build()``, made with ``markers``, compiled once per key."""
    memo = (key, tuple(type(marker) for marker in markers))
    found = _PREPARED.get(memo)
    if found is None:
        statement = Statement.of(build())
        found = _PREPARED.put(memo, (statement, _marker_places(statement.params, markers)))
    return found


def read_prepared(key: Hashable, build: Callable[..., QuerySet[Any]], *values: int | str) -> list[Any]:
    """read_statement of ``build(*values)``, compiled once per ``key`` whatever the values.

    ``key`` names everything the SQL depends on but ``values``: integers (lookups' values, within
    +-2**62) and words (exact values of any characters; inside a ``__contains``, letters and
    digits only). The statement is compiled with stand-ins in their place, and each call puts its
    values where the stand-ins are. A value the stand-ins cannot take the place of (None, an
    empty word, a word with other characters inside a pattern), or a statement where a stand-in
    is not found, runs the queryset itself.
    """
    markers = stand_ins(values)
    if markers is not None:
        statement, places = _prepared(key, markers, lambda: build(*markers))
        params = None if places is None else _substituted(statement.params, places, markers, values)
        if params is not None:
            return statement.read(params)
    return list(build(*values))


class NotShared(Exception):  # not an error: the caller reads its own statement
    """A statement shared by the users of one shape cannot take these values (read_shared)."""


_compiling = threading.local()


@contextmanager
def compiling_only() -> Iterator[None]:
    """read_shared() compiles its statement and reads nothing (answers no row): a process's start (warm_up)."""
    _compiling.on = True
    try:
        yield
    finally:
        _compiling.on = False


def read_shared(key: Hashable, build: Callable[[], QuerySet[Any]], values: Sequence[Any]) -> list[Any]:
    """read_statement of a statement shared by every request of one shape, with this request's ``values``.

    ``build()`` makes the queryset with ``stand_ins(values)`` in the values' places (the shape's,
    e.g. a user's name and uid: shared_user_list), ``key`` names everything else the SQL depends on.
    Raises NotShared when the values cannot take the stand-ins' places.
    """
    markers = stand_ins(values)
    if markers is None:
        raise NotShared(key)
    statement, places = _prepared(key, markers, build)
    if getattr(_compiling, "on", False):
        return []
    params = None if places is None else _substituted(statement.params, places, markers, values)
    if params is None:
        raise NotShared(key)
    return statement.read(params)


_SHARED_COUNT_KEYS: Recent = Recent(512)


def shared_count_key(key: Hashable, build: Callable[[], QuerySet[Any]], values: Sequence[Any]) -> str | None:
    """count_key of the queryset ``build()`` makes with ``stand_ins(values)``, had it been made with ``values``.

    Compiled once per ``key``; None when the values cannot take the stand-ins' places.
    """
    markers = stand_ins(values)
    if markers is None:
        return None
    memo = (key, tuple(type(marker) for marker in markers))
    found = _SHARED_COUNT_KEYS.get(memo)
    if found is None:
        queryset = build()
        sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
        found = _SHARED_COUNT_KEYS.put(memo, (queryset.db, sql, tuple(params), _marker_places(params, markers)))
    db, sql, params, places = found
    substituted = None if places is None else _substituted(params, places, markers, values)
    return None if substituted is None else _count_key(db, sql, substituted)


def read_union(key: Hashable, pages: Sequence[Callable[[], QuerySet[Any]]]) -> list[Any]:
    """read_statement of the UNION ALL of ``pages`` (sliced querysets of the same columns), rows in no order."""
    return read_statement(key, lambda: union_of(pages))


def union_of(pages: Sequence[Callable[[], QuerySet[Any]]]) -> QuerySet[Any]:
    first, *others = (page() for page in pages)
    return first.union(*others, all=True)


class PagedJobs(Sequence[Any]):
    """Jobs read a page at a time, as Django's Paginator and DRF's pagination read a queryset."""

    def __len__(self) -> int:
        raise NotImplementedError

    def page(self, offset: int, limit: int) -> list[Any]:
        """``limit`` jobs from ``offset``, in the list's order (the count corrected if the page proves it stale)."""
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, int):
            return self.page(index, 1)[0]
        if index.step not in (None, 1):
            raise ValueError(f"{type(self).__name__} slices have no step.")
        offset = index.start or 0
        stop = len(self) if index.stop is None else index.stop
        return self.page(offset, max(stop - offset, 0))


@dataclass(frozen=True)
class Shared:
    """A list made with stand-ins, whose statements every request of its shape shares (read_shared)."""

    key: Hashable  # the shape: everything the list's SQL depends on but ``values``
    jobs: QuerySet[Any]  # made with stand_ins(values)
    values: tuple[Any, ...]  # this request's


def shared_user_list(shape: Hashable, username: str, cluster: str, memo: Recent) -> Shared | None:
    """The user's jobs (jobs_of_user_by_uid) as a Shared list of ``shape``, or None (a user without jobs yet).

    The stand-ins are the user's name and uid; the list made with them is kept in ``memo``.
    """
    values = (username, uid_of(username, cluster))
    return None if stand_ins(values) is None else Shared(shape, stand_in_list(shape, cluster, memo), values)


# Values of a user's name and uid that have stand-ins: what a process's start compiles with (warm_up).
ANY_USER = ("user", 1)


def stand_in_user() -> tuple[str, int]:
    """The stand-ins of a user's name and uid (every user's), uid_of() answering the one for the other."""
    name, uid = stand_ins(ANY_USER) or ()
    stand_in_uid(str(name), int(uid))
    return str(name), int(uid)


def stand_in_list(shape: Hashable, cluster: str, memo: Recent) -> QuerySet[Any]:
    """jobs_of_user_by_uid() of the stand-in user, made once per ``shape`` (kept in ``memo``)."""
    jobs = memo.get(shape)
    if jobs is None:
        jobs = memo.put(shape, jobs_of_user_by_uid(stand_in_user()[0], cluster))
    return jobs


def shared_readers(
    shared: Shared,
    key: Hashable,
    page: Callable[[Callable[[], QuerySet[Any]], int, int, str], QuerySet[Any]],
    limit: int,
) -> tuple[PageReader, PartsReader]:
    """A page reader and a parts reader (pending_first_page's) through the statements of ``shared``'s shape.

    ``page(build, offset, limit, part)`` makes the sliced queryset of a part; ``key`` names what
    else than ``shared.key`` the statements depend on. They raise NotShared (read_shared).
    """

    def read(build: Callable[[], QuerySet[Any]], offset: int, limit: int, part: str) -> list[Any]:
        return read_shared((key, part, offset, limit), lambda: page(build, offset, limit, part), shared.values)

    def read_parts(parts: Sequence[tuple[Callable[[], QuerySet[Any]], str]]) -> list[Any]:
        pages = [lambda build=build, part=part: page(build, 0, limit, part) for build, part in parts]
        return read_shared((key, tuple(part for _build, part in parts), limit), lambda: union_of(pages), shared.values)

    return read, read_parts


class PendingFirst(PagedJobs):
    """A user's jobs in DEFAULT_ORDER with the pending ones first, for a Paginator (cached count).

    ``jobs`` may be what makes the queryset (made when a count or a deeper page needs it).
    ``shared``: the same list made with stand-ins, whose first page's statements are shared
    by every user (read_shared), and whose count key is the list's without compiling it.
    """

    def __init__(
        self,
        jobs: Jobs,
        columns: Sequence[str],
        *,
        key: Hashable = None,
        count_key: str | None = None,
        shared: Shared | None = None,
    ) -> None:
        self._jobs = jobs
        self.columns = tuple(columns)
        self.key = key  # what the SQL of ``jobs`` depends on, if the caller names it (read_statement)
        self.shared = shared
        if count_key is None and shared is not None:
            count_key = shared_count_key(shared.key, lambda: shared.jobs, shared.values)
        self.count_key = count_key
        self._count: int | None = None

    @cached_property
    def jobs(self) -> QuerySet[Any]:
        return _made(self._jobs)

    def count(self) -> int:  # type: ignore[override]  # Paginator calls count() without arguments
        if self._count is None:
            self._count = cached_count(lambda: self.jobs, key=self.count_key)
        return self._count

    def __len__(self) -> int:
        return self.count()

    def page(self, offset: int, limit: int) -> list[Any]:
        rows = self._shared_page(limit, len(self)) if offset == 0 and self.shared is not None else None
        if rows is None:
            read_parts = None if self.key is None else lambda parts: self._read_parts(parts, limit)
            rows = pending_first_page(self.jobs, offset, limit, self._read, size=len(self), read_parts=read_parts)
        self._count = count_after_page(lambda: self.jobs, self.count(), offset, limit, len(rows), key=self.count_key)
        return rows

    def prepare(self, limit: int) -> None:
        """Compile the statements of the first page of the shape (``shared``: made with ANY_USER), for a list of any size."""
        with compiling_only():
            for size in (0, limit + 1):
                self._shared_page(limit, size)

    def _shared_page(self, limit: int, size: int) -> list[Any] | None:
        """The first page through the shape's statements (None: they cannot take this request's values)."""
        shared = self.shared
        assert shared is not None
        read, read_parts = shared_readers(
            shared,
            (shared.key, self.columns),
            lambda build, offset, limit, _part: self._page(build, offset, limit),
            limit,
        )
        try:
            return pending_first_page(shared.jobs, 0, limit, read, size=size, read_parts=read_parts)
        except NotShared:
            return None

    def _page(self, build: Callable[[], QuerySet[Any]], offset: int, limit: int) -> QuerySet[Any]:
        return build().only(*self.columns)[offset : offset + limit]

    def _read(self, build: Callable[[], QuerySet[Any]], offset: int, limit: int, part: str) -> list[Any]:
        if self.key is None:
            return list(self._page(build, offset, limit))
        return read_statement((self.key, self.columns, part, offset, limit), lambda: self._page(build, offset, limit))

    def _read_parts(self, parts: Sequence[tuple[Callable[[], QuerySet[Any]], str]], limit: int) -> list[Any]:
        pages = [lambda build=build: self._page(build, 0, limit) for build, _part in parts]
        return read_union((self.key, self.columns, tuple(part for _build, part in parts), limit), pages)


def headline(user: Any, *, cluster: str) -> list[HeadlineFigure]:
    """The user's figures for the home page card: one aggregate query."""
    since = int(time.time()) - 30 * 86400
    # Every figure counts rows still open (time_end 0) or ended since: two ranges of sacct_def2
    # (id_user, time_end, ...), not every row of the user (50,005 for a heavy user: 290-360 ms).
    try:
        jobs = jobs_of_user_by_uid(user.get_username(), cluster).filter(Q(time_end=0) | Q(time_end__gte=since))
        totals = jobs.aggregate(
            running=Count("job_db_inx", filter=Q(state=1, time_end=0)),
            pending=Count("job_db_inx", filter=Q(state=0, time_start=0, time_end=0)),
            finished=Count("job_db_inx", filter=Q(time_end__gte=since)),
            cpu_seconds=Sum(
                (F("time_end") - F("time_start")) * F("cpus_req"), filter=Q(time_end__gte=since, time_start__gt=0)
            ),
        )
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    return [
        HeadlineFigure(gettext_lazy("Running jobs"), totals["running"]),
        HeadlineFigure(gettext_lazy("Pending jobs"), totals["pending"]),
        HeadlineFigure(gettext_lazy("Jobs ended, last 30 days"), totals["finished"]),
        HeadlineFigure(gettext_lazy("CPU-hours, last 30 days"), f"{(totals['cpu_seconds'] or 0) / 3600:,.0f}"),
    ]


# --- Records by job id ------------------------------------------------------------------------
def find_records(username: str, cluster: str, job_id: int) -> list[Any]:
    """The user's records of ``job_id``, most recent first (full rows: the model declares only common columns)."""
    try:
        return read_prepared(
            ("records", cluster, username, uid_of(username, cluster)),  # what the SQL depends on but the id
            lambda job: (
                jobs_of_user_by_uid(username, cluster)
                .filter(id_job=job)
                .order_by("-time_submit", "-job_db_inx")[:MAX_RECORDS]
            ),
            job_id,
        )
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc


def jobs_for_ids(username: str, cluster: str, ids: Sequence[int]) -> list[Any]:
    """The most recent record of each id of ``ids`` that belongs to the user (one query)."""
    try:
        rows = list(
            jobs_of_user_by_uid(username, cluster)
            .filter(id_job__in=list(ids))
            .order_by("id_job", "time_submit")[: 4 * len(ids)]
        )
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    latest: dict[int, Any] = {}
    for row in rows:
        latest[row.id_job] = row
    return [latest[i] for i in sorted(latest)]


def array_tasks_of(username: str, cluster: str, master: int) -> list[Any]:
    """An array's task records, for a master id with no record of its own."""
    try:
        return list(
            jobs_of_user_by_uid(username, cluster)
            .filter(id_array_job=master)
            .order_by("id_array_task")[:MAX_ARRAY_TASKS]
        )
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc


def array_task(username: str, cluster: str, array_id: int, task_id: int) -> Any | None:
    """The newest record of task ``task_id`` of array ``array_id`` that belongs to the user, or None."""
    try:
        return (
            jobs_of_user_by_uid(username, cluster)
            .filter(id_array_job=array_id, id_array_task=task_id)
            .order_by("-time_submit", "-job_db_inx")
            .first()
        )
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc


def job_scope(jobs: Sequence[Any], catalog: TresCatalog | None = None) -> JobScope:
    catalog = catalog or Tres.catalog()
    nodes: list[str] = []
    cpus = gpus = 0
    gpu_type = None
    for job in jobs:
        tres = parse_tres(job.tres_alloc) or parse_tres(job.tres_req)
        cpus += tres.get(catalog.cpu or 1, 0) or int(job.cpus_req or 0)
        gpus += catalog.gpu_count(tres)
        gpu_type = gpu_type or next(iter(catalog.gpus_by_type(tres)), None)
        for node in job.nodes:
            if node not in nodes:
                nodes.append(node)
    return JobScope(tuple(j.id_job for j in jobs), tuple(nodes), cpus, gpus, gpu_type)
