"""cost.json: a job's energy (measured, GPU-measured or rated) and what it cost."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DatabaseError

from jobstats.domain.cost import Prices, job_cost, rated_watts
from jobstats.graphs.node import node_power
from jobstats.jobusage import prometheus_usage
from jobstats.services import epoch_now, job_scope
from slurm.decoders import TresCatalog
from slurm.models import Tres
from userportal.errors import PrometheusUnavailable, SlurmDatabaseUnavailable
from userportal.prometheus import MetricsSession
from userportal.windows import Window


def job_energy(session: MetricsSession, job: Any, catalog: TresCatalog, *, now: int) -> tuple[float, str]:
    """kWh of a started job and how they were found (measured, gpu-measured or rated)."""
    scope = job_scope([job], catalog)
    end = job.time_end or now
    hours = max(end - job.time_start, 0) / 3600
    window = Window.of(job.time_start, end)
    try:
        if "power" in settings.JOBSTATS_METRICS and "node" in settings.JOBSTATS_METRICS:
            estimates = node_power(session, scope, window)
            means = []
            for estimate in estimates:
                values = [w for w in estimate.watts if w is not None]
                if values:
                    means.append(sum(values) / len(values))
            if means:
                return sum(means) / 1000 * hours, "measured"
        if scope.gpus and "job" in settings.JOBSTATS_METRICS:
            usage = prometheus_usage(session, job.id_job, job.time_start, end)
            if usage is not None and usage.gpu_power_w is not None:
                seen = usage.gpus_seen or scope.gpus
                from jobstats.domain.gpu_models import gpu_model

                idle = gpu_model(usage.gpu_type or scope.gpu_type).idle_power_w
                gpu_w = usage.gpu_power_w * seen + idle * max(scope.gpus - seen, 0)
                watts = gpu_w + scope.cpus * settings.JOBSTATS_WATTS_PER_CORE
                return watts / 1000 * hours, "gpu-measured"
    except PrometheusUnavailable:
        pass  # the estimate below still answers
    watts = rated_watts(
        cores=scope.cpus, gpus=scope.gpus, gpu_type=scope.gpu_type, watts_per_core=settings.JOBSTATS_WATTS_PER_CORE
    )
    return watts / 1000 * hours, "rated"


def cost_of(job: Any, session: MetricsSession, *, now: float | None = None) -> dict[str, Any]:
    current = epoch_now(now)
    if not job.time_start:
        return {}
    try:
        catalog = Tres.catalog()
    except DatabaseError as exc:
        raise SlurmDatabaseUnavailable(str(exc)) from exc
    scope = job_scope([job], catalog)
    hours = max((job.time_end or current) - job.time_start, 0) / 3600
    prices = Prices.from_settings()
    kwh, source = job_energy(session, job, catalog, now=current)
    return job_cost(hours=hours, cores=scope.cpus, gpus=scope.gpus, prices=prices, kwh=kwh, energy_source=source)
