"""Energy, cost and CO2 of a job (domain 7.1-7.2), with every price and factor a setting.

Energy comes from the best source available, and the answer says which:
``measured``  node power (redfish) split between the jobs on each node (domain 4.3);
``gpu-measured``  the job's own GPU power (slurm-job-exporter) plus rated power per core;
``rated``  the GPU model's full power plus JOBSTATS_WATTS_PER_CORE per core.
A figure whose setting is empty is left out; a job that never started gets ``{}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobstats.domain.gpu_models import gpu_model


@dataclass(frozen=True)
class Prices:
    electricity_per_kwh: float | None
    cooling_per_kwh: float | None
    co2_kg_per_mwh: float | None
    car_km_per_kwh: float | None
    amortization_years: float | None
    hardware_core_hour: float | None
    hardware_gpu_hour: float | None
    cloud_core_hour: float | None
    cloud_gpu_hour: float | None
    watts_per_core: float
    currency: str = ""

    @classmethod
    def from_settings(cls) -> Prices:
        from django.conf import settings

        return cls(
            settings.JOBSTATS_ELECTRICITY_COST_PER_KWH,
            settings.JOBSTATS_COOLING_COST_PER_KWH,
            settings.JOBSTATS_CO2_KG_PER_MWH,
            settings.JOBSTATS_CAR_KM_PER_KWH,
            settings.JOBSTATS_AMORTIZATION_YEARS,
            settings.JOBSTATS_HARDWARE_COST_PER_CORE_HOUR,
            settings.JOBSTATS_HARDWARE_COST_PER_GPU_HOUR,
            settings.JOBSTATS_CLOUD_COST_PER_CORE_HOUR,
            settings.JOBSTATS_CLOUD_COST_PER_GPU_HOUR,
            settings.JOBSTATS_WATTS_PER_CORE,
            settings.JOBSTATS_CURRENCY,
        )


def rated_watts(*, cores: int, gpus: int, gpu_type: str | None, watts_per_core: float) -> float:
    """The job's power at full load from the GPU model table and the per-core setting."""
    watts = cores * watts_per_core
    if gpus:
        watts += gpus * gpu_model(gpu_type).full_power_w
    return watts


def _round(value: float, digits: int = 6) -> float:
    return float(f"{value:.{digits}g}")


def job_cost(
    *,
    hours: float,
    cores: int,
    gpus: int,
    prices: Prices,
    kwh: float | None,
    energy_source: str,
) -> dict[str, Any]:
    """The cost.json body for a job that ran ``hours`` (TT's keys, plus the energy source and currency)."""
    body: dict[str, Any] = {}
    if kwh is not None:
        body["kwh"] = _round(kwh)
        body["energy_source"] = energy_source
        if prices.car_km_per_kwh is not None:
            body["electric_car_range_km"] = _round(kwh * prices.car_km_per_kwh)
        if prices.electricity_per_kwh is not None:
            body["electricity_cost_dollar"] = _round(kwh * prices.electricity_per_kwh)
        if prices.cooling_per_kwh is not None:
            body["cooling_cost_dollar"] = _round(kwh * prices.cooling_per_kwh)
        if prices.co2_kg_per_mwh is not None:
            body["co2_emissions_kg"] = _round(kwh / 1000 * prices.co2_kg_per_mwh)
    if prices.amortization_years is not None:
        body["amortization_years"] = prices.amortization_years
    # Hardware and cloud: a GPU job is charged by its GPUs only (cores come with them), as in TT.
    hardware_rate = prices.hardware_gpu_hour if gpus else prices.hardware_core_hour
    if hardware_rate is not None:
        body["hardware_cost_dollar"] = _round((gpus or cores) * hardware_rate * hours)
    cloud_rate = prices.cloud_gpu_hour if gpus else prices.cloud_core_hour
    if cloud_rate is not None:
        body["cloud_cost_dollar"] = _round((gpus or cores) * cloud_rate * hours)
    parts = ("electricity_cost_dollar", "cooling_cost_dollar", "hardware_cost_dollar")
    if all(key in body for key in parts):
        body["total_cost_dollar"] = _round(sum(body[key] for key in parts))
    if body and prices.currency:
        body["currency"] = prices.currency
    return body
