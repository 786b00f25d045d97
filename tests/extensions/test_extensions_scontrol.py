"""slurm.scontrol: parsing scontrol's --oneliner records, and the update's argv."""

from __future__ import annotations

import pytest
from extensions_helpers import job_line

from slurm import scontrol


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("00:10:00", 10), ("1-00:00:00", 1440), ("2-03:04:00", 3064), ("10:00", 10), ("UNLIMITED", None), ("", None)],
)
def test_durations_in_minutes(text, minutes):
    assert scontrol.parse_minutes(text) == minutes


def test_a_running_job_from_its_record():
    job = scontrol.job_from_fields(scontrol.fields(job_line(limit="1-00:00:00", run="02:00:05")))
    assert (job.user, job.account, job.partition, job.state) == ("owner", "def-owner", "cpu", "RUNNING")
    assert (job.time_limit, job.run_seconds, job.cpus) == (1440, 7205, 4)
    assert job.nodes == ("node01", "node02")
    assert job.extendable and not job.ended
    assert job.start is not None and job.start.tzinfo is not None


def test_a_pending_job_has_no_nodes():
    job = scontrol.job_from_fields(scontrol.fields(job_line(state="PENDING", nodes="(null)")))
    assert job.nodes == () and job.extendable


@pytest.mark.parametrize("bad", ["1;rm -rf /", "-1", "1 2", "JobId=3", "", "1+2", "12_"])
def test_only_plain_job_ids_reach_the_argv(bad):
    with pytest.raises(ValueError, match="not a job id"):
        scontrol.time_limit_args(bad, 60)


def test_the_update_is_one_argv_list():
    assert scontrol.time_limit_args("1234_7", 1500) == ["update", "JobId=1234_7", "TimeLimit=1-01:00:00"]
    with pytest.raises(ValueError, match="positive number of minutes"):
        scontrol.time_limit_args("1234", 0)


def test_update_runs_through_the_runner_as_the_operator(monkeypatch, settings):
    settings.SLURM_SCONTROL = "/usr/bin/scontrol"
    seen = []
    monkeypatch.setattr(scontrol, "run_command", lambda argv, **kw: seen.append((argv, kw.get("as_user"))))
    scontrol.update_time_limit("77", 90, as_user="slurm")
    assert seen == [(["/usr/bin/scontrol", "update", "JobId=77", "TimeLimit=01:30:00"], "slurm")]
