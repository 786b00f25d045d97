"""The one rule for the periods graphs and tables cover, and for the step of their range queries.

Every page that asks Prometheus about a period goes through here (jobstats' user and job graphs,
accountstats' table and graphs; top offers a menu of periods ending now, within these limits):

* A period is at least MIN_SPAN (a shorter one, such as a 5-second job, is widened by moving
  its end) and at most MAX_SPAN: a ``?delta=`` outside that is a 400; ``?start=&end=`` wider
  than that keeps its most recent MAX_SPAN (a zoomed-out graph still draws).
* A period asked for ends now, or at the ``end`` asked for, never later than now. The end is
  never rounded to the step: the last point of a range query is the end itself.
* The step is the smallest one that keeps a series at or under MAX_POINTS points, and at least
  MIN_STEP (the exporters' scrape interval: a finer step only repeats samples).
* Prometheus evaluates a range query at start, start + step, ... up to end, so a grid laid
  forward from the start ends up to one step before the end (36 minutes at 30 days). The grid
  is laid back from the end instead: :attr:`Window.first` is the start moved back by less than
  one step, so that the last point is the end.
* A graph point never hides what happened inside its step. A job's series come and go (a job
  shorter than a step, the first minutes of any job): a point is the mean of the values the
  series had inside its step while they existed (:func:`step_mean`, every MIN_STEP seconds), and a
  job counter's rate is the growth between its own samples (:func:`job_counter_rate`), never
  rate() over a window silently widened to the step, which spreads a 7-minute job over a
  10-minute point (0.79 cores where it kept 1.95 busy) while its allocation is drawn in full.
* Long-lived counters (node_exporter, Lustre) use :func:`rate_window`: the site's window, or the
  step when it is longer, so that a point is its step's mean.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from userportal import promql

MINUTE = 60
HOUR = 3600
DAY = 86400
MIN_SPAN = MINUTE
MAX_SPAN = 366 * DAY
MIN_STEP = 30
MAX_POINTS = 1000  # every series a range query returns stays at or under this many points
LAST_EPOCH = 253402300800  # 10000-01-01: anything later is not a date


class WindowError(ValueError):
    """Bad ``start``/``end``/``delta`` parameters (a 400)."""


def step_for(span: float) -> int:
    """The query step (seconds) that keeps ``span`` seconds at or under MAX_POINTS points."""
    return max(MIN_STEP, math.ceil(max(span, 1.0) / (MAX_POINTS - 1)))


def rate_window(step: int) -> str:
    """rate() window of a long-lived counter (node, Lustre): PROMETHEUS_RATE_WINDOW, or the step when longer.

    Not for job series (they start and stop inside a step): see :func:`job_counter_rate`.
    """
    return promql.duration(max(int(settings.PROMETHEUS_RATE_WINDOW), int(step)))


def step_mean(expr: str, step: int) -> str:
    """``expr`` (an instant expression) as a graph point ``step`` seconds wide: the mean of its values
    every MIN_STEP seconds inside the step, while it has one (``expr`` itself at the finest step)."""
    if step <= MIN_STEP:
        return expr
    return f"avg_over_time(({expr})[{int(step)}s:{MIN_STEP}s])"


def job_counter_rate(selector: str, step: int, *, by: str = "") -> str:
    """Per-second rate of a job's counters (``sum by (by)``) for graph points ``step`` seconds apart.

    At the finest step, rate() over the site's PROMETHEUS_RATE_WINDOW; wider steps average the
    growth between consecutive samples (irate) over the step while the job ran, so a short job
    shows the use it had, and its allocation (also a step_mean) is drawn over the same time.
    """
    window = promql.duration(int(settings.PROMETHEUS_RATE_WINDOW))
    group = f"sum by ({by})" if by else "sum"
    if step <= MIN_STEP:
        return f"{group} (rate({selector}[{window}]))"
    return step_mean(f"{group} (irate({selector}[{window}]))", step)


@dataclass(frozen=True)
class Window:
    """A period in whole epoch seconds and the step of its range queries (build it with :meth:`of`)."""

    start: int
    end: int
    step: int

    @classmethod
    def of(cls, start: float, end: float) -> Window:
        low, high = math.floor(start), math.floor(end)
        high = max(high, low + MIN_SPAN)  # a 5-second job still gets a readable (and valid) range
        return cls(low, high, step_for(high - low))

    @property
    def seconds(self) -> int:
        return self.end - self.start

    @property
    def first(self) -> int:
        """Where a range query starts: ``start`` moved back by less than a step, so the grid ends at ``end``."""
        return self.end - math.ceil(self.seconds / self.step) * self.step


def back_from(now: float, seconds: int) -> Window:
    """The last ``seconds`` up to ``now``."""
    return Window.of(math.floor(now) - seconds, now)


def epoch(value: str | None, name: str) -> float | None:
    """The ``?start=``/``?end=`` parameter ``name`` as epoch seconds, None when absent."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise WindowError(_("%(name)s must be a number of seconds since 1970 (UTC).") % {"name": name}) from None
    if not 0 <= number < LAST_EPOCH:
        raise WindowError(_("%(name)s is out of range.") % {"name": name})
    return number


def requested(
    *, delta: str | None, start: str | None, end: str | None, default: int, now: float | None = None
) -> Window:
    """The period a request asks for: ``?start=&end=`` epochs, else ``?delta=`` seconds back, else ``default``.

    ``end`` defaults to now and is never later; ``start`` defaults to ``default`` seconds before ``end``.
    """
    current = time.time() if now is None else now
    wanted_start, wanted_end = epoch(start, "start"), epoch(end, "end")
    if wanted_start is not None or wanted_end is not None:
        last = min(wanted_end if wanted_end is not None else current, current)
        first = wanted_start if wanted_start is not None else last - default
        if last <= first:
            raise WindowError(_("end must be after start."))
        return Window.of(max(first, last - MAX_SPAN), last)
    seconds = default
    if delta is not None and delta != "":
        try:
            seconds = int(delta)
        except ValueError:
            raise WindowError(_("delta must be a whole number of seconds.")) from None
        if not MIN_SPAN <= seconds <= MAX_SPAN:
            raise WindowError(_("The period must be between one minute and one year."))
    return back_from(current, seconds)
