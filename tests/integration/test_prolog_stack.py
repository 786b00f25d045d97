"""The job-script uploader as the stack's PrologSlurmctld (scripts/stack.d/prolog.sh): a job
submitted with sbatch has its script in the stack portal's database (MariaDB, the DB Apache
uses) seconds later; with Apache stopped the upload waits in the queue on disk and arrives
once the portal is back (`scripts/stack up --no-jobs` starts Apache and runs the uploader's
--flush as slurm).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
from stack_portal import connect_portal_db
from stack_waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "slurm-prolog-testcluster"
ALICE = {"X-Test-Remote-User": "alice@example.org", "X-Test-Affiliation": "member@example.org"}


@pytest.fixture(scope="module")
def portal_db(stack_dir: Path):
    """A connection to the stack portal's own database (the one Apache writes to)."""
    return lambda: connect_portal_db(stack_dir)


def stored_script(portal_db, jobid: str) -> tuple[str, str | None] | None:
    connection = portal_db()
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT s.submit_script, u.username FROM jobstats_jobscript s "
            "LEFT JOIN auth_user u ON u.id = s.uploaded_by_id WHERE s.cluster = %s AND s.id_job = %s",
            ("testcluster", int(jobid)),
        )
        row = cursor.fetchone()
        return (row[0], row[1]) if row else None
    finally:
        connection.close()


def submit(stack_dir: Path, marker: str) -> str:
    """sbatch a short job as alice; its script carries `marker`."""
    script = f"#!/bin/bash\n# {marker}\necho {marker}\n"
    out = subprocess.run(
        [
            "/usr/sbin/runuser", "-u", "alice", "--", "env", f"SLURM_CONF={os.environ['SLURM_CONF']}",
            "sbatch", "--parsable", "-J", "prolog-test", "-A", "physics", "-p", "cpu", "-c", "1", "--mem=100M",
            "-t", "2", "-o", "/dev/null",
        ],
        input=script, capture_output=True, text=True, timeout=60, check=True, cwd=stack_dir / "data" / "jobs",
    )  # fmt: skip
    return out.stdout.strip().split(";")[0]


def prolog_log(stack_dir: Path) -> str:
    path = stack_dir / "log" / "userportal-prolog.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_slurmctld_runs_the_uploader(stack_dir, slurm_cmd):
    config = slurm_cmd(["scontrol", "show", "config"]).stdout
    wrapper = stack_dir / "etc" / "slurm" / "userportal-prolog.sh"
    assert re.search(rf"^PrologSlurmctld\s*=\s*{re.escape(str(wrapper))}$", config, re.M), "PrologSlurmctld"
    text = wrapper.read_text()
    assert f"{stack_dir}/etc/slurm/slurm_prolog_userportal.pyz --config" in text  # built by up, as a site builds it
    assert text.rstrip().endswith("exit 0")
    ini = (stack_dir / "etc" / "slurm" / "userportal-prolog.ini").read_text()
    assert "host = http://127.0.0.1:8080" in ini
    assert "not-issued-yet" not in ini


def test_a_submitted_job_has_its_script_stored_seconds_later(stack_dir, portal_db):
    marker = f"prolog-upload-{uuid.uuid4().hex[:12]}"
    jobid = submit(stack_dir, marker)
    script, uploader = wait_for(lambda: stored_script(portal_db, jobid), 20, f"job {jobid}'s script in the portal DB")
    assert marker in script
    assert script.startswith("#!/bin/bash")
    assert uploader == ACCOUNT
    assert f"job {jobid}: stored (HTTP 201)" in prolog_log(stack_dir)
    # the job page shows the script (once slurmdbd has the job)
    url = f"{os.environ['PORTAL_STACK_URL']}/secure/jobstats/alice/{jobid}/"
    page = wait_for(
        lambda: (r := requests.get(url, headers=ALICE, timeout=30)).status_code == 200 and r, 30, f"job {jobid}'s page"
    )
    assert marker in page.text


def apache_answers() -> bool:
    try:
        requests.get(os.environ["PORTAL_STACK_URL"] + "/health/", timeout=5)
        return True
    except requests.RequestException:
        return False


def test_an_upload_waits_in_the_queue_while_the_portal_is_down(stack_dir, portal_db):
    queue = stack_dir / "data" / "userportal-prolog"
    pid = int((stack_dir / "run" / "apache.pid").read_text().split()[0])
    os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: not apache_answers(), 20, "Apache to stop")
        marker = f"prolog-queued-{uuid.uuid4().hex[:12]}"
        jobid = submit(stack_dir, marker)
        queued = queue / f"job.{jobid}.json"
        wait_for(queued.exists, 20, f"job {jobid}'s upload in the queue {queue}")
        assert stored_script(portal_db, jobid) is None
        assert f"job {jobid}: cannot reach" in prolog_log(stack_dir)
    finally:
        up = subprocess.run(
            [str(ROOT / "scripts" / "stack"), "up", "--no-jobs"], capture_output=True, text=True, timeout=300
        )
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        wait_for(apache_answers, 60, "Apache to answer again")
    # the stack's up ran the uploader's --flush as slurm once Apache answered
    script, uploader = wait_for(lambda: stored_script(portal_db, jobid), 20, f"job {jobid}'s queued script")
    assert marker in script
    assert uploader == ACCOUNT
    assert not queued.exists()
    assert f"job {jobid}: stored (HTTP 201) (from the queue)" in prolog_log(stack_dir)
    # and a --flush run as slurm finds nothing left
    flush = subprocess.run(
        [
            "/usr/sbin/runuser", "-u", "slurm", "--", "/usr/bin/python3", str(stack_dir / "etc" / "slurm" / "slurm_prolog_userportal.pyz"),
            "--config", str(stack_dir / "etc" / "slurm" / "userportal-prolog.ini"), "--flush", "--stderr",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert flush.returncode == 0, flush.stderr
