"""jobstats against the real stack, through Apache: the pages of the stack's first batch of jobs,
the DataTables API with the scoping of alice, bob and staff, the graph JSON from the stack's
Prometheus, and cost.json. Expected values come from Slurm itself (sacct, squeue), never fakes.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from pathlib import Path

import pytest
import requests
from skipping import skip_or_fail

TIMEOUT = 30
STAFF = {"X-Test-Remote-User": "staffer@example.org", "X-Test-Affiliation": "staff@example.org"}
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "DEADLINE"}


def headers_of(user: str) -> dict[str, str]:
    if user == "staffer":
        return STAFF
    return {"X-Test-Remote-User": f"{user}@example.org", "X-Test-Affiliation": "member@example.org"}


def base() -> str:
    return os.environ["PORTAL_STACK_URL"]


def get(user: str, path: str, **params) -> requests.Response:
    return requests.get(base() + path, headers=headers_of(user), params=params, timeout=TIMEOUT, allow_redirects=False)


def text_of(response: requests.Response) -> str:
    """The visible text of a page's <main>, whitespace collapsed."""
    body = response.text
    body = body[body.find("<main") :]
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def field(text: str, label: str, following: str) -> str:
    """The text between `label` and the next label `following` in a page's summary list."""
    match = re.search(rf" {re.escape(label)} (.*?) {re.escape(following)} ", text)
    assert match, f"{label!r} … {following!r} not found in: {text[:1500]}"
    return match.group(1).strip()


@pytest.fixture(scope="module")
def batch(stack_dir: Path, slurm_cmd) -> dict[str, dict[str, str]]:
    """The stack's first batch: {name: {"id", "user", "account", "state", "exit"}} from batch.txt and sacct.

    time-limit ends about a minute after it starts: wait for it when the stack was just started.
    """
    lines = (stack_dir / "data" / "jobs" / "batch.txt").read_text().split()
    ids = {name: jobid for name, jobid, _wait in (line.split("|") for line in lines if line)}
    assert {"cpu-busy", "exit-3", "out-of-memory", "qos-pending", "array", "gpu-a100"} <= set(ids)
    deadline = time.monotonic() + 100
    while True:
        out = slurm_cmd(
            ["sacct", "-n", "-P", "-X", "-j", ",".join(ids.values()), "--format=JobID,User,Account,State,ExitCode"]
        ).stdout
        rows = {}
        for line in out.splitlines():
            jobid, user, account, state, exit_code = line.split("|")
            rows[jobid] = {
                "id": jobid,
                "user": user,
                "account": account,
                "state": state.split()[0],
                "raw_state": state,
                "exit": exit_code,
            }
        waiting = [name for name in ("time-limit",) if rows.get(ids.get(name, ""), {}).get("state") not in FINAL]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(1)
    found = {}
    for name, jobid in ids.items():
        if jobid in rows:
            found[name] = rows[jobid]
        else:  # an array: its tasks are <id>_<n>; the master's record is its last task
            tasks = sorted(key for key in rows if key.startswith(f"{jobid}_"))
            assert tasks, f"sacct does not know job {name} ({jobid})"
            found[name] = {**rows[tasks[0]], "id": jobid, "tasks": tasks}
    return found


def sacct_ids(slurm_cmd, *args: str) -> set[str]:
    out = slurm_cmd(["sacct", "-n", "-P", "-X", "-S", "2000-01-01", "-E", "now", "--format=JobID", *args]).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def datatables(user: str, length: int = 1000, start: int = 0, order: str = "asc", **params) -> dict:
    query = {
        "format": "datatables",
        "draw": "7",
        "start": str(start),
        "length": str(length),
        "columns[0][data]": "id_job",
        "columns[1][data]": "job_name",
        "columns[2][data]": "state",
        "order[0][column]": "0",
        "order[0][dir]": order,
        **params,
    }
    response = get(user, "/api/jobs/", **query)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["draw"] == 7
    return body


