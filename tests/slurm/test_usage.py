"""slurm.usage: a job's figures from accounting (as sacct/seff) and a period's use per (user, account)."""

from __future__ import annotations

import numpy as np
import pytest
from exporter_series import ExporterJob, all_series
from promtool_client import PromtoolClient

from slurm.decoders import JobState
from slurm.usage import cpu_efficiency, step_totals, unused_cpu_share
from slurm.window_use import use_in_window
from userportal.prometheus import MetricsSession

GIB = 1024**3
NOW = 200_000


@pytest.mark.django_db(databases=["default", "slurm"])
def test_step_totals_are_sacct_totalcpu_and_maxrss(personas):
    s = personas.slurm
    job = s.job("owner", "def-owner", cpus_req=2)
    s.step(job, user_sec=700, user_usec=500_000, sys_sec=12, sys_usec=600_000, tres_usage_in_max=f"2={GIB}")
    s.step(job, id_step=0, step_name="python", user_sec=100, tres_usage_in_max=f"1=5,2={3 * GIB}")
    s.step(job, id_step=1, step_name="ls", tres_usage_in_max="")  # ended before the first sample
    totals = step_totals(job.steps())
    assert totals is not None
    assert totals.cpu_seconds == pytest.approx(813.1)  # TotalCPU 13:33.100
    assert totals.max_rss_bytes == 3 * GIB
    assert step_totals([]) is None


def test_cpu_efficiency_is_seffs():
    assert cpu_efficiency(865.0, 2, 450) == pytest.approx(0.9611, abs=1e-4)  # 14:25 of 2 cores × 7:30
    assert cpu_efficiency(None, 2, 450) is None
    assert cpu_efficiency(10.0, 0, 450) is None
    assert cpu_efficiency(10.0, 2, 0) is None


def test_unused_share_is_one_minus_the_clamped_efficiency():
    share = unused_cpu_share(np.array([865.0, 0.0, 2000.0, 5.0]), np.array([900.0, 900.0, 900.0, 0.0]))
    assert share.tolist() == pytest.approx([1 - 865 / 900, 1.0, 0.0, 0.0])


@pytest.mark.django_db(databases=["default", "slurm"])
def test_use_in_a_period_adds_finished_jobs_from_accounting_and_running_ones_from_counters(personas, promtool):
    s = personas.slurm
    # finished inside the period: 2 cores for 450 s, TotalCPU 865 s
    done = s.job("owner", "def-owner", cpus_req=2, time_start=NOW - 3000, time_end=NOW - 2550)
    s.step(done, user_sec=860, sys_sec=5)
    # half of its run before the period: half of it counts
    s.job("owner", "def-owner", cpus_req=4, time_start=NOW - 4600, time_end=NOW - 3400)
    # running, 2 cores, 1.5 busy according to its counters
    live = s.job("owner", "def-owner", cpus_req=2, state=JobState.RUNNING, time_start=NOW - 900, time_end=0)
    # running without counters (the exporter never saw it): allocated, but not in the efficiency
    s.job("member", "def-owner", cpus_req=1, state=JobState.RUNNING, time_start=NOW - 600, time_end=0)
    client = PromtoolClient(all_series([ExporterJob(live.id_job, start=NOW - 900, end=None, busy=1.5)], NOW))
    period = use_in_window(MetricsSession(client), s.cluster, NOW - 4000, NOW)
    owner = period.rows[("owner", "def-owner")]
    assert owner.core_seconds == pytest.approx(2 * 450 + 4 * 600 + 2 * 900)
    counted = ExporterJob(live.id_job, start=NOW - 900, end=None, busy=1.5)
    live_cpu = counted.cpu_seconds(counted.scrapes(NOW)[-1])
    assert owner.cpu_seconds == pytest.approx(865 + live_cpu, rel=1e-6)
    member = period.rows[("member", "def-owner")]
    assert member.core_seconds == pytest.approx(600)
    assert member.efficiency is None and member.unmeasured
    assert not period.counters_missing
