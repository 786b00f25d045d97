"""Upload Slurm job scripts to the HPC user portal (POST /api/jobscripts/).

Standard library only, Python 3.6 or newer. Built into one file for the slurmctld host (or the
compute nodes) with `python3 -m zipapp` (slurm_prolog/README.md says how); three ways to run it:

  slurm_prolog_userportal.pyz            as PrologSlurmctld (or a node Prolog): upload $SLURM_JOB_ID
  slurm_prolog_userportal.pyz --daemon   watch slurmctld's StateSaveLocation and upload new scripts
  slurm_prolog_userportal.pyz --flush    retry the uploads queued on disk

A prolog that exits non-zero drains the node or requeues the job, and slurmctld waits for
PrologSlurmctld before it starts the job. So in prolog mode this program always exits 0 and
gives up after [api] timeout seconds in total (2 by default); an upload that fails or runs out
of time is queued on local disk and sent by a later run, the daemon, or --flush.
"""

import argparse
import os
import sys

from batch import send_batches
from config import DEFAULT_CONFIG, PROG, Config, log, setup_logging
from daemon import daemon
from jobscripts import env_int
from outbox import flush
from portal import disarm
from prolog import prolog


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROG, description="Upload Slurm job scripts to the HPC user portal.")
    parser.add_argument(
        "--config",
        default=os.environ.get("USERPORTAL_PROLOG_CONFIG", DEFAULT_CONFIG),
        help="the ini file (default %(default)s)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--daemon", action="store_true", help="watch [slurm] spool and upload new scripts")
    mode.add_argument("--flush", action="store_true", help="retry the queued uploads, then exit (1 if some are left)")
    parser.add_argument("--job-id", type=int, default=None, help="in prolog mode, this job instead of $SLURM_JOB_ID")
    parser.add_argument(
        "--interval", type=float, default=None, help="daemon: seconds between passes ([daemon] interval)"
    )
    parser.add_argument("--stderr", action="store_true", help="log to standard error instead of syslog")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    setup_logging(args.verbose, args.stderr)
    cfg = Config(args.config)
    problems = cfg.problems()
    if problems:
        for problem in problems:
            log.error("%s: %s", cfg.path, problem)
        return 2
    if args.daemon:
        daemon(cfg, args.interval if args.interval is not None else cfg.interval)
        return 0
    if args.flush:
        left = send_batches(cfg) if cfg.batch else flush(cfg, guard_each=True)
        if left:
            log.warning("%d uploads still queued in %s", left, cfg.queue_dir)
        return 1 if left else 0
    job_id = args.job_id if args.job_id is not None else env_int("SLURM_JOB_ID")
    if not job_id:
        log.error("no job id: SLURM_JOB_ID is not set (run as PrologSlurmctld, or pass --job-id)")
        return 0
    prolog(cfg, job_id)
    return 0


def run(argv):
    """main(), except that prolog mode exits 0 whatever happens: a failing prolog drains nodes."""
    prolog_mode = not any(arg in ("--daemon", "--flush", "-h", "--help") for arg in argv)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # Timeout, KeyboardInterrupt, a bug: never a non-zero prolog
        try:
            disarm()
            log.exception("unexpected error")
        except BaseException:  # noqa: S110  (even logging failed: still exit 0 below)
            pass
        code = 1
    if prolog_mode:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
