"""The job queue end to end through the stack's own Apache and Celery worker (issue 7).

Nothing runs in the test process: jobs are submitted to Apache (http://127.0.0.1:8080/jobqueue/api),
the stack's Celery worker runs them over ssh on the GPU nodes gpu01 and gpu02 through the jump host,
and the answers come back through Apache. Tokens are issued with `manage.py jobqueue_token` in the
stack portal's own database (the one Apache uses), for users who signed in through Apache first
(tests/integration/stack_jobqueue.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from datetime import datetime
from pathlib import Path

import jobqueue_seed_client as seed
import pytest
from stack_jobqueue import FINAL, ROOT, cancel_active, code, issue_token, submit_bearer
from stack_portal import connect_portal_db
from stack_waiting import wait_for

STACK = ROOT / "scripts" / "stack"


@pytest.fixture
def stack_db(stack_dir):
    """SELECTs on the stack portal's own database (the job rows Apache and Celery write)."""

    def query(sql: str, params: tuple = ()) -> tuple:
        connection = connect_portal_db(stack_dir)
        try:
            cursor = connection.cursor()
            cursor.execute(sql, params)
            return tuple(cursor.fetchall())
        finally:
            connection.close()

    return query


def worker_pid(stack_dir: Path) -> int | None:
    """The stack's Celery worker when it runs: its recorded pid, alive, with its recorded start time."""
    run = stack_dir / "run"
    try:
        pid = int((run / "celery-worker.pid").read_text().strip())
        recorded = (run / "celery-worker.start").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # state is the first field after "(comm)", starttime the 20th
    if fields[0] == "Z" or fields[19] != recorded:
        return None
    return pid


def restart_worker() -> None:
    result = subprocess.run([str(STACK), "restart-worker"], capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stdout + result.stderr


def wait_until(predicate, seconds: float, what: str):
    return wait_for(predicate, seconds, what, interval=0.05)


def test_killing_the_celery_worker_mid_job_loses_no_job(stack_dir, stack_db):
    """SIGKILL the stack's worker while one job runs on gpu01 and another waits for the node.

    (A long job of carol's holds gpu02 meanwhile: the least expected wait sends bob's job to gpu01.)

    The running job goes on, detached on the node; the killed worker's delayed steps stay unacked
    in Redis (redelivered only after the broker's visibility timeout). After the worker is started
    again, beat's jobqueue.reconcile re-enqueues both jobs (nobody followed them for
    JOBQUEUE_STALE_SECONDS): the first reattaches to its run and completes with its output, the
    second then starts and completes.
    """
    alice, bob, carol = (issue_token(stack_dir, user) for user in ("alice", "bob", "carol"))
    for token, user in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        cancel_active(token, user)
    first = submit_bearer(alice, sleep=15)
    filler = submit_bearer(carol, sleep=300, expected_time=600)
    second = submit_bearer(bob, sleep=1)
    assert [job["node_name"] for job in (first, filler, second)] == ["gpu01", "gpu02", "gpu01"]
    first, filler, second = first["job_id"], filler["job_id"], second["job_id"]
    running = seed.wait_for_job(first, alice, until=("running", *FINAL), timeout=90)
    assert running["status"] == "running", running
    assert seed.get_status(second, bob).json()["status"] == "pending"  # gpu01 runs one job at a time
    ((remote_id,),) = stack_db("SELECT remote_id FROM jobqueue_job WHERE job_id = %s", (first,))
    assert remote_id == str(stack_dir / "data" / "jobqueue-node" / first)

    # between two steps (no lease held), so the worker dies holding only delayed steps
    wait_until(
        lambda: (
            not stack_db(
                "SELECT 1 FROM jobqueue_job WHERE job_id IN (%s, %s, %s) AND lease_until IS NOT NULL",
                (first, second, filler),
            )
        ),
        30,
        "a moment between two steps",
    )
    pid = worker_pid(stack_dir)
    assert pid is not None, "the stack's Celery worker is not running"
    assert b"celery" in Path(f"/proc/{pid}/cmdline").read_bytes()
    try:
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: worker_pid(stack_dir) is None, 15, "the worker to die")
        status = subprocess.run([str(STACK), "status"], capture_output=True, text=True, timeout=60)
        assert status.returncode == 1
        assert re.search(r"celery-worker\s+\S*stopped", status.stdout), status.stdout

        # the job runs on, detached on the node, and Apache still answers for it
        node_pid = int((Path(remote_id) / "pid").read_text())
        os.kill(node_pid, 0)
        assert seed.get_status(first, alice).json()["status"] == "running"

        restart_worker()
        new_pid = worker_pid(stack_dir)
        assert new_pid is not None and new_pid != pid
        # started from this test process, it still has only the stack's settings (not settings_test's)
        assert b"CELERY_TASK_ALWAYS_EAGER" not in Path(f"/proc/{new_pid}/environ").read_bytes()
        # reconcile: up to JOBQUEUE_STALE_SECONDS (30) + one beat period (60 s); a step killed
        # while it held the job's lease (5 min) would add that lease
        done_first = seed.wait_for_job(first, alice, timeout=480)
        done_second = seed.wait_for_job(second, bob, timeout=180)
    finally:
        if worker_pid(stack_dir) is None:
            restart_worker()
        cancel_active(carol, "carol")

    assert done_first["status"] == "completed", done_first
    assert done_first["started_at"] == running["started_at"]  # the same run, reattached, not started again
    results = seed.get_results(first, alice).json()
    output = json.loads(results["output"])
    assert output["accuracy"] == 0.93 and output["slept"] >= 15
    assert stack_db("SELECT remote_id FROM jobqueue_job WHERE job_id = %s", (first,)) == ((remote_id,),)
    record = json.loads((stack_dir / "data" / "jobqueue" / "results" / results["results_file"]).read_text())
    assert (record["job_id"], record["status"], record["user_id"]) == (first, "completed", "alice")
    assert not Path(remote_id).exists()  # cleaned up on the node

    assert done_second["status"] == "completed", done_second
    assert done_second["started_at"] >= done_first["completed_at"]
    ran = datetime.fromisoformat(done_second["completed_at"]) - datetime.fromisoformat(done_second["started_at"])
    assert ran.total_seconds() < 20  # the new worker chains the steps itself (every 2 s), not reconcile (60 s)
    assert json.loads(seed.get_results(second, bob).json()["output"])["accuracy"] == 0.93


