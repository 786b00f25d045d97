"""The job queue against the stack: real jobs on its GPU node over ssh (through the jump host) and in Slurm.

The API is called as the seed server's clients call it; the test drives the job's steps itself
(steps.advance, as the Celery task does) so the unit-test settings (eager Celery) still hold.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from jobqueue import services, steps
from jobqueue.executors import ssh as ssh_executor
from jobqueue.models import Job, JobStatus, JobToken
from jobqueue.tokens import issue_token

pytestmark = pytest.mark.django_db(databases=["default"], transaction=True)

CODE = """import json, platform, time
time.sleep(SLEEP)
print(json.dumps({"accuracy": 0.93, "host": platform.node()}))
"""


def code(sleep: float) -> str:
    return CODE.replace("SLEEP", str(sleep))


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice")


def seed_submit(
    client, key: str, *, sleep: float = 1, expected_time: int = 60, source: str | None = None, user_id: str = "alice"
):
    """Exactly what the seed README's client sends: files only, the token inside the config."""
    config = {
        "competition_id": "comp-001",
        "project_id": "proj-001",
        "user_id": user_id,
        "expected_time": expected_time,
        "token": key,
    }
    files = {
        "code": SimpleUploadedFile("solution.py", (source or code(sleep)).encode(), content_type="text/x-python"),
        "config_file": SimpleUploadedFile("config.json", json.dumps(config).encode(), content_type="application/json"),
    }
    return client.post("/jobqueue/api/submit", files)


