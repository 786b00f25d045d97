"""The database source's packed reads (GROUP_CONCAT) give the frame the row-by-row reads give.

On SQLite here (the same aggregate and parsing as on MariaDB, one connection); the stack's
MariaDB runs the same comparisons with several connections (tests/integration/test_jobsource_stack.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from slurm.jobsource import database
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.expressions import GroupConcat, Joined
from slurm.jobsource.frame import COLUMNS, JobQuery
from slurm.jobsource.packed import cpu_seconds, parse_ints, parse_texts
from slurm.router import allow_writes

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.fixture
def jobs(slurm):
    """Jobs of two users in two accounts: GPU and CPU jobs, a job that never ran, steps, a NULL account."""
    slurm.tres()
    slurm.user("alice", ["physics", "chem"])
    slurm.user("bob", ["physics"])
    now = slurm.now
    made = []
    for i in range(12):
        job = slurm.job(
            ["alice", "bob"][i % 2],
            ["physics", "chem", "physics"][i % 3],
            gpus=i % 4 == 0 and 2,
            cpus_req=1 + i % 5,
            time_end=now - 600 - 60 * i,
        )
        if i % 3:
            slurm.step(job, user_sec=100 * i, user_usec=250000, sys_sec=i, sys_usec=999999)
            slurm.step(job, id_step=0, step_name="python", user_sec=7, sys_usec=500000)
        made.append(job)
    made.append(slurm.job("bob", "physics", state=0))  # pending: never in a window
    nameless = slurm.job("alice", "chem", time_end=now - 700)
    with allow_writes():  # a NULL account reads as ""
        slurm.models.job.objects.using("slurm").filter(job_db_inx=nameless.job_db_inx).update(account=None)
    made.append(nameless)
    made.append(slurm.job("bob", "physics", time_start=0, time_end=now - 800))  # cancelled before it started
    return made


def window(slurm, **scope) -> JobQuery:
    now = datetime.fromtimestamp(slurm.now, tz=UTC)
    return JobQuery(now - timedelta(days=1), now, "testcluster", **scope)


def by_rows(query: JobQuery, monkeypatch) -> pd.DataFrame:
    with monkeypatch.context() as patch:
        patch.setattr(database, "PACKED_VENDORS", ())
        return DatabaseSource().fetch(query)


@pytest.mark.parametrize("scope", [{}, {"user": "alice"}, {"account": "physics"}])
def test_packed_reads_give_the_row_frame(slurm, jobs, monkeypatch, scope):
    query = window(slurm, **scope)
    monkeypatch.setattr(database, "PACKED_CHUNK_IDS", 3)  # a whole-cluster window in five chunks
    packed = DatabaseSource().fetch(query)
    expected = by_rows(query, monkeypatch)
    assert len(packed) == len(expected) > 0
    pd.testing.assert_frame_equal(packed, expected)
    if not scope:
        assert len(packed) == 14  # all but the pending job
        assert packed.loc[packed["job_id"] == jobs[13].id_job, "account"].item() == ""
        assert packed.loc[packed["job_id"] == jobs[14].id_job, "elapsed"].item() == 0
        row = packed[packed["job_id"] == jobs[1].id_job].iloc[0]
        assert row.total_cpu == pytest.approx(100 + 0.25 + 1 + 0.999999 + 7 + 0.5)
        assert (row.user, row.account, row.alloc_cpus) == ("bob", "chem", 2)
        assert packed[packed["job_id"] == jobs[0].id_job].iloc[0].gpu_type == "a100"


def test_a_cut_chunk_is_read_again_in_halves(slurm, jobs, monkeypatch):
    """MariaDB cuts a GROUP_CONCAT longer than max_allowed_packet (warning 1260): halves are read instead."""
    reads: list[tuple[int, int]] = []
    read = DatabaseSource._read_packed

    def cut_above_one_id(self, selected, steps, bounds, limit):
        packed = read(self, selected, steps, bounds, limit)
        reads.append(bounds)
        packed.cut = bounds is not None and bounds[1] > bounds[0]
        return packed

    monkeypatch.setattr(DatabaseSource, "_read_packed", cut_above_one_id)
    query = window(slurm)
    packed = DatabaseSource().fetch(query)
    assert any(low == high for low, high in reads) and any(low < high for low, high in reads)
    pd.testing.assert_frame_equal(packed, by_rows(query, monkeypatch))


def test_texts_holding_a_separator_are_read_row_by_row(slurm, jobs, monkeypatch):
    odd = slurm.job("alice", "physics", partition="a\tb\nc", time_end=slurm.now - 900)
    query = window(slurm)
    fallbacks = []
    rows_of_range = DatabaseSource._rows_of_range
    monkeypatch.setattr(
        DatabaseSource,
        "_rows_of_range",
        lambda self, *args: fallbacks.append(args[-1]) or rows_of_range(self, *args),
    )
    packed = DatabaseSource().fetch(query)
    assert fallbacks  # the chunk holding the odd job
    assert packed.loc[packed["job_id"] == odd.id_job, "partition"].item() == "a\tb\nc"
    pd.testing.assert_frame_equal(packed, by_rows(query, monkeypatch))
    user = DatabaseSource().fetch(window(slurm, user="alice"))  # one packed query: read by rows instead
    assert user.loc[user["job_id"] == odd.id_job, "partition"].item() == "a\tb\nc"


def test_an_empty_window(slurm, jobs):
    now = datetime.fromtimestamp(slurm.now, tz=UTC)
    for scope in ({}, {"user": "alice"}):
        frame = DatabaseSource().fetch(
            JobQuery(now + timedelta(days=1), now + timedelta(days=2), "testcluster", **scope)
        )
        assert frame.empty and list(frame.columns) == list(COLUMNS)


def test_parsing_checks_the_counts():
    assert parse_ints("1,-2,3,4", 2, 2).tolist() == [[1, -2], [3, 4]]
    assert parse_ints("1,2,3", 2, 2) is None  # a value missing
    assert parse_ints(None, 1, 2) is None
    assert parse_ints(None, 0, 2).shape == (0, 2)
    codes, texts = parse_texts("a\tb\nc\td\na\tb", 3, 2)
    assert texts[codes].tolist() == [["a", "b"], ["c", "d"], ["a", "b"]]
    assert parse_texts("a\tb\tx\nc\td", 2, 2) is None  # a tab inside a value
    assert parse_texts("a\tb\nc\td", 1, 2) is None  # a newline inside a value


def test_cpu_seconds_sum_the_steps_of_each_job():
    job_inx = np.array([30, 10, 20])
    steps = (np.array([10, 10, 20, 99]), np.array([1, 2, 3, 4]), np.array([500000, 500000, 0, 1]))
    assert cpu_seconds(job_inx, steps).tolist() == [0.0, 4.0, 3.0]  # step 99: no selected job


def test_separators_are_constants():
    with pytest.raises(ValueError, match="separator"):
        GroupConcat("account", "';")
    with pytest.raises(ValueError, match="separator"):
        Joined("account", "partition", separator="x")