def test_a_client_written_like_the_seed_readme_works_with_only_its_base_url_changed(stack_dir, tmp_path):
    assert seed.BASE_URL == os.environ["PORTAL_STACK_URL"] + "/jobqueue"
    token = issue_token(stack_dir, "carol")
    admin = issue_token(stack_dir, "staffer", admin=True)
    cancel_active(token, "carol")

    solution = tmp_path / "solution.py"
    solution.write_text(code(sleep=2))
    response = seed.submit_job(str(solution), token, user_id="carol")
    assert response.status_code == 200, response.text
    submitted = response.json()
    job_id = submitted["job_id"]
    assert submitted["status"] == "pending"
    assert (submitted["node_id"], submitted["node_name"]) in ((0, "gpu01"), (1, "gpu02"))  # the seed's integer id

    final = seed.wait_for_job(job_id, token)
    assert (final["status"], final["exit_code"]) == ("completed", 0), final
    results = seed.get_results(job_id, token)
    assert results.status_code == 200
    body = results.json()
    assert json.loads(body["output"])["accuracy"] == 0.93
    assert re.fullmatch(r"carol_comp-001_\d{8}_\d{6}(_[0-9a-f]{8})?\.jsonl", body["results_file"])
    record = json.loads((stack_dir / "data" / "jobqueue" / "results" / body["results_file"]).read_text())
    assert (record["job_id"], record["status"]) == (job_id, "completed")
    mine = {job["job_id"]: job["status"] for job in seed.list_jobs(token, user_id="carol").json()["jobs"]}
    assert mine[job_id] == "completed"

    long_solution = tmp_path / "long.py"
    long_solution.write_text(code(sleep=120))
    long_response = seed.submit_job(str(long_solution), token, user_id="carol", expected_time=300)
    assert long_response.status_code == 200, long_response.text
    long_id = long_response.json()["job_id"]
    assert seed.wait_for_job(long_id, token, until=("running", *FINAL))["status"] == "running"
    cancelled = seed.cancel_job(long_id, token)
    assert cancelled.status_code == 200, cancelled.text
    assert seed.wait_for_job(long_id, token, timeout=90)["status"] == "cancelled"

    # the seed README's admin example: every user's jobs with an admin token
    everyone = seed.list_jobs(admin).json()["jobs"]
    assert {job_id, long_id} <= {job["job_id"] for job in everyone}
    assert seed.get_status(job_id, "not-a-token").status_code == 401
    assert [(node["node_id"], node["node_name"]) for node in seed.get_nodes().json()] == [(0, "gpu01"), (1, "gpu02")]
