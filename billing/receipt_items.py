"""A receipt's items, written fast: values built column-wise, then multi-row INSERTs.

Used by billing.ledger inside the receipt's transaction. A 100,000-job receipt stores in
seconds what ``bulk_create`` of model objects stores in most of a minute (bench/billing/).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connections, router

from billing.models import Receipt, ReceiptItem

ITEM_BATCH = 5000
#: Bytes of one literal multi-row INSERT on MariaDB/MySQL (well under the 16 MB max_allowed_packet).
ITEM_STATEMENT_BYTES = 4_000_000
ITEM_COLUMNS: tuple[str, ...] = ("job_id", "submit", "user", "account", "tier", "partition", "state", "end")
ITEM_COLUMNS += ("elapsed", "alloc_tres", "gpu_type", "cpu_hours", "gpu_hours", "mem_gb_hours")
ITEM_COLUMNS += ("cpu_cost", "gpu_cost", "mem_cost", "cost")
_TEXT_ITEM_COLUMNS = ("user", "account", "tier", "partition", "state", "alloc_tres", "gpu_type")
_MONEY_ITEM_COLUMNS = {"cpu_cost": "cpu_minor", "gpu_cost": "gpu_minor", "mem_cost": "mem_minor", "cost": "cost_minor"}


def insert_items(receipt: Receipt, jobs: pd.DataFrame) -> int:
    """Insert the receipt's items: values built column-wise, then multi-row INSERTs.

    What ``bulk_create`` of ReceiptItem objects stores, without a model object and per-field
    preparation per row (100,000 jobs: seconds instead of most of a minute). On MariaDB/MySQL the statements
    are written here, column by column (mysqlclient's executemany quotes every value in Python,
    which was most of a 100,000-job receipt's time); elsewhere ``executemany`` with parameters.
    The caller's transaction makes the receipt all or nothing; the job key's unique constraint
    still refuses a job billed twice (IntegrityError, as with bulk_create).
    """
    using = router.db_for_write(ReceiptItem)
    connection = connections[using]
    meta = ReceiptItem._meta
    column_of = {field.attname: field.column for field in meta.concrete_fields if field.column}
    names = [column_of[c] for c in ("receipt_id", "cluster", *ITEM_COLUMNS)]
    table = connection.ops.quote_name(meta.db_table)
    quoted_names = ", ".join(connection.ops.quote_name(c) for c in names)
    head = f"INSERT INTO {table} ({quoted_names}) VALUES "  # noqa: S608 - quoted names of the model
    if connection.vendor == "mysql" and settings.USE_TZ:
        return _insert_literal(connection, head, receipt, jobs)
    return _insert_params(connection, head, len(names), receipt, jobs)


def _insert_params(connection: Any, head: str, width: int, receipt: Receipt, jobs: pd.DataFrame) -> int:
    ops = connection.ops
    n = len(jobs)
    q4 = "{:.4f}".format

    def times(series: pd.Series) -> list[Any]:
        return [ops.adapt_datetimefield_value(v) for v in series.dt.to_pydatetime()]

    def hours(series: pd.Series) -> list[Decimal]:
        return [Decimal(q4(v)) for v in series.to_numpy(dtype="float64")]

    def money(series: pd.Series) -> list[Decimal]:
        return [Decimal(int(v)).scaleb(-2) for v in series.to_numpy(dtype="int64")]

    values = [
        [receipt.pk] * n,
        [receipt.cluster] * n,
        [int(v) for v in jobs["job_id"].to_numpy(dtype="int64")],
        times(jobs["submit"]),
        jobs["user"].tolist(),
        jobs["account"].tolist(),
        jobs["tier"].tolist(),
        jobs["partition"].tolist(),
        jobs["state"].tolist(),
        times(jobs["end"]),
        [int(v) for v in jobs["elapsed"].to_numpy(dtype="int64")],
        jobs["alloc_tres"].tolist(),
        jobs["gpu_type"].tolist(),
        hours(jobs["cpu_hours"]),
        hours(jobs["gpu_hours"]),
        hours(jobs["mem_gb_hours"]),
        money(jobs["cpu_minor"]),
        money(jobs["gpu_minor"]),
        money(jobs["mem_minor"]),
        money(jobs["cost_minor"]),
    ]
    rows = list(zip(*values, strict=True))
    sql = head + f"({', '.join(['%s'] * width)})"
    with connection.cursor() as cursor:
        for start in range(0, n, ITEM_BATCH):
            cursor.executemany(sql, rows[start : start + ITEM_BATCH])
    return n


def _insert_literal(connection: Any, head: str, receipt: Receipt, jobs: pd.DataFrame) -> int:
    """MariaDB/MySQL: the VALUES written as SQL literals, a column at a time.

    Numbers are formatted from int64/float64 arrays and times from datetime64 arrays (nothing
    there can hold a quote); every text goes through the driver's own escaping (what executemany
    does per value), once per distinct text.
    """
    n = len(jobs)
    if not n:
        return 0
    connection.ensure_connection()
    driver = connection.connection

    encoding = getattr(driver, "encoding", "utf-8")

    def quoted(values: Sequence[Any]) -> list[str]:
        return [driver.literal(str(v)).decode(encoding) for v in values]

    def texts(series: pd.Series) -> list[str]:
        codes, distinct = pd.factorize(np.asarray(series.array, dtype=object), use_na_sentinel=False)
        return np.array(quoted(["" if v is None or v != v else v for v in distinct]), dtype=object)[codes].tolist()

    def ints(series: pd.Series) -> list[str]:
        return series.to_numpy(dtype="int64").astype(str).tolist()

    def times(series: pd.Series) -> list[str]:
        naive = series.dt.tz_convert(connection.timezone).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        iso = np.strings.replace(np.datetime_as_string(naive, unit="us"), "T", " ")  # 'YYYY-MM-DD HH:MM:SS.ffffff'
        return np.strings.add(np.strings.add("'", iso), "'").tolist()

    def hours(series: pd.Series) -> list[str]:
        return [f"{v:.4f}" for v in series.to_numpy(dtype="float64").tolist()]  # what Decimal(q4(v)) stores

    def money(series: pd.Series) -> list[str]:
        return [
            str(Decimal(v).scaleb(-2)) if v < 0 else f"{v // 100}.{v % 100:02d}"
            for v in series.to_numpy(dtype="int64").tolist()
        ]

    columns: dict[str, list[str]] = {
        "receipt_id": [str(int(receipt.pk))] * n,
        "cluster": quoted([receipt.cluster]) * n,
        "job_id": ints(jobs["job_id"]),
        "submit": times(jobs["submit"]),
        "end": times(jobs["end"]),
        "elapsed": ints(jobs["elapsed"]),
        **{name: texts(jobs[name]) for name in _TEXT_ITEM_COLUMNS},
        **{name: hours(jobs[name]) for name in ("cpu_hours", "gpu_hours", "mem_gb_hours")},
        **{name: money(jobs[minor]) for name, minor in _MONEY_ITEM_COLUMNS.items()},
    }
    rows = [
        "(" + ",".join(values) + ")"
        for values in zip(*(columns[c] for c in ["receipt_id", "cluster", *ITEM_COLUMNS]), strict=True)
    ]
    with connection.cursor() as cursor:
        batch: list[str] = []
        size = 0
        for row in rows:
            batch.append(row)
            size += len(row) + 1
            if size >= ITEM_STATEMENT_BYTES:
                cursor.execute(head + ",".join(batch))
                batch, size = [], 0
        if batch:
            cursor.execute(head + ",".join(batch))
    return n
