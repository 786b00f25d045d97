"""The one rule for periods and steps (userportal.windows): limits, steps, and where a window ends."""

from __future__ import annotations

import math

import pytest

from userportal.windows import (
    DAY,
    MAX_POINTS,
    MAX_SPAN,
    MIN_SPAN,
    MIN_STEP,
    Window,
    WindowError,
    back_from,
    epoch,
    job_counter_rate,
    rate_window,
    requested,
    step_for,
    step_mean,
)

NOW = 1_795_000_000.75  # not on any step: the end must stay where it is


def grid(window: Window) -> list[int]:
    """The points Prometheus evaluates a range query at: start, start + step, ... up to end."""
    return list(range(window.first, window.end + 1, window.step))


def test_the_step_keeps_every_series_under_the_point_budget():
    assert step_for(3600) == MIN_STEP  # a short period: the scrape interval
    for span in (MIN_SPAN, 6 * 3600, DAY, 30 * DAY, 90 * DAY, MAX_SPAN):
        assert len(grid(Window.of(NOW - span, NOW))) <= MAX_POINTS


@pytest.mark.parametrize("span", [MIN_SPAN, 3600, 7 * DAY, 30 * DAY, 90 * DAY, MAX_SPAN, 30 * DAY + 17])
def test_the_last_point_is_the_end_of_the_window(span):
    window = back_from(NOW, span)
    assert window.end == math.floor(NOW)  # now, not floored to the step
    points = grid(window)
    assert points[-1] == window.end
    assert window.start - window.step < points[0] <= window.start  # the grid covers the whole period


def test_thirty_days_no_longer_end_36_minutes_before_now():
    window = back_from(NOW, 30 * DAY)
    forward = list(range(window.start, window.end + 1, window.step))  # a grid laid from the start
    assert window.end - forward[-1] > 30 * 60  # what the pages drew before
    assert grid(window)[-1] == window.end


def test_a_short_period_is_widened_to_a_minute():
    window = Window.of(1000, 1005)  # a 5-second job
    assert (window.start, window.end, window.seconds) == (1000, 1000 + MIN_SPAN, MIN_SPAN)


def test_delta_is_seconds_back_from_now_within_the_limits():
    window = requested(delta="86400", start=None, end=None, default=7 * DAY, now=NOW)
    assert (window.end, window.seconds) == (math.floor(NOW), DAY)
    assert requested(delta=None, start=None, end=None, default=7 * DAY, now=NOW).seconds == 7 * DAY
    assert requested(delta=str(MAX_SPAN), start=None, end=None, default=DAY, now=NOW).seconds == MAX_SPAN
    for bad in ("10", str(MAX_SPAN + 1), "x", "1.5"):
        with pytest.raises(WindowError):
            requested(delta=bad, start=None, end=None, default=DAY, now=NOW)


def test_start_and_end_are_clamped_to_now_and_to_the_longest_period():
    window = requested(delta=None, start="1794000000", end="1794003600", default=DAY, now=NOW)
    assert (window.start, window.end) == (1794000000, 1794003600)
    future = requested(delta=None, start="1794990000", end="1999999999", default=DAY, now=NOW)
    assert future.end == math.floor(NOW)
    wide = requested(delta=None, start="0", end=None, default=DAY, now=NOW)
    assert (wide.end, wide.seconds) == (math.floor(NOW), MAX_SPAN)  # the most recent year of it
    only_end = requested(delta=None, start=None, end="1794003600", default=DAY, now=NOW)
    assert (only_end.start, only_end.end) == (1794003600 - DAY, 1794003600)
    with pytest.raises(WindowError):
        requested(delta=None, start="5", end="1", default=DAY, now=NOW)


@pytest.mark.parametrize("value", ["yesterday", "-5", "1e20"])
def test_epochs_are_checked(value):
    with pytest.raises(WindowError):
        epoch(value, "start")
    assert epoch("", "start") is None


def test_the_rate_window_is_the_sites_widened_to_the_step(settings):
    settings.PROMETHEUS_RATE_WINDOW = 120
    assert rate_window(30) == "120s"
    assert rate_window(2595) == "2595s"


def test_a_job_counter_is_never_rated_over_a_window_widened_to_the_step(settings):
    settings.PROMETHEUS_RATE_WINDOW = 120
    sel = 'slurm_job_core_usage_total{user="alice"}'
    assert job_counter_rate(sel, MIN_STEP) == f"sum (rate({sel}[120s]))"
    wide = job_counter_rate(sel, 606, by="slurmjobid")
    assert wide == f"avg_over_time((sum by (slurmjobid) (irate({sel}[120s])))[606s:{MIN_STEP}s])"
    assert "[606s]" not in wide


def test_a_step_mean_averages_the_values_inside_the_step():
    assert step_mean("count(x)", MIN_STEP) == "count(x)"
    assert step_mean("count(x)", 3600) == f"avg_over_time((count(x))[3600s:{MIN_STEP}s])"
