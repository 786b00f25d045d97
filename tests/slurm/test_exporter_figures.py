"""slurm.exporter's expressions evaluated by promtool on series shaped like the real exporter's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from exporter_series import GIB, ExporterJob, all_series
from promtool_client import PromtoolClient

from slurm import exporter
from userportal.promql import union

pytestmark = pytest.mark.usefixtures("promtool")

START = 100_000


def at(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


def evaluate(jobs: list[ExporterJob], parts: dict[str, str], t: int) -> dict[tuple[str, str], float]:
    client = PromtoolClient(all_series(jobs, t))
    samples = client.query(union(parts), at=at(t))
    return {(s.labels.get("portal_series", ""), s.labels.get("slurmjobid", "")): s.value for s in samples}


def test_a_running_jobs_cpu_time_is_the_counters_growth_not_an_average_of_rates():
    job = ExporterJob(7, start=START, end=None, busy=1.92)
    now = START + 450  # 7.5 minutes: a short job, where rate() windows are at their worst
    found = evaluate(
        [job],
        {"cpu": exporter.cpu_seconds([7], now - START), "last": exporter.last_sample([7])},
        now,
    )
    last_scrape = found[("last", "7")]
    truth = job.cpu_seconds(last_scrape)
    assert found[("cpu", "7")] == pytest.approx(truth, rel=1e-6)
    assert found[("cpu", "7")] / (2 * (last_scrape - START)) == pytest.approx(0.96, abs=0.005)
    # What the portal used to compute: the mean of rate() points times the run, about 83 %
    client = PromtoolClient(all_series([job], now))
    (old,) = client.query(
        f"avg_over_time((sum(rate(slurm_job_core_usage_total[120s])) / 1e9)[{now - START}s:30s])", at=at(now)
    )
    assert old.value * (now - START) / (2 * (now - START)) < 0.9


def test_cpu_time_over_a_period_subtracts_what_the_counter_had_at_its_start():
    job = ExporterJob(8, start=START, end=None, busy=lambda s: 2.0 if s < 600 else 0.5)
    now = START + 1800
    found = evaluate([job], {"cpu": exporter.cpu_seconds([8], 900)}, now)
    last = job.scrapes(now)[-1]
    before = [t for t in job.scrapes(now) if t <= now - 900][-1]
    assert found[("cpu", "8")] == pytest.approx(job.cpu_seconds(last) - job.cpu_seconds(before), rel=1e-6)


def test_a_requeued_jobs_counter_reset_is_handled():
    first = ExporterJob(9, start=START, end=START + 300, busy=2.0)
    second = ExporterJob(9, start=START + 400, end=None, busy=1.0)
    now = START + 1000
    found = evaluate([first, second], {"cpu": exporter.cpu_seconds([9], 600)}, now)
    # the new cgroup counted from zero: increase() over the period counts the second run, not a negative jump
    assert found[("cpu", "9")] == pytest.approx(second.cpu_seconds(now), rel=0.1)
    assert found[("cpu", "9")] > 0


def test_memory_peak_falls_back_to_the_highest_usage_without_memory_max():
    shape = lambda s: (0.5 + 2.5 * (120 < s < 200)) * GIB  # noqa: E731 - a 3 GiB spike in the middle
    v1 = ExporterJob(10, start=START, end=None, mem_usage=shape)
    v2 = ExporterJob(11, start=START, end=None, mem_usage=shape, memory_max=False, cgroup_v2=True)
    now = START + 600
    found = evaluate([v1, v2], {**exporter.memory_peak([10, 11], 600)}, now)
    assert exporter.peak_of(found.get(("mem_max", "10")), found.get(("mem_usage", "10"))) == pytest.approx(3 * GIB)
    assert ("mem_max", "11") not in found
    assert exporter.peak_of(None, found[("mem_usage", "11")]) == pytest.approx(3 * GIB)


def test_a_gpu_job_without_gpu_series_is_not_measured_and_not_idle():
    measured = ExporterJob(12, start=START, end=None, gpus=(("0", "NVIDIA A100-SXM4-40GB", 80.0),))
    blind = ExporterJob(13, start=START, end=None, gpus=(("1", "NVIDIA A100-SXM4-40GB", 0.0),), gpu_measured=False)
    now = START + 300
    found = evaluate(
        [measured, blind],
        {"gpus": exporter.gpus_measured([12, 13, 14], 300), "seen": exporter.seen([12, 13, 14], 300)},
        now,
    )
    state = {
        job: exporter.gpu_state(1, found.get(("gpus", str(job))), found.get(("seen", str(job)))) for job in (12, 13, 14)
    }
    assert state == {12: "measured", 13: "not-measured", 14: "not-seen"}
