"""The slurm executor: the job goes to the site's scheduler with sbatch, asking for a GPU.

Files live in JOBQUEUE_DIR/jobs/<job_id>/ (a filesystem the compute nodes share): code.py and
run.sh, which records the exit code like the ssh executor's. squeue follows the job, sacct says
how it ended once squeue forgets it, scancel cancels it. Commands are argv lists with timeouts,
run as JOBQUEUE_SLURM_USER (through runuser) when the worker is root.
"""

from __future__ import annotations

import logging
import math
import os
import pwd
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from jobqueue.executors import Executor, ExecutorError, ExecutorUnavailable, Output, Poll, run_script, time_limit
from slurm.commands import CommandResult, SlurmCommandError, run_command

if TYPE_CHECKING:
    from jobqueue.models import Job

logger = logging.getLogger(__name__)

SLURM_ID = re.compile(r"^[0-9]+$")
PENDING_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"}


def slurm_command(argv: list[str]) -> CommandResult:
    """Run a Slurm client command (as JOBQUEUE_SLURM_USER when set and running as root)."""
    user = settings.JOBQUEUE_SLURM_USER
    try:
        return run_command(
            argv,
            timeout=settings.JOBQUEUE_SLURM_TIMEOUT,
            as_user=user if user and os.geteuid() == 0 else None,
            check=False,
        )
    except SlurmCommandError as exc:
        raise ExecutorUnavailable(f"{argv[0]} failed: {exc}") from exc


def job_dir(job: Job) -> Path:
    return Path(settings.JOBQUEUE_DIR) / "jobs" / job.job_id


def _tail(path: Path, max_bytes: int) -> str:
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            handle.seek(max(0, size - max_bytes))
            return handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


class SlurmExecutor(Executor):
    name = "slurm"
    uses_nodes = False

    def _job_name(self, job: Job) -> str:
        return f"jobqueue-{job.job_id}"

    def _prepare(self, job: Job) -> Path:
        directory = job_dir(job)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory.parent, 0o711)  # noqa: S103 (traversable by the Slurm user, not listable)
        (directory / "code.py").write_text(job.code, encoding="utf-8")
        (directory / "run.sh").write_text(run_script(job, chdir=False), encoding="utf-8")
        user = settings.JOBQUEUE_SLURM_USER
        if user and os.geteuid() == 0:
            entry = pwd.getpwnam(user)
            for path in (directory, directory / "code.py", directory / "run.sh"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        directory.chmod(0o700)
        return directory

    def _existing(self, job: Job) -> str | None:
        """The Slurm job of an earlier start (a worker died after sbatch), if any."""
        result = slurm_command(["squeue", "--noheader", "--name", self._job_name(job), "--format=%i"])
        ids = [line.strip() for line in result.stdout.splitlines() if SLURM_ID.match(line.strip())]
        return ids[0] if result.returncode == 0 and ids else None

    def start(self, job: Job, *, node: str) -> str:
        existing = self._existing(job)
        if existing:
            return existing
        directory = self._prepare(job)
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={self._job_name(job)}",
            f"--chdir={directory}",
            f"--output={directory / 'slurm.out'}",
            f"--time={max(1, math.ceil(time_limit(job) / 60))}",
        ]
        if settings.JOBQUEUE_SLURM_PARTITION:
            argv.append(f"--partition={settings.JOBQUEUE_SLURM_PARTITION}")
        if settings.JOBQUEUE_SLURM_GRES:
            argv.append(f"--gres={settings.JOBQUEUE_SLURM_GRES}")
        if settings.JOBQUEUE_SLURM_ACCOUNT:
            argv.append(f"--account={settings.JOBQUEUE_SLURM_ACCOUNT}")
        argv.append(str(directory / "run.sh"))
        result = slurm_command(argv)
        if result.returncode != 0:
            raise ExecutorError(f"sbatch refused the job: {result.stderr.strip()}")
        slurm_id = result.stdout.strip().split(";")[0]
        if not SLURM_ID.match(slurm_id):
            raise ExecutorError(f"sbatch answered {result.stdout!r}")
        return slurm_id

    def poll(self, job: Job) -> Poll:
        directory = job_dir(job)
        exit_file = directory / "exit_code"
        if exit_file.exists():
            return Poll("done", exit_code=int(exit_file.read_text().strip() or 0))
        result = slurm_command(["squeue", "--noheader", "--jobs", job.remote_id, "--format=%T"])
        state = result.stdout.strip().split("\n")[0].strip() if result.returncode == 0 else ""
        if state in PENDING_STATES:
            return Poll("pending")
        if state in RUNNING_STATES:
            return Poll("running")
        # squeue forgot the job (or refuses an unknown id): ask the accounting database how it ended.
        acct = slurm_command(
            ["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", job.remote_id, "--format=State,ExitCode"]
        )
        if acct.returncode != 0:
            raise ExecutorUnavailable(f"sacct failed: {acct.stderr.strip()}")
        line = acct.stdout.strip().split("\n")[0]
        if not line:
            if result.returncode != 0 and "Invalid job id" not in result.stderr:
                raise ExecutorUnavailable(f"squeue failed: {result.stderr.strip()}")
            return Poll("pending")  # not in the accounting database yet
        state_text, _bar, exit_text = line.partition("|")
        state = state_text.split(" ")[0]
        if state in PENDING_STATES:
            return Poll("pending")
        if state in RUNNING_STATES:
            return Poll("running")
        if exit_file.exists():
            return Poll("done", exit_code=int(exit_file.read_text().strip() or 0))
        code = int(exit_text.split(":")[0]) if exit_text.split(":")[0].isdigit() else None
        return Poll("done", exit_code=code if state == "COMPLETED" else (code or 1), reason=f"Slurm state {state}")

    def collect(self, job: Job) -> Output:
        directory = job_dir(job)
        limit = settings.JOBQUEUE_MAX_OUTPUT_BYTES
        stderr = _tail(directory / "stderr.txt", limit) + _tail(directory / "slurm.out", limit)
        return Output(stdout=_tail(directory / "stdout.txt", limit), stderr=stderr[-limit:])

    def cancel(self, job: Job) -> None:
        if job.remote_id and SLURM_ID.match(job.remote_id):
            result = slurm_command(["scancel", job.remote_id])
            if result.returncode != 0 and "Invalid job id" not in result.stderr:
                raise ExecutorUnavailable(f"scancel failed: {result.stderr.strip()}")

    def release(self, job: Job) -> None:
        shutil.rmtree(job_dir(job), ignore_errors=True)
