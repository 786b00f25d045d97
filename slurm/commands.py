"""The one way the portal runs a Slurm client command (sacct, sacctmgr, squeue, sbatch, scancel).

An argv list, never a shell; a timeout; ``TZ=UTC`` and ``SLURM_TIME_FORMAT=standard`` in the
environment, so the zone-less times Slurm prints are ISO 8601 in UTC (domain 2.1); optionally
``runuser -u <user> --`` in front, for a worker running as root that submits as a service user.
Whatever goes wrong (the binary is missing, it timed out, it exited non-zero) raises
:class:`SlurmCommandError`, which carries the command, its exit code and its output. Callers
that read an exit code themselves (sacctmgr's "Nothing new added" is exit 1) pass ``check=False``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from userportal.errors import DataSourceError

logger = logging.getLogger(__name__)

#: Put into the environment of every command: Slurm prints times in the local zone, without one.
ENVIRONMENT = {"TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class SlurmCommandError(DataSourceError):
    """A Slurm command could not run, timed out, or (with ``check=True``) exited non-zero.

    ``returncode`` is None when the command did not run to its end: ``not_found`` (no such
    binary) or ``timed_out``; then ``stdout`` and ``stderr`` are empty.
    """

    source = "slurm"

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        returncode: int | None = None,
        stdout: str = "",
        stderr: str = "",
        not_found: bool = False,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.not_found = not_found
        self.timed_out = timed_out


def run_command(
    argv: Sequence[str], *, timeout: float, as_user: str | None = None, check: bool = True
) -> CommandResult:
    """Run ``argv`` (through ``runuser -u as_user --`` when given) and return its output.

    Raises :class:`SlurmCommandError` when the binary is missing, the command takes longer than
    ``timeout`` seconds (it is killed), or, with ``check``, it exits non-zero.
    """
    if isinstance(argv, str) or not argv or not all(isinstance(arg, str) for arg in argv):
        raise ValueError(f"a command is a non-empty list of strings, not {argv!r}")
    full = [*(["runuser", "-u", as_user, "--"] if as_user else []), *argv]
    name = os.path.basename(argv[0])
    started = time.monotonic()
    try:
        proc = subprocess.run(  # noqa: S603 - an argv list, never a shell
            full,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
            env={**os.environ, **ENVIRONMENT},
        )
    except FileNotFoundError as exc:
        logger.info("%s: not found", full[0])
        raise SlurmCommandError(f"{full[0]} not found", argv=full, not_found=True) from exc
    except subprocess.TimeoutExpired as exc:
        logger.info("%s: killed after %g s", name, timeout)
        raise SlurmCommandError(f"{name} took more than {timeout:g} s", argv=full, timed_out=True) from exc
    except OSError as exc:  # not executable, and the like
        logger.info("%s: cannot run: %s", full[0], exc)
        raise SlurmCommandError(f"cannot run {full[0]}: {exc}", argv=full) from exc
    result = CommandResult(tuple(full), proc.returncode, proc.stdout or "", proc.stderr or "")
    logger.debug("%s exited %s in %.2f s", name, proc.returncode, time.monotonic() - started)
    if check and proc.returncode != 0:
        logger.info("%s exited %s: %s", name, proc.returncode, result.stderr.strip()[:300])
        raise SlurmCommandError(
            f"{name} exited with {proc.returncode}: {result.stderr.strip()[:300]}",
            argv=full,
            returncode=proc.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        )
    return result
