"""Job-id lists in URLs: ``1234``, ``100-105,107`` (TT's syntax), validated and bounded."""

from __future__ import annotations

import re

MAX_ID = 0xFFFFFFFF  # id_job is an int unsigned
MAX_TEXT = 200  # characters of the URL segment
MAX_IDS = 100  # ids one page (or one graph) may name

_ITEM = re.compile(r"(\d{1,10})(?:-(\d{1,10}))?")
_ARRAY_TASK = re.compile(r"(\d{1,10})_(\d{1,10})")


class JobIdError(ValueError):
    """A job-id list that is malformed or too long (a 400, never a 500)."""


def parse_job_ids(text: str, *, max_ids: int = MAX_IDS) -> list[int]:
    """``"100-103,107"`` to ``[100, 101, 102, 103, 107]``: sorted, without duplicates.

    Raises JobIdError for anything else: empty items, reversed ranges, ids out of range, or
    more than ``max_ids`` ids in total (a range is counted before it is expanded).
    """
    text = (text or "").strip()
    if not text:
        raise JobIdError("No job id given.")
    if len(text) > MAX_TEXT:
        raise JobIdError(f"The job-id list is longer than {MAX_TEXT} characters.")
    ids: set[int] = set()
    for item in text.split(","):
        match = _ITEM.fullmatch(item.strip())
        if not match:
            raise JobIdError(f"{item!r} is not a job id or a range of job ids.")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if low < 1 or high > MAX_ID:
            raise JobIdError(f"{item!r} is outside the range of Slurm job ids.")
        if high < low:
            raise JobIdError(f"{item!r} is a reversed range.")
        if high - low + 1 + len(ids) > max_ids:
            raise JobIdError(f"At most {max_ids} job ids at a time.")
        ids.update(range(low, high + 1))
    return sorted(ids)


def parse_array_task(text: str) -> tuple[int, int] | None:
    """``"25_2"`` (an array task as squeue and sacct name it) to ``(25, 2)``; None for anything else."""
    match = _ARRAY_TASK.fullmatch((text or "").strip())
    if not match:
        return None
    array_id, task_id = int(match.group(1)), int(match.group(2))
    if not 1 <= array_id <= MAX_ID or task_id > MAX_ID:
        return None
    return array_id, task_id


def format_job_ids(ids: list[int]) -> str:
    """The inverse of parse_job_ids: ``[100, 101, 102, 107]`` to ``100-102,107``."""
    parts: list[str] = []
    ordered = sorted(set(ids))
    start = previous = None
    for value in ordered:
        if start is None:
            start = previous = value
        elif previous is not None and value == previous + 1:
            previous = value
        else:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = previous = value
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}-{previous}")
    return ",".join(parts)
