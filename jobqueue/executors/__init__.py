"""Executors run a queued job somewhere and report on it; steps.advance() drives them.

Every method is safe to call again after a crash (a worker killed between two calls): `start`
does nothing when the job already started, `poll` only reads, `cancel` of a finished job is a
no-op. The handle an executor returns from `start` (stored in Job.remote_id) is all another
worker needs to reattach.
"""

from __future__ import annotations

import functools
import math
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from django.conf import settings
from django.utils.module_loading import import_string

from userportal.errors import DataSourceError

if TYPE_CHECKING:
    from jobqueue.models import Job


class ExecutorUnavailable(DataSourceError):
    """The node, the jump host or Slurm did not answer (the job itself may be fine)."""

    source = "jobqueue-executor"


class ExecutorError(Exception):
    """The executor answered, but refused or broke the job (it will not get better by retrying)."""


@dataclass(frozen=True)
class Poll:
    state: Literal["pending", "running", "done", "lost"]
    exit_code: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Output:
    stdout: str
    stderr: str


class Executor:
    name = "base"
    uses_nodes = False  # True: the portal queues jobs per node (ssh); False: the scheduler does (slurm)

    def start(self, job: Job, *, node: str) -> str:
        raise NotImplementedError

    def poll(self, job: Job) -> Poll:
        raise NotImplementedError

    def collect(self, job: Job) -> Output:
        raise NotImplementedError

    def cancel(self, job: Job) -> None:
        raise NotImplementedError

    def release(self, job: Job) -> None:
        """After a job: remove its files, restart the node's container when configured."""


def time_limit(job: Job) -> int:
    """Seconds after which the job is stopped: expected_time x JOBQUEUE_TIME_LIMIT_FACTOR."""
    return math.ceil(job.expected_time * settings.JOBQUEUE_TIME_LIMIT_FACTOR)


def run_script(job: Job, *, chdir: bool = True, command: str | None = None) -> str:
    """The wrapper that runs the code detached, recording its pid and exit code in its directory.

    The job survives a dropped connection or a dead worker: it is its own session (setsid), and
    its exit code lands in a file any later poll can read. exit_code is written then renamed, so
    a poll never reads half of it. ``command`` (a shell word list) replaces ``python code.py``:
    the ssh executor's sandbox launcher.
    """
    command = command or f"{shlex.join(shlex.split(settings.JOBQUEUE_PYTHON))} code.py"
    return (
        "#!/bin/sh\n" + ('cd "$(dirname "$0")" || exit 1\n' if chdir else "") + "echo $$ > pid.tmp && mv pid.tmp pid\n"
        f"timeout --kill-after=30 {time_limit(job)} {command} > stdout.txt 2> stderr.txt < /dev/null &\n"
        "echo $! > child\n"
        "wait $!\n"
        "echo $? > exit_code.tmp && mv exit_code.tmp exit_code\n"
    )


# By dotted path, as JOBQUEUE_EXECUTOR may name any class: the executors import this module.
BUILT_IN = {"ssh": "jobqueue.executors.ssh.SSHExecutor", "slurm": "jobqueue.executors.slurm.SlurmExecutor"}


@functools.cache
def _executor_class(name: str) -> type[Executor]:
    cls: type[Executor] = import_string(BUILT_IN.get(name, name))
    return cls


def get_executor(name: str | None = None) -> Executor:
    """The executor named `name` (a job's), or the configured one; built on each call (cheap)."""
    return _executor_class(name or settings.JOBQUEUE_EXECUTOR)()
