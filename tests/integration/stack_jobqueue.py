"""The job queue of the stack's own portal (Apache and Celery): tokens, jobs and cleaning up, for the stack tests.

Tokens are issued with `manage.py jobqueue_token` in the stack portal's own database (the one
Apache uses), for users who signed in through Apache first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jobqueue_seed_client as seed
import requests
from stack_portal import daemon_env

ROOT = Path(__file__).resolve().parents[2]
FINAL = ("completed", "failed", "cancelled")

CODE = """import json, os, time
started = time.time()
time.sleep(SLEEP)
print(json.dumps({"accuracy": 0.93, "pid": os.getpid(), "slept": round(time.time() - started, 1)}))
"""


def code(sleep: float) -> str:
    return CODE.replace("SLEEP", str(sleep))


def manage(stack_dir: Path, *args: str) -> str:
    """manage.py against the stack portal's database (the one Apache and Celery use)."""
    env = {**os.environ, **daemon_env(stack_dir)}
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def issue_token(stack_dir: Path, user: str, *, admin: bool = False) -> str:
    """Sign `user` in through Apache (a first sign-in creates the portal user), then issue a token."""
    affiliation = "staff@example.org" if admin else "member@example.org"
    page = requests.get(
        os.environ["PORTAL_STACK_URL"] + "/",
        headers={"X-Test-Remote-User": f"{user}@example.org", "X-Test-Affiliation": affiliation},
        timeout=30,
    )
    assert page.status_code == 200, page.status_code
    return manage(stack_dir, "jobqueue_token", "create", user, *(["--admin"] if admin else [])).splitlines()[-1]


def cancel_active(token: str, user: str) -> None:
    """Jobs of `user` left active by an interrupted earlier run would hold the node or the limit."""
    for job in seed.list_jobs(token, user_id=user).json()["jobs"]:
        if job["status"] not in FINAL:
            seed.cancel_job(job["job_id"], token)
            seed.wait_for_job(job["job_id"], token, timeout=120)


def submit_bearer(token: str, sleep: float, *, expected_time: int = 60, competition_id: str = "worker-kill") -> Any:
    """POST /jobqueue/api/submit with an Authorization: Bearer header (the config has no token): the answer."""
    config = {"competition_id": competition_id, "project_id": "issue-7", "expected_time": expected_time}
    response = requests.post(
        f"{seed.BASE_URL}/api/submit",
        headers={"Authorization": f"Bearer {token}"},
        files={
            "code": ("solution.py", code(sleep), "text/x-python"),
            "config_file": ("config.json", json.dumps(config), "application/json"),
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def cancel_every_active(admin_token: str) -> None:
    """Every user's active jobs (an admin token sees them all): the nodes start empty."""
    jobs = [job for job in seed.list_jobs(admin_token).json()["jobs"] if job["status"] not in FINAL]
    for job in jobs:
        seed.cancel_job(job["job_id"], admin_token)
    for job in jobs:
        seed.wait_for_job(job["job_id"], admin_token, timeout=120)
