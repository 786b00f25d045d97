"""A disposable node: the stack's LXC container gpu03 restarts after every job (issue 13).

JOBQUEUE_SANDBOX=none is allowed only with JOBQUEUE_NODES_DISPOSABLE and JOBQUEUE_LXC_RESTART:
then the isolation between jobs is the restart. The node is Debian's lxc running an sshd in its own
pid and mount namespaces on an overlay of the host's root with a tmpfs upper layer
(scripts/stack.d/lxc.sh); the restart runs on the jump host as JOBQUEUE_LXC_COMMAND says.
A first job leaves a file and a detached process behind; once it is released (the container
restarted), neither exists, and the next job on the same node sees neither.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from stack_waiting import wait_for
from test_jobqueue_isolation_stack import marked
from test_jobqueue_stack import alice, follow, seed_submit  # noqa: F401  (alice: a fixture)

from jobqueue.models import Job, JobStatus
from jobqueue.tokens import issue_token

pytestmark = pytest.mark.django_db(databases=["default"], transaction=True)

LEAVER = """import importlib, sys, time
open("/tmp/left-@MARK@", "w").write("left behind")
importlib.import_module("subpro" + "cess").Popen(
    [sys.executable, "-c", "import time; time.sleep(1000)", "@MARK@"], start_new_session=True
)
print("left", flush=True)
time.sleep(4)
"""

CHECKER = """import json, os
procs = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if b"@MARK@" in open("/proc/" + pid + "/cmdline", "rb").read():
            procs.append(pid)
    except OSError:
        pass
print(json.dumps({"file": os.path.exists("/tmp/left-@MARK@"), "procs": procs}))
"""


@pytest.fixture
def disposable(queue, stack_dir):
    """The job queue on the LXC node alone, without a sandbox (the restart is the isolation)."""
    queue.JOBQUEUE_NODES = ["gpu03=127.0.0.1:2225"]
    queue.JOBQUEUE_SANDBOX = "none"
    queue.JOBQUEUE_NODES_DISPOSABLE = True
    queue.JOBQUEUE_LXC_RESTART = True
    queue.JOBQUEUE_LXC_PREFIX = "jqlxc-"
    queue.JOBQUEUE_LXC_COMMAND = f"sudo -n {stack_dir}/bin/lxc-node-restart {{container}}"
    queue.JOBQUEUE_LXC_WAIT = 0  # the restart command returns once the node's sshd answers
    queue.JOBQUEUE_SCAN_LLM_URL = ""
    return {"rootfs": Path(stack_dir) / "lxc" / "rootfs", "mark": f"lxc-{uuid.uuid4().hex[:12]}"}


def test_a_disposable_node_restarts_between_jobs(client, disposable, alice):  # noqa: F811
    key = issue_token(alice)[1]
    mark = disposable["mark"]
    left = disposable["rootfs"] / "tmp" / f"left-{mark}"
    response = seed_submit(client, key, source=LEAVER.replace("@MARK@", mark), expected_time=60)
    assert response.status_code == 200, response.content
    first = response.json()["job_id"]

    job = follow(first, until=lambda job: job.status == JobStatus.RUNNING and bool(marked(mark)))
    assert job.node == "gpu03"
    wait_for(left.exists, 30, "the left-behind file in the container")  # without a restart it would stay
    assert marked(mark)

    job = follow(first)  # to the end, then release: the container restarts
    assert job.status == JobStatus.COMPLETED, job.error
    assert "left" in job.output
    assert marked(mark) == []
    assert not left.exists()

    response = seed_submit(client, key, source=CHECKER.replace("@MARK@", mark), expected_time=60)
    assert response.status_code == 200, response.content
    second = follow(response.json()["job_id"])
    assert second.status == JobStatus.COMPLETED, second.error
    assert second.node == "gpu03"
    assert json.loads(second.output.strip().splitlines()[-1]) == {"file": False, "procs": []}
    assert Job.objects.filter(node="gpu03", status=JobStatus.RUNNING).count() == 0
