"""Job-id lists in URLs: TT's ``100-105,107`` syntax, validated and bounded."""

from __future__ import annotations

import pytest

from jobstats.domain.jobids import MAX_IDS, JobIdError, format_job_ids, parse_job_ids


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("7", [7]),
        ("100-103,107", [100, 101, 102, 103, 107]),
        ("107,100-101,100", [100, 101, 107]),
        (" 5 , 6 ", [5, 6]),
        ("4294967295", [4294967295]),
    ],
)
def test_parse_job_ids_reads_ids_and_ranges(text, ids):
    assert parse_job_ids(text) == ids


@pytest.mark.parametrize(
    "text", ["", ",", "100-", "-5", "5-3", "0", "4294967296", "1,,2", "abc", "1-2-3", "1 2", "1;2"]
)
def test_parse_job_ids_refuses_malformed_lists(text):
    with pytest.raises(JobIdError):
        parse_job_ids(text)


def test_a_huge_range_is_refused_before_it_is_expanded():
    with pytest.raises(JobIdError, match="At most"):
        parse_job_ids("1-4000000000")
    with pytest.raises(JobIdError, match="At most"):
        parse_job_ids(f"1-{MAX_IDS},{MAX_IDS + 5}")
    assert len(parse_job_ids(f"1-{MAX_IDS}")) == MAX_IDS


def test_a_very_long_list_is_refused():
    with pytest.raises(JobIdError, match="longer than"):
        parse_job_ids(",".join(["1"] * 150))


def test_format_job_ids_is_the_inverse():
    assert format_job_ids([107, 100, 101, 102, 103]) == "100-103,107"
    assert parse_job_ids(format_job_ids([3, 9, 10, 11])) == [3, 9, 10, 11]
    assert format_job_ids([]) == ""
