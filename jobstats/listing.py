"""The user page: one page of the jobs table, and what the user's running jobs hold and use now."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import DatabaseError
from django.db.models import Q
from django.utils.translation import gettext as _

from jobstats.graphs.user import user_expressions
from jobstats.services import (
    ANY_USER,
    LIST_COLUMNS,
    NotShared,
    PendingFirst,
    Recent,
    Shared,
    compiling_only,
    read_shared,
    shared_user_list,
    stand_in_list,
)
from slurm import exporter
from slurm.decoders import TresCatalog, job_memory_mb, parse_tres
from slurm.models import Tres
from slurm.visibility import jobs_of_user_by_uid, uid_of
from userportal import promql
from userportal.errors import PrometheusUnavailable, SlurmDatabaseUnavailable
from userportal.prometheus import MetricsSession, Sample, finite
from userportal.promql import by_tag, union
from userportal.windows import job_counter_rate, step_for

PAGE_SIZE = 50
HOUR = 3600


class CountedPaginator(Paginator):
    """A Paginator over PendingFirst that reads whole pages and takes the count the page read proves.

    Django's Paginator cuts the last page at its count; with a cached count behind the table
    that would hide the newest rows. Here the page is read whole and the count (and the number
    of pages) is the one PendingFirst corrected while reading it.
    """

    object_list: PendingFirst

    def page(self, number: int | str) -> Page[Any]:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = self.object_list.page(bottom, self.per_page)
        for stale in ("count", "num_pages", "page_range"):
            vars(self).pop(stale, None)  # cached properties of the count read before the page
        return Page(rows, number, self)


_USER_LISTS = Recent(16)  # the user list made with stand-ins, by cluster (shared_user_list)


def user_jobs_page(username: str, cluster: str, *, page: int | str = 1) -> Page[Any]:
    """One page of a user's jobs, pending ones first then the most recently started: records of LIST_COLUMNS.

    The first page's statements and the count's key are every user's (shared_user_list): a user
    the process has not served yet costs no more than one it has. The table's tag
    (jobstats.templatetags.job_rows) decodes what it shows of them.
    """
    try:
        key = ("user-page", cluster, username, uid_of(username, cluster))  # what the list's SQL depends on
        jobs = PendingFirst(
            lambda: jobs_of_user_by_uid(username, cluster),
            LIST_COLUMNS,
            key=key,
            shared=shared_user_list(("user-page", cluster), username, cluster, _USER_LISTS),
        )
        return CountedPaginator(jobs, PAGE_SIZE).get_page(page)
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc


def prepare_user_page(cluster: str) -> None:
    """Compile the statements every user's page reads (its first page, its count's key, the open jobs), reading nothing."""
    shared = Shared(("user-page", cluster), stand_in_list(("user-page", cluster), cluster, _USER_LISTS), ANY_USER)
    PendingFirst(shared.jobs, LIST_COLUMNS, shared=shared).prepare(PAGE_SIZE)
    with compiling_only():
        _open_rows(shared, MAX_RUNNING_READ + 1)


@dataclass(frozen=True)
class Use:
    allocated: float
    used: float | None  # None: Prometheus did not answer, or has no series (shown as a dash, never 0)
    reason: str = ""  # why ``used`` is None

    @property
    def percent(self) -> int | None:
        if self.used is None or not self.allocated:
            return None
        return round(100 * self.used / self.allocated)


@dataclass(frozen=True)
class CurrentUse:
    running: int
    pending: int
    cores: Use
    memory_gib: Use
    gpus: Use
    metrics_notice: str = ""


MAX_RUNNING_READ = 10_000
# The user's running jobs and pending ones (state PENDING, not started): rows of time_end = 0, a
# range of the job table's (id_user, time_end, ...) index.
OPEN = Q(time_end=0) & (Q(time_start__gt=0) | Q(time_start=0, state=0))
OPEN_COLUMNS = ("time_start", "tres_alloc", "cpus_req", "mem_req", "nodes_alloc")


def running_and_pending(username: str, cluster: str) -> tuple[list[Any], int]:
    """The user's running jobs (at most MAX_RUNNING_READ records) and the number of pending ones.

    One read of the open rows, its SQL compiled once for every user (read_shared); a user with more open rows than
    MAX_RUNNING_READ gets the running ones and the pending count as two bounded queries instead.
    """
    limit = MAX_RUNNING_READ + 1  # one more than read tells there are more
    shared = shared_user_list(("user-page", cluster), username, cluster, _USER_LISTS)
    try:
        rows = None if shared is None else _open_rows(shared, limit)
    except NotShared:
        rows = None
    if rows is None:
        rows = list(jobs_of_user_by_uid(username, cluster).filter(OPEN).only(*OPEN_COLUMNS)[:limit])
    if len(rows) < limit:
        running = [job for job in rows if job.time_start]
        return running, len(rows) - len(running)
    jobs = jobs_of_user_by_uid(username, cluster)
    running = list(jobs.filter(time_start__gt=0, time_end=0).only(*OPEN_COLUMNS)[:MAX_RUNNING_READ])
    return running, jobs.filter(time_start=0, time_end=0, state=0).count()


def _open_rows(shared: Shared, limit: int) -> list[Any]:
    return read_shared(
        ("current-use", shared.key, limit), lambda: shared.jobs.filter(OPEN).only(*OPEN_COLUMNS)[:limit], shared.values
    )


def current_use(
    username: str,
    cluster: str,
    session: MetricsSession,
    *,
    now: float | None = None,
    catalog: TresCatalog | None = None,
    asked: Future[list[Sample]] | None = None,
) -> CurrentUse:
    """Allocated now (Σ over running jobs, from the database) against used over the last hour (Prometheus).

    ``asked``: Prometheus's answer, asked early with last_hour_asked().
    """
    try:
        catalog = Tres.catalog() if catalog is None else catalog
        running, pending = running_and_pending(username, cluster)
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    cores = memory_mb = gpus = 0
    for job in running:
        tres = parse_tres(job.tres_alloc)
        job_cores = tres.get(catalog.cpu or 1, 0) or int(job.cpus_req or 0)
        cores += job_cores
        memory_mb += job_memory_mb(job.mem_req, cpus=job_cores, nodes=job.nodes_alloc or 1, tres_alloc=tres) or 0
        gpus += catalog.gpu_count(tres)
    used: dict[str, float | None] = {"cores": None, "mem": None, "gpus": None}
    reasons = {key: "" for key in used}
    notice = ""
    if "job" in settings.JOBSTATS_METRICS:  # slurm-job-exporter measures what is used
        try:
            used, reasons = used_last_hour(session, username, now=now, gpus_allocated=gpus, asked=asked)
        except PrometheusUnavailable as exc:
            notice = str(exc.user_message)
    else:
        reasons = dict.fromkeys(used, str(_("This cluster does not measure what jobs use.")))
    return CurrentUse(
        running=len(running),
        pending=pending,
        cores=Use(cores, used["cores"], reasons["cores"]),
        memory_gib=Use(
            round(memory_mb / 1024, 1),
            round(used["mem"] / 1024**3, 1) if used["mem"] is not None else None,
            reasons["mem"],
        ),
        gpus=Use(gpus, used["gpus"], reasons["gpus"]),
        metrics_notice=notice,
    )


def last_hour_query(username: str) -> str:
    """used_last_hour's one query: cores, memory and GPUs used over the last hour, and the jobs seen."""
    step = step_for(HOUR)
    series = user_expressions(username, step)
    window = f"[{HOUR}s:{step}s]"
    cores = promql.selector(exporter.CORE_COUNTER, {"user": username})
    memory = {tag: promql.selector(metric, {"user": username}) for tag, metric in
              (("max", exporter.MEMORY_MAX), ("usage", exporter.MEMORY_USAGE))}  # fmt: skip
    parts = {
        "hour_cores": f"{job_counter_rate(cores, HOUR)} / 1e9",
        "hour_mem_max": f"max_over_time((sum({memory['max']})){window})",
        "hour_mem_usage": f"max_over_time((sum({memory['usage']})){window})",
        "hour_gpus": f"max_over_time(({series['gpus_used']}){window})",
        "seen": f"count(max_over_time({cores}[{HOUR}s]))",
    }
    return union(parts)


