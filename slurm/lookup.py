"""Finding a job's records from the id people write (``1234``, ``1234_7``, ``1240+1``), for notes and search.

No permission check: callers decide (staff pages). One indexed query per reference, on the job
table's ``id_job`` (sacct's own index), or ``id_array_job``/``het_job_id`` with the task or offset.
"""

from __future__ import annotations

from django.db.models import Q

from slurm.ids import JobRef
from slurm.models import Job, SlurmQuerySet, cluster_models


def ref_filter(ref: JobRef) -> Q:
    """The job-table condition for ``ref``: a plain id also finds the array task or component that has it."""
    if ref.array_task is not None:
        return Q(id_array_job=ref.job_id, id_array_task=ref.array_task)
    if ref.het_offset is not None:
        return Q(het_job_id=ref.job_id, het_job_offset=ref.het_offset)
    return Q(id_job=ref.job_id)


def records_of(ref: JobRef, cluster: str) -> SlurmQuerySet[Job]:
    """The records of ``ref`` on ``cluster`` (reused ids give several), newest first."""
    jobs: SlurmQuerySet[Job] = cluster_models(cluster).job.objects.filter(deleted=0)
    return jobs.filter(ref_filter(ref)).order_by("-time_submit", "-job_db_inx")


def owner_of(job: Job, cluster: str) -> str:
    """The Slurm user name a record ran as (its association's user), or "" when the association is gone."""
    assoc = cluster_models(cluster).assoc
    return assoc.objects.filter(id_assoc=job.id_assoc).values_list("user", flat=True).first() or ""
