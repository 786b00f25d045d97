"""The period a job graph covers: the jobs' run, narrowed by ``?start=&end=`` (userportal.windows has the rule)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.utils.translation import gettext as _

from userportal.windows import MAX_SPAN, MIN_SPAN, Window, WindowError, epoch


def job_window(jobs: Sequence[Any], *, start: str | None, end: str | None, now: float | None = None) -> Window | None:
    """The jobs' run (earliest start to latest end, or now), narrowed by ``start``/``end``; None if none started.

    Runs longer than MAX_SPAN (a list of jobs a year apart) keep their most recent MAX_SPAN.
    """
    current = float(now if now is not None else time.time())
    starts = [j.time_start for j in jobs if j.time_start]
    if not starts:
        return None
    first = float(min(starts))
    last = float(current if any(not j.time_end for j in jobs if j.time_start) else max(j.time_end for j in jobs))
    last = min(last, current)
    wanted_start, wanted_end = epoch(start, "start"), epoch(end, "end")
    if wanted_start is not None:
        first = max(first, wanted_start)
    if wanted_end is not None:
        last = min(last, wanted_end)
    if last <= first:
        if wanted_start is not None or wanted_end is not None:
            raise WindowError(_("The period asked for is outside the job's run."))
        last = first + MIN_SPAN
    return Window.of(max(first, last - MAX_SPAN), last)
