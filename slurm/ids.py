"""The job and step ids as sacct prints them (domain 1.4, 1.10, 1.11): ``1234_7``, ``1240+1``, ``1.batch``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from slurm.decoders import INFINITE, NO_VAL
from slurm.hostlists import format_ranges


def format_array_task_str(array_task_str: str | None, array_max_tasks: int = 0) -> str:
    """The pending tasks of an array meta record as sacct prints them: ``1-9%2``.

    slurmctld sends the task set as a hex bitmask (``0x3FE``: bit n is task n); ranges are
    accepted as well. ``array_max_tasks`` (the ``%N`` throttle) is appended when set.
    """
    text = (array_task_str or "").strip()
    if text.lower().startswith("0x"):
        try:
            mask = int(text, 16)
        except ValueError:
            return text
        text = format_ranges(i for i in range(mask.bit_length()) if mask >> i & 1)
    if text and array_max_tasks:
        text = f"{text}%{array_max_tasks}"
    return text


def format_job_id(
    id_job: int,
    id_array_job: int = 0,
    id_array_task: int = NO_VAL,
    het_job_id: int = 0,
    het_job_offset: int = NO_VAL,
    array_task_str: str | None = None,
    array_max_tasks: int = 0,
) -> str:
    """The JobID sacct prints: ``1234_7`` (array task), ``1234_[8-20]`` (pending tasks),
    ``1240+1`` (heterogeneous component), else ``1234``."""
    if id_array_job and id_array_task not in (NO_VAL, INFINITE):
        return f"{id_array_job}_{id_array_task}"
    if id_array_job and array_task_str:
        pending = format_array_task_str(array_task_str, array_max_tasks)
        if pending:
            return f"{id_array_job}_[{pending}]"
    if het_job_id and het_job_offset not in (NO_VAL, INFINITE):
        return f"{het_job_id}+{het_job_offset}"
    return str(id_job)


# Special step ids (slurm.h), stored as signed ints in step_table.id_step.
STEP_PENDING = -3  # SLURM_PENDING_STEP 0xfffffffd
STEP_EXTERN = -4  # SLURM_EXTERN_CONT 0xfffffffc
STEP_BATCH = -5  # SLURM_BATCH_SCRIPT 0xfffffffb
STEP_INTERACTIVE = -6  # SLURM_INTERACTIVE_STEP 0xfffffffa
SPECIAL_STEP_NAMES: dict[int, str] = {
    STEP_PENDING: "pending",
    STEP_EXTERN: "extern",
    STEP_BATCH: "batch",
    STEP_INTERACTIVE: "interactive",
}


def step_name(id_step: int) -> str:
    """``-5`` to ``batch``, ``-4`` to ``extern``, ``3`` to ``3``; accepts the unsigned spelling too."""
    signed = id_step - 2**32 if id_step >= 2**31 else id_step
    return SPECIAL_STEP_NAMES.get(signed, str(signed))


def format_step_id(job_id: str | int, id_step: int, step_het_comp: int = NO_VAL) -> str:
    """``1.batch``, ``1.0``, and ``1.0+1`` for component 1 of a heterogeneous step."""
    text = f"{job_id}.{step_name(id_step)}"
    if step_het_comp not in (NO_VAL, INFINITE):
        text += f"+{step_het_comp}"
    return text


@dataclass(frozen=True)
class JobRef:
    """A job as people write it: ``1234``, an array task ``1234_7`` or a heterogeneous component ``1240+1``."""

    job_id: int
    array_task: int | None = None
    het_offset: int | None = None

    def __str__(self) -> str:
        if self.array_task is not None:
            return f"{self.job_id}_{self.array_task}"
        if self.het_offset is not None:
            return f"{self.job_id}+{self.het_offset}"
        return str(self.job_id)


_JOB_REF = re.compile(r"^(\d{1,10})(?:_(\d{1,7})|\+(\d{1,4}))?$")
MAX_JOB_ID = 2**32 - 1


def parse_job_ref(text: str) -> JobRef | None:
    """``"1234"``, ``"1234_7"`` or ``"1240+1"`` (spaces around ignored) as a JobRef; None for anything else."""
    match = _JOB_REF.match((text or "").strip())
    if not match or int(match.group(1)) > MAX_JOB_ID or int(match.group(1)) == 0:
        return None
    task, offset = match.group(2), match.group(3)
    return JobRef(int(match.group(1)), int(task) if task else None, int(offset) if offset else None)
