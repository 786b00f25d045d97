"""The login nodes' jobstats command against the stack's Apache, with a token made on the portal's page.

alice signs in (the stack's test header), creates her personal token on /secure/jobstats-command/,
stores it with the line the page shows, and runs `jobstats` (a subprocess of the system's Python
and of Python 3.6) on her job of the stack's first batch (cpu-busy). The expected job comes from
sacct; the expected figures from the portal's own API as a signed-in browser reads it.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
from skipping import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
COMMAND = ROOT / "jobstats_cli" / "userportal_jobstats.py"
PY36 = Path.home() / ".pyenv" / "versions" / "3.6.15" / "bin" / "python"
TIMEOUT = 60
PAGE = "/secure/jobstats-command/"


def base() -> str:
    return os.environ["PORTAL_STACK_URL"]


def session_of(user: str) -> requests.Session:
    session = requests.Session()
    session.headers.update({"X-Test-Remote-User": f"{user}@example.org", "X-Test-Affiliation": "member@example.org"})
    return session


def create_token(session: requests.Session) -> tuple[str, str]:
    """Create a token on the page as a browser does; return (key, the store line as shown)."""
    page = session.get(base() + PAGE, timeout=TIMEOUT)
    assert page.status_code == 200, page.text[:500]
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        base() + PAGE, data={"action": "create", "csrfmiddlewaretoken": csrf}, headers={"Referer": base() + PAGE},
        timeout=TIMEOUT,
    )  # fmt: skip
    assert response.status_code == 200, response.text[:500]
    line = html.unescape(re.search(r"<pre[^>]*data-store-line[^>]*><code>(.*?)</code></pre>", response.text).group(1))
    key = re.search(r"'([A-Za-z0-9_-]{40,})'", line).group(1)
    return key, line


def revoke(session: requests.Session) -> None:
    page = session.get(base() + PAGE, timeout=TIMEOUT)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        base() + PAGE, data={"action": "revoke", "csrfmiddlewaretoken": csrf}, headers={"Referer": base() + PAGE},
        timeout=TIMEOUT, allow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 302


@pytest.fixture(scope="module")
def jobs(stack_dir: Path, slurm_cmd) -> dict[str, dict[str, str]]:
    """cpu-busy (alice's) and exit-3 (bob's) of the stack's first batch, as sacct tells them."""
    lines = (stack_dir / "data" / "jobs" / "batch.txt").read_text().split()
    ids = {name: jobid for name, jobid, _wait in (line.split("|") for line in lines if line)}
    found = {}
    for name in ("cpu-busy", "exit-3"):
        out = slurm_cmd(["sacct", "-n", "-P", "-X", "-j", ids[name], "--format=JobID,User,State"]).stdout
        jobid, user, state = out.splitlines()[0].split("|")
        found[name] = {"id": jobid, "user": user, "state": state.split()[0]}
    assert found["cpu-busy"]["user"] == "alice"
    assert found["exit-3"]["user"] != "alice"
    return found


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    """alice's login-node HOME: her token stored by the page's own line, and the site's ini."""
    home = tmp_path_factory.mktemp("alice-home")
    session = session_of("alice")
    key, line = create_token(session)
    subprocess.run(["bash", "-c", line], env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, check=True, timeout=30)
    token_file = home / ".config" / "userportal" / "token"
    assert token_file.read_text().strip() == key
    assert token_file.stat().st_mode & 0o777 == 0o600
    site = home / "jobstats.ini"
    site.write_text(f"[portal]\nurl = {base()}\ntimeout = 60\n")
    yield {"home": home, "site": site, "session": session, "key": key}
    revoke(session)


def run(alice, *args: str, python: str | Path = "/usr/bin/python3", **env: str) -> subprocess.CompletedProcess:
    environment = {"HOME": str(alice["home"]), "USERPORTAL_JOBSTATS_CONFIG": str(alice["site"]), **env}
    return subprocess.run(
        [str(python), str(COMMAND), *args], env=environment, capture_output=True, text=True, timeout=120, check=False
    )


