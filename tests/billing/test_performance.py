"""The fast paths: raw item inserts store what bulk_create would, and the usage pages' job cache."""

from __future__ import annotations

import pandas as pd
import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from billing import ledger, services
from billing.models import Receipt, ReceiptItem
from billing.receipt_items import insert_items

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

FIELDS = [f.name for f in ReceiptItem._meta.fields if f.name not in ("id", "receipt")]


# Both writers of MariaDB (INSERT statements, LOAD DATA LOCAL INFILE; with the connection's
# local_infile off, LOAD DATA is refused and the INSERTs write); elsewhere both are executemany.
LOAD_DATA = pytest.mark.parametrize("load_data", [False, True], ids=["insert", "load-data"])


@LOAD_DATA
def test_insert_items_stores_what_bulk_create_stores(billing_jobs, owner_query, orm_items, settings, load_data):
    settings.BILLING_RECEIPT_LOAD_DATA = load_data
    jobs = services.usage(owner_query).jobs
    fast = Receipt.objects.create(
        username="owner", cluster="testcluster", currency="THB", total=0, period_start=owner_query.start,
        period_end=owner_query.end,
    )  # fmt: skip
    assert insert_items(fast, jobs) == len(jobs) == 3
    stored = sorted(fast.items.values_list(*FIELDS))
    ReceiptItem.objects.filter(receipt=fast).delete()
    ReceiptItem.objects.bulk_create(orm_items(fast, jobs))
    assert sorted(fast.items.values_list(*FIELDS)) == stored


@LOAD_DATA
def test_insert_items_quotes_every_text_and_keeps_exact_values(
    billing_jobs, owner_query, orm_items, settings, load_data
):
    """On MariaDB the statements (or the LOAD DATA file) are written by insert_items itself: quotes,
    backslashes, tabs, ``%s``, newlines and Thai must arrive as they are, with microseconds and exact money."""
    settings.BILLING_RECEIPT_LOAD_DATA = load_data
    jobs = services.usage(owner_query).jobs.copy()
    jobs["account"] = ["o'brien\\", 'say "hi" %s\t\\N', "ก่อน\n'); DROP TABLE x; --\r\\t"]
    jobs["alloc_tres"] = ["cpu=1,mem=1M", "", "gres/gpu:a100=1\\"]
    jobs["submit"] = jobs["submit"] + pd.to_timedelta([123456, 0, 1], unit="us")
    jobs["cpu_minor"] = [0, 5, 123456789]
    jobs["cpu_hours"] = [0.00006, 1 / 3, 12345.67896]
    fast = Receipt.objects.create(
        username="owner", cluster="testcluster", currency="THB", total=0, period_start=owner_query.start,
        period_end=owner_query.end,
    )  # fmt: skip
    assert insert_items(fast, jobs) == 3
    stored = sorted(fast.items.values_list(*FIELDS))
    assert {row[FIELDS.index("account")] for row in stored} == set(jobs["account"])
    ReceiptItem.objects.filter(receipt=fast).delete()
    ReceiptItem.objects.bulk_create(orm_items(fast, jobs))
    assert sorted(fast.items.values_list(*FIELDS)) == stored


def test_usage_cache_skips_the_database_but_billed_marks_stay_fresh(billing_jobs, owner_query):
    first = services.usage(owner_query, cached=True)
    assert len(first.jobs) == 3
    with CaptureQueriesContext(connections["slurm"]) as slurm_queries:
        again = services.usage(owner_query, cached=True)
    assert len(slurm_queries) == 0
    assert (again.jobs["billed"] == 0).all()
    receipt = ledger.create_receipt("owner", owner_query)  # never from the cache
    assert (services.usage(owner_query, cached=True).jobs["billed"] == receipt.pk).all()


def test_the_load_data_pipe_never_hangs_and_keeps_its_errors(tmp_path):
    """The query may fail before it opens the pipe (LOAD DATA LOCAL refused): the writer still ends."""
    import os

    from billing.receipt_items import _PipeWriter

    def lines():
        yield b"1\t2\n" * 100_000  # more than a pipe holds: the writer blocks until the read end goes

    def broken():
        yield b"1\n"
        raise ValueError("a value that cannot be written")

    for chunks, error in ((lines(), None), (broken(), ValueError)):
        path = str(tmp_path / f"pipe-{error}")
        os.mkfifo(path, 0o600)
        writer = _PipeWriter(path, chunks)
        writer.start()
        writer.finish()  # nobody read it
        assert not writer.is_alive()
        assert (type(writer.error) if writer.error else None) is error
