"""A receipt's items, written fast: values built column-wise, then multi-row INSERTs.

Used by billing.ledger inside the receipt's transaction. A 100,000-job receipt stores in
seconds what ``bulk_create`` of model objects stores in most of a minute (bench/billing/).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, router

from billing.models import Receipt, ReceiptItem

logger = logging.getLogger(__name__)

ITEM_BATCH = 5000
#: Rows per chunk written into the LOAD DATA pipe (a few MB).
LOAD_CHUNK_ROWS = 10_000
#: MariaDB/MySQL errors of a LOAD DATA LOCAL the client or the server does not allow (nothing was loaded).
LOAD_DATA_REFUSED = frozenset({1148, 2061, 2068, 3948, 4166})
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
        if settings.BILLING_RECEIPT_LOAD_DATA:
            try:
                return _load_data(connection, table, quoted_names, receipt, jobs)
            except DatabaseError as exc:
                if _error_code(exc) not in LOAD_DATA_REFUSED:
                    raise
                logger.warning("receipt items: LOAD DATA LOCAL refused (%s); written as INSERT statements", exc)
        return _insert_literal(connection, head, receipt, jobs)
    return _insert_params(connection, head, len(names), receipt, jobs)


def _error_code(exc: BaseException) -> int | None:
    cause = exc.__cause__ or exc
    code = cause.args[0] if cause.args else None
    return code if isinstance(code, int) else None


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


def _literal_columns(
    connection: Any, receipt: Receipt, jobs: pd.DataFrame, text: Callable[[str], str], quote: str
) -> list[list[str]]:
    """The items' values as text, a column at a time (in ``receipt_id, cluster, *ITEM_COLUMNS`` order).

    Numbers are formatted from int64/float64 arrays and times from datetime64 arrays (nothing
    there can hold a quote, a tab or a backslash); every text goes through ``text`` (the
    driver's quoting, or LOAD DATA's escaping) once per distinct text; times are put between
    ``quote`` (``'`` in SQL).
    """
    n = len(jobs)

    def texts(series: pd.Series) -> list[str]:
        codes, distinct = pd.factorize(np.asarray(series.array, dtype=object), use_na_sentinel=False)
        written = [text("" if v is None or v != v else str(v)) for v in distinct]
        return np.array(written, dtype=object)[codes].tolist()

    def ints(series: pd.Series) -> list[str]:
        return series.to_numpy(dtype="int64").astype(str).tolist()

    def times(series: pd.Series) -> list[str]:
        naive = series.dt.tz_convert(connection.timezone).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        iso = np.strings.replace(np.datetime_as_string(naive, unit="us"), "T", " ")  # 'YYYY-MM-DD HH:MM:SS.ffffff'
        return np.strings.add(np.strings.add(quote, iso), quote).tolist()

    def hours(series: pd.Series) -> list[str]:
        return [f"{v:.4f}" for v in series.to_numpy(dtype="float64").tolist()]  # what Decimal(q4(v)) stores

    def money(series: pd.Series) -> list[str]:
        minor = series.to_numpy(dtype="int64")
        if (minor < 0).any():  # never from billing.costs; kept exact all the same
            return [str(Decimal(int(v)).scaleb(-2)) for v in minor]
        major = np.strings.add((minor // 100).astype(str), ".")
        return np.strings.add(
            major, np.strings.zfill((minor % 100).astype(str), 2)
        ).tolist()  # what f"{v // 100}.{v % 100:02d}" writes

    columns: dict[str, list[str]] = {
        "receipt_id": [str(int(receipt.pk))] * n,
        "cluster": [text(receipt.cluster)] * n,
        "job_id": ints(jobs["job_id"]),
        "submit": times(jobs["submit"]),
        "end": times(jobs["end"]),
        "elapsed": ints(jobs["elapsed"]),
        **{name: texts(jobs[name]) for name in _TEXT_ITEM_COLUMNS},
        **{name: hours(jobs[name]) for name in ("cpu_hours", "gpu_hours", "mem_gb_hours")},
        **{name: money(jobs[minor]) for name, minor in _MONEY_ITEM_COLUMNS.items()},
    }
    return [columns[c] for c in ["receipt_id", "cluster", *ITEM_COLUMNS]]


def _insert_literal(connection: Any, head: str, receipt: Receipt, jobs: pd.DataFrame) -> int:
    """MariaDB/MySQL: the VALUES written as SQL literals (the driver's own quoting, as executemany's)."""
    n = len(jobs)
    if not n:
        return 0
    connection.ensure_connection()
    driver = connection.connection
    encoding = getattr(driver, "encoding", "utf-8")

    def quoted(value: str) -> str:
        return str(driver.literal(value).decode(encoding))

    rows = [
        "(" + ",".join(values) + ")"
        for values in zip(*_literal_columns(connection, receipt, jobs, quoted, "'"), strict=True)
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


#: LOAD DATA's default escapes (FIELDS ESCAPED BY '\\'): a text may hold any of these.
_LOAD_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _load_data(connection: Any, table: str, names: str, receipt: Receipt, jobs: pd.DataFrame) -> int:
    """MariaDB/MySQL with BILLING_RECEIPT_LOAD_DATA: the items as tab-separated lines, LOAD DATA LOCAL INFILE.

    About 40% less server CPU than the same rows as INSERT statements (bench/billing/RESULTS.md).
    The lines go through a named pipe in a private directory, written chunk by chunk by a thread
    while the server reads and stores the previous chunks (the client library reads the pipe
    inside the query, without the GIL): the two cores work at once. With LOCAL the server turns
    errors into warnings and skips the row (a duplicate job key, a value it had to cut): any
    warning, or fewer rows than sent, raises IntegrityError, and the caller's transaction rolls the
    receipt back whole, as an INSERT's error would.
    """
    n = len(jobs)
    if not n:
        return 0

    def chunks() -> Iterator[bytes]:
        for start in range(0, n, LOAD_CHUNK_ROWS):
            part = jobs.iloc[start : start + LOAD_CHUNK_ROWS]
            columns = _literal_columns(connection, receipt, part, lambda v: v.translate(_LOAD_ESCAPES), "")
            yield ("\n".join(map("\t".join, zip(*columns, strict=True))) + "\n").encode("utf-8")

    with tempfile.TemporaryDirectory(prefix="receipt-items-") as private:  # mode 0700
        path = os.path.join(private, "items.tsv")
        os.mkfifo(path, 0o600)
        writer = _PipeWriter(path, chunks())
        writer.start()
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4"
                    f" FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({names})",
                    [path],
                )
                loaded = cursor.rowcount
                cursor.execute("SHOW WARNINGS LIMIT 3")
                warnings = cursor.fetchall()
        finally:
            writer.finish()
    if writer.error is not None:
        raise writer.error
    if warnings or loaded != n:
        raise IntegrityError(f"receipt items: {loaded} of {n} rows loaded; {warnings!r}")
    return n


class _PipeWriter(threading.Thread):
    """Writes ``chunks`` into the named pipe ``path`` (for LOAD DATA LOCAL INFILE to read)."""

    def __init__(self, path: str, chunks: Iterator[bytes]) -> None:
        super().__init__(name="receipt-items", daemon=True)
        self.path = path
        self.chunks = chunks
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open(self.path, "wb") as pipe:  # waits for the reader (the client library, in the query)
                for chunk in self.chunks:
                    pipe.write(chunk)
        except BrokenPipeError:  # the reader went away (the query failed): its error is raised
            pass
        except BaseException as exc:  # the lines could not be built: raised by the caller
            self.error = exc

    def finish(self) -> None:
        """Wait for the thread; if the query never opened the pipe, open it here so the thread ends."""
        while self.is_alive():
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                fd = -1
            self.join(0.05)
            if fd >= 0:
                os.close(fd)