def api_ids(body: dict) -> set[str]:
    return {row["display_id"] for row in body["data"]}


def eventually_equal(fetch, expect, tries: int = 4):
    """Both sides again when they differ: another engineer may submit a job in between."""
    for _ in range(tries):
        got, want = fetch(), expect()
        if got == want:
            return got
        time.sleep(0.5)
    assert got == want, f"only in the API: {sorted(got - want)}; only in sacct: {sorted(want - got)}"


# --- pages ---------------------------------------------------------------------------------------
def test_user_page_lists_the_users_jobs(batch):
    response = get("alice", "/secure/jobstats/alice/")
    assert response.status_code == 200
    text = text_of(response)
    assert "cpu-busy" in text
    assert "gpu-a100" in text
    assert "not answering" not in text
    assert 'id="jobs-table-config"' in response.text or "json" in response.text  # the DataTables config
    # another user's page is refused (403 or the sign-in page), staff may open it
    assert get("alice", "/secure/jobstats/bob/").status_code in (302, 403)
    assert get("staffer", "/secure/jobstats/bob/").status_code == 200


@pytest.mark.parametrize(
    ("name", "label", "exit_code"),
    [
        ("cpu-busy", "Completed", "0:0"),
        ("exit-3", "Failed", "3:0"),
        ("out-of-memory", None, None),  # OUT_OF_MEMORY with cgroup v1, FAILED (signal 9) without
        # killed by a signal: 0:15 or 0:0 by Slurm version and node (the page must say what sacct says)
        ("time-limit", "Timeout", None),
        ("cancelled", "Cancelled", None),
        ("gpu-v100", "Completed", "0:0"),
        ("largemem", "Completed", "0:0"),
    ],
)
def test_job_page_shows_state_exit_code_and_resources(batch, name, label, exit_code):
    job = batch[name]
    if name == "time-limit" and job["state"] not in FINAL:
        skip_or_fail("time-limit has not reached its limit yet")
    response = get(job["user"], f"/secure/jobstats/{job['user']}/{job['id']}/")
    assert response.status_code == 200, response.text[:300]
    text = text_of(response)
    labels = {
        "COMPLETED": "Completed",
        "FAILED": "Failed",
        "OUT_OF_MEMORY": "Out of memory",
        "TIMEOUT": "Timeout",
        "CANCELLED": "Cancelled",
    }
    state = field(text, "State", "Exit code")
    assert state.startswith(labels[job["state"]])
    if label:
        assert labels[job["state"]] == label
    if label and exit_code:
        assert field(text, "Exit code", "(derived").startswith(exit_code)
    assert field(text, "Exit code", "(derived") == job["exit"]
    assert field(text, "Account", "Partition") == job["account"]
    if name == "out-of-memory":
        assert "ran out of memory" in text or job["state"] == "FAILED"
    if name == "cancelled":  # "CANCELLED by 0" when scancel ended it; plain CANCELLED when a signal did
        assert ("cancelled by uid" in state) == (" by " in job["raw_state"]), (state, job["raw_state"])
    if name == "largemem":
        assert field(text, "Memory", "GPUs").split()[:2] == ["20480", "MB"]
    if name == "gpu-v100":
        assert field(text, "GPUs", "Nodes") == "2 (2 × v100) 2 (2 × v100)"
        assert "gpu01" in field(text, "Node list:", "Efficiency")
    if name == "exit-3":
        assert re.search(r" \d+\.batch batch Failed 3:0 ", text), "the batch step and its exit code"


