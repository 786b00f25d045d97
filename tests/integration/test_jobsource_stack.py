"""The database source's packed reads on the stack's MariaDB: the frame of the row-by-row reads.

With several connections (worker threads), with one, and with MariaDB cutting every packed
string longer than a few hundred bytes (its real warning 1260): the chunks are read again in
halves, down to single jobs, and a user's one packed query falls back to rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from django.db import connections

from slurm.jobsource import database
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.frame import JobQuery

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

EVERYTHING = JobQuery(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), "testcluster")


def by_rows(query: JobQuery, monkeypatch) -> pd.DataFrame:
    with monkeypatch.context() as patch:
        patch.setattr(database, "PACKED_VENDORS", ())
        return DatabaseSource().fetch(query)


@pytest.fixture
def rows(stack_dir, monkeypatch) -> pd.DataFrame:
    assert connections["slurm"].vendor == "mysql"
    frame = by_rows(EVERYTHING, monkeypatch)
    assert len(frame) >= 5, "the stack has run jobs"
    return frame


def test_packed_reads_on_several_connections_give_the_row_frame(rows, monkeypatch):
    monkeypatch.setattr(database, "PACKED_CHUNK_IDS", 3)  # many chunks, read by two connections at once
    threaded = DatabaseSource(workers=2).fetch(EVERYTHING)
    pd.testing.assert_frame_equal(threaded, rows)
    pd.testing.assert_frame_equal(DatabaseSource(workers=1).fetch(EVERYTHING), rows)
    user = rows["user"].value_counts().index[0]
    query = JobQuery(EVERYTHING.start, EVERYTHING.end, "testcluster", user=user)
    pd.testing.assert_frame_equal(DatabaseSource().fetch(query), by_rows(query, monkeypatch))


def test_strings_mariadb_cuts_are_read_again(rows, monkeypatch):
    reads: list[tuple[int, int] | None] = []
    read = DatabaseSource._read_packed

    def short_concat(self, connection):
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION group_concat_max_len = 300")  # two or three jobs at most
        return 300

    def recorded(self, selected, steps, bounds, limit):
        packed = read(self, selected, steps, bounds, limit)
        reads.append(bounds)
        return packed

    monkeypatch.setattr(DatabaseSource, "_prepare", short_concat)
    monkeypatch.setattr(DatabaseSource, "_read_packed", recorded)
    monkeypatch.setattr(database, "PACKED_CHUNK_IDS", 64)
    pd.testing.assert_frame_equal(DatabaseSource(workers=2).fetch(EVERYTHING), rows)
    assert any(b is not None and b[1] - b[0] < 63 for b in reads)  # halves were read
    user = rows["user"].value_counts().index[0]
    query = JobQuery(EVERYTHING.start, EVERYTHING.end, "testcluster", user=user)
    pd.testing.assert_frame_equal(DatabaseSource().fetch(query), by_rows(query, monkeypatch))
