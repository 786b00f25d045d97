"""scontrol's ``show`` of jobs, partitions and reservations, and a job's time limit update.

Every call goes through :mod:`slurm.commands` (argv list, timeout, ``TZ=UTC``). ``--oneliner``
prints one record a line of ``Key=Value`` pairs; a few values hold spaces (``Reason=Not
responding [slurm@...]``), so a value runs up to the next key (:func:`fields`, which nodes'
``scontrol show node`` parser shares).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from slurm.commands import CommandResult, SlurmCommandError, run_command
from slurm.decoders import BASE_STATE_NAMES, JobState, format_duration
from slurm.hostlists import expand_hostlist

KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z_:/]*)=")
# What the portal passes as JobId: a job id or an array task (``1234``, ``1234_7``), nothing scontrol parses,
# and no leading zero: scontrol reads ``0501`` as job 501, a second name for one job (task 0 is ``1234_0``).
JOB_ID = re.compile(r"[1-9][0-9]{0,9}(?:_(?:0|[1-9][0-9]{0,9}))?")
CLUSTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # as settings.SLURM_CLUSTERS checks them
DURATION = re.compile(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)")
# A job's state as scontrol prints it, once it has ended: the base states from COMPLETED on (decoders),
# and the two that only scontrol shows.
ENDED_STATES = frozenset(BASE_STATE_NAMES[state] for state in JobState if state >= JobState.COMPLETED) | {
    "REVOKED",
    "SPECIAL_EXIT",
}


def fields(line: str) -> dict[str, str]:
    """``Key=Value`` pairs of one line; a value runs up to the next key."""
    matches = list(KEY.finditer(line))
    return {
        match.group(1): line[match.end() : matches[i + 1].start() if i + 1 < len(matches) else len(line)].strip()
        for i, match in enumerate(matches)
    }


def parse_minutes(text: str | None) -> int | None:
    """A Slurm duration (``[D-]HH:MM:SS``, ``MM:SS``) in whole minutes; None for UNLIMITED and the like."""
    match = DURATION.fullmatch((text or "").strip())
    if not match:
        return None
    days, hours, minutes, _seconds = (int(group or 0) for group in match.groups())
    return days * 1440 + hours * 60 + minutes


def parse_seconds(text: str | None) -> int:
    match = DURATION.fullmatch((text or "").strip())
    if not match:
        return 0
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_time(text: str | None) -> datetime | None:
    """scontrol's times (ISO 8601 in UTC under slurm.commands' environment); None for Unknown/None."""
    try:
        return datetime.strptime((text or "").strip(), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def format_minutes(minutes: int) -> str:
    """A time limit as scontrol reads it: ``[D-]HH:MM:SS``."""
    return format_duration(minutes * 60)


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise ValueError(f"not a job id scontrol is given: {job_id!r}")
    return job_id


class NotOneJob(ValueError):
    """The id names several jobs: an array's own id (every task), or array tasks slurmctld has not split yet."""


@dataclass(frozen=True)
class JobInfo:
    job_id: str  # slurmctld's one name of the job: ArrayJobId_ArrayTaskId for an array task, else JobId
    raw_id: str  # slurmctld's own id of the record (an array task's JobId)
    user: str
    account: str
    partition: str
    state: str
    time_limit: int | None  # minutes; None: UNLIMITED
    run_seconds: int
    start: datetime | None
    end: datetime | None
    nodes: tuple[str, ...]
    cpus: int
    reservation: str

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def extendable(self) -> bool:
        """Pending or running: what a time extension can still change."""
        return self.state in ("PENDING", "RUNNING", "SUSPENDED", "CONFIGURING")


@dataclass(frozen=True)
class Partition:
    name: str
    max_time: int | None  # minutes; None: UNLIMITED
    default_time: int | None
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Reservation:
    name: str
    start: datetime | None
    end: datetime | None
    nodes: tuple[str, ...]


def _scontrol(cluster: str | None = None) -> list[str]:
    """scontrol, with ``-M <cluster>`` when the call is about one cluster (else slurmctld of the local one)."""
    scontrol = settings.SLURM_SCONTROL
    if not scontrol:
        raise SlurmCommandError("SLURM_SCONTROL is empty", argv=["scontrol"], not_found=True)
    if cluster is None:
        return [str(scontrol)]
    if not isinstance(cluster, str) or not CLUSTER.fullmatch(cluster):
        raise ValueError(f"not a cluster name scontrol is given: {cluster!r}")
    return [str(scontrol), "-M", cluster]


def show(kind: str, name: str | None = None, *, cluster: str | None = None) -> list[dict[str, str]]:
    """``scontrol [-M cluster] show <kind> --oneliner [name]``: one dict per record. Raises SlurmCommandError."""
    argv = [*_scontrol(cluster), "show", kind, "--oneliner", *([name] if name else [])]
    result = run_command(argv, timeout=settings.SLURM_SCONTROL_TIMEOUT)
    return [pairs for pairs in (fields(line) for line in result.stdout.splitlines()) if pairs]


