"""Real jobs, submitted with sbatch by `scripts/stack up` as different users, read through the slurm app.

Every job of the stack's first batch ($PORTAL_STACK_DIR/jobs/batch.txt: name|jobid|wait) is read
from slurmdbd's database through the portal's models and decoders, and cross-checked field by
field against `sacct --parsable2` for the same jobs.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from slurm.decoders import JobState, TresCatalog
from slurm.models import Tres, cluster_models
from slurm.sacct import (
    parse_exit_code,
    parse_parsable2,
    parse_state,
    parse_timestamp,
    parse_total_cpu,
    parse_tres_text,
    split_job_id,
)
from slurm.visibility import accounts_of, jobs_of_user

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

CLUSTER = "testcluster"
SACCT_FIELDS = [
    "JobIDRaw",
    "JobID",
    "User",
    "Account",
    "Partition",
    "State",
    "ExitCode",
    "ReqTRES",
    "AllocTRES",
    "Submit",
    "Start",
    "End",
]

# name -> (user, account, final state, exit code, GPUs by type)
EXPECTED = {
    "cpu-busy": ("alice", "physics", "COMPLETED", (0, 0), {}),
    "exit-3": ("bob", "chem", "FAILED", (3, 0), {}),
    "out-of-memory": ("carol", "chem", "OUT_OF_MEMORY", None, {}),
    "time-limit": ("bob", "physics", "TIMEOUT", None, {}),
    "cancelled": ("alice", "physics", "CANCELLED", None, {}),
    "qos-pending": ("bob", "physics", "PENDING", (0, 0), {}),
    "srun-steps": ("bob", "chem", "COMPLETED", (0, 0), {}),
    "gpu-a100": ("alice", "physics", "COMPLETED", (0, 0), {"a100": 1}),
    "gpu-v100": ("bob", "chem", "COMPLETED", (0, 0), {"v100": 2}),
}


@pytest.fixture(scope="module")
def batch(stack_dir) -> dict[str, int]:
    jobs = {}
    for line in (stack_dir / "data" / "jobs" / "batch.txt").read_text().splitlines():
        name, job_id, _wait = line.split("|")
        jobs[name] = int(job_id)
    assert set(EXPECTED) <= set(jobs), f"the stack's batch lacks {set(EXPECTED) - set(jobs)}"
    return jobs


def sacct(run, job_ids: list[int], fields: list[str] = SACCT_FIELDS) -> list[dict[str, str]]:
    result = run(
        ["sacct", "--parsable2", "--noheader", "--allusers", "--duplicates", "-j", ",".join(map(str, job_ids)),
         f"--format={','.join(fields)}"],
    )  # fmt: skip
    return parse_parsable2(result.stdout, fields=fields)


def wait_for_final(run, job_ids: list[int], *, timeout: float = 150) -> list[dict[str, str]]:
    """sacct rows once no allocation of these jobs is still RUNNING (the time-limit job needs about a minute)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in sacct(run, job_ids) if "." not in r["JobID"]]
        running = [r for r in rows if parse_state(r["State"]).name in ("RUNNING", "COMPLETING")]
        if not running or time.monotonic() > deadline:
            return rows
        time.sleep(3)


@pytest.fixture(scope="module")
def sacct_rows(batch, slurm_cmd) -> dict[int, dict[str, str]]:
    rows = wait_for_final(slurm_cmd, list(batch.values()))
    return {int(r["JobIDRaw"]): r for r in rows}


@pytest.fixture(scope="module")
def catalog(django_db_blocker) -> TresCatalog:
    with django_db_blocker.unblock():
        return Tres.catalog()


def db_job(job_id: int):
    return cluster_models(CLUSTER).job.objects.filter(id_job=job_id).order_by("-time_submit").first()


