"""Finding and reading a job's batch script where slurmctld (or slurmd) spooled it."""

import errno
import os
import socket
import time
from typing import List, Tuple  # noqa: F401 (type comments: this file runs on Python 3.6)

from config import log


def ctld_script_path(spool, job_id):
    """slurmctld keeps a job's script at <StateSaveLocation>/hash.<id % 10>/job.<id>/script."""
    return os.path.join(spool, "hash.%d" % (job_id % 10), "job.%d" % job_id, "script")


def slurmd_script_path(slurmd_spool, job_id):
    """slurmd's copy, <SlurmdSpoolDir>/job<id, zero-padded to 5 digits>/slurm_script (%n/%h expanded)."""
    host = socket.gethostname()
    spool = slurmd_spool.replace("%n", os.environ.get("SLURMD_NODENAME") or host.split(".")[0]).replace("%h", host)
    return os.path.join(spool, "job%05d" % job_id, "slurm_script")


def read_script(path, length):
    """The script at `path` as text (NULs removed, at most `length` characters); None if absent or empty."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(length * 4 + 4)  # enough bytes for `length` characters of UTF-8
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            log.warning("cannot read %s: %s", path, exc)
        return None
    text = raw.decode("utf-8", errors="replace").replace("\x00", "")[:length]
    return text or None


def env_int(name):
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 0


def find_script(cfg, job_id):
    """(id to upload under, script text, script mtime, submit time or None) for a prolog run, or None.

    slurmctld writes a job's script when the job is submitted, so the mtime of its copy is the
    submit time (the job table's time_submit, within a second); slurmd's copy is written at
    launch and says nothing of it.

    slurmctld spools one script per array (under the master's id) and per het job (the
    leader's), so those ids are tried after the job's own; the portal shows the master's script
    for every task. A node Prolog reads slurmd's copy, under the job's own id.
    """
    context = os.environ.get("SLURM_SCRIPT_CONTEXT", "")
    candidates = []  # type: List[Tuple[int, str, bool]]
    if context != "prolog_slurmd":
        for candidate in (job_id, env_int("SLURM_ARRAY_JOB_ID"), env_int("SLURM_HET_JOB_ID")):
            if candidate and all(candidate != known for known, _path, _ctld in candidates):
                candidates.append((candidate, ctld_script_path(cfg.spool, candidate), True))
    if context != "prolog_slurmctld":
        candidates.append((job_id, slurmd_script_path(cfg.slurmd_spool, job_id), False))
    for upload_id, path, from_ctld in candidates:
        text = read_script(path, cfg.script_length)
        if text is not None:
            try:
                mtime = os.stat(path).st_mtime
                submitted = int(mtime) if from_ctld and mtime > 0 else None
            except OSError:
                mtime, submitted = time.time(), None
            log.debug("job %d: read %s", job_id, path)
            return upload_id, text, mtime, submitted
    return None


def payload_for(cfg, job_id, text, time_submit=None):
    """The upload's JSON: TrailblazingTurtle's fields, and the submit time when it is known.

    The portal snaps time_submit to the job table's value; without it (TrailblazingTurtle's
    uploader) it guesses from the arrival time, which fails for an upload that waited in the
    queue longer than a week, or for a job slurmdbd does not know yet.
    """
    payload = {"id_job": job_id, "submit_script": text}
    if cfg.cluster:
        payload["cluster"] = cfg.cluster
    if time_submit:
        payload["time_submit"] = int(time_submit)
    return payload
