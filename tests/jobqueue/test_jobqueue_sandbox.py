"""The ssh executor runs each job in a sandbox, or refuses it (issue 13); the stack runs the real escapes.

These tests stand a recording connection in for the node: tests/integration/test_jobqueue_isolation_stack.py
runs the escape attempts on the stack's node through bubblewrap.
"""

from __future__ import annotations

import pytest
from django.core import checks

from jobqueue.executors import ExecutorError, sandbox
from jobqueue.executors import ssh as ssh_executor
from jobqueue.models import Job

pytestmark = pytest.mark.django_db


class RecordingNode:
    """What the executor asks of the node; `answer` is what `ctl.sh start` prints."""

    def __init__(self, answer: str = "started") -> None:
        self.answer = answer
        self.commands: list[list[str]] = []
        self.files: dict[str, str] = {}

    def run(self, argv, *, timeout=None):
        self.commands.append(argv)
        return 0, (self.answer if argv[-1] == "start" else ""), ""

    def put(self, path, data, *, mode=0o644):
        self.files[path] = data


@pytest.fixture
def node(monkeypatch, settings):
    settings.JOBQUEUE_EXECUTOR = "ssh"
    settings.JOBQUEUE_REMOTE_DIR = "/srv/jobqueue"
    recording = RecordingNode()
    monkeypatch.setattr(ssh_executor, "connection", lambda name: recording)
    return recording


@pytest.fixture
def job(alice):
    return Job.objects.create(
        user=alice, competition_id="c", project_id="p", expected_time=10, filename="a.py", code="print(1)\n"
    )


def test_the_job_runs_in_bubblewrap_and_sees_only_its_work_directory(node, job, settings):
    settings.JOBQUEUE_SANDBOX_PATHS = ["/opt/venv", "/data/it's"]
    directory = ssh_executor.SSHExecutor().start(job, node="gpu-node-0")
    assert directory == f"/srv/jobqueue/{job.job_id}"
    assert node.commands[0] == ["mkdir", "-p", "-m", "700", directory, f"{directory}/work"]
    assert node.files[f"{directory}/work/code.py"] == "print(1)\n"  # the control files stay outside work/
    launch = node.files[f"{directory}/launch.sh"]
    for option in ("--unshare-all", "--die-with-parent", "--new-session", "--cap-drop ALL", "--tmpfs /tmp",
                   '--bind "$PWD/work" /job', "--clearenv", "--remount-ro /"):  # fmt: skip
        assert option in launch
    assert "/opt/venv '/data/it'\"'\"'s'" in launch  # extra read-only paths, quoted for the shell
    assert "--bind /home" not in launch and "/etc/shadow" not in launch
    assert "sh launch.sh run" in node.files[f"{directory}/run.sh"]
    assert "launch.sh probe" in node.files[f"{directory}/ctl.sh"]


def test_a_node_without_a_working_sandbox_refuses_the_job(node, job):
    node.answer = "no-sandbox bwrap: setting up uid map: Permission denied"
    with pytest.raises(ExecutorError, match=r"no working sandbox on gpu-node-0.*Permission denied"):
        ssh_executor.SSHExecutor().start(job, node="gpu-node-0")


def test_no_sandbox_only_on_disposable_nodes(node, job, settings):
    settings.JOBQUEUE_SANDBOX = "none"
    settings.JOBQUEUE_LXC_RESTART = True
    with pytest.raises(ExecutorError, match="refusing to run a job without a sandbox"):
        ssh_executor.SSHExecutor().start(job, node="gpu-node-0")
    assert node.commands == []  # nothing reached the node
    assert [m.id for m in checks.run_checks() if m.id.startswith("jobqueue")] == ["jobqueue.E001"]

    settings.JOBQUEUE_NODES_DISPOSABLE = True
    directory = ssh_executor.SSHExecutor().start(job, node="gpu-node-0")
    assert "bwrap" not in node.files[f"{directory}/launch.sh"]
    assert "exec python3 code.py" in node.files[f"{directory}/launch.sh"]
    assert [m.id for m in checks.run_checks() if m.id.startswith("jobqueue")] == []


def test_the_launcher_quotes_the_configured_commands(settings):
    settings.JOBQUEUE_SANDBOX_BWRAP = "/opt/bw rap"
    settings.JOBQUEUE_PYTHON = "/opt/venv/bin/python -X utf8"
    text = sandbox.launcher()
    assert "bwrap='/opt/bw rap'" in text
    assert "-- /opt/venv/bin/python -X utf8 code.py" in text
