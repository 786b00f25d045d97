"""Storing a batch of uploaded job scripts at once (POST /api/jobscripts/batch/, the uploader's burst path).

An array job starts thousands of tasks at once, each a prolog run; the uploader then spools the
scripts and sends them in batches. A batch costs, per cluster, one Slurm query (the job records
of every id in it), one portal query (the (id_job, time_submit) pairs already stored) and one
multi-row INSERT, whatever its size. It is idempotent on (cluster, id_job, time_submit): a batch
sent twice stores nothing the second time (the unique constraint also settles concurrent ones).

Each script gets the time_submit that :func:`jobstats.jobscripts.store_script` would give it
(:func:`~jobstats.jobscripts.pick_time_submit` over the same records). A script whose time stays
unknown (no hint, no record yet) goes through ``store_script`` itself, whose duplicate check of
unresolved uploads compares texts.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from jobstats.jobscripts import CLOCK_SLACK, DuplicateScript, pick_time_submit, store_script
from jobstats.models import JobScript
from slurm.models import cluster_models

logger = logging.getLogger(__name__)


def store_scripts(
    items: list[dict[str, Any]], *, uploaded_by: Any = None, received_at: datetime | None = None
) -> tuple[int, int]:
    """Store validated uploads (``cluster``, ``id_job``, ``submit_script``, ``time_submit`` or None).

    Returns (stored, duplicates). Scripts must be clean already (the API's validation cleans them).
    """
    received_at = received_at or timezone.now()
    by_cluster: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_cluster[item["cluster"]].append(item)
    stored = duplicates = 0
    for cluster, group in by_cluster.items():
        done, again = _store_cluster(cluster, group, uploaded_by, received_at)
        stored, duplicates = stored + done, duplicates + again
    return stored, duplicates


def _records(cluster: str, ids: list[int]) -> dict[int, list[tuple[int, int | None]]]:
    """{id_job: [(time_submit, time_end), ...] newest first} from the job table; {} if it does not answer."""
    found: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
    try:
        rows = (
            cluster_models(cluster)
            .job.objects.filter(id_job__in=ids, time_submit__gt=0)
            .order_by("id_job", "-time_submit")
            .values_list("id_job", "time_submit", "time_end")
        )
        for id_job, time_submit, time_end in rows:
            found[id_job].append((time_submit, time_end))
    except DatabaseError:
        logger.warning("cluster %s: Slurm database unavailable, batch dated by its hints", cluster, exc_info=True)
        return {}
    return found


def _store_cluster(
    cluster: str, group: list[dict[str, Any]], uploaded_by: Any, received_at: datetime
) -> tuple[int, int]:
    at = int(received_at.timestamp())
    slack = int(CLOCK_SLACK.total_seconds())
    ids = sorted({item["id_job"] for item in group})
    records = _records(cluster, ids)
    stored_times: dict[int, list[int]] = defaultdict(list)
    for id_job, time_submit in (
        JobScript.objects.filter(cluster=cluster, id_job__in=ids, time_submit__isnull=False)
        .values_list("id_job", "time_submit")
        .iterator()
    ):
        stored_times[id_job].append(int(time_submit or 0))
    rows: list[JobScript] = []
    unresolved: list[dict[str, Any]] = []
    duplicates = 0
    uploader_id = getattr(uploaded_by, "pk", None)
    for item in group:
        id_job, hint = item["id_job"], item.get("time_submit")
        time_submit = pick_time_submit(records.get(id_job, []), at=at, hint=hint) or hint
        if time_submit is None:
            unresolved.append(item)
            continue
        # A row of this submission, or one dated by the uploader's hint before slurmdbd knew the job.
        if any(abs(known - time_submit) <= slack for known in stored_times[id_job]):
            duplicates += 1
            continue
        stored_times[id_job].append(time_submit)
        rows.append(
            JobScript(
                cluster=cluster,
                id_job=id_job,
                time_submit=time_submit,
                received_at=received_at,
                submit_script=item["submit_script"],
                uploaded_by_id=uploader_id,
            )
        )
    # A concurrent upload of the same submission: the unique constraint keeps one row, no error.
    JobScript.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    stored = len(rows)
    for item in unresolved:
        try:
            store_script(
                cluster=cluster,
                id_job=item["id_job"],
                submit_script=item["submit_script"],
                uploaded_by=uploaded_by,
                received_at=received_at,
            )
            stored += 1
        except DuplicateScript:
            duplicates += 1
    return stored, duplicates