def test_gpu_a100_job_page(batch):
    job = batch["gpu-a100"]
    response = get("alice", f"/secure/jobstats/alice/{job['id']}/")
    text = text_of(response)
    assert field(text, "State", "Exit code") == "Completed"
    assert field(text, "CPU cores", "Memory") == "2 2"
    assert field(text, "GPUs", "Nodes") == "1 (1 × a100) 1 (1 × a100)"
    assert field(text, "Partition", "QOS") == "gpu"
    names = re.findall(r'data-graph-name="([a-z_]+)"', response.text)
    assert {"cpu", "mem", "gpu_utilization", "gpu_memory", "gpu_power"} <= set(names)
    assert "CUDA_VISIBLE_DEVICES" in text  # the job script (slurmdbd's copy or the uploader's)


def test_pending_job_says_why_in_plain_language_with_squeues_estimate(batch, slurm_cmd):
    job = batch["qos-pending"]
    squeue = slurm_cmd(["squeue", "-h", "-j", job["id"], "-o", "%T|%r|%S"]).stdout.strip()
    if not squeue.startswith("PENDING|"):
        skip_or_fail(f"qos-pending is no longer pending ({squeue!r})")
    _state, reason, estimate = squeue.split("|")
    response = get("bob", f"/secure/jobstats/bob/{job['id']}/")
    assert response.status_code == 200
    text = text_of(response)
    assert field(text, "State", "Exit code") == "Pending"
    assert "Why is this job waiting?" in text
    assert f"reason: {reason}" in text
    assert "QOS" in text
    assert "limit" in text
    assert "QOS capped allows cpu=2" in text
    shown = field(text, "Estimated start", "Priority")
    if estimate in ("N/A", "Unknown", ""):
        assert shown == "unknown"
    else:
        assert shown.startswith(estimate.replace("T", " ")[:16])
    assert field(text, "Started", "Ended") == "—"
    # the owner sees it; alice is in physics too (account member) but the page is bob's: refused
    assert get("alice", f"/secure/jobstats/bob/{job['id']}/").status_code in (302, 403)


def test_array_master_and_task_pages(batch):
    job = batch["array"]
    response = get("alice", f"/secure/jobstats/alice/{job['id']}/")
    assert response.status_code == 200
    text = text_of(response)
    assert f"Array {job['id']}" in text
    assert "3 task records" in text
    links = re.findall(rf'href="/secure/jobstats/alice/(\d+)/">({job["id"]}_\d)<', response.text)
    assert sorted(label for _id, label in links) == job["tasks"]
    task_id, task_label = sorted(links, key=lambda link: link[1])[0]
    task = get("alice", f"/secure/jobstats/alice/{task_id}/")
    assert task.status_code == 200
    task_text = text_of(task)
    assert f"Job {task_label}" in task_text
    assert field(task_text, "State", "Exit code") == "Completed"
    assert "array task" in task_text  # the master's script is shown for each task


def test_srun_steps_are_listed(batch, slurm_cmd):
    job = batch["srun-steps"]
    steps = slurm_cmd(["sacct", "-n", "-P", "-j", job["id"], "--format=JobID,JobName"]).stdout.split()
    response = get(job["user"], f"/secure/jobstats/{job['user']}/{job['id']}/")
    text = text_of(response)
    steps_text = text[text.find(" Steps ") :]
    for line in steps:
        step, step_name = line.split("|")
        if "." in step and not step.endswith((".extern",)):
            assert f" {step} {step_name} " in steps_text, f"step {step} missing"
    assert f" {job['id']}.2 busy " in steps_text


# --- the jobs API ----------------------------------------------------------------------------------
def test_datatables_returns_exactly_what_sacct_knows_for_each_user(batch, slurm_cmd):
    for user in ("alice", "bob"):
        eventually_equal(
            lambda user=user: api_ids(datatables(user)), lambda user=user: sacct_ids(slurm_cmd, "-u", user)
        )
    # staff name any user
    eventually_equal(
        lambda: api_ids(datatables("staffer", username="carol")), lambda: sacct_ids(slurm_cmd, "-u", "carol")
    )
    # staff without a username: every job (staff see everything)
    eventually_equal(lambda: api_ids(datatables("staffer")), lambda: sacct_ids(slurm_cmd, "-a"))
    # a user naming someone else gets their own jobs, never the other's
    body = datatables("alice", username="bob")
    assert {row["username"] for row in body["data"]} == {"alice"}