def _user(value: str) -> str:
    return value.split("(", 1)[0]  # UserId=alice(1001)


def job(job_id: str, *, cluster: str | None = None) -> JobInfo | None:
    """The job as slurmctld knows it now; None when it no longer does (it ended a while ago).

    Raises :class:`NotOneJob` when the id names more than one job: ``scontrol show job 1234`` of
    an array prints every task, and a record whose ArrayTaskId is a range (``3-9``, ``1,4%2``)
    stands for tasks not started yet. The JobInfo's ``job_id`` is built from the record, so
    ``0501`` and ``501``, or an array task's own JobId and ``1234_7``, give one id.
    """
    argv = [*_scontrol(cluster), "show", "job", "--oneliner", check_job_id(job_id)]
    result = run_command(argv, timeout=settings.SLURM_SCONTROL_TIMEOUT, check=False)
    if result.returncode != 0:
        if "Invalid job id" in result.stderr + result.stdout:
            return None
        raise SlurmCommandError(
            f"scontrol exited with {result.returncode}: {result.stderr.strip()[:300]}",
            argv=result.argv,
            returncode=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        )
    records = [pairs for pairs in (fields(line) for line in result.stdout.splitlines()) if pairs.get("JobId")]
    if not records:
        return None
    if len(records) > 1:
        raise NotOneJob(f"job {job_id} is an array of {len(records)} records: ask for one of its tasks")
    return job_from_fields(records[0])


def canonical_id(pairs: dict[str, str]) -> str:
    """The job's one name: ``ArrayJobId_ArrayTaskId`` for an array task, else ``JobId``. Raises NotOneJob."""
    task = pairs.get("ArrayTaskId", "")
    array = pairs.get("ArrayJobId", "")
    if task and task != "N/A":
        if not task.isdigit() or not array.isdigit():
            raise NotOneJob(f"array {array} tasks {task} are not one job")
        name = f"{int(array)}_{int(task)}"
    else:
        name = pairs.get("JobId", "")
    return check_job_id(name)


def job_from_fields(pairs: dict[str, str]) -> JobInfo:
    nodes = pairs.get("NodeList", "")
    return JobInfo(
        job_id=canonical_id(pairs),
        raw_id=pairs.get("JobId", ""),
        user=_user(pairs.get("UserId", "")),
        account=pairs.get("Account", ""),
        partition=pairs.get("Partition", ""),
        state=pairs.get("JobState", "").split()[0] if pairs.get("JobState") else "",
        time_limit=parse_minutes(pairs.get("TimeLimit")),
        run_seconds=parse_seconds(pairs.get("RunTime")),
        start=parse_time(pairs.get("StartTime")),
        end=parse_time(pairs.get("EndTime")),
        nodes=tuple(expand_hostlist(None if nodes == "(null)" else nodes)),
        cpus=int(pairs["NumCPUs"]) if pairs.get("NumCPUs", "").isdigit() else 0,
        reservation=pairs.get("Reservation", "") if pairs.get("Reservation") != "(null)" else "",
    )


def partition(name: str, *, cluster: str | None = None) -> Partition | None:
    for pairs in show("partition", name, cluster=cluster):
        if pairs.get("PartitionName") == name:
            return Partition(
                name=name,
                max_time=parse_minutes(pairs.get("MaxTime")),
                default_time=parse_minutes(pairs.get("DefaultTime")),
                nodes=tuple(expand_hostlist(pairs.get("Nodes"))),
            )
    return None


def reservations(*, cluster: str | None = None) -> list[Reservation]:
    """Every reservation slurmctld holds (scontrol prints "No reservations in the system" for none)."""
    return [
        Reservation(
            name=pairs["ReservationName"],
            start=parse_time(pairs.get("StartTime")),
            end=parse_time(pairs.get("EndTime")),
            nodes=tuple(expand_hostlist(pairs.get("Nodes"))),
        )
        for pairs in show("reservation", cluster=cluster)
        if pairs.get("ReservationName")
    ]


def time_limit_args(job_id: str, minutes: int) -> list[str]:
    if not isinstance(minutes, int) or minutes < 1:
        raise ValueError(f"a time limit is a positive number of minutes, not {minutes!r}")
    return ["update", f"JobId={check_job_id(job_id)}", f"TimeLimit={format_minutes(minutes)}"]


def update_time_limit(
    job_id: str, minutes: int, *, as_user: str | None = None, cluster: str | None = None
) -> CommandResult:
    """``scontrol [-M cluster] update JobId=<id> TimeLimit=<new>`` (as ``as_user`` through runuser when given)."""
    argv = [*_scontrol(cluster), *time_limit_args(job_id, minutes)]
    return run_command(argv, timeout=settings.SLURM_SCONTROL_TIMEOUT, as_user=as_user)
