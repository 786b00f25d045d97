"""The jobs API's queries: who may see what, filters, search, order, counts and one page of rows.

DataTables (server side) and plain JSON clients get the same rows; see jobstats.api.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

from django.db import DatabaseError
from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext as _

from jobstats.services import (
    ALL_JOBS_ASCENDING,
    ALL_JOBS_ORDER,
    ANY_USER,
    ASCENDING_ORDER,
    DEFAULT_ORDER,
    PENDING_ORDER,
    NotShared,
    PagedJobs,
    PageReader,
    PartsReader,
    Recent,
    Shared,
    cached_count,
    compiling_only,
    count_after_page,
    count_key,
    has_stand_in,
    newest_submitted_page,
    pending_first_page,
    read_statement,
    read_union,
    shared_count_key,
    shared_readers,
    stand_in_user,
    stand_ins,
)
from slurm.decoders import STATE_FILTER_CHOICES, STATE_LABELS, state_filter
from slurm.models import cluster_models
from slurm.visibility import Scope, assoc_users, jobs_of_user_by_uid, jobs_visible_to, uid_of
from userportal.errors import SlurmDatabaseUnavailable

# Orders the API accepts that are the index order (the serializer appends -job_db_inx).
INDEX_ORDERS = {
    ("-time_start", "-job_db_inx"): DEFAULT_ORDER,
    DEFAULT_ORDER: DEFAULT_ORDER,
    ("time_start", "-job_db_inx"): ASCENDING_ORDER,
    ("time_start", "job_db_inx"): ASCENDING_ORDER,
    ASCENDING_ORDER: ASCENDING_ORDER,
    ("-time_submit", "-job_db_inx"): ALL_JOBS_ORDER,  # TT's page: by submit time (archive_purge's order)
    ("time_submit", "-job_db_inx"): ALL_JOBS_ASCENDING,
    ("time_submit", "job_db_inx"): ALL_JOBS_ASCENDING,
}


def _index_page(
    jobs: QuerySet[Any], uid: int | None, total: int, order: tuple[str, ...], offset: int, limit: int
) -> QuerySet[Any] | None:
    """A deep page (OFFSET) read from the sacct_def index alone, then its rows by key; None if not exact.

    ``SELECT job_db_inx ... WHERE id_user = uid ORDER BY time_start, time_end, job_db_inx``
    walks the index without touching a row. It is only used when every row of that uid is
    visible (the index-only count equals the visible total), so the page is the same as the
    plain query's; else the caller runs the plain query.
    """
    if uid is None or offset < 2 * limit or order not in (DEFAULT_ORDER, ASCENDING_ORDER):
        return None
    by_uid = cluster_jobs(jobs).filter(id_user=uid)
    if cached_count(by_uid) != total:
        return None
    keys = list(by_uid.order_by(*order).values_list("job_db_inx", flat=True)[offset : offset + limit])
    return jobs.filter(job_db_inx__in=keys)


def cluster_jobs(jobs: QuerySet[Any]) -> QuerySet[Any]:
    """Every row of the job table of ``jobs``' model (no visibility filter: callers narrow it)."""
    return jobs.model.objects.using(jobs.db).all()


# The started-first orders, for every user's jobs: the submitted-first ones (an index's order).
ALL_JOBS_BY: dict[tuple[str, ...], tuple[str, ...]] = {
    DEFAULT_ORDER: ALL_JOBS_ORDER,
    ASCENDING_ORDER: ALL_JOBS_ASCENDING,
}


# DataTables column names (TT's row keys) to the columns they sort by.
ORDERABLE = {
    "id_job": "id_job",
    "job_name": "job_name",
    "account": "account",
    "partition": "partition",
    "time_submit": "time_submit",
    "time_eligible": "time_eligible",
    "time_start": "time_start",
    "time_end": "time_end",
    "timelimit": "timelimit",
    "get_state_display": "state",
    "state": "state",
    "nodes": "nodes_alloc",
    "job_db_inx": "job_db_inx",
}
API_COLUMNS = (
    "job_db_inx", "id_job", "id_array_job", "id_array_task", "het_job_id", "het_job_offset", "array_task_str",
    "array_max_tasks", "job_name", "account", "partition", "state", "time_submit", "time_eligible", "time_start",
    "time_end", "timelimit", "nodelist", "id_assoc",
)  # fmt: skip

