"""sacct --parsable2 parsers, tested against the reference stack's captured output."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slurm.decoders import ExitCode
from slurm.sacct import (
    SacctJobId,
    SacctState,
    parse_elapsed,
    parse_exit_code,
    parse_parsable2,
    parse_size,
    parse_state,
    parse_timestamp,
    parse_total_cpu,
    parse_tres_text,
    split_job_id,
)

# stack/infra/samples/sacct_parsable2.sample.txt, verbatim
SAMPLE = """\
User|JobID|Elapsed|TotalCPU|ReqTRES|AllocTRES|End|State
alice|1|00:00:04|00:03.989|billing=2,cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=500M,node=1|billing=2,cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=500M,node=1|2026-11-22T07:10:48|COMPLETED
|1.batch|00:00:04|00:03.989||cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=500M,node=1|2026-11-22T07:10:48|COMPLETED
bob|2|00:00:02|00:00.004|billing=1,cpu=1,mem=100M,node=1|billing=1,cpu=1,mem=100M,node=1|2026-11-22T07:10:46|COMPLETED
|2.batch|00:00:02|00:00.004||cpu=1,mem=100M,node=1|2026-11-22T07:10:46|COMPLETED
bob|3|00:00:00|00:00.002|billing=1,cpu=1,mem=500M,node=1|billing=1,cpu=1,mem=500M,node=1|2026-11-22T07:10:44|FAILED
|3.batch|00:00:00|00:00.002||cpu=1,mem=500M,node=1|2026-11-22T07:10:44|FAILED
alice|4|00:00:00|00:00:00|billing=1,cpu=1,gres/gpu:a100=3,gres/gpu=3,mem=500M,node=1||2026-11-22T07:10:48|CANCELLED by 0
alice|5|00:00:02|00:00:00|billing=2,cpu=2,gres/gpu:a100=2,gres/gpu=2,mem=1000M,node=1|billing=2,cpu=2,gres/gpu:a100=2,gres/gpu=2,mem=1000M,node=1|2026-11-22T07:12:08|CANCELLED by 0
|5.batch|00:00:02|00:00:00||cpu=2,gres/gpu:a100=2,gres/gpu=2,mem=1000M,node=1|2026-11-22T07:12:08|CANCELLED
"""


@pytest.fixture
def rows() -> list[dict[str, str]]:
    return parse_parsable2(SAMPLE)


def test_parse_parsable2_reads_jobs_and_steps(rows: list[dict[str, str]]) -> None:
    assert len(rows) == 9
    assert [row["JobID"] for row in rows][:2] == ["1", "1.batch"]
    assert rows[1]["User"] == ""  # step lines have no user
    assert rows[1]["ReqTRES"] == ""


def test_parse_parsable2_tolerates_a_trailing_delimiter() -> None:
    assert parse_parsable2("A|B|\n1|2|\n") == [{"A": "1", "B": "2"}]
    assert parse_parsable2("1|2", fields=["A", "B"]) == [{"A": "1", "B": "2"}]
    with pytest.raises(ValueError, match="Expected 2 fields"):
        parse_parsable2("A|B\n1|2|3\n")


def test_job_lines_parse(rows: list[dict[str, str]]) -> None:
    job = rows[0]
    assert parse_elapsed(job["Elapsed"]) == 4
    assert parse_total_cpu(job["TotalCPU"]) == pytest.approx(3.989)
    assert parse_tres_text(job["AllocTRES"]) == {
        "billing": 2,
        "cpu": 2,
        "gres/gpu:a100": 1,
        "gres/gpu": 1,
        "mem": 500,
        "node": 1,
    }
    assert parse_timestamp(job["End"]) == datetime(2026, 11, 22, 7, 10, 48, tzinfo=UTC)
    assert parse_state(job["State"]) == SacctState("COMPLETED", None)


def test_cancelled_job_never_started(rows: list[dict[str, str]]) -> None:
    job = rows[6]
    assert parse_state(job["State"]) == SacctState("CANCELLED", 0)
    assert parse_tres_text(job["AllocTRES"]) == {}
    assert parse_tres_text(job["ReqTRES"])["gres/gpu"] == 3


def test_every_sample_line_parses(rows: list[dict[str, str]]) -> None:
    for row in rows:
        parse_elapsed(row["Elapsed"])
        parse_total_cpu(row["TotalCPU"])
        parse_tres_text(row["ReqTRES"])
        parse_tres_text(row["AllocTRES"])
        parse_timestamp(row["End"])
        assert parse_state(row["State"]).name in {"COMPLETED", "FAILED", "CANCELLED"}
    assert parse_state(rows[-1]["State"]) == SacctState("CANCELLED", None)  # steps show plain CANCELLED


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:03.989", 3.989),  # MM:SS.mmm, from the sample
        ("00:00.004", 0.004),
        ("00:00:00", 0.0),  # 00:MM:SS
        ("01:02:03", 3723.0),  # HH:MM:SS
        ("2-03:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5),  # D-HH:MM:SS
        ("59:59.999", 3599.999),
    ],
)
def test_total_cpu_forms(text: str, seconds: float) -> None:
    assert parse_total_cpu(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "00:0x"])
def test_total_cpu_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_total_cpu(text)


def test_elapsed_with_days() -> None:
    assert parse_elapsed("1-00:00:01") == 86401
    with pytest.raises(ValueError, match="fractions"):
        parse_elapsed("00:03.989")


def test_tres_units() -> None:
    assert parse_tres_text("mem=4G,cpu=8") == {"mem": 4096, "cpu": 8}
    assert parse_tres_text("mem=1.50G") == {"mem": 1536}
    assert parse_tres_text("mem=512K") == {"mem": 1}  # rounded up to a whole MB
    assert parse_tres_text("fs/disk=2K") == {"fs/disk": 2048}
    with pytest.raises(ValueError, match="TRES"):
        parse_tres_text("cpu")


def test_sizes() -> None:
    assert parse_size("214360K") == 214360 * 1024  # MaxRSS
    assert parse_size("500M", base="M") == 500


def test_states_and_exit_codes() -> None:
    assert parse_state("CANCELLED+") == SacctState("CANCELLED", None)  # truncated fixed-width output
    assert parse_state("CANCELLED by 1001") == SacctState("CANCELLED", 1001)
    assert parse_exit_code("0:15") == ExitCode(0, 15)
    with pytest.raises(ValueError, match="exit code"):
        parse_exit_code("15")


def test_timestamps_and_ids() -> None:
    assert parse_timestamp("Unknown") is None
    assert split_job_id("1.batch") == SacctJobId("1", "batch")
    assert split_job_id("1234_7") == SacctJobId("1234_7", None)
