"""A job's links to other jobs: the jobs it waits for (its dependency list) and the jobs that wait for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from jobstats.domain.submitline import Dependencies, names_job
from jobstats.services import read_prepared
from slurm.decoders import StateInfo, decode_state
from slurm.visibility import jobs_of_user_by_uid, uid_of

MAX_DEPENDENTS = 200
MAX_LINKED = 200  # jobs named by a dependency list, or waiting for this one, that get a state badge


@dataclass(frozen=True)
class LinkedJob:
    id_job: int
    display_id: str
    state: StateInfo | None
    kind: str = ""  # the dependency type, e.g. afterok
    minutes: int | None = None


@dataclass(frozen=True)
class LinkedJobs:
    dependencies: list[LinkedJob]  # the jobs of the dependency list, in its order
    dependents: list[LinkedJob]  # the user's jobs whose dependency list names this one


def linked_jobs(job: Any, username: str, cluster: str, deps: Dependencies, *, now: int) -> LinkedJobs:
    """The jobs ``job`` waits for (``deps``) and those that wait for it, each with its latest state (two queries)."""
    dependents = dependents_of(job, username, cluster, now=now)
    latest = _latest_states(username, cluster, sorted(set(deps.job_ids) | set(dependents))[:MAX_LINKED])
    return LinkedJobs(
        dependencies=_dependency_links(deps, latest)[:MAX_LINKED],
        dependents=[LinkedJob(i, str(i), decode_state(latest[i].state) if i in latest else None) for i in dependents],
    )


def _latest_states(username: str, cluster: str, ids: Sequence[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = (
        jobs_of_user_by_uid(username, cluster)
        .filter(id_job__in=list(ids))
        .only(
            "job_db_inx",
            "id_job",
            "id_array_job",
            "id_array_task",
            "het_job_id",
            "het_job_offset",
            "array_task_str",
            "array_max_tasks",
            "state",
            "time_submit",
        )
        .order_by("id_job", "time_submit")
    )
    latest: dict[int, Any] = {}
    for row in rows[: 4 * len(ids)]:
        latest[row.id_job] = row  # ordered by time_submit: the last one wins
    return latest


def dependents_of(job: Any, username: str, cluster: str, *, now: int) -> list[int]:
    """Ids of the user's jobs whose submit line depends on ``job`` (cached).

    Bounded: only jobs submitted after this one and before it ended (or now) can wait for it,
    and the submit line must contain the id as text before it is parsed properly.
    """
    end = job.time_end or now
    key = f"jobstats:dependents:{cluster}:{job.job_db_inx}:{job.time_end}"
    cached = cache.get(key)
    if cached is not None:
        return list(cached)
    rows = read_prepared(
        ("dependents", cluster, username, uid_of(username, cluster)),  # what the SQL depends on but the values
        lambda submitted, ended, id_text, inx: (
            jobs_of_user_by_uid(username, cluster)
            .filter(time_submit__gte=submitted, time_submit__lte=ended, submit_line__contains=id_text)
            .exclude(job_db_inx=inx)
            .only("id_job", "submit_line")[:MAX_DEPENDENTS]
        ),
        job.time_submit,
        end,
        str(job.id_job),
        job.job_db_inx,
    )
    found = sorted({row.id_job for row in rows if names_job(row.submit_line, job.id_job)})
    cache.set(key, found, 86400 if job.time_end else 120)
    return found


def _dependency_links(deps: Dependencies, latest: dict[int, Any]) -> list[LinkedJob]:
    links = []
    for item in deps.items:
        row = latest.get(item.job_id)
        display = f"{item.job_id}_{item.array_task}" if item.array_task else str(item.job_id)
        links.append(
            LinkedJob(
                item.job_id, display, decode_state(row.state) if row is not None else None, item.type, item.minutes
            )
        )
    return links
