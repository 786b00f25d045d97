"""Costs: quantities, the rate in force at each job's end, GPU factors, exact money."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import pytest

from billing.costs import PriceList, RateRow, aggregate, calculate, price, to_money, totals
from slurm.jobsource.frame import COLUMNS, finish_frame

OLD = datetime(2000, 1, 1, tzinfo=UTC)
MARCH = datetime(2026, 3, 1, tzinfo=UTC)
RATES = [
    RateRow("mu", "cpu", OLD, Decimal("0.5")),
    RateRow("mu", "gpu", OLD, Decimal("15")),
    RateRow("mu", "mem", OLD, Decimal("0.05")),
    RateRow("mu", "cpu", MARCH, Decimal("1.0")),
    RateRow("gov", "cpu", OLD, Decimal("2")),
]


def frame(**overrides) -> pd.DataFrame:
    row = {name: None for name in COLUMNS}
    row.update(
        cluster="c", job_id=1, submit="2026-02-01T00:00:00Z", user="alice", account="physics", state="COMPLETED",
        end="2026-02-10T00:00:00Z", elapsed=7200, total_cpu=3600.0, alloc_cpus=2, alloc_mem_mb=2048, alloc_gpus=0,
        gpu_type="",
    )  # fmt: skip
    row.update(overrides)
    return finish_frame(pd.DataFrame([row]))


def test_cpu_gpu_and_memory_hours_are_priced_at_the_tier_rates():
    priced = price(frame(alloc_gpus=1, gpu_type="a100"), PriceList(RATES, {"a100": Decimal("2")}))
    row = priced.iloc[0]
    assert (row.cpu_hours, row.gpu_hours, row.mem_gb_hours) == (4.0, 2.0, 4.0)
    assert row.cpu_minor == 200  # 4 h × 0.5
    assert row.gpu_minor == 6000  # 2 h × factor 2 × 15
    assert row.mem_minor == 20  # 4 GB-h × 0.05
    assert row.cost_minor == 6220
    assert row.cpu_efficiency == pytest.approx(0.25)
    assert row.unused_minor == 150  # 75 % of the CPU cost


def test_the_rate_in_force_at_the_job_end_applies():
    jobs = pd.concat([frame(job_id=1, end="2026-02-28T23:00:00Z"), frame(job_id=2, end="2026-03-02T00:00:00Z")])
    priced = price(finish_frame(jobs), PriceList(RATES))
    assert priced.set_index("job_id")["cpu_minor"].to_dict() == {1: 200, 2: 400}


def test_account_tiers_and_default_tier():
    priced = price(frame(), PriceList(RATES, account_tiers={"physics": "gov"}))
    assert priced.iloc[0].tier == "gov"
    assert priced.iloc[0].cpu_minor == 800
    assert price(frame(account="other"), PriceList(RATES, account_tiers={"physics": "gov"})).iloc[0].tier == "mu"


def test_totals_are_exact_decimals_and_aggregate_sums():
    jobs = finish_frame(pd.concat([frame(job_id=i, elapsed=1) for i in range(1000)]))
    priced = price(jobs, PriceList(RATES))
    result = totals(priced)
    assert isinstance(result["cost"], Decimal)
    assert result["cost"] == to_money(priced["cost_minor"].sum())
    groups = aggregate(priced, ["account"])
    assert groups.iloc[0]["jobs"] == 1000


def test_calculator_breakdown():
    rates = {"cpu": Decimal("0.5"), "gpu": Decimal("15"), "mem": Decimal("0.05")}
    out = calculate(
        rates, cpu_hours=Decimal(10), gpu_hours=Decimal(1), mem_gb_hours=Decimal(3), gpu_factor=Decimal("0.6")
    )
    assert out == {"cpu": Decimal("5.00"), "gpu": Decimal("9.00"), "mem": Decimal("0.15"), "total": Decimal("14.15")}


def test_empty_frame_prices_to_nothing():
    priced = price(finish_frame(pd.DataFrame({name: [] for name in COLUMNS})), PriceList(RATES))
    assert priced.empty
    assert totals(priced)["cost"] == Decimal("0.00")
