"""CSV files a spreadsheet opens safely: no cell is read as a formula (CSV injection).

A spreadsheet runs a cell starting with = + - @, a tab or a carriage return as a formula, so a
username like ``=1+1+cmd|' /C calc'!A0`` in an export could run a command on a staff member's
machine. OWASP's rule: prefix such a cell with a single quote, which the spreadsheet shows as
text. Only text is neutralised: ints, floats and decimals stay numbers, and so does text that is
just a number (``-2.50``), which no spreadsheet reads as a formula. Every CSV the portal writes
goes through writer() or frame_csv(). (defusedcsv also escapes ``|`` and ``%`` and adds a closing
quote, which changes values; it does not cover pandas either.)
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def cell(value: Any) -> Any:
    """`value`, with a leading single quote when it is text a spreadsheet would run."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class _SafeWriter:
    """csv.writer whose rows are neutralised cell by cell."""

    def __init__(self, stream: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(stream: Any, **kwargs: Any) -> _SafeWriter:
    """Like csv.writer(stream, ...), with every text cell neutralised."""
    return _SafeWriter(stream, **kwargs)


def frame_csv(frame: pd.DataFrame, **kwargs: Any) -> str:
    """`frame.to_csv(**kwargs)` with every text cell neutralised (numeric columns untouched)."""
    safe = frame.copy()
    for name in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[name]) and not pd.api.types.is_datetime64_any_dtype(safe[name]):
            safe[name] = safe[name].map(cell)
    return str(safe.to_csv(**kwargs))