def test_json_is_the_portals_answer_for_her_job(alice, jobs):
    job = jobs["cpu-busy"]
    result = run(alice, "--json", job["id"])
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["id_job"] == int(job["id"])
    assert answer["user"] == "alice"
    assert answer["state"] == job["state"]
    assert answer["url"] == f"{base()}/secure/jobstats/alice/{job['id']}/"
    browser = alice["session"].get(f"{base()}/api/jobstats/{job['id']}/", timeout=TIMEOUT).json()
    assert answer["efficiency"] == browser["efficiency"]
    assert answer["advice"] == browser["advice"]
    kinds = {m["kind"] for m in answer["efficiency"]["measures"]}
    assert {"cpu", "time"} <= kinds
    assert answer["efficiency"]["source"] == "accounting"  # a finished job: sacct's TotalCPU


def test_text_shows_the_summary_figures_advice_and_page(alice, jobs):
    job = jobs["cpu-busy"]
    result = run(alice, job["id"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Job {job['id']} (")
    assert re.search(r"^  CPU +\[[#.]{20}\] +\d+%", result.stdout, re.M), result.stdout
    assert result.stdout.rstrip().endswith(f"Page: {base()}/secure/jobstats/alice/{job['id']}/")


def test_her_language_comes_back_translated(alice, jobs):
    result = run(alice, jobs["cpu-busy"]["id"], LANG="fr_FR.UTF-8")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^  Temps +\[", result.stdout, re.M), result.stdout


def test_it_runs_under_python_3_6(alice, jobs):
    if not PY36.exists():
        skip_or_fail(f"no Python 3.6 at {PY36}: scripts/python36 builds it")
    result = run(alice, "--json", jobs["cpu-busy"]["id"], python=PY36)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id_job"] == int(jobs["cpu-busy"]["id"])


def test_another_users_job_is_not_found(alice, jobs):
    result = run(alice, jobs["exit-3"]["id"])
    assert result.returncode == 5
    assert f"no job {jobs['exit-3']['id']} of yours" in result.stderr


def test_a_wrong_token_is_refused_by_apache(alice, jobs, tmp_path):
    wrong = tmp_path / "token"
    wrong.write_text("x" + alice["key"][1:])
    wrong.chmod(0o600)
    result = run(alice, jobs["cpu-busy"]["id"], USERPORTAL_TOKEN_FILE=str(wrong))
    assert result.returncode == 4
    assert f"{base()}{PAGE}" in result.stderr


def test_a_revoked_token_stops_at_once(jobs, tmp_path):
    """bob (alice's token stays: a new token replaces the user's previous one)."""
    job = jobs["exit-3"]
    home = tmp_path / "home"
    home.mkdir()
    session = session_of(job["user"])
    _key, line = create_token(session)
    subprocess.run(["bash", "-c", line], env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, check=True, timeout=30)
    person = {"home": home, "site": tmp_path / "jobstats.ini"}
    person["site"].write_text(f"[portal]\nurl = {base()}\n")
    first = run(person, "--json", job["id"])
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["state"] == job["state"]
    revoke(session)
    result = run(person, job["id"])
    assert result.returncode == 4
    assert "revoked" in result.stderr


def test_a_personal_token_cannot_write(alice):
    response = requests.post(
        f"{base()}/api/jobscripts/", json={"id_job": 1, "submit_script": "x"},
        headers={"Authorization": f"Token {alice['key']}"}, timeout=TIMEOUT,
    )  # fmt: skip
    assert response.status_code == 403


def test_a_personal_token_reads_only_its_holders_jobs_on_the_jobstats_endpoint(alice, jobs):
    headers = {"Authorization": f"Token {alice['key']}"}
    for path in ("/api/jobs/", "/api/jobs/?user=bob", "/api/notes/"):
        response = requests.get(f"{base()}{path}", headers=headers, timeout=TIMEOUT)
        assert response.status_code == 403, path
    job = jobs["cpu-busy"]["id"]
    mine = requests.get(f"{base()}/api/jobstats/{job}/", headers=headers, timeout=TIMEOUT)
    assert mine.status_code == 200
    other = requests.get(f"{base()}/api/jobstats/{job}/?user=bob", headers=headers, timeout=TIMEOUT)
    assert other.status_code == 403
