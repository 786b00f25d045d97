"""The job-source interface: four backends, one frame; the cascade falls through on errors."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import requests

from slurm.jobsource.cascade import fetch_jobs
from slurm.jobsource.csvfile import CsvSource
from slurm.jobsource.database import DatabaseSource
from slurm.jobsource.frame import COLUMNS, JobQuery, JobSourceAuthError, JobSourceBadResponse, JobSourceError
from slurm.jobsource.sacct import SacctSource
from slurm.jobsource.slurmrestd import SlurmrestdSource, rest_job_row

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

SAMPLES = Path("/work/shared/reference/stack/infra/samples")
# JobIDRaw|JobID|Cluster|User|Account|Partition|Submit|End|ElapsedRaw|TotalCPU|ReqTRES|AllocTRES|State
SACCT_SAMPLE = """\
1|1|testcluster|alice|physics|debug|2026-11-22T07:10:44|2026-11-22T07:10:48|4|00:03.989|billing=2,cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=500M,node=1|billing=2,cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=500M,node=1|COMPLETED
1.batch|1.batch|testcluster||||2026-11-22T07:10:44|2026-11-22T07:10:48|4|00:03.989||cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=500M,node=1|COMPLETED
4|4|testcluster|alice|physics|debug|2026-11-22T07:10:44|2026-11-22T07:10:48|0|00:00:00|billing=1,cpu=1,gres/gpu:a100=3,gres/gpu=3,mem=500M,node=1||CANCELLED by 0
9|9|testcluster|bob|chem|debug|2026-11-22T07:10:44|Unknown|0|00:00:00|billing=1,cpu=1,mem=100M,node=1||RUNNING"""
WINDOW = JobQuery(
    start=datetime(2026, 11, 22, tzinfo=UTC), end=datetime(2026, 11, 23, tzinfo=UTC), cluster="testcluster"
)


def test_sacct_sample_is_read_into_the_common_frame(tmp_path):
    frame = SacctSource(fake_sacct(tmp_path, SACCT_SAMPLE)).fetch(WINDOW)
    assert list(frame.columns) == list(COLUMNS)
    assert frame["job_id"].tolist() == [1, 4]  # steps dropped, the running job (no End) left out
    job = frame.iloc[0]
    assert (job.user, job.account, job.partition, job.state) == ("alice", "physics", "debug", "COMPLETED")
    assert job.elapsed == 4
    assert job.total_cpu == pytest.approx(3.989)
    assert (job.alloc_cpus, job.alloc_mem_mb, job.alloc_gpus, job.gpu_type) == (2, 500, 1, "a100")
    assert job.submit == pd.Timestamp("2026-11-22T07:10:44Z")
    assert frame.iloc[1].state == "CANCELLED"
    assert frame.iloc[1].alloc_gpus == 0
    assert frame.iloc[1].req_gpus == 3
    assert frame.iloc[1].gpu_type == "a100"


def test_sacct_argv_is_a_list_with_the_cutoff_and_the_user(tmp_path):
    source = SacctSource("sacct")
    argv = source.argv(JobQuery(WINDOW.start, WINDOW.end, "testcluster", user="alice"))
    assert argv[0] == "sacct"
    assert "--parsable2" in argv
    assert "--user=alice" in argv
    assert "--allusers" not in argv
    assert "--starttime=2026-11-22T00:00:00" in argv
    assert "--endtime=2026-11-23T00:00:00" in argv
    assert "--allusers" in source.argv(WINDOW)


def test_sacct_failure_and_timeout_are_data_source_errors(tmp_path):
    failing = tmp_path / "sacct-fails"
    failing.write_text("#!/bin/sh\necho 'sacct: error: slurmdbd down' >&2\nexit 1\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(JobSourceError, match="slurmdbd down"):
        SacctSource(str(failing)).fetch(WINDOW)
    slow = tmp_path / "sacct-slow"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(slow.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(JobSourceError, match="more than"):
        SacctSource(str(slow), timeout=0.2).fetch(WINDOW)


def test_sacct_runs_in_utc(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Bangkok")
    script = tmp_path / "sacct-tz"
    script.write_text('#!/bin/sh\necho "$TZ" > ' + str(tmp_path / "tz.txt") + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    SacctSource(str(script)).fetch(WINDOW)
    assert (tmp_path / "tz.txt").read_text().strip() == "UTC"


class FakeResponse:
    def __init__(self, status: int, body: object) -> None:
        self.status_code = status
        self.text = body if isinstance(body, str) else json.dumps(body)

    def json(self):
        return json.loads(self.text)


class FakeSession:
    def __init__(self, response: FakeResponse) -> None:
        self.response = response
        self.calls: list[dict] = []

    def get(self, url, **kwargs):
        self.calls.append({"url": url, **kwargs})
        return self.response


def rest_source(response: FakeResponse) -> tuple[SlurmrestdSource, FakeSession]:
    session = FakeSession(response)
    source = SlurmrestdSource("http://rest:6820", user="slurm", token="tok", session=session)  # type: ignore[arg-type]
    return source, session


def test_slurmrestd_v0038_job_matches_sacct(tmp_path):
    body = json.loads((SAMPLES / "rest_slurmdb_v0.0.38_job1.json").read_text())
    source, session = rest_source(FakeResponse(200, body))
    frame = source.fetch(WINDOW)
    call = session.calls[0]
    assert call["url"] == "http://rest:6820/slurmdb/v0.0.38/jobs"
    assert call["headers"] == {"X-SLURM-USER-NAME": "slurm", "X-SLURM-USER-TOKEN": "tok"}
    assert call["params"]["start_time"] == "2026-11-22T00:00:00"  # requests percent-encodes the ':'
    assert "user" not in call["params"]
    assert call["timeout"]
    sacct = SacctSource(fake_sacct(tmp_path, SACCT_SAMPLE)).fetch(WINDOW)
    compared = ["cluster", "job_id", "user", "account", "state", "elapsed", "alloc_cpus", "alloc_mem_mb"]
    compared += ["alloc_gpus", "gpu_type", "end", "submit", "alloc_tres"]
    assert frame[compared].iloc[0].to_dict() == sacct[compared].iloc[0].to_dict()
    assert frame.iloc[0].total_cpu == pytest.approx(3.989947)  # the sum over the steps


def test_slurmrestd_filters_users_on_the_client():
    body = json.loads((SAMPLES / "rest_slurmdb_v0.0.38_job1.json").read_text())
    source, _session = rest_source(FakeResponse(200, body))
    assert source.fetch(JobQuery(WINDOW.start, WINDOW.end, "testcluster", user="bob")).empty
    assert len(source.fetch(JobQuery(WINDOW.start, WINDOW.end, "testcluster", user="alice"))) == 1


def test_slurmrestd_500_on_a_bad_token_is_an_auth_error():
    source, _ = rest_source(FakeResponse(500, "Authentication failure"))
    with pytest.raises(JobSourceAuthError):
        source.fetch(WINDOW)
    source, _ = rest_source(FakeResponse(401, "Authentication failure"))
    with pytest.raises(JobSourceAuthError):
        source.fetch(WINDOW)
    source, _ = rest_source(FakeResponse(500, '{"errors": [{"error": "Unknown Query field"}]}'))
    with pytest.raises(JobSourceBadResponse):
        source.fetch(WINDOW)


def test_slurmrestd_errors_array_and_connection_errors():
    source, _ = rest_source(FakeResponse(200, {"errors": [{"error": "boom", "error_number": 9}], "jobs": []}))
    with pytest.raises(JobSourceBadResponse):
        source.fetch(WINDOW)

    class Down:
        def get(self, url, **kwargs):
            raise requests.ConnectionError("refused")

    with pytest.raises(JobSourceError, match="refused"):
        SlurmrestdSource("http://rest:6820", user="u", token="t", session=Down()).fetch(WINDOW)  # type: ignore[arg-type]


def test_slurmrestd_later_versions_unwrap_numbers():
    job = {
        "job_id": 7,
        "user": "alice",
        "account": "physics",
        "cluster": "testcluster",
        "partition": "gpu",
        "state": {"current": ["COMPLETED"]},
        "time": {
            "elapsed": 60,
            "submission": {"set": True, "number": 1795331000},
            "end": {"set": True, "infinite": False, "number": 1795331448},
        },
        "tres": {"allocated": [{"type": "cpu", "id": 1, "count": 4}, {"type": "gres", "name": "gpu", "count": 1}]},
        "steps": [{"time": {"total": {"seconds": 100, "microseconds": 500000}}}],
    }
    row = rest_job_row(job, "testcluster")
    assert row is not None
    assert (row["job_id"], row["state"], row["total_cpu"], row["alloc_tres"]) == (
        7,
        "COMPLETED",
        100.5,
        "cpu=4,gres/gpu=1",
    )


def test_slurmrestd_mints_a_token_from_the_jwt_key(tmp_path):
    import jwt

    key = tmp_path / "jwt.key"
    key.write_bytes(b"k" * 32)
    source = SlurmrestdSource("http://rest:6820", user="slurm", token="", jwt_key=str(key))
    headers = source.headers()
    claims = jwt.decode(headers["X-SLURM-USER-TOKEN"], b"k" * 32, algorithms=["HS256"])
    assert claims["sun"] == "slurm"
    assert claims["exp"] > claims["iat"]


def test_csv_source_reads_sacct_columns(tmp_path):
    path = tmp_path / "jobs.csv"
    path.write_text(
        "User,JobID,Elapsed,TotalCPU,ReqTRES,End,State,Account,Submit\n"
        'alice,1,00:00:04,00:03.989,"cpu=2,gres/gpu:a100=1,gres/gpu=1,mem=500M",2026-11-22T07:10:48,COMPLETED,physics,2026-11-22T07:10:44\n'
        "bob,2,00:00:02,00:00.004,cpu=1,2026-12-22T07:10:46,COMPLETED,chem,2026-12-22T07:10:40\n"
    )
    frame = CsvSource(str(path)).fetch(WINDOW)
    assert frame["job_id"].tolist() == [1]  # the December job is after the cut-off
    assert (frame.iloc[0].req_gpus, frame.iloc[0].gpu_type, frame.iloc[0].elapsed) == (1, "a100", 4)


def test_database_source_sums_step_cpu_and_names_tres(slurm):
    catalog = slurm.tres()
    slurm.account("physics")
    slurm.user("alice", ["physics"])
    now = slurm.now
    job = slurm.job("alice", "physics", gpus=2, gpu_type="a100", cpus_req=4)
    slurm.step(job, user_sec=100, user_usec=500000, sys_sec=10)
    slurm.step(job, id_step=0, step_name="python", sys_usec=500000)
    pending = slurm.job("alice", "physics", state=0)
    assert catalog.gpu
    query = JobQuery(datetime.fromtimestamp(now - 86400, tz=UTC), datetime.fromtimestamp(now, tz=UTC), "testcluster")
    frame = DatabaseSource().fetch(query)
    assert list(frame.columns) == list(COLUMNS)
    row = frame[frame["job_id"] == job.id_job].iloc[0]
    assert pending.id_job not in frame["job_id"].tolist()
    assert (row.user, row.account, row.state, row.elapsed) == ("alice", "physics", "COMPLETED", 1800)
    assert row.total_cpu == pytest.approx(111.0)
    assert (row.alloc_cpus, row.alloc_gpus, row.gpu_type, row.alloc_mem_mb) == (4, 2, "a100", 1000)
    assert row.alloc_tres == "billing=4,cpu=4,gres/gpu:a100=2,gres/gpu=2,mem=1000M,node=1"
    assert row.submit == pd.Timestamp(job.time_submit, unit="s", tz="UTC")


def test_database_source_scopes_to_a_user(slurm):
    slurm.user("alice", ["physics"])
    slurm.user("bob", ["physics"])
    slurm.job("alice", "physics")
    slurm.job("bob", "physics")
    now = datetime.fromtimestamp(slurm.now, tz=UTC)
    frame = DatabaseSource().fetch(JobQuery(now - timedelta(days=1), now, "testcluster", user="bob"))
    assert frame["user"].unique().tolist() == ["bob"]


def test_cascade_falls_through_and_names_the_source(tmp_path):
    class Broken:
        name = "database"

        def fetch(self, query):
            raise JobSourceError("down")

    result = fetch_jobs(WINDOW, [Broken(), SlurmrestdSource(url=""), SacctSource(fake_sacct(tmp_path, SACCT_SAMPLE))])
    assert result.source == "sacct"
    assert set(result.failures) == {"database", "slurmrestd"}
    with pytest.raises(JobSourceError, match="down"):
        fetch_jobs(WINDOW, [Broken(), CsvSource(path="")])


def fake_sacct(tmp_path: Path, output: str) -> str:
    data = tmp_path / "sacct.out"
    data.write_text(output + "\n")
    script = tmp_path / "sacct"
    script.write_text(f"#!/bin/sh\ncat {data}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_slurmdb_error_1007_is_an_auth_error():
    body = {"errors": [{"error_number": 1007, "error": "Protocol authentication error"}], "jobs": []}
    source, _ = rest_source(FakeResponse(200, body))
    with pytest.raises(JobSourceAuthError):
        source.fetch(WINDOW)
