"""Job-queue jobs try to escape on the stack's GPU node; each attempt is contained (issue 13).

The jobs go in through the API as the seed clients send them (the code scanner passes every one of
these: it is advice, not a boundary) and run over ssh, through the jump host, on the node, as the
ssh user `jobqueue`. The test process drives the steps (steps.advance, as the Celery task does)
and, being root on the same machine, looks at the node directly: the ssh user's home, and every
process whose command line carries the job's marker.

Two node names point at the same machine, so two jobs of two users run there side by side: the
attacker knows its victim's job id and tries to list, read and rewrite its directory.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import uuid
from pathlib import Path

import pytest
from stack_waiting import wait_for
from test_jobqueue_stack import follow, seed_submit

from jobqueue.models import Job, JobStatus
from jobqueue.tokens import issue_token

pytestmark = pytest.mark.django_db(databases=["default"], transaction=True)

ESCAPE = r"""import asyncio, importlib, json, multiprocessing, os, sys, time

MARK = "@MARK@"
KEYS = "@KEYS@"
HOME = "@HOME@"
QUEUE = "@QUEUE@"
VICTIM = "@VICTIM@"
SLEEPER = "import time; time.sleep(1000)"
report = {}


def attempt(name, action):
    try:
        report[name] = ["done", repr(action())[:300]]
    except Exception as exc:
        report[name] = ["refused", type(exc).__name__]


def read_shadow():
    with open("/etc/shadow") as handle:
        return handle.read()


def write_keys():
    os.makedirs(os.path.dirname(KEYS), exist_ok=True)
    with open(KEYS, "a") as handle:
        handle.write("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEscapeEscapeEscapeEscapeEscapeEscapeEscape0 escape\n")
    return KEYS


def read_victim_code():
    for directory, _dirs, files in os.walk(os.path.join(QUEUE, VICTIM)):
        if "code.py" in files:
            with open(os.path.join(directory, "code.py")) as handle:
                return handle.read()
    raise FileNotFoundError(VICTIM)


def rewrite_victim_exit_code():
    path = os.path.join(QUEUE, VICTIM, "exit_code")
    with open(path, "w") as handle:
        handle.write("0\n")
    return path


def argv(how):
    return [sys.executable, "-c", SLEEPER, MARK + "-" + how]


def detached_child():
    os.setsid()
    getattr(os, "exec" + "v")(sys.executable, argv("multiprocessing"))


async def shell():
    process = await asyncio.create_subprocess_shell("setsid " + sys.executable + " -c '" + SLEEPER + "' " + MARK + "-asyncio &")
    await process.wait()


def spawn_all():
    os.spawnlp(os.P_NOWAIT, sys.executable, *argv("spawnlp"))
    getattr(os, "sys" + "tem")("setsid " + sys.executable + " -c '" + SLEEPER + "' " + MARK + "-system &")
    importlib.import_module("subpro" + "cess").Popen(argv("popen"), start_new_session=True)
    asyncio.run(shell())
    child = multiprocessing.Process(target=detached_child)
    child.start()
    time.sleep(1)  # no join(): once it exec()s the sleeper, join() would wait for it forever
    return 5


attempt("shadow", read_shadow)
attempt("keys", write_keys)
attempt("home", lambda: os.listdir(HOME))
attempt("queue", lambda: os.listdir(QUEUE))
attempt("victim_code", read_victim_code)
attempt("victim_exit_code", rewrite_victim_exit_code)
attempt("spawn", spawn_all)
print(json.dumps(report), flush=True)
time.sleep(1000)
"""

VICTIM = """import time
SECRET = "@SECRET@"
time.sleep(@SLEEP@)
print("victim done")
"""

SPAWNED = 5  # spawnlp, os.system, subprocess.Popen, asyncio's shell, a multiprocessing child


def marked(mark: str) -> list[int]:
    """Processes on this machine whose command line carries `mark`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def node(queue):
    """The stack's GPU node under two names (two jobs at once), and the state of the ssh user's home."""
    queue.JOBQUEUE_NODES = ["gpu01=127.0.0.1:2222", "gpu02=127.0.0.1:2222"]
    queue.JOBQUEUE_SCAN_LLM_URL = ""
    home = Path(pwd.getpwnam("jobqueue").pw_dir)
    ssh_dir = home / ".ssh"
    had_ssh_dir = ssh_dir.exists()
    authorized = ssh_dir / "authorized_keys"
    before = authorized.read_bytes() if authorized.exists() else None
    mark = f"escape-{uuid.uuid4().hex[:12]}"
    yield {"home": home, "keys": authorized, "keys_before": before, "mark": mark}
    for pid in marked(mark):  # what escaped before the sandbox existed: never leave it on the shared node
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if before is None:
        authorized.unlink(missing_ok=True)
        if not had_ssh_dir:
            shutil.rmtree(ssh_dir, ignore_errors=True)
    else:
        authorized.write_bytes(before)


