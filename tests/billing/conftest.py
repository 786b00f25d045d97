"""Billing fixtures: a few finished jobs of the personas with known quantities."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from billing.costs import to_money
from billing.models import Receipt, ReceiptItem
from slurm.jobsource.frame import JobQuery


@pytest.fixture
def billing_jobs(personas):
    """owner: a 2-hour 4-CPU job and a 1-hour 1×a100 job; member: one job. All ended 10 minutes ago."""
    slurm = personas.slurm
    now = slurm.now
    cpu_job = slurm.job("owner", "def-owner", cpus_req=4, mem_req=4096, time_start=now - 600 - 7200, time_end=now - 600)
    slurm.step(cpu_job, user_sec=4 * 3600)  # half of the 8 allocated CPU-hours used
    gpu_job = slurm.job("owner", "def-owner", gpus=1, gpu_type="a100", time_start=now - 600 - 3600, time_end=now - 600)
    return {"cpu": cpu_job, "gpu": gpu_job}


@pytest.fixture
def owner_query(personas):
    now = datetime.fromtimestamp(personas.slurm.now, tz=UTC)
    return JobQuery(now - timedelta(days=1), now, "testcluster", user="owner")


def _orm_items(receipt: Receipt, jobs: pd.DataFrame) -> list[ReceiptItem]:
    columns = ["job_id", "submit", "user", "account", "tier", "partition", "state", "end", "elapsed", "alloc_tres"]
    columns += ["gpu_type", "cpu_hours", "gpu_hours", "mem_gb_hours", "cpu_minor", "gpu_minor", "mem_minor"]
    columns += ["cost_minor"]
    q4 = Decimal("0.0001")
    items = []
    for row in jobs[columns].itertuples(index=False):
        items.append(
            ReceiptItem(
                receipt=receipt,
                cluster=receipt.cluster,
                job_id=int(row.job_id),
                submit=row.submit.to_pydatetime(),
                user=row.user,
                account=row.account,
                tier=row.tier,
                partition=row.partition,
                state=row.state,
                end=row.end.to_pydatetime(),
                elapsed=int(row.elapsed),
                alloc_tres=row.alloc_tres,
                gpu_type=row.gpu_type,
                cpu_hours=Decimal(repr(row.cpu_hours)).quantize(q4),
                gpu_hours=Decimal(repr(row.gpu_hours)).quantize(q4),
                mem_gb_hours=Decimal(repr(row.mem_gb_hours)).quantize(q4),
                cpu_cost=to_money(row.cpu_minor),
                gpu_cost=to_money(row.gpu_minor),
                mem_cost=to_money(row.mem_minor),
                cost=to_money(row.cost_minor),
            )
        )
    return items


@pytest.fixture
def orm_items() -> Callable[[Receipt, pd.DataFrame], list[ReceiptItem]]:
    """A receipt's items as model objects, field by field: what billing.receipt_items.insert_items must store."""
    return _orm_items