def test_datatables_paging_and_sorting(batch):
    whole = datatables("alice")
    total = whole["recordsTotal"]
    assert total == whole["recordsFiltered"] == len(whole["data"]) >= 5
    first = datatables("alice", length=2, start=0)
    second = datatables("alice", length=2, start=2)
    assert len(first["data"]) == len(second["data"]) == 2
    assert first["recordsTotal"] == total
    ids = [row["id_job"] for row in first["data"] + second["data"]]
    assert ids == sorted(ids)
    assert len(set(row["job_db_inx"] for row in first["data"] + second["data"])) == 4
    descending = [row["id_job"] for row in datatables("alice", order="desc")["data"]]
    assert descending == sorted(descending, reverse=True)
    by_name = datatables("alice", **{"order[0][column]": "1"})["data"]
    names = [row["job_name"] for row in by_name]
    assert names == sorted(names)


def test_a_first_page_shorter_than_the_list_is_pending_first_then_latest_started(batch, slurm_cmd):
    """bob's list by start time in pages shorter than it (on MariaDB: the pending and the started part in
    one UNION ALL): the same rows as the whole list's head, the pending jobs those sacct says are pending."""
    by_start = {"columns[0][data]": "time_start"}
    for _attempt in range(4):  # another test may submit a job of bob's in between
        whole = datatables("bob", order="desc", **by_start)
        total = whole["recordsTotal"]
        assert total >= 4 and len(whole["data"]) == total
        heads = [datatables("bob", length=size, order="desc", **by_start)["data"] for size in (1, 2, total - 1)]
        if all(head == whole["data"][: len(head)] for head in heads):
            break
        time.sleep(0.5)
    assert [len(head) for head in heads] == [1, 2, total - 1]
    assert all(head == whole["data"][: len(head)] for head in heads)
    out = slurm_cmd(
        ["sacct", "-n", "-P", "-X", "-u", "bob", "-S", "2000-01-01", "-E", "now", "-s", "PD", "-o", "JobID"]
    )
    pending = {line.strip() for line in out.stdout.splitlines() if line.strip()}
    assert batch["qos-pending"]["id"] in pending
    rows = whole["data"]
    assert {row["display_id"] for row in rows[: len(pending)]} == pending
    starts = [row["time_start"] for row in rows[len(pending) :]]
    assert None not in starts and starts == sorted(starts, reverse=True)


def test_datatables_search_and_filters(batch, slurm_cmd):
    body = datatables("alice", **{"search[value]": "gpu-a100"})
    assert {row["job_name"] for row in body["data"]} == {"gpu-a100"}
    assert body["recordsFiltered"] < body["recordsTotal"]
    assert batch["gpu-a100"]["id"] in api_ids(body)
    # a job id in the search box
    body = datatables("bob", **{"search[value]": batch["exit-3"]["id"]})
    assert batch["exit-3"]["id"] in api_ids(body)
    # state and partition filters agree with sacct's
    eventually_equal(
        lambda: api_ids(datatables("bob", state="FAILED")), lambda: sacct_ids(slurm_cmd, "-u", "bob", "-s", "FAILED")
    )
    eventually_equal(
        lambda: api_ids(datatables("alice", partition="gpu")), lambda: sacct_ids(slurm_cmd, "-u", "alice", "-r", "gpu")
    )
    assert get("alice", "/api/jobs/", format="datatables", ordering="not_a_column").status_code == 400


