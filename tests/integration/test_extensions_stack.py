"""Walltime extensions against the stack: a real job in slurmctld, asked for through Apache, accepted by staff
through Apache, applied by the stack's Celery worker with scontrol update as the Slurm operator account.

The truth is slurmctld's own: `scontrol show job` reports the new TimeLimit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from stack_portal import connect_portal_db, daemon_env
from stack_waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.adds_jobs]

ROOT = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def shib(user: str, *, staff: bool = False) -> requests.Session:
    """A session whose every request carries the Shibboleth-style identity Apache turns into REMOTE_USER."""
    session = requests.Session()
    session.headers["X-Test-Remote-User"] = f"{user}@example.org"
    session.headers["X-Test-Affiliation"] = "staff@example.org;member@example.org" if staff else "member@example.org"
    return session


def post_form(session: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    page = session.get(url, timeout=60)
    assert page.status_code == 200, (page.status_code, page.text[:500])
    token = CSRF.search(page.text)
    assert token, "no form on " + url
    return session.post(url, data={"csrfmiddlewaretoken": token.group(1), **data}, timeout=60, allow_redirects=False)


def show_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", job_id],
        capture_output=True, text=True, timeout=30, check=True, env={**os.environ, "TZ": "UTC"},
    ).stdout  # fmt: skip
    return dict(pair.split("=", 1) for pair in out.split() if "=" in pair)


def manage(stack_dir: Path, *args: str) -> str:
    """manage.py against the stack portal's database (the one Apache and Celery use)."""
    env = {**os.environ, **daemon_env(stack_dir)}
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def portal_rows(stack_dir: Path, sql: str, params: tuple) -> list[tuple]:
    connection = connect_portal_db(stack_dir)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    finally:
        connection.close()


@pytest.fixture
def alice_job(slurm_cmd, stack_dir):
    """A 10-minute job of alice (sleeping), cancelled at the end."""
    out = slurm_cmd(
        ["sbatch", "--parsable", "-J", "extension-it", "-A", "physics", "-p", "cpu", "-c", "1", "--mem=100M",
         "-t", "10", "-o", "/dev/null", "--wrap", "sleep 600"],
        user="alice",
    ).stdout  # fmt: skip
    job_id = out.strip().split(";")[0]
    yield job_id
    subprocess.run(["scancel", job_id], check=False, env={**os.environ, "TZ": "UTC"})


def test_an_accepted_extension_changes_the_jobs_time_limit_in_slurmctld(alice_job, stack_dir):
    apache = os.environ["PORTAL_STACK_URL"]
    assert show_job(alice_job)["TimeLimit"] == "00:10:00"
    alice = shib("alice")
    form = f"{apache}/secure/extensions/job/alice/{alice_job}/"

    # the job page (jobstats, from slurmdbd) links the owner to the form once the job is recorded
    job_page = f"{apache}/secure/jobstats/alice/{alice_job}/"
    wait_for(lambda: form.removeprefix(apache) in alice.get(job_page, timeout=60).text, 60, "the job page's link")

    asked = post_form(alice, form, {"hours": "2", "reason": "the solver needs two more hours"})
    assert asked.status_code == 302, asked.text[:2000]
    [(pk, status)] = portal_rows(
        stack_dir, "SELECT id, status FROM extensions_extensionrequest WHERE job_id = %s", (alice_job,)
    )
    assert status == "pending"
    # another user cannot ask for alice's job (the route's rule: its owner and staff)
    assert shib("bob").get(form, timeout=60).status_code == 403

    staffer = shib("staffer", staff=True)
    detail = f"{apache}/secure/extensions/staff/{pk}/"
    page = staffer.get(detail, timeout=60)  # the first sign-in creates the portal user
    assert page.status_code == 200 and "the solver needs two more hours" in page.text
    assert "00:10:00" in page.text  # the job's limit now, from slurmctld
    manage(stack_dir, "staff_powers", "grant", "extension-decisions", "--user", "staffer")

    accepted = post_form(staffer, detail, {"action": "accept", "message": "granted"})
    assert accepted.status_code == 302, accepted.text[:2000]

    # Celery (root) runs `scontrol update JobId=<id> TimeLimit=02:10:00` as the operator account
    wait_for(
        lambda: show_job(alice_job)["TimeLimit"] == "02:10:00", 90, "scontrol show job's new TimeLimit", interval=1
    )
    rows = portal_rows(
        stack_dir, "SELECT status, new_limit, error FROM extensions_extensionrequest WHERE id = %s", (pk,)
    )
    assert rows == [("applied", 130, "")]
    actions = {
        row[0]
        for row in portal_rows(
            stack_dir, "SELECT action FROM userportal_auditentry WHERE target = %s", (f"extension:{pk}",)
        )
    }
    assert {"extension.request", "extension.accept", "extension.applied"} <= actions


