"""A priority's QOS in Slurm: its spec, the sacctmgr commands staff copy, and running them (automatic mode).

Names reach sacctmgr as argv items checked against slurm.sacctmgr's patterns, never through a shell.
"""

from __future__ import annotations

import logging

from django.conf import settings

from priorities.models import PriorityRequest
from slurm import sacctmgr
from slurm.sacctmgr import QosSpec

logger = logging.getLogger(__name__)


def automatic() -> bool:
    """PRIORITIES_APPLY_MODE: the portal runs sacctmgr itself (else staff run the commands shown)."""
    return bool(settings.PRIORITIES_APPLY_MODE == "automatic")


def qos_spec(priority: PriorityRequest) -> QosSpec:
    if not priority.qos_name:
        raise ValueError(f"priority {priority.pk} has no QOS name yet")
    return QosSpec(
        name=priority.qos_name,
        gpu_type=priority.gpu_type,
        gpu_count=priority.gpu_count,
        days=priority.duration_days,
        priority=settings.PRIORITIES_QOS_PRIORITY,
    )


def commands(priority: PriorityRequest) -> dict[str, list[str]]:
    """The sacctmgr commands staff copy: creating the QOS and adding it to every user; and the removal."""
    if not priority.qos_name:
        return {"apply": [], "remove": []}
    spec = qos_spec(priority)
    users = [u for u in priority.usernames() if sacctmgr.ENTITY_NAME.fullmatch(u)]
    return {
        "apply": [sacctmgr.display(sacctmgr.add_qos_args(spec))]
        + [sacctmgr.display(sacctmgr.user_qos_args(u, priority.account, spec.name, add=True)) for u in users],
        "remove": [sacctmgr.display(sacctmgr.user_qos_args(u, priority.account, spec.name, add=False)) for u in users]
        + [sacctmgr.display(sacctmgr.delete_qos_args(spec.name))],
    }


def apply_to_slurm(priority: PriorityRequest) -> list[str]:
    """Create the QOS (or set its limits) and add it to every user's association with the account.

    A user sacctmgr refuses (one who lost their association: "Nothing modified") does not stop the
    others: what failed is returned, one message per user. A failure to create the QOS raises.
    """
    slurm = sacctmgr.get_client()
    spec = qos_spec(priority)
    slurm.add_qos(spec)
    failures = []
    for name in priority.usernames():
        try:
            slurm.add_user_qos(name, priority.account, spec.name)
        except sacctmgr.SacctmgrError as exc:
            failures.append(str(exc))
    return failures


def remove_from_slurm(priority: PriorityRequest) -> None:
    assert priority.qos_name
    slurm = sacctmgr.get_client()
    # Deleting the QOS also removes it from every association (domain 2.2); the explicit removals
    # leave no "-=" trace behind if the delete fails halfway.
    for name in priority.usernames():
        if sacctmgr.ENTITY_NAME.fullmatch(name):
            try:
                slurm.remove_user_qos(name, priority.account, priority.qos_name)
            except sacctmgr.SacctmgrError:
                logger.warning("priority %s: removing %s's QOS failed; deleting the QOS anyway", priority.pk, name)
    slurm.delete_qos(priority.qos_name)
