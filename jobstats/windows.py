"""The period a graph covers: a job's run narrowed by ``?start=&end=``, or ``?delta=`` back from now."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.utils.translation import gettext as _

from jobstats.domain.graphs import Window


class WindowError(ValueError):
    """Bad start/end/delta parameters (a 400)."""


def _epoch_param(value: str | None, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except ValueError:
        raise WindowError(_("%(name)s must be a number of seconds since 1970 (UTC).") % {"name": name}) from None
    if not 0 <= number < 253402300800:
        raise WindowError(_("%(name)s is out of range.") % {"name": name})
    return number


def job_window(jobs: Sequence[Any], *, start: str | None, end: str | None, now: float | None = None) -> Window | None:
    """The jobs' run (earliest start to latest end, or now), narrowed by ``start``/``end``; None if none started."""
    current = float(now if now is not None else time.time())
    starts = [j.time_start for j in jobs if j.time_start]
    if not starts:
        return None
    first = float(min(starts))
    last = float(current if any(not j.time_end for j in jobs if j.time_start) else max(j.time_end for j in jobs))
    last = min(last, current)
    wanted_start, wanted_end = _epoch_param(start, "start"), _epoch_param(end, "end")
    if wanted_start is not None:
        first = max(first, wanted_start)
    if wanted_end is not None:
        last = min(last, wanted_end)
    if last <= first:
        if wanted_start is not None or wanted_end is not None:
            raise WindowError(_("The period asked for is outside the job's run."))
        last = first + 60
    return Window.of(first, last)


MAX_DELTA = 180 * 86400


def user_window(
    *, delta: str | None, start: str | None, end: str | None, default_delta: int, now: float | None = None
) -> Window:
    """``?delta=<seconds>`` back from now, or ``?start=&end=``, clamped to now and to 180 days."""
    current = float(now if now is not None else time.time())
    wanted_start, wanted_end = _epoch_param(start, "start"), _epoch_param(end, "end")
    if wanted_start is not None or wanted_end is not None:
        last = min(wanted_end if wanted_end is not None else current, current)
        first = wanted_start if wanted_start is not None else last - default_delta
        if last <= first:
            raise WindowError(_("end must be after start."))
        first = max(first, last - MAX_DELTA)
        return Window.of(first, last)
    seconds = default_delta
    if delta not in (None, ""):
        try:
            seconds = int(delta)  # type: ignore[arg-type]
        except ValueError:
            raise WindowError(_("delta must be a whole number of seconds.")) from None
        if not 60 <= seconds <= MAX_DELTA:
            raise WindowError(_("delta must be between 60 seconds and 180 days."))
    return Window.of(current - seconds, current)
