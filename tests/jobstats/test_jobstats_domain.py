"""Pure domain functions: GPU model data, energy and cost, efficiency, pending reasons, figures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from jobstats.domain import gpu_models
from jobstats.domain.cost import Prices, job_cost, rated_watts
from jobstats.domain.efficiency import JobUsage, accounting_usage, summarise, usage_from_answer, usage_query
from jobstats.domain.gpu_models import GpuModelsError, load_table
from jobstats.domain.pending import explain_reason, parse_squeue
from jobstats.waiting import run_squeue
from slurm.decoders import step_cpu_seconds
from userportal.figures import figure, layout, no_data, trace
from userportal.prometheus import Sample, Series

TT_PRICES = Prices(0.04158, 0.010395, 0.5, 6.6225, 5.0, 0.0029431, 0.31393, 0.0478125, 1.7725, 8.0, "CAD")


# --- GPU models -----------------------------------------------------------------------------
def test_the_shipped_table_has_the_domain_models_and_aliases():
    table = load_table("")
    assert table.get("NVIDIA A100-SXM4-40GB").memory_gib == 40
    assert table.get("NVIDIA H100 80GB HBM3").full_power_w == 700
    assert table.get("3g.20gb").memory_gib == 20
    assert table.get("a100") == table.get("NVIDIA A100-SXM4-40GB")
    assert table.get("V100").name == "Tesla V100-SXM2-16GB"
    assert table.get("nvidia a100-sxm4-40gb").known


def test_an_unknown_model_gets_the_default_and_never_raises():
    model = load_table("").get("NVIDIA B300 Future Edition")
    assert not model.known
    assert model.full_power_w > 0
    assert load_table("").get(None).full_power_w > 0


def test_a_site_file_extends_and_overrides(tmp_path):
    site = tmp_path / "gpus.json"
    site.write_text(
        json.dumps(
            {
                "models": {"NVIDIA B200": {"memory_gib": 180, "full_power_w": 1000, "idle_power_w": 120}},
                "aliases": {"b200": "NVIDIA B200"},
                "default": {"memory_gib": 8, "full_power_w": 100, "idle_power_w": 10},
            }
        )
    )
    table = load_table(str(site))
    assert table.get("b200").memory_gib == 180
    assert table.get("a100").memory_gib == 40
    assert table.get("unknown").full_power_w == 100


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"models": {"X": {"memory_gib": -1, "full_power_w": 1, "idle_power_w": 0}}}),
        json.dumps({"models": {"X": {"memory_gib": 1, "full_power_w": 10, "idle_power_w": 20}}}),
        json.dumps({"aliases": {"x": "No Such Model"}}),
        json.dumps({"gpus": {}}),
    ],
)
def test_a_bad_site_file_is_refused(tmp_path, content):
    site = tmp_path / "gpus.json"
    site.write_text(content)
    with pytest.raises(GpuModelsError):
        load_table(str(site))


def test_a_bad_site_file_setting_falls_back_to_the_shipped_table(settings, tmp_path):
    site = tmp_path / "broken.json"
    site.write_text("{")
    settings.JOBSTATS_GPU_MODELS_FILE = str(site)
    gpu_models._cached.cache_clear()
    try:
        assert gpu_models.gpu_model("a100").memory_gib == 40
    finally:
        gpu_models._cached.cache_clear()


# --- Energy and cost --------------------------------------------------------------------------
def test_cost_of_a_cpu_job_with_tt_figures():
    body = job_cost(hours=2.0, cores=4, gpus=0, prices=TT_PRICES, kwh=0.064, energy_source="rated")
    assert body["kwh"] == pytest.approx(0.064)
    assert body["electricity_cost_dollar"] == pytest.approx(0.064 * 0.04158)
    assert body["cooling_cost_dollar"] == pytest.approx(0.064 * 0.010395)
    assert body["co2_emissions_kg"] == pytest.approx(0.064 / 1000 * 0.5)
    assert body["electric_car_range_km"] == pytest.approx(0.064 * 6.6225)
    assert body["hardware_cost_dollar"] == pytest.approx(4 * 0.0029431 * 2)
    assert body["cloud_cost_dollar"] == pytest.approx(4 * 0.0478125 * 2)
    assert body["amortization_years"] == 5.0
    assert body["total_cost_dollar"] == pytest.approx(
        body["electricity_cost_dollar"] + body["cooling_cost_dollar"] + body["hardware_cost_dollar"]
    )
    assert body["energy_source"] == "rated"


def test_a_gpu_job_is_charged_by_its_gpus():
    body = job_cost(hours=1.0, cores=12, gpus=2, prices=TT_PRICES, kwh=1.0, energy_source="measured")
    assert body["hardware_cost_dollar"] == pytest.approx(2 * 0.31393)
    assert body["cloud_cost_dollar"] == pytest.approx(2 * 1.7725)


def test_empty_settings_leave_their_keys_out():
    prices = Prices(None, 0.01, None, None, None, None, 0.3, None, None, 8.0)
    body = job_cost(hours=1.0, cores=1, gpus=0, prices=prices, kwh=1.0, energy_source="rated")
    assert set(body) == {"kwh", "energy_source", "cooling_cost_dollar"}


def test_rated_power_uses_the_gpu_model_table():
    assert rated_watts(cores=4, gpus=0, gpu_type=None, watts_per_core=8) == 32
    assert rated_watts(cores=4, gpus=2, gpu_type="a100", watts_per_core=8) == 32 + 2 * 400
    assert rated_watts(cores=1, gpus=1, gpu_type="mystery", watts_per_core=0) > 0


# --- Efficiency -------------------------------------------------------------------------------
@dataclass
class FakeStep:
    user_sec: int
    user_usec: int
    sys_sec: int
    sys_usec: int
    tres_usage_in_max: str


def test_accounting_usage_sums_cpu_and_takes_the_peak_rss():
    steps = [
        FakeStep(3, 989947, 1, 0, "2=1048576"),
        FakeStep(100, 0, 0, 500000, "1=5,2=3145728"),
        FakeStep(0, 0, 0, 0, ""),
    ]
    usage = accounting_usage(steps, elapsed=50)
    assert usage.cpu_seconds == pytest.approx(step_cpu_seconds(3, 989947, 1, 0) + 100.5)
    assert usage.mem_max_bytes == 3145728
    assert usage.source == "accounting"
    assert accounting_usage([], elapsed=50) is None


def _summary(usage, **kwargs):
    defaults = dict(
        cores=4, gpus=0, memory_mb=4096, elapsed=3600.0, timelimit_minutes=120, state="COMPLETED",
        running=False, hardware_core_hour=0.0029431, hardware_gpu_hour=0.31393, currency="CAD",
    )  # fmt: skip
    return summarise(usage, **{**defaults, **kwargs})


def test_summary_verdicts_and_waste():
    usage = JobUsage("accounting", cpu_seconds=4 * 3600 * 0.25, cores_used=1.0, mem_max_bytes=200 * 1024**2)
    summary = _summary(usage)
    cpu, memory, time_ = summary.get("cpu"), summary.get("memory"), summary.get("time")
    assert cpu.percent == 25
    assert cpu.verdict == "poor"
    assert memory.verdict == "poor"
    assert time_.percent == 50
    assert time_.verdict == "good"
    assert summary.waste.core_hours == pytest.approx(3.0)
    assert summary.waste.cost == pytest.approx(3.0 * 0.0029431)


def test_serial_job_on_many_cores_is_called_out():
    usage = JobUsage("prometheus", cpu_seconds=3600.0, cores_used=1.0, mem_max_bytes=3 * 1024**3)
    assert "serial" in _summary(usage, cores=8).get("cpu").sentence


def test_gpu_efficiency_is_per_gpu_and_counts_unseen_gpus_as_idle():
    usage = JobUsage("prometheus", cpu_seconds=3600.0 * 4, gpus_seen=1, gpu_util=80.0)
    summary = _summary(usage, gpus=2)
    assert summary.get("gpu").percent == 40
    assert summary.waste.gpu_hours == pytest.approx(2 * 1 * 0.6)
    assert summary.waste.cost == pytest.approx(1.2 * 0.31393)


def test_oom_and_timeout_get_a_warning():
    usage = JobUsage("accounting", cpu_seconds=3600.0, mem_max_bytes=4096 * 1024**2)
    assert _summary(usage, state="OUT_OF_MEMORY").get("memory").verdict == "warning"
    assert _summary(usage, state="TIMEOUT", elapsed=7200.0).get("time").verdict == "warning"


# --- Pending ----------------------------------------------------------------------------------
def test_reasons_become_sentences():
    assert "higher priority" in explain_reason("Priority")
    assert "QOS" in explain_reason("QOSGrpGRES")
    assert "account" in explain_reason("AssocMaxJobsLimit")
    assert "unknown" in explain_reason("")
    assert "SomethingNew" in explain_reason("SomethingNew")


def test_squeue_output_is_parsed():
    answer = parse_squeue("2026-11-23T10:00:00|Priority|12345\n")
    assert answer.start == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert answer.reason == "Priority"
    assert answer.priority == 12345
    unknown = parse_squeue("N/A|Resources|7")
    assert unknown.start is None
    assert parse_squeue("") is None


def test_squeue_is_run_with_an_argv_and_fails_softly(tmp_path):
    script = tmp_path / "squeue"
    script.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\necho "2026-11-23T10:00:00|QOSGrpGRES|99"\n')
    script.chmod(0o755)
    answer = run_squeue(42, squeue=str(script), timeout=5)
    assert answer.reason == "QOSGrpGRES"
    assert (tmp_path / "args").read_text().split() == ["--start", "--noheader", "--jobs", "42", "--format", "%S|%r|%Q"]
    assert run_squeue(42, squeue="/nonexistent/squeue", timeout=1) is None
    assert run_squeue(42, squeue="", timeout=1) is None
    slow = tmp_path / "slow"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    assert run_squeue(42, squeue=str(slow), timeout=0.2) is None


# --- Figures ----------------------------------------------------------------------------------
def test_figures_are_utc_and_json_safe():
    series = Series({}, [1795331444.0, 1795331474.0], [1.5, float("nan")])
    fig = figure([trace(series, "cpu", unit="cores")], layout("CPU", "cores"), unit="cores")
    assert fig["data"][0]["x"][0] == "2026-11-22T07:10:44Z"
    assert fig["data"][0]["y"] == [1.5, None]
    json.dumps(fig, allow_nan=False)
    assert "cpu: mean 1.5 cores" in fig["summary"]


def test_empty_results_give_the_one_no_data_figure():
    fig = figure([], layout("CPU", "cores"), unit="cores")
    assert fig == no_data("CPU", fig["reason"])
    assert fig["data"] == []
    assert fig["no_data"] is True
    assert fig["layout"]["annotations"]


# --- System checks ----------------------------------------------------------------------------
def test_manage_py_check_names_bad_site_data(settings, tmp_path):
    from jobstats.checks import check_site_data

    assert check_site_data() == []
    bad_gpus = tmp_path / "gpus.json"
    bad_gpus.write_text("{")
    bad_rules = tmp_path / "rules.json"
    bad_rules.write_text('[{"id": "x", "severity": "loud", "message": "m"}]')
    settings.JOBSTATS_GPU_MODELS_FILE = str(bad_gpus)
    settings.JOBSTATS_ADVICE_RULES = [str(bad_rules)]
    assert [error.id for error in check_site_data()] == ["jobstats.E001", "jobstats.E002"]


def test_usage_query_and_its_answer_are_read_without_prometheus():
    assert "42" in usage_query(42, 3600)
    assert usage_from_answer({}, 3600) is None
    answer = {"u_cpu": [Sample({}, 12600.0)], "u_cpu_at": [Sample({}, 1000 + 3600.0)], "u_mem_max": [Sample({}, 2e9)]}
    found = usage_from_answer(answer, 4000, start=1000)
    assert found is not None
    assert (found.source, found.cores_used, found.cpu_seconds, found.mem_max_bytes) == ("prometheus", 3.5, 12600, 2e9)
    assert found.cpu_elapsed == 3600  # to the counters' last sample, not to the query's time
    assert found.mem_source == "memory_max"
    fallback = usage_from_answer({"u_mem_usage": [Sample({}, 1e9)], "u_seen": [Sample({}, 2.0)]}, 600)
    assert fallback is not None and (fallback.mem_max_bytes, fallback.mem_source) == (1e9, "memory_usage")
    assert fallback.gpu_state(1) == "not-measured" and fallback.gpu_state(0) == "none"
    assert found.gpu_util is None
