"""Test helpers for billing (used by tests/test_access.py and tests/billing/)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from billing.models import Receipt


def sample_receipt(username: str, *, cluster: str = "testcluster", total: str = "12.50") -> Receipt:
    """A pending receipt of ``username`` with no items."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return Receipt.objects.create(
        username=username,
        cluster=cluster,
        currency="THB",
        total=Decimal(total),
        job_count=0,
        period_start=start,
        period_end=datetime(2026, 1, 31, tzinfo=UTC),
        created_by=username,
    )