# TT's status labels that differ from ours (its OOM and DEADLINE labels were bugs), for old clients.
TT_STATUS_ALIASES = {
    "complete": "COMPLETED",
    "canceled": "CANCELLED",
    "oom": "OUT_OF_MEMORY",
    "end": "DEADLINE",
    "node fail": "NODE_FAIL",
    "boot fail": "BOOT_FAIL",
}


def resolve_state(text: str) -> str:
    """A state name from a name (``OUT_OF_MEMORY``), its label (``Out of memory``) or TT's label; ValueError if none."""
    value = text.strip()
    names = [name for name, _label in STATE_FILTER_CHOICES]
    if value.upper() in names:
        return value.upper()
    folded = value.casefold()
    for name in names:
        if str(STATE_LABELS[name]).casefold() == folded:
            return name
    if folded in TT_STATUS_ALIASES:
        return TT_STATUS_ALIASES[folded]
    raise ValueError(value)


@dataclass(frozen=True)
class JobListQuery:
    """A validated jobs API request."""

    username: str | None = None
    account: str | None = None
    states: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    submitted_after: int | None = None
    submitted_before: int | None = None
    ended_after: int | None = None
    ended_before: int | None = None
    search: str = ""
    order: tuple[str, ...] = ()  # () is the scope's default order (select_jobs)


def _assoc_ids(cluster: str, **filters: str) -> QuerySet[Any, Any]:
    return cluster_models(cluster).assoc.objects.filter(**filters).exclude(user="").values("id_assoc")


def api_scope(user: Any, cluster: str, query: JobListQuery) -> QuerySet[Any]:
    """The jobs the request is about, always inside jobs_visible_to(user).

    ``username`` narrows to one user's jobs (staff: anyone; others: only themselves, another
    name is ignored as TT does); ``account`` narrows to an account, where members see every
    user's jobs (the "accounts" scope) and others only their own.
    """
    scope: Scope = "accounts" if query.account and not user.is_staff else "own"
    jobs: QuerySet[Any] = jobs_visible_to(user, cluster, scope=scope)
    username = query.username
    if username and not user.is_staff and username != user.get_username():
        username = None
    if username and user.is_staff:
        # Staff see every job, so one user's are exactly that user's: the same uid-driven
        # query as the user's own list (sacct_def), not id_assoc IN (...) over all their rows.
        jobs = jobs_of_user_by_uid(username, cluster)
    elif scope == "own" and not user.is_staff and user.is_authenticated:
        # The same rows as jobs_visible_to(own), found through the sacct_def index.
        jobs = jobs_of_user_by_uid(user.get_username(), cluster)
    if username and query.account and not user.is_staff:
        jobs = jobs.filter(id_assoc__in=_assoc_ids(cluster, user=username))
    if query.account:
        jobs = jobs.filter(id_assoc__in=_assoc_ids(cluster, acct=query.account))
    return jobs


def every_user(user: Any, query: JobListQuery) -> bool:
    """Whether the request lists every user's jobs (staff, no user or account named)."""
    return bool(user.is_staff) and not query.username and not query.account


# Every user's jobs can only be sorted along an index of the job table (a sort of all its rows
# per request grows with the history: 1.3 s at 2 M jobs, 9.6 s at 8 M); their first column:
EVERY_USER_ORDERABLE = {"time_submit", "time_eligible", "time_start", "time_end", "id_job", "job_db_inx"}


def every_user_order_error(user: Any, query: JobListQuery) -> str | None:
    """Why the request's order cannot be served for every user's jobs, or None."""
    if not every_user(user, query) or not query.order:
        return None
    column = query.order[0].lstrip("-")
    if column in EVERY_USER_ORDERABLE:
        return None
    names = sorted(name for name, field in ORDERABLE.items() if field in EVERY_USER_ORDERABLE)
    return str(
        _("Every user's jobs can be sorted by %(names)s only; name a user or an account to sort by %(name)s.")
        % {"names": ", ".join(names), "name": column}
    )


