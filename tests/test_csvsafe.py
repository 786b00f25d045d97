"""userportal.csvsafe: no CSV cell the portal writes is read as a formula by a spreadsheet."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pandas as pd
import pytest

from userportal import csvsafe

PAYLOAD = "=1+1+cmd|' /C calc'!A0"


@pytest.mark.parametrize("text", [PAYLOAD, "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "-cmd"])
def test_text_a_spreadsheet_would_run_gets_a_quote(text):
    assert csvsafe.cell(text) == "'" + text


@pytest.mark.parametrize("value", ["alice", "", "a=b", " =1", "-2.50", "-7", 0, -1, -2.5, Decimal("-3.10"), None])
def test_other_values_and_numbers_are_unchanged(value):
    assert csvsafe.cell(value) == value


def test_writer_neutralises_text_and_keeps_negative_numbers():
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(["user", "amount"])
    writer.writerows([[PAYLOAD, -5], ["bob", -1.5]])
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [
        ["user", "amount"],
        ["'" + PAYLOAD, "-5"],
        ["bob", "-1.5"],
    ]


def test_frame_csv_neutralises_text_columns_only():
    frame = pd.DataFrame({"user": [PAYLOAD, "bob"], "cost": [-1.25, 2.0], "n": [-3, 4], "money": ["-1.20", "3.00"]})
    rows = list(csv.reader(io.StringIO(csvsafe.frame_csv(frame, index=False))))
    assert rows == [
        ["user", "cost", "n", "money"],
        ["'" + PAYLOAD, "-1.25", "-3", "-1.20"],
        ["bob", "2.0", "4", "3.00"],
    ]
