"""Two requests billing the same jobs at the same moment: exactly one receipt wins (server databases)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pandas as pd
import pytest
from django.db import connection

from billing import ledger
from billing.models import Receipt, ReceiptItem
from slurm.jobsource.frame import COLUMNS, JobQuery, finish_frame

QUERY = JobQuery(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC), "testcluster", user="owner")


class FixedSource:
    """The same 200 jobs for every caller, with a barrier so both requests read before either writes."""

    name = "database"

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def fetch(self, query):
        rows = [
            {**dict.fromkeys(COLUMNS), "cluster": "testcluster", "job_id": i, "submit": "2026-02-01T00:00:00Z",
             "user": "owner", "account": "def-owner", "state": "COMPLETED", "end": "2026-02-02T00:00:00Z",
             "elapsed": 3600, "alloc_cpus": 1, "alloc_mem_mb": 1024}
            for i in range(1, 201)
        ]  # fmt: skip
        frame = finish_frame(pd.DataFrame(rows))
        self.barrier.wait(timeout=10)
        return frame


# Runs in scripts/test's PostgreSQL and MariaDB passes (never skipped there); the SQLite pass
# deselects server_db (-m "not server_db"): SQLite serialises writers itself.
@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_receipts_never_bill_a_job_twice(monkeypatch):
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    # Both requests also pass the "already billed" check before either writes (the unique key's
    # race); without this a fast first receipt could commit before the second's check, which then
    # finds nothing to bill: also never twice, but not the race this test is about.
    checked = threading.Barrier(2)
    price_list = ledger.price_list

    def after_both_checked(cluster: str) -> object:
        checked.wait(timeout=10)
        return price_list(cluster)

    monkeypatch.setattr(ledger, "price_list", after_both_checked)

    def request() -> None:
        try:
            ledger.create_receipt("owner", QUERY, actor="owner", sources=[FixedSource(barrier)])
            outcomes.append("created")
        except ledger.AlreadyBilled:
            outcomes.append("refused")
        except BaseException as exc:  # reported below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "refused"]
    assert Receipt.objects.count() == 1
    assert ReceiptItem.objects.count() == 200
