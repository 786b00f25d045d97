"""One node's history in the accounting database: its events and the jobs that ran on it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from slurm.decoders import TRES_CPU, epoch_to_datetime
from slurm.hostlists import expand_hostlist
from slurm.models import Tres
from slurm.models.clusters import cluster_models
from userportal.windows import Window

MAX_EVENTS = 200
MAX_JOBS = 2000  # rows read for a timeline; a busier window is cut to the most recent ones
PREFIX = re.compile(r"^[A-Za-z_-]*")


@dataclass(frozen=True)
class NodeEvent:
    start: int
    end: int  # 0: still open
    state: int
    reason: str

    @property
    def started(self) -> datetime | None:
        return epoch_to_datetime(self.start)

    @property
    def ended(self) -> datetime | None:
        return epoch_to_datetime(self.end)


@dataclass(frozen=True)
class NodeJob:
    job_id: str
    user: str
    account: str
    start: int
    end: int  # 0: still running
    cpus: int  # on this node (the job's CPUs over its nodes)
    gpus: int


def events(cluster: str, node: str, window: Window) -> list[NodeEvent]:
    """The node's down/drain events overlapping ``window``, newest first."""
    rows = (
        cluster_models(cluster)
        .event.objects.filter(node_name=node, time_start__lte=window.end)
        .filter(Q(time_end=0) | Q(time_end__gte=window.start))
        .order_by("-time_start")[:MAX_EVENTS]
    )
    return [NodeEvent(row.time_start, row.time_end, row.state, row.reason) for row in rows]


def jobs_on(cluster: str, node: str, window: Window) -> list[NodeJob]:
    """The jobs that ran on ``node`` during ``window`` (their allocation spread evenly over their nodes)."""
    tables = cluster_models(cluster)
    prefix = PREFIX.match(node)
    rows = (
        tables.job.objects.filter(time_start__gt=0, time_start__lte=window.end)
        .filter(Q(time_end=0) | Q(time_end__gte=window.start))
        .filter(nodelist__startswith=prefix.group(0) if prefix else "")
        .order_by("-time_start")[:MAX_JOBS]
    )
    found = [row for row in rows if node in expand_hostlist(row.nodelist)]
    if not found:
        return []
    users = dict(
        tables.assoc.objects.filter(id_assoc__in={row.id_assoc for row in found}).values_list("id_assoc", "user")
    )
    catalog = Tres.catalog()
    result = []
    for row in found:
        count = max(row.nodes_alloc, 1)
        tres = row.tres_alloc_dict
        result.append(
            NodeJob(
                job_id=row.display_id,
                user=users.get(row.id_assoc, "") or str(row.id_user),
                account=row.account or "",
                start=row.time_start,
                end=row.time_end,
                cpus=tres.get(TRES_CPU, row.cpus_req) // count,
                gpus=catalog.gpu_count(tres) // count,
            )
        )
    return sorted(result, key=lambda job: job.start)


NODE_STATES = ("UNKNOWN", "DOWN", "IDLE", "ALLOCATED", "ERROR", "MIXED", "FUTURE")
NODE_FLAGS = ((0x200, "DRAIN"), (0x400, "COMPLETING"), (0x800, "NOT_RESPONDING"), (0x2000, "FAIL"))


def node_state_name(state: int) -> str:
    """An event's node state (``enum node_states`` and its flags in slurm.h) as scontrol names it."""
    base = NODE_STATES[state & 0xF] if (state & 0xF) < len(NODE_STATES) else "UNKNOWN"
    return "+".join([base, *(name for bit, name in NODE_FLAGS if state & bit)])
