"""Job costs, vectorised: quantities, the rate in force at each job's end, and exact money.

Input is a :mod:`slurm.jobsource` frame. Output adds ``tier``, ``cpu_hours``, ``gpu_hours``
(raw, before the GPU model's factor), ``mem_gb_hours``, the cost of each resource and ``cost``
in integer *minor units* (satang, cents: ``cost_minor``) and ``unused_minor``, what the CPU time
a job was allocated but did not use cost.

Money: rates are Decimal rows. Each resource's cost is the float product of a quantity and a rate,
rounded once to the minor unit (a float product is exact to ~1e-12 relative, far below half a
minor unit for any real job), then kept as int64: sums over a million jobs are exact, and
:func:`to_money` turns them back into Decimal for pages, CSV files and receipts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from slurm.usage import unused_cpu_share

RESOURCES = ("cpu", "gpu", "mem")
MINOR = 100  # minor units per major unit; two decimals
CENT = Decimal("0.01")


@dataclass(frozen=True)
class RateRow:
    tier: str
    resource: str
    valid_from: datetime
    price: Decimal


@dataclass
class PriceList:
    """Every rate row (with its history), the GPU factors, account tiers and the default tier."""

    rates: Sequence[RateRow]
    gpu_factors: Mapping[str, Decimal] = field(default_factory=dict)
    account_tiers: Mapping[str, str] = field(default_factory=dict)
    default_tier: str = "mu"

    def snapshot(self) -> dict[str, object]:
        """The rates as JSON (stored on a receipt: what it was billed at)."""
        tiers: dict[str, dict[str, list[list[str]]]] = {}
        for row in sorted(self.rates, key=lambda r: (r.tier, r.resource, r.valid_from)):
            tiers.setdefault(row.tier, {}).setdefault(row.resource, []).append(
                [row.valid_from.isoformat(), str(row.price)]
            )
        return {"tiers": tiers, "gpu_factors": {k: str(v) for k, v in self.gpu_factors.items()}}

    def current(self, tier: str, at: datetime) -> dict[str, Decimal]:
        """The rates of ``tier`` in force at ``at``."""
        result: dict[str, Decimal] = {}
        for resource in RESOURCES:
            rows = [r for r in self.rates if r.tier == tier and r.resource == resource and r.valid_from <= at]
            if rows:
                result[resource] = max(rows, key=lambda r: r.valid_from).price
        return result


def to_money(minor: int | np.integer) -> Decimal:
    return (Decimal(int(minor)) / MINOR).quantize(CENT)


def price(frame: pd.DataFrame, prices: PriceList) -> pd.DataFrame:
    """``frame`` with quantities, per-resource costs and totals (minor units, int64).

    Built for a million rows: lookups by account and GPU model are made once per distinct value
    and spread over the rows by code, and ``frame`` is not copied (copy-on-write).
    """
    out = frame.copy(deep=False)
    tier_codes, tiers = _tier_codes(out["account"], prices)
    out["tier"] = pd.Series(tiers, dtype=object).astype(str).array.take(tier_codes)
    hours = out["elapsed"].to_numpy(dtype="float64") / 3600.0
    cpu_hours = out["alloc_cpus"].to_numpy(dtype="float64") * hours
    gpu_hours = out["alloc_gpus"].to_numpy(dtype="float64") * hours
    mem_gb_hours = out["alloc_mem_mb"].to_numpy(dtype="float64") / 1024.0 * hours
    out["cpu_hours"], out["gpu_hours"], out["mem_gb_hours"] = cpu_hours, gpu_hours, mem_gb_hours
    quantities = {"cpu": cpu_hours, "gpu": gpu_hours * _gpu_factors(out, prices), "mem": mem_gb_hours}
    end = _epoch_us(out["end"])
    total = np.zeros(len(out), dtype="int64")
    for resource in RESOURCES:
        rate = _rate_at_end(end, tier_codes, tiers, prices, resource)
        minor = np.floor(quantities[resource] * rate * MINOR + 0.5).astype("int64")
        out[f"{resource}_minor"] = minor
        total += minor
    out["cost_minor"] = total
    # TotalCPU (the steps' user + system time, as sacct prints it) against cores × elapsed: slurm.usage's figure
    unused = unused_cpu_share(out["total_cpu"].to_numpy(dtype="float64"), cpu_hours * 3600.0)
    out["cpu_efficiency"] = 1.0 - unused
    out["unused_minor"] = np.floor(out["cpu_minor"].to_numpy() * unused + 0.5).astype("int64")
    return out


def _codes(values: pd.Series) -> tuple[np.ndarray, list[object]]:
    """Codes into the distinct values; a missing value gets the code after them (its own, "None")."""
    codes, distinct = pd.factorize(np.asarray(values.array, dtype=object))
    distinct = list(distinct)
    if (codes < 0).any():
        codes = np.where(codes < 0, len(distinct), codes)
        distinct.append(None)
    return codes, distinct


def _tier_codes(accounts: pd.Series, prices: PriceList) -> tuple[np.ndarray, list[str]]:
    """Each row's tier as a code into the distinct tiers: one lookup per distinct account."""
    account_codes, distinct = _codes(accounts)
    tier_of = dict(prices.account_tiers)
    tier_codes, tiers = pd.factorize(
        np.array([tier_of.get(str(a), prices.default_tier) for a in distinct] or [""], dtype=object)
    )
    return tier_codes[account_codes].astype("intp"), [str(t) for t in tiers]