def test_a_request_expires_when_its_job_ends(alice_job, stack_dir):
    """Asked through Apache, the job cancelled: the beat task, run by the stack's Celery worker, expires it."""
    apache = os.environ["PORTAL_STACK_URL"]
    form = f"{apache}/secure/extensions/job/alice/{alice_job}/"
    asked = post_form(shib("alice"), form, {"hours": "1", "reason": "a little longer"})
    assert asked.status_code == 302, asked.text[:2000]
    subprocess.run(["scancel", alice_job], check=True, env={**os.environ, "TZ": "UTC"})
    wait_for(lambda: show_job(alice_job)["JobState"] == "CANCELLED", 60, "the job's cancellation", interval=1)
    # what beat sends every EXTENSIONS_EXPIRE_MINUTES, sent now (by name, through Redis, to the stack's worker)
    env = {**os.environ, **daemon_env(stack_dir)}
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "userportal.celery", "call", "extensions.expire"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    sql = "SELECT status FROM extensions_extensionrequest WHERE job_id = %s"
    wait_for(lambda: portal_rows(stack_dir, sql, (alice_job,)) == [("expired",)], 60, "the expiry", interval=1)
    assert show_job(alice_job)["TimeLimit"] == "00:10:00"  # nothing was asked of Slurm


@pytest.fixture
def alice_array(slurm_cmd):
    """A two-task array of alice (10 minutes each, sleeping), cancelled at the end."""
    out = slurm_cmd(
        ["sbatch", "--parsable", "--array=0-1", "-J", "extension-array-it", "-A", "physics", "-p", "cpu", "-c", "1",
         "--mem=100M", "-t", "10", "-o", "/dev/null", "--wrap", "sleep 600"],
        user="alice",
    ).stdout  # fmt: skip
    array_id = out.strip().split(";")[0]
    yield array_id
    subprocess.run(["scancel", array_id], check=False, env={**os.environ, "TZ": "UTC"})


def test_one_task_of_an_array_is_extended_by_its_name_and_the_array_id_is_refused(alice_array, stack_dir):
    apache = os.environ["PORTAL_STACK_URL"]
    wait_for(
        lambda: all(show_job(f"{alice_array}_{n}").get("JobState") == "RUNNING" for n in (0, 1)),
        90, "both tasks running", interval=1,
    )  # fmt: skip
    alice = shib("alice")
    # the array's own id names both tasks: refused (it would have extended every task)
    whole = post_form(alice, f"{apache}/secure/extensions/job/alice/{alice_array}/", {"hours": "1", "reason": "all"})
    assert whole.status_code == 400 and "job array" in whole.text
    # a leading zero is another spelling of a job id: refused before scontrol
    zero = alice.get(f"{apache}/secure/extensions/job/alice/0{alice_array}_1/", timeout=60)
    assert zero.status_code == 400
    # a task asked for by its own JobId is kept under its array name. (One task's JobId is the array's
    # own id, which names every task: the other one, whose JobId is its own.)
    task, other = next((n, 1 - n) for n in (0, 1) if show_job(f"{alice_array}_{n}")["JobId"] != alice_array)
    task_job_id = show_job(f"{alice_array}_{task}")["JobId"]
    asked = post_form(alice, f"{apache}/secure/extensions/job/alice/{task_job_id}/", {"hours": "1", "reason": "t"})
    assert asked.status_code == 302, asked.text[:2000]
    [(pk, job_id)] = portal_rows(
        stack_dir, "SELECT id, job_id FROM extensions_extensionrequest WHERE job_id LIKE %s", (f"{alice_array}_%",)
    )
    assert job_id == f"{alice_array}_{task}"
    again = post_form(alice, f"{apache}/secure/extensions/job/alice/{job_id}/", {"hours": "1", "reason": "t"})
    assert again.status_code == 400 and "already has a request" in again.text
    staffer = shib("staffer", staff=True)
    detail = f"{apache}/secure/extensions/staff/{pk}/"
    assert staffer.get(detail, timeout=60).status_code == 200
    manage(stack_dir, "staff_powers", "grant", "extension-decisions", "--user", "staffer")
    accepted = post_form(staffer, detail, {"action": "accept", "message": ""})
    assert accepted.status_code == 302, accepted.text[:2000]
    wait_for(lambda: show_job(job_id)["TimeLimit"] == "01:10:00", 90, "the task's new TimeLimit", interval=1)
    assert show_job(f"{alice_array}_{other}")["TimeLimit"] == "00:10:00"  # the other task keeps its limit
