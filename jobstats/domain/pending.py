"""Why a job is pending, in plain language, and when the scheduler expects to start it.

The current reason and the estimated start come from slurmctld (``squeue --start``, which
:mod:`jobstats.waiting` runs; this module only parses its output); the
accounting database only keeps the previous reason code (``state_reason_prev``). The limit a
QOS or association reason refers to is looked up in qos_table and the association rows, so the
sentence can name it ("the QOS gpuprio allows gres/gpu:a100=8 for all its users together").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils.translation import gettext as _

# The first reason codes of enum job_state_reason (slurm.h), stable since long before 22.05.
REASON_CODES = {
    0: "None",
    1: "Priority",
    2: "Dependency",
    3: "Resources",
    4: "PartitionNodeLimit",
    5: "PartitionTimeLimit",
    6: "PartitionDown",
    7: "PartitionInactive",
    8: "JobHeldAdmin",
    9: "BeginTime",
    10: "Licenses",
    11: "AssociationJobLimit",
    12: "AssociationResourceLimit",
    13: "AssociationTimeLimit",
    14: "Reservation",
    15: "ReqNodeNotAvail",
    16: "JobHeldUser",
}


def _sentences() -> dict[str, str]:
    return {
        "None": _("The scheduler has not looked at the job yet."),
        "Priority": _("Jobs with a higher priority are ahead of this one in the queue."),
        "Resources": _("The job is next in line and waits for enough nodes, cores, memory or GPUs to become free."),
        "Dependency": _("The job waits for the jobs it depends on."),
        "DependencyNeverSatisfied": _(
            "A job this one depends on ended in a way that will never satisfy the dependency: cancel this job and resubmit."
        ),
        "BeginTime": _("The job asked not to start before a given time (--begin)."),
        "JobHeldUser": _("You put the job on hold; release it with scontrol release."),
        "JobHeldAdmin": _("An administrator put the job on hold."),
        "Licenses": _("The job waits for the licences it asked for."),
        "Reservation": _("The job waits for its reservation to start."),
        "ReqNodeNotAvail": _("A node the job needs is down, drained or reserved."),
        "PartitionNodeLimit": _("The job asks for more nodes than its partition allows."),
        "PartitionTimeLimit": _(
            "The job's time limit is longer than its partition allows: it will never start. Lower it."
        ),
        "PartitionDown": _("The job's partition is down."),
        "PartitionInactive": _("The job's partition is not accepting jobs to run now."),
        "NodeDown": _("A node the job needs is down."),
        "BadConstraints": _("No node has the features the job asked for (--constraint)."),
        "Prolog": _("The job's prolog is still running."),
        "launch failed requeued held": _("The job failed to launch and was requeued on hold; contact support."),
        "InvalidAccount": _("The job's account is not valid."),
        "InvalidQOS": _("The job's QOS is not valid."),
        "QOSUsageThreshold": _("The job's QOS has used its allowance for now."),
        "AssociationJobLimit": _("Your account has reached its limit on jobs."),
        "AssociationResourceLimit": _("Your account has reached a resource limit."),
        "AssociationTimeLimit": _("Your account has reached its time limit."),
        "QOSJobLimit": _("The QOS has reached its limit on jobs."),
        "QOSResourceLimit": _("The QOS has reached a resource limit."),
        "QOSTimeLimit": _("The QOS has reached its time limit."),
    }


_LIMIT = re.compile(r"^(QOS|Assoc)(Grp|Max)(.*?)(Limit|PerUser|PerAccount|PerJob|PerNode)*$")


@dataclass(frozen=True)
class PendingInfo:
    reason: str  # the reason as squeue prints it, or "" when unknown
    sentence: str
    limit: str = ""  # the limit the reason points at, when the database tells it
    start_estimate: datetime | None = None
    priority: int | None = None
    source: str = ""  # squeue, accounting or ""


def explain_reason(reason: str) -> str:
    """A sentence for a pending reason such as ``Priority`` or ``QOSGrpGRES``."""
    reason = (reason or "").strip().strip("()")
    sentences = _sentences()
    if reason in sentences:
        return sentences[reason]
    match = _LIMIT.match(reason)
    if match:
        owner = _("the job's QOS") if match.group(1) == "QOS" else _("your account (association)")
        what = match.group(3) or _("resources")
        if match.group(2) == "Grp":
            return _(
                "The job would exceed a limit of %(owner)s shared by all its jobs (%(what)s); it starts when other jobs end."
            ) % {
                "owner": owner,
                "what": what,
            }
        return _("The job would exceed a per-user or per-job limit of %(owner)s (%(what)s).") % {
            "owner": owner,
            "what": what,
        }
    if not reason:
        return _("The scheduler's reason is unknown right now.")
    return _("The scheduler gives the reason “%(reason)s”.") % {"reason": reason}


@dataclass(frozen=True)
class SqueueAnswer:
    start: datetime | None
    reason: str
    priority: int | None


def parse_squeue(output: str) -> SqueueAnswer | None:
    """Parse ``squeue --start -h -j <id> -o "%S|%r|%Q"`` (run with TZ=UTC): the first line."""
    line = next((line for line in output.splitlines() if line.strip()), "")
    if not line:
        return None
    start_text, _sep, rest = line.partition("|")
    reason, _sep, priority_text = rest.partition("|")
    start: datetime | None = None
    start_text = start_text.strip()
    if start_text and start_text not in ("N/A", "Unknown", "NONE"):
        try:
            start = datetime.strptime(start_text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            start = None
    priority = int(priority_text) if priority_text.strip().isdigit() else None
    return SqueueAnswer(start, reason.strip(), priority)