def api_filter(jobs: QuerySet[Any], query: JobListQuery, *, ids_only: bool = False) -> QuerySet[Any]:
    """The request's filters; ``ids_only``: a search of digits is a job id (every user's jobs: by
    the id_job and id_array_job indexes, where matching names too would read the whole table)."""
    if query.states:
        condition = Q()
        for name in query.states:
            condition |= state_filter(name)
        jobs = jobs.filter(condition)
    if query.partitions:
        jobs = jobs.filter(partition__in=list(query.partitions))
    if query.submitted_after is not None:
        jobs = jobs.filter(time_submit__gte=query.submitted_after)
    if query.submitted_before is not None:
        jobs = jobs.filter(time_submit__lt=query.submitted_before)
    if query.ended_after is not None:
        jobs = jobs.filter(time_end__gte=query.ended_after)
    if query.ended_before is not None:
        jobs = jobs.filter(time_end__gt=0, time_end__lt=query.ended_before)
    if query.search:
        text = query.search
        number = text.isdigit() and len(text) <= 10
        if number and ids_only:
            condition = Q(id_job=int(text)) | Q(id_array_job=int(text))
        else:
            condition = Q(job_name__icontains=text) | Q(partition__icontains=text) | Q(account__icontains=text)
            if number:
                condition |= Q(id_job=int(text)) | Q(id_array_job=int(text))
        jobs = jobs.filter(condition)
    return jobs


def _filtered(query: JobListQuery) -> bool:
    return bool(
        query.states
        or query.partitions
        or query.search
        or any(
            v is not None
            for v in (query.submitted_after, query.submitted_before, query.ended_after, query.ended_before)
        )
    )


@dataclass(frozen=True)
class PreparedSelection:
    """What a jobs request's SQL depends on, built once per process for each distinct request.

    The querysets are never evaluated here (only cloned), and their count keys (a compile each)
    are kept with them: a request that was seen before builds and compiles nothing. One user's
    list (their own, or one staff open) is ``shared`` with every user of its shape: its count
    keys come from the shape's compiled SQL, its first page is read with the shape's statements
    (read_shared), and its own querysets are made only when a count or a deeper page needs them.
    """

    key: tuple[Any, ...]
    querysets: Callable[[], tuple[QuerySet[Any], QuerySet[Any]]]  # (jobs, base: before the request's filters)
    unfiltered: bool  # the request has no filter: jobs is base, and its total is the filtered count
    cluster: str
    order: tuple[str, ...]
    uid: int | None  # the uid whose index may give a deep page's keys (an unfiltered own list), else None
    per_user: bool  # one user's jobs, found through the (id_user, ...) indexes (jobs_of_user_by_uid)
    jobs_key: str | None  # None: count_key of the queryset, when it is made
    base_key: str | None
    shared: Shared | None = None  # the same selection made with stand-ins (its ``jobs``), and this request's values

    @cached_property
    def made(self) -> tuple[QuerySet[Any], QuerySet[Any]]:
        return self.querysets()

    @property
    def jobs(self) -> QuerySet[Any]:
        return self.made[0]

    @property
    def base(self) -> QuerySet[Any]:
        return self.made[1]


