"""Integration tests against the real stack (scripts/stack up).

Run with the stack's environment: `set -a; . $PORTAL_STACK_DIR/portal.env; set +a;
pytest -m integration` (scripts/test does this). Locally a missing stack skips these tests
with the command to start it; with CI=true it fails them.

The `slurm` alias points at the stack's real slurmdbd database through the SELECT-only
account: no test database is created for it, and nothing is ever written there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from skipping import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)
    # Tests that add jobs to the accounting database run last: the others compare reads of the
    # stack's fixed batch (a list against its count, one source against another).
    items.sort(key=lambda item: item.get_closest_marker("adds_jobs") is not None)


def _stack_problem() -> str | None:
    stack_dir = os.environ.get("PORTAL_STACK_DIR")
    if not stack_dir:
        return "the stack's environment is not loaded: scripts/stack up, then `set -a; . $PORTAL_STACK_DIR/portal.env`"
    if not os.environ.get("SLURMDB_URL", "").startswith("mysql://"):
        return "SLURMDB_URL does not point at the stack's MariaDB"
    status = subprocess.run([str(ROOT / "scripts" / "stack"), "status"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        return "the stack is not fully up:\n" + status.stdout[-2000:]
    return None


def need_stack() -> None:
    problem = _stack_problem()
    if problem:
        skip_or_fail(f"stack test cannot run: {problem}")


@pytest.fixture(scope="session")
def stack_dir() -> Path:
    need_stack()
    return Path(os.environ["PORTAL_STACK_DIR"])


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker):
    """Create the test database for the portal's own alias only; `slurm` stays the live stack DB."""
    need_stack()
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        old_config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(old_config, verbosity=0)


@pytest.fixture(scope="session")
def slurm_cmd(stack_dir):
    """run(argv, user=None): a Slurm client command as an argv list (never a shell), in UTC."""
    return run


def run(argv: list[str], *, user: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a Slurm client command (argv list, never a shell), as `user` when given."""
    if user:
        argv = ["runuser", "-u", user, "--", "env", f"SLURM_CONF={os.environ['SLURM_CONF']}", *argv]
    env = {**os.environ, "TZ": "UTC"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True, env=env)


# --- the job queue's ssh executor against the stack's GPU node (test_jobqueue_stack, test_jobqueue_isolation_stack)
@pytest.fixture
def shared_dir():
    path = Path(f"/tmp/jobqueue-it-{uuid.uuid4().hex[:8]}")
    path.mkdir(mode=0o711)
    os.chmod(path, 0o711)  # noqa: S103 (the Slurm job's user must reach its directory)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def queue(settings, stack_dir, shared_dir, monkeypatch):
    """The ssh executor on the stack's node gpu01 through the jump host; a fresh job directory there."""
    from django.core.cache import caches

    from jobqueue.executors import ssh as ssh_executor

    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: func())
    keys = Path(os.environ["PORTAL_STACK_SSH_KEY_DIR"])
    settings.JOBQUEUE_EXECUTOR = "ssh"
    settings.JOBQUEUE_NODES = ["gpu01=127.0.0.1:2222"]
    settings.JOBQUEUE_SSH_JUMP = "127.0.0.1:2223"
    settings.JOBQUEUE_SSH_USER = "jobqueue"
    settings.JOBQUEUE_SSH_KEY = str(keys / "jobqueue_ed25519")
    settings.JOBQUEUE_SSH_KNOWN_HOSTS = os.environ["PORTAL_STACK_SSH_KNOWN_HOSTS"]
    settings.JOBQUEUE_SSH_RETRIES = 2
    settings.JOBQUEUE_REMOTE_DIR = f"/tmp/jobqueue-node-{uuid.uuid4().hex[:8]}"
    settings.JOBQUEUE_DIR = shared_dir
    settings.JOBQUEUE_POLL_SECONDS = 1
    settings.JOBQUEUE_SLURM_USER = "jobqueue"
    settings.JOBQUEUE_SLURM_ACCOUNT = "staff"
    settings.JOBQUEUE_SLURM_PARTITION = "gpu"
    settings.JOBQUEUE_SLURM_GRES = "gpu:1"
    caches["throttle"].clear()  # local memory in tests (userportal/settings_test.py)
    ssh_executor.close_all()
    yield settings
    ssh_executor.close_all()
    shutil.rmtree(settings.JOBQUEUE_REMOTE_DIR, ignore_errors=True)
