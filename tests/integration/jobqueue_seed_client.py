"""A client of the GPU Job Queue Server written like the examples in its README (seeds 002 and 003).

It is what the seed's users have: `requests`, the seed's paths (`{BASE_URL}/api/submit`,
`/api/status/<id>`, `/api/results/<id>`, `/api/cancel/<id>`, `/api/jobs`, `/api/nodes`), the token
inside the submitted config JSON for submit and as `Authorization: Bearer` elsewhere. The one
change from the seed's examples is BASE_URL: it was "http://localhost:8001", it is now the portal's
`/jobqueue` on the stack's Apache. (Each call also has a timeout, which the seed's examples lack.)
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

BASE_URL = "http://127.0.0.1:8080/jobqueue"  # the seed's examples: "http://localhost:8001"
TIMEOUT = 30


def submit_job(
    code_path: str,
    token: str,
    *,
    user_id: str,
    competition_id: str = "comp-001",
    project_id: str = "proj-001",
    expected_time: int = 60,
) -> requests.Response:
    """The seed README's "Submit job": the code and the config (with the token) as files."""
    with open(code_path, encoding="utf-8") as handle:
        code = handle.read()
    config = {
        "competition_id": competition_id,
        "project_id": project_id,
        "user_id": user_id,
        "expected_time": expected_time,
        "token": token,
    }
    files = {
        "code": ("solution.py", code, "text/x-python"),
        "config_file": ("config.json", json.dumps(config), "application/json"),
    }
    return requests.post(f"{BASE_URL}/api/submit", files=files, timeout=TIMEOUT)


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_status(job_id: str, token: str) -> requests.Response:
    return requests.get(f"{BASE_URL}/api/status/{job_id}", headers=headers(token), timeout=TIMEOUT)


def get_results(job_id: str, token: str) -> requests.Response:
    return requests.get(f"{BASE_URL}/api/results/{job_id}", headers=headers(token), timeout=TIMEOUT)


def cancel_job(job_id: str, token: str) -> requests.Response:
    return requests.post(f"{BASE_URL}/api/cancel/{job_id}", headers=headers(token), timeout=TIMEOUT)


def list_jobs(token: str, user_id: str | None = None) -> requests.Response:
    """The seed's "View all jobs" (admins) and its clients' `?user_id=<themselves>`."""
    url = f"{BASE_URL}/api/jobs" + (f"?user_id={user_id}" if user_id else "")
    return requests.get(url, headers=headers(token), timeout=TIMEOUT)


def get_nodes() -> requests.Response:
    return requests.get(f"{BASE_URL}/api/nodes", timeout=TIMEOUT)


def wait_for_job(
    job_id: str, token: str, *, until: tuple[str, ...] = ("completed", "failed", "cancelled"), timeout: float = 120
) -> dict[str, Any]:
    """Poll the job's status every 2 s, as the seed's clients do, until it is in `until`."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        response = get_status(job_id, token)
        response.raise_for_status()
        status: dict[str, Any] = response.json()
        if not seen or seen[-1] != status["status"]:
            seen.append(status["status"])
        if status["status"] in until:
            status["seen"] = seen
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status['status']} after {timeout} s (seen: {seen})")
        time.sleep(2)