def follow(job_id: str, *, timeout: float = 120, until=None) -> Job:
    """Run the job's steps (what the Celery task chain does) until it is final or `until(job)`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps.advance(job_id)
        job = Job.objects.get(job_id=job_id)
        if job.status not in (JobStatus.PENDING, JobStatus.RUNNING) or (until and until(job)):
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} still {Job.objects.get(job_id=job_id).status} after {timeout} s")


def test_ssh_job_runs_on_the_gpu_node_through_the_jump_host(client, queue, alice):
    key = issue_token(alice)[1]
    response = seed_submit(client, key)
    assert response.status_code == 200, response.content
    job = follow(response.json()["job_id"])
    assert job.status == JobStatus.COMPLETED, job.error
    assert job.node == "gpu01"
    results = client.get(f"/jobqueue/api/results/{job.job_id}", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert json.loads(results["output"])["accuracy"] == 0.93
    assert (queue.JOBQUEUE_DIR / "results" / results["results_file"]).exists()


def test_ssh_cancel_stops_the_job_on_the_node(client, queue, alice):
    key = issue_token(alice)[1]
    job_id = seed_submit(client, key, sleep=120).json()["job_id"]
    follow(job_id, until=lambda job: job.status == JobStatus.RUNNING)
    assert client.post(f"/jobqueue/api/cancel/{job_id}", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    job = follow(job_id, timeout=60)
    assert job.status == JobStatus.CANCELLED


def test_slurm_job_runs_and_cancels(client, queue, alice, slurm_cmd):
    queue.JOBQUEUE_EXECUTOR = "slurm"
    key = issue_token(alice)[1]
    job = follow(seed_submit(client, key).json()["job_id"], timeout=180)
    assert job.status == JobStatus.COMPLETED, (job.error, job.stderr)
    assert job.remote_id.isdigit()
    assert json.loads(job.output)["accuracy"] == 0.93
    state = slurm_cmd(["sacct", "-n", "-P", "-X", "-j", job.remote_id, "-o", "State"]).stdout.strip()
    assert state.startswith("COMPLETED")

    long_job = seed_submit(client, key, sleep=300).json()["job_id"]
    follow(long_job, timeout=120, until=lambda job: job.status == JobStatus.RUNNING)
    assert client.post(f"/jobqueue/api/cancel/{long_job}", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    cancelled = follow(long_job, timeout=120)
    assert cancelled.status == JobStatus.CANCELLED


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                children.append(int(entry.name))
                children += _descendants(int(entry.name))
    return children


class JumpHost:
    """A jump-host sshd of our own (the stack's config on another port), to stop and start mid-job."""

    def __init__(self, stack_dir: Path, tmp: Path) -> None:
        self.port = _free_port()
        conf = (stack_dir / "etc" / "ssh" / "sshd_2223.conf").read_text()
        conf = conf.replace("Port 2223", f"Port {self.port}").replace("sshd-2223.pid", f"sshd-it-{self.port}.pid")
        self.config = tmp / "sshd_jump.conf"
        self.config.write_text(conf)
        hostkey = (stack_dir / "etc" / "ssh" / "hostkey_2223.pub").read_text().split()[:2]
        self.known_hosts = tmp / "known_hosts"
        self.known_hosts.write_text(
            Path(os.environ["PORTAL_STACK_SSH_KNOWN_HOSTS"]).read_text()
            + f"[127.0.0.1]:{self.port} {' '.join(hostkey)}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["/usr/sbin/sshd", "-D", "-f", str(self.config), "-E", str(self.config) + ".log"]
        self.process = subprocess.Popen(argv)
        for _ in range(50):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("our jump sshd did not start")

    def stop(self) -> None:
        """Stop the listener and every session it holds (the jobs' connections drop)."""
        if self.process is None:
            return
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.process = None


def test_stopping_the_jump_sshd_mid_job_loses_nothing(client, queue, alice, stack_dir, tmp_path):
    jump = JumpHost(stack_dir, tmp_path)
    jump.start()
    try:
        queue.JOBQUEUE_SSH_JUMP = f"127.0.0.1:{jump.port}"
        queue.JOBQUEUE_SSH_KNOWN_HOSTS = str(jump.known_hosts)
        key = issue_token(alice)[1]
        job_id = seed_submit(client, key, sleep=8).json()["job_id"]
        follow(job_id, until=lambda job: job.status == JobStatus.RUNNING)
        jump.stop()
        # The node is unreachable: steps back off, the job stays running (it runs detached).
        assert steps.advance(job_id) is not None
        assert Job.objects.get(job_id=job_id).status == JobStatus.RUNNING
        time.sleep(3)
        jump.start()
        job = follow(job_id, timeout=90)
        assert job.status == JobStatus.COMPLETED, job.error
        assert json.loads(job.output)["accuracy"] == 0.93
    finally:
        jump.stop()


def test_a_worker_killed_mid_job_loses_nothing(client, queue, alice):
    """A worker dies holding the job's lease: the reconciler's step reattaches to the running job."""
    key = issue_token(alice)[1]
    job_id = seed_submit(client, key, sleep=4).json()["job_id"]
    job = follow(job_id, until=lambda job: job.status == JobStatus.RUNNING)
    ssh_executor.close_all()  # the dead worker's connections are gone with it
    # what a worker killed mid-step leaves: a lease nobody will release, no step enqueued
    Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() + timedelta(minutes=5))
    assert steps.advance(job_id) is None  # a duplicate delivery does nothing while the lease holds
    Job.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1), heartbeat=timezone.now() - timedelta(minutes=10)
    )
    assert services.reconcile() == [job_id]  # (eager) its first step ran: it reattached
    job = follow(job_id, timeout=60)
    assert job.status == JobStatus.COMPLETED, job.error
    starts = job.remote_id
    assert starts.endswith(job_id)


def test_limits_and_token_expiry_hold(client, queue, alice):
    key = issue_token(alice)[1]
    first = seed_submit(client, key, sleep=30)
    assert first.status_code == 200
    assert seed_submit(client, key).status_code == 409  # one active job
    JobToken.objects.filter(user=alice).update(expires=timezone.now() - timedelta(seconds=1))
    assert seed_submit(client, key).status_code == 401
    queue.JOBQUEUE_MAX_ACTIVE_JOBS = 100
    queue.JOBQUEUE_IP_RATES = {}
    new_key = issue_token(alice)[1]
    codes = [seed_submit(client, new_key, sleep=0).status_code for _ in range(5)]
    assert codes.count(429) >= 1  # five per minute, the first submission included
    for job in Job.objects.filter(user=alice, status__in=(JobStatus.PENDING, JobStatus.RUNNING)):
        services.cancel(job)
        follow(job.job_id, timeout=60)