class JobSelection(PagedJobs):
    """The jobs of one API request, in order, read like a queryset by DRF's pagination.

    Its length is the filtered count and ``total`` the count before the request's filters, both
    cached under their SQL (cached_count). A slice is one page of job records, each given its
    ``username`` (with_username); the default order is the sacct_def index's, so a page is read
    along that index, and a deep page of an unfiltered own list takes its keys from the index alone (_index_page).
    The SQL of a page near the top is compiled once per process (read_statement).
    """

    def __init__(self, prepared: PreparedSelection, *, total: int, filtered: int) -> None:
        self.prepared = prepared
        self.cluster = prepared.cluster
        self.order = prepared.order
        self.total = total
        self.filtered = filtered

    def __len__(self) -> int:
        return self.filtered

    @property
    def jobs(self) -> QuerySet[Any]:
        return self.prepared.jobs

    def page(self, offset: int, limit: int) -> list[Any]:
        """``limit`` job records from ``offset``, in order; in DEFAULT_ORDER the pending jobs first."""
        prepared = self.prepared
        try:
            rows = self._shared_page(limit) if offset == 0 and prepared.shared is not None else None
            if rows is None:
                rows = self._page(self.jobs, offset, limit, self._read, lambda parts: self._read_parts(parts, limit))
            filtered = count_after_page(
                lambda: self.jobs, self.filtered, offset, limit, len(rows), key=prepared.jobs_key
            )
            if filtered != self.filtered and prepared.unfiltered:
                self.total = count_after_page(
                    lambda: prepared.base, self.total, offset, limit, len(rows), key=prepared.base_key
                )
            self.filtered = filtered
            return with_username(rows, self.cluster)
        except DatabaseError as exc:
            raise SlurmDatabaseUnavailable(str(exc)) from exc

    def _page(
        self, jobs: QuerySet[Any], offset: int, limit: int, read: PageReader, read_parts: PartsReader
    ) -> list[Any]:
        """The page's rows of ``jobs`` (the request's, or the shape's made with stand-ins), read with ``read``."""
        if self.order == DEFAULT_ORDER:
            return pending_first_page(jobs, offset, limit, read, size=self.filtered, read_parts=read_parts)
        if self.order == ALL_JOBS_ORDER and self.prepared.uid is not None:  # one user's jobs, no filter
            by_submit = newest_submitted_page(jobs, offset, limit, read)
            if by_submit is not None:
                return by_submit
        return read(lambda: jobs.order_by(*self.order), offset, limit, "ordered")

    def _shared_page(self, limit: int) -> list[Any] | None:
        """The first page read with the statements of the request's shape (None: they cannot take its values)."""
        shared = self.prepared.shared
        assert shared is not None
        read, read_parts = shared_readers(shared, shared.key, self._top, limit)
        try:
            return self._page(shared.jobs, 0, limit, read, read_parts)
        except NotShared:
            return None

    def _top(self, build: Callable[[], QuerySet[Any]], offset: int, limit: int, part: str) -> QuerySet[Any]:
        """The rows of a page near the top (never an index page, _index_page): the same SQL for every request of this shape."""
        order = PART_ORDERS.get(part, self.order)
        sort = user_sort(order) if self.prepared.per_user else order
        return api_columns(build()).order_by(*sort)[offset : offset + limit]

    def _read_parts(self, parts: Sequence[tuple[Callable[[], QuerySet[Any]], str]], limit: int) -> list[Any]:
        pages = [lambda build=build, part=part: self._top(build, 0, limit, part) for build, part in parts]
        return read_union((self.prepared.key, tuple(part for _build, part in parts), limit), pages)

    def _read(self, build: Callable[[], QuerySet[Any]], offset: int, limit: int, part: str) -> list[Any]:
        """One query (a deep page of an unfiltered user list: the index's keys first, then the rows)."""
        order = PART_ORDERS.get(part, self.order)
        if offset < 2 * limit:
            return read_statement(
                (self.prepared.key, part, offset, limit), lambda: self._top(build, offset, limit, part)
            )
        jobs = build()
        keyed = _index_page(jobs, self.prepared.uid, self.total, order, offset, limit)
        sort = user_sort(order) if self.prepared.per_user and keyed is None else order
        rows = api_columns(jobs if keyed is None else keyed).order_by(*sort)
        return list(rows if keyed is not None else rows[offset : offset + limit])


# Columns that lead an index of every user's jobs (archive_purge, rollup, id_job) but no per-user one.
GLOBAL_INDEX_LEADS = {"time_submit", "time_eligible", "id_job"}