def test_account_scoping(batch, slurm_cmd):
    # bob is a member of physics: he sees every physics member's jobs in it
    eventually_equal(
        lambda: api_ids(datatables("bob", account="physics")), lambda: sacct_ids(slurm_cmd, "-a", "-A", "physics")
    )
    users = {row["username"] for row in datatables("bob", account="physics")["data"]}
    assert {"alice", "bob"} <= users
    # alice is not in chem: refused, or nothing
    response = get("alice", "/api/jobs/", format="datatables", account="chem")
    assert response.status_code == 403 or response.json()["data"] == []
    # anonymous: refused
    assert requests.get(base() + "/api/jobs/", timeout=TIMEOUT).status_code in (401, 403)


# --- graphs and cost --------------------------------------------------------------------------------
def series_in_prometheus(jobid: str) -> int:
    url = os.environ["PROMETHEUS_URL"] + "/api/v1/series"
    answer = requests.get(url, params={"match[]": f'{{slurmjobid="{jobid}"}}'}, timeout=TIMEOUT).json()
    return len(answer["data"])


def values(figure: dict) -> int:
    return sum(1 for trace in figure["data"] for value in trace.get("y") or [] if value is not None)


@pytest.mark.parametrize("name", ["cpu-busy", "gpu-a100", "gpu-v100", "srun-steps"])
def test_job_graphs_come_from_prometheus(stack_dir, batch, name):
    job = batch[name]
    backfilled = json.loads((stack_dir / "data" / "prometheus-backfill.json").read_text())["jobs"]
    if job["id"] not in backfilled:
        skip_or_fail(f"job {job['id']} was not backfilled into Prometheus")
    assert series_in_prometheus(job["id"]) > 0
    page = get(job["user"], f"/secure/jobstats/{job['user']}/{job['id']}/")
    urls = dict(re.findall(r'data-graph-url="([^"]+)" data-graph-name="([a-z_]+)"', page.text))
    urls = {graph: url for url, graph in urls.items()}
    assert {"cpu", "mem"} <= set(urls)
    # gpu-v100 runs as on a node without NVML/DCGM: its GPU graphs have no data ("GPUs not measured")
    wanted = {"cpu", "mem", "thread"} | (
        {"gpu_utilization", "gpu_memory", "gpu_power"} if name == "gpu-a100" else set()
    )
    for graph, url in urls.items():
        response = requests.get(base() + html.unescape(url), headers=headers_of(job["user"]), timeout=TIMEOUT)
        assert response.status_code == 200, (graph, response.text[:300])
        figure = response.json()
        assert isinstance(figure["data"], list)
        assert isinstance(figure["layout"], dict)
        if graph in wanted:
            assert values(figure) > 0, f"graph {graph} of job {job['id']} is empty: {figure.get('reason')}"
    # the cpu graph has the job's node as a series, as the exporter labels it
    cpu = requests.get(base() + html.unescape(urls["cpu"]), headers=headers_of(job["user"]), timeout=TIMEOUT).json()
    assert any(trace.get("name") in ("cpu01", "gpu01") for trace in cpu["data"])


def test_user_graphs_answer_plotly_json(batch):
    for graph in ("cpu", "mem"):
        response = get("alice", f"/secure/jobstats/alice/graph/{graph}.json", delta="2592000")
        assert response.status_code == 200
        figure = response.json()
        assert isinstance(figure["data"], list)
        assert "layout" in figure
    assert get("alice", "/secure/jobstats/alice/graph/nope.json").status_code == 404


def test_cost_json_for_a_real_job(batch):
    job = batch["gpu-a100"]
    response = get("alice", f"/secure/jobstats/alice/{job['id']}/value/cost.json")
    assert response.status_code == 200
    cost = response.json()
    for key in ("kwh", "total_cost_dollar", "hardware_cost_dollar", "co2_emissions_kg", "currency"):
        assert key in cost
    assert cost["kwh"] > 0
    assert cost["total_cost_dollar"] > 0
    assert get("bob", f"/secure/jobstats/alice/{job['id']}/value/cost.json").status_code in (302, 403)