@pytest.fixture
def users(django_user_model):
    alice = django_user_model.objects.create_user("alice")
    bob = django_user_model.objects.create_user("bob")
    return {"alice": (alice, issue_token(alice)[1]), "bob": (bob, issue_token(bob)[1])}


def submit(client, key: str, source: str, *, expected_time: int, user: str = "alice") -> str:
    response = seed_submit(client, key, expected_time=expected_time, source=source, user_id=user)
    assert response.status_code == 200, response.content
    return response.json()["job_id"]


def escape_code(node: dict, settings, victim: str) -> str:
    values = {
        "@MARK@": node["mark"],
        "@KEYS@": str(node["keys"]),
        "@HOME@": str(node["home"]),
        "@QUEUE@": settings.JOBQUEUE_REMOTE_DIR,
        "@VICTIM@": victim,
    }
    code = ESCAPE
    for key, value in values.items():
        code = code.replace(key, value)
    return code


def start_victim(client, key: str, *, sleep: int) -> tuple[str, str]:
    secret = uuid.uuid4().hex
    source = VICTIM.replace("@SECRET@", secret).replace("@SLEEP@", str(sleep))
    job_id = submit(client, key, source, expected_time=60, user="bob")
    follow(job_id, until=lambda job: job.status == JobStatus.RUNNING)
    return job_id, secret


def reported(settings, job_id: str) -> bool:
    """The job printed its report (read on the node's disk: the test runs on the same machine)."""
    path = Path(settings.JOBQUEUE_REMOTE_DIR) / job_id / "stdout.txt"
    return path.exists() and "{" in path.read_text(errors="replace")


def report_of(job: Job) -> dict[str, list[str]]:
    lines = [line for line in job.output.splitlines() if line.startswith("{")]
    assert lines, (job.output, job.stderr, job.error)
    return json.loads(lines[0])


def assert_contained(report: dict[str, list[str]], node: dict, secret: str) -> None:
    refused = {name for name, (outcome, _detail) in report.items() if outcome == "refused"}
    assert refused == {"shadow", "keys", "home", "queue", "victim_code", "victim_exit_code"}, report
    assert secret not in json.dumps(report)
    assert report["spawn"] == ["done", str(SPAWNED)], report  # the children did start (inside the sandbox)
    now = node["keys"].read_bytes() if node["keys"].exists() else None
    assert now == node["keys_before"], "the job wrote the ssh user's authorized_keys"


def test_escape_attempts_are_contained_and_killed_at_the_time_limit(client, node, users, settings):
    victim, secret = start_victim(client, users["bob"][1], sleep=25)
    attacker = submit(client, users["alice"][1], escape_code(node, settings, victim), expected_time=4)
    assert Job.objects.get(job_id=attacker).node != Job.objects.get(job_id=victim).node
    # Every detached child is up while the job runs...
    wait_for(lambda: len(marked(node["mark"])) >= SPAWNED, 30, "the job's detached children")
    wait_for(lambda: reported(settings, attacker), 30, "the job's report")
    job = follow(attacker, timeout=90)
    # ...and none outlives the time limit (2 x expected_time): the whole tree went with the sandbox.
    assert job.status == JobStatus.FAILED
    assert job.exit_code == 124, (job.exit_code, job.error, job.stderr)
    wait_for(lambda: not marked(node["mark"]), 10, "the end of every process of the job")
    assert_contained(report_of(job), node, secret)
    # The victim ran undisturbed: its own output, its own exit code.
    victim_job = follow(victim, timeout=90)
    assert victim_job.status == JobStatus.COMPLETED, victim_job.error
    assert victim_job.output.strip() == "victim done"


def test_cancel_kills_every_detached_child(client, node, users, settings):
    victim, secret = start_victim(client, users["bob"][1], sleep=5)
    attacker = submit(client, users["alice"][1], escape_code(node, settings, victim), expected_time=300)
    wait_for(lambda: len(marked(node["mark"])) >= SPAWNED, 30, "the job's detached children")
    wait_for(lambda: reported(settings, attacker), 30, "the job's report")
    follow(attacker, until=lambda job: job.status == JobStatus.RUNNING)
    assert (
        client.post(f"/jobqueue/api/cancel/{attacker}", HTTP_AUTHORIZATION=f"Bearer {users['alice'][1]}").status_code
        == 200
    )
    job = follow(attacker, timeout=60)
    assert job.status == JobStatus.CANCELLED
    wait_for(lambda: not marked(node["mark"]), 15, "the end of every process of the job")
    assert_contained(report_of(job), node, secret)
    assert follow(victim, timeout=60).status == JobStatus.COMPLETED


def test_a_node_without_a_working_sandbox_refuses_the_job(client, node, users, settings):
    settings.JOBQUEUE_SANDBOX_BWRAP = "/nonexistent/bwrap"
    job_id = submit(client, users["alice"][1], VICTIM.replace("@SLEEP@", "0"), expected_time=10)
    job = follow(job_id, timeout=60)
    assert job.status == JobStatus.FAILED
    assert "sandbox" in job.error, job.error
    assert not job.output