def final_state(name: str, stack_dir: Path) -> str:
    """The out-of-memory job ends OUT_OF_MEMORY where the stack enforces memory with task/cgroup (a cgroup v1
    memory controller: it then writes etc/slurm/cgroup.conf), FAILED where jobacct_gather's OverMemoryKill
    kills it instead (no v1 controller, e.g. a Debian 12 on cgroup v2)."""
    state = EXPECTED[name][2]
    if name == "out-of-memory" and not (stack_dir / "etc" / "slurm" / "cgroup.conf").exists():
        return "FAILED"
    return state


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_job_reads_back_as_sacct_reports_it(name, batch, sacct_rows, catalog, stack_dir):
    user, account, _state, exit_code, gpus = EXPECTED[name]
    state = final_state(name, stack_dir)
    job_id = batch[name]
    job = db_job(job_id)
    assert job is not None, f"job {name} ({job_id}) is not in slurmdbd's database"
    row = sacct_rows[job_id]

    # Who and where
    assert jobs_of_user(user, CLUSTER).filter(id_job=job_id).exists()
    assert row["User"] == user
    assert job.account == row["Account"] == account
    assert job.partition == row["Partition"]
    # State and exit code, decoded from the raw columns
    assert job.state_info.name == parse_state(row["State"]).name == state
    if exit_code is not None:
        assert tuple(job.exit) == tuple(parse_exit_code(row["ExitCode"])) == exit_code
    # TRES: GPU count from the generic id only, types from the typed ids, same as sacct's text
    tres = job.tres_alloc_dict or job.tres_req_dict
    sacct_tres = parse_tres_text(row["AllocTRES"] or row["ReqTRES"])
    assert catalog.gpu_count(tres) == sacct_tres.get("gres/gpu", 0) == sum(gpus.values())
    assert catalog.gpus_by_type(tres) == gpus
    assert tres.get(catalog.cpu) == sacct_tres["cpu"]
    assert tres.get(catalog.mem) == sacct_tres["mem"]
    # Times: aware UTC datetimes equal to sacct's (run with TZ=UTC)
    assert job.submit_time == parse_timestamp(row["Submit"])
    assert job.start_time == parse_timestamp(row["Start"])
    if state not in ("PENDING", "RUNNING"):
        assert job.end_time == parse_timestamp(row["End"])
        assert job.end_time.utcoffset() == timedelta(0)


def test_array_tasks_are_rows_of_their_own(batch, sacct_rows, slurm_cmd):
    master = batch["array"]
    tasks = list(cluster_models(CLUSTER).job.objects.filter(id_array_job=master).order_by("id_array_task"))
    assert [t.id_array_task for t in tasks] == [1, 2, 3]
    assert [t.display_id for t in tasks] == [f"{master}_1", f"{master}_2", f"{master}_3"]
    sacct_ids = {r["JobID"] for r in sacct(slurm_cmd, [t.id_job for t in tasks])}
    assert {t.display_id for t in tasks} <= sacct_ids
    assert all(t.state_info.base == JobState.COMPLETED for t in tasks)


def test_srun_steps_are_read_with_their_cpu_time(batch, slurm_cmd):
    job = db_job(batch["srun-steps"])
    steps = {s.step_id_text: s for s in job.steps()}
    assert {"batch", "0", "1", "2"} <= set(steps)
    rows = sacct(slurm_cmd, [job.id_job])
    sacct_steps = {split_job_id(r["JobID"]).step for r in rows if "." in r["JobID"]}
    assert {"batch", "0", "1", "2"} <= sacct_steps
    # The busy step's CPU time is what sacct says (TotalCPU, to its centisecond rounding), whatever
    # share of a core a loaded machine gave the 2 s loop.
    total_cpu = {
        split_job_id(r["JobID"]).step: parse_total_cpu(r["TotalCPU"])
        for r in sacct(slurm_cmd, [job.id_job], fields=[*SACCT_FIELDS, "TotalCPU"])
        if "." in r["JobID"]
    }
    assert total_cpu["2"] > 0.05
    assert steps["2"].cpu_seconds == pytest.approx(total_cpu["2"], abs=0.01)


def test_pending_job_has_no_start_and_waits_on_its_qos(batch, slurm_cmd):
    job = db_job(batch["qos-pending"])
    assert job.state_info.base == JobState.PENDING
    assert job.start_time is None
    reason = slurm_cmd(["squeue", "-h", "-j", str(job.id_job), "-o", "%r"]).stdout.strip()
    assert reason.startswith("QOS")


def test_account_membership_comes_from_the_associations():
    assert sorted(accounts_of("bob", CLUSTER)) == ["chem", "physics"]
    assert accounts_of("dave", CLUSTER) == []


def test_the_portal_reads_through_a_select_only_account(stack_dir):
    from django.db import connections

    with connections["slurm"].cursor() as cursor:
        cursor.execute("SELECT CURRENT_USER()")
        assert cursor.fetchone()[0].startswith("portal_ro@")
        cursor.execute("SHOW GRANTS")
        grants = " ".join(row[0] for row in cursor.fetchall())
    assert "SELECT" in grants
    for forbidden in ("INSERT", "UPDATE", "DELETE", "CREATE", "ALL PRIVILEGES"):
        assert forbidden not in grants.replace("USAGE", "")