def _gpu_factors(frame: pd.DataFrame, prices: PriceList) -> np.ndarray:
    """Each row's GPU factor (1 for unknown models); looked up for the rows with GPUs only."""
    result = np.ones(len(frame))
    with_gpus = frame["alloc_gpus"].to_numpy() > 0  # elsewhere the factor multiplies zero GPU-hours
    if with_gpus.any():
        factors = {k: float(v) for k, v in prices.gpu_factors.items()}
        codes, models = _codes(frame["gpu_type"][with_gpus])
        result[with_gpus] = np.array([factors.get(str(m), 1.0) for m in models], dtype="float64")[codes]
    return result


def _rate_at_end(
    end: np.ndarray, tier_codes: np.ndarray, tiers: list[str], prices: PriceList, resource: str
) -> np.ndarray:
    """Each row's rate for ``resource``: the tier's latest row valid at the job's end (0 before any).

    Per tier, one binary search of the jobs' end times (epoch microseconds) in the tier's sorted
    ``valid_from`` dates (a handful of tiers and rate rows against a million jobs: no sort of the jobs).
    """
    result = np.zeros(len(end))
    rows = [r for r in prices.rates if r.resource == resource]
    if not rows or not len(end):
        return result
    for code, tier in enumerate(tiers):
        history = sorted((r for r in rows if r.tier == tier), key=lambda r: r.valid_from)
        if not history:
            continue
        since = _epoch_us(pd.Series(pd.to_datetime([r.valid_from for r in history], utc=True)))
        rates = np.array([float(r.price) for r in history])
        mask = None if len(tiers) == 1 else tier_codes == code  # one tier (the usual page): every row
        found = np.searchsorted(since, end if mask is None else end[mask], side="right") - 1
        rate = np.where(found >= 0, rates[np.maximum(found, 0)], 0.0)
        if mask is None:
            result = rate
        else:
            result[mask] = rate
    return result


def _epoch_us(times: pd.Series) -> np.ndarray:
    return times.dt.tz_convert("UTC").astype("datetime64[us, UTC]").to_numpy(dtype="datetime64[us]").view("int64")


SUM_COLUMNS: tuple[str, ...] = ("cpu_hours", "gpu_hours", "mem_gb_hours", "elapsed_hours")
SUM_COLUMNS += ("cpu_minor", "gpu_minor", "mem_minor")
SUM_COLUMNS += ("cost_minor", "unused_minor")


def aggregate(priced: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Sums per group (jobs, hours, costs), largest cost first."""
    frame = priced.assign(elapsed_hours=priced["elapsed"] / 3600.0, jobs=1)
    if frame.empty:
        return pd.DataFrame(columns=[*by, "jobs", *SUM_COLUMNS])
    grouped = frame.groupby(list(by), sort=False)[["jobs", *SUM_COLUMNS]].sum().reset_index()
    return grouped.sort_values("cost_minor", ascending=False, kind="stable").reset_index(drop=True)


def totals(priced: pd.DataFrame) -> dict[str, object]:
    """Totals for the chips: hours as floats, money as Decimal."""
    return {
        "jobs": len(priced),
        "cpu_hours": float(priced["cpu_hours"].sum()) if len(priced) else 0.0,
        "gpu_hours": float(priced["gpu_hours"].sum()) if len(priced) else 0.0,
        "mem_gb_hours": float(priced["mem_gb_hours"].sum()) if len(priced) else 0.0,
        "elapsed_hours": float(priced["elapsed"].sum()) / 3600.0 if len(priced) else 0.0,
        "cost": to_money(priced["cost_minor"].sum()) if len(priced) else to_money(0),
        "unused": to_money(priced["unused_minor"].sum()) if len(priced) else to_money(0),
    }


def monthly_costs(priced: pd.DataFrame, by: str) -> dict[str, Any]:
    """Cost per month per ``by`` (tier or account) for the charts: {"months": [...], "series": {name: [...]}}."""
    if priced.empty:
        return {"months": [], "series": {}}
    month = priced["end"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    table = priced.assign(month=month).pivot_table(
        index="month", columns=by, values="cost_minor", aggfunc="sum", fill_value=0
    )
    if by == "account" and table.shape[1] > 12:  # the 12 largest accounts, the rest together
        order = table.sum().sort_values(ascending=False).index
        table = pd.concat([table[order[:12]], table[order[12:]].sum(axis=1).rename("(other)")], axis=1)
    return {
        "months": list(table.index),
        "series": {str(name): [str(to_money(v)) for v in table[name]] for name in table.columns},
    }


def calculate(
    rates: Mapping[str, Decimal], *, cpu_hours: Decimal, gpu_hours: Decimal, mem_gb_hours: Decimal, gpu_factor: Decimal
) -> dict[str, Decimal]:
    """The playground's calculator, in Decimal: a breakdown and its total."""
    parts = {
        "cpu": (cpu_hours * rates.get("cpu", Decimal(0))).quantize(CENT),
        "gpu": (gpu_hours * gpu_factor * rates.get("gpu", Decimal(0))).quantize(CENT),
        "mem": (mem_gb_hours * rates.get("mem", Decimal(0))).quantize(CENT),
    }
    return {**parts, "total": sum(parts.values(), Decimal(0)).quantize(CENT)}