def user_sort(order: tuple[str, ...]) -> tuple[Any, ...]:
    """``order`` for one user's jobs: a first column that only a global index leads, as ``column + 0``.

    Sorted by such a column, MariaDB would walk that index over every user's jobs and keep this
    user's (from the oldest submission: 6,000,417 rows for TT's page ascending on 8 M jobs), a
    cost that grows with the whole history; as an expression no index serves it, so it sorts
    the user's own rows, found through (id_user, ...). The rows and their order are the same.
    """
    if not order or order[0].lstrip("-") not in GLOBAL_INDEX_LEADS:
        return order
    first = F(order[0].lstrip("-")) + 0
    return ((first.desc() if order[0].startswith("-") else first.asc()), *order[1:])


# The order of each part pending_first_page reads ("ordered": the selection's own order).
PART_ORDERS = {
    "all": DEFAULT_ORDER,
    "started": DEFAULT_ORDER,
    "pending": PENDING_ORDER,
    "never-started": ALL_JOBS_ORDER,
}


_SELECTIONS = Recent(512)  # PreparedSelection by request shape


def api_columns(jobs: QuerySet[Any]) -> QuerySet[Any]:
    """The API's columns of ``jobs`` (their ``username``: with_username(), once read)."""
    return jobs.only(*API_COLUMNS)


def with_username(rows: list[Any], cluster: str) -> list[Any]:
    """``rows`` (read with api_columns()), each given the ``username`` of its association ("" if none)."""
    users = assoc_users((row.id_assoc for row in rows), cluster)
    for row in rows:
        row.username = users.get(row.id_assoc, "")
    return rows


def _single_owner(user: Any, query: JobListQuery) -> str | None:
    """The user whose jobs, all of them, the request's scope is (before filters), or None."""
    if query.account or not user.is_authenticated:
        return None
    if user.is_staff:
        return query.username or None
    return str(user.get_username())


def select_jobs(user: Any, cluster: str, query: JobListQuery) -> JobSelection:
    """The jobs of a jobs API request: two counts (cached; one without filters), the page read later."""
    try:
        prepared = _prepare(user, cluster, query)
        total = cached_count(lambda: prepared.base, key=prepared.base_key)
        filtered = cached_count(lambda: prepared.jobs, key=prepared.jobs_key) if _filtered(query) else total
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    return JobSelection(prepared, total=total, filtered=filtered)


def _prepare(user: Any, cluster: str, query: JobListQuery) -> PreparedSelection:
    """The request's querysets and count keys, from the process's memo when this shape was seen.

    The SQL depends on nothing but the key: the viewer (not for staff, who see every job), the
    cluster, the validated query and the uids that jobs_of_user_by_uid() puts in it (uid_of,
    cached), never on rows read here. One user's list is prepared from its shape's (_shared).
    """
    authenticated = bool(user.is_authenticated)
    viewer = str(user.get_username()) if authenticated and not user.is_staff else ""
    uids = (  # the ones api_scope() and _single_owner() read
        uid_of(viewer, cluster) if authenticated and not user.is_staff and not query.account else None,
        uid_of(query.username, cluster) if query.username and user.is_staff else None,
    )
    key = (cluster, viewer, bool(user.is_staff), authenticated, query, uids)
    prepared: PreparedSelection | None = _SELECTIONS.get(key)
    if prepared is None:
        prepared = _SELECTIONS.put(key, _shared(user, cluster, query, key) or _built(user, cluster, query, key))
    return prepared


def _built(user: Any, cluster: str, query: JobListQuery, key: tuple[Any, ...]) -> PreparedSelection:
    base = api_scope(user, cluster, query)
    jobs = api_filter(base, query, ids_only=every_user(user, query))
    uid = uid_of(owner, cluster) if (owner := _single_owner(user, query)) and not _filtered(query) else None
    order = INDEX_ORDERS.get(query.order, query.order) or DEFAULT_ORDER
    if every_user(user, query):
        # Every user's jobs: no index orders 2 M rows by start time, so "newest first" (and its
        # reverse) is by submit time there, along archive_purge (the pending jobs come first).
        order = ALL_JOBS_BY.get(order, order)
    base_key = count_key(base)
    return PreparedSelection(
        key=key,
        querysets=lambda: (jobs, base),
        unfiltered=not _filtered(query),
        cluster=cluster,
        order=order,
        uid=uid,
        per_user=bool(query.username and user.is_staff) or (authenticated_own(user, query)),
        jobs_key=count_key(jobs) if _filtered(query) else base_key,
        base_key=base_key,
    )