@contextmanager
def last_hour_asked(
    session: MetricsSession, username: str, *, now: float | None = None
) -> Iterator[Future[list[Sample]] | None]:
    """used_last_hour's query, asked in a thread while the block reads the Slurm database (None: not measured).

    The page waits for Prometheus and for its database at once instead of one after the other;
    the answer (or the failure) is the one used_last_hour would get. The thread ends with the block.
    """
    if "job" not in settings.JOBSTATS_METRICS:
        yield None
        return
    asked = session.query_later(last_hour_query(username), at=now or time.time())
    try:
        yield asked
    finally:
        asked.cancel()
        wait([asked])  # a page that failed before reading the answer does not leave the query behind


def used_last_hour(
    session: MetricsSession,
    username: str,
    *,
    now: float | None = None,
    gpus_allocated: int = 0,
    asked: Future[list[Sample]] | None = None,
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Cores in use (the mean while jobs ran), peak memory (bytes) and peak GPUs in use over the last hour.

    One query (``asked``: its answer, asked early). A figure without series is None with the
    reason, never 0: GPUs of jobs the exporter sees without any GPU series are "not measured"
    (no NVML/DCGM on their nodes).
    """
    if asked is not None:
        found = by_tag(asked.result())
    else:
        found = by_tag(session.query(last_hour_query(username), at=now or time.time()))

    def one(tag: str) -> float | None:
        present = [v for sample in found.get(tag, []) if (v := finite(sample.value)) is not None]
        return round(max(present), 2) if present else None

    seen = one("seen")
    no_series = str(_("No measurements of your jobs in the last hour."))
    used = {
        "cores": one("hour_cores"),
        "mem": exporter.peak_of(one("hour_mem_max"), one("hour_mem_usage")),
        "gpus": one("hour_gpus"),
    }
    reasons = {key: "" if value is not None else no_series for key, value in used.items()}
    if used["gpus"] is None and exporter.gpu_state(gpus_allocated, None, int(seen or 0)) == "not-measured":
        reasons["gpus"] = str(_("GPUs not measured: the exporter sees your jobs but cannot read their GPUs."))
    return used, reasons