def authenticated_own(user: Any, query: JobListQuery) -> bool:
    """The request is a user's own list (not staff, no account named)."""
    return bool(user.is_authenticated) and not user.is_staff and not query.account


@dataclass(frozen=True)
class _Viewer:
    """Who a selection is made for, as api_scope() reads a user: a stand-in (a shape's), or a user's name."""

    username: str
    is_staff: bool
    is_authenticated: bool = True

    def get_username(self) -> str:
        return self.username


def _shared(user: Any, cluster: str, query: JobListQuery, key: tuple[Any, ...]) -> PreparedSelection | None:
    """One user's list (their own, or one staff open) prepared from its shape's, made with stand-ins; else None."""
    if authenticated_own(user, query):
        name = str(user.get_username())
        query = replace(query, username=name if query.username == name else None)  # another name is ignored
    elif user.is_staff and query.username and not query.account:
        name = query.username
    else:
        return None
    values = (name, uid_of(name, cluster))
    if stand_ins(values) is None or has_stand_in([getattr(query, field.name) for field in fields(query)]):
        return None  # no stand-in for a value, or one of the query's own values would be taken for one
    shape, stand_in = _shape(cluster, bool(user.is_staff), query)
    viewer = _Viewer(str(user.get_username()), bool(user.is_staff))  # not the request's user: the memo outlives it
    made = stand_in.made
    uid = values[1] if stand_in.uid is not None else None
    return replace(
        stand_in,
        key=key,
        querysets=lambda: _built(viewer, cluster, query, key).made,
        uid=uid,
        jobs_key=shared_count_key((shape, "jobs"), lambda: made[0], values),
        base_key=shared_count_key((shape, "base"), lambda: made[1], values),
        shared=Shared(shape, made[0], values),
    )


_SHAPES = Recent(256)  # a shape's selection made with stand-ins (_shared)


def _shape(cluster: str, staff: bool, query: JobListQuery) -> tuple[Hashable, PreparedSelection]:
    """The selection of ``query``'s shape (its user named or not), made for ANY_USER's stand-ins."""
    name, _uid = stand_in_user()
    shape_query = replace(query, username=name if query.username else None)
    shape = ("api-shape", cluster, staff, shape_query)
    stand_in = _SHAPES.get(shape)
    if stand_in is None:
        stand_in = _SHAPES.put(shape, _built(_Viewer(name, staff), cluster, shape_query, shape))
    return shape, stand_in


# The first pages a process's start compiles: the JSON API's default and the portal's jobs table's.
PREPARED_PAGES = ((100, ()), (50, ("-time_start", "-job_db_inx")))


def prepare_first_pages(cluster: str) -> None:
    """Compile the statements and count keys of the common first pages of one user's jobs (own, or staff), reading nothing."""
    for staff, named in ((False, False), (False, True), (True, True)):
        for limit, order in PREPARED_PAGES:
            _prepare_first_page(cluster, staff, JobListQuery(username="-" if named else None, order=order), limit)


def _prepare_first_page(cluster: str, staff: bool, query: JobListQuery, limit: int) -> None:
    shape, stand_in = _shape(cluster, staff, query)
    made = stand_in.made
    shared_count_key((shape, "jobs"), lambda: made[0], ANY_USER)
    shared_count_key((shape, "base"), lambda: made[1], ANY_USER)
    prepared = replace(stand_in, shared=Shared(shape, made[0], ANY_USER))
    with compiling_only():
        for size in (0, limit + 1):
            JobSelection(prepared, total=size, filtered=size)._shared_page(limit)


def get_job(user: Any, cluster: str, job_db_inx: int) -> Any | None:
    """One job record by its key, under the same scoping as the list (members see their accounts' jobs)."""
    try:
        job = api_columns(jobs_visible_to(user, cluster, scope="accounts").filter(job_db_inx=job_db_inx)).first()
        return None if job is None else with_username([job], cluster)[0]
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
