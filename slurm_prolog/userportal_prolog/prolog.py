"""Prolog mode: upload one job's script within [api] timeout seconds, as PrologSlurmctld (or a node Prolog)."""

import os

from batch import send_batches
from config import log
from jobscripts import env_int, find_script, payload_for
from outbox import enqueue, ensure_dir, flush, note_portal, portal_recently_down
from portal import OK, REFUSED, RETRY, Deadline, Timeout, arm, disarm, report, send


def _marker(cfg, upload_id):
    return os.path.join(cfg.queue_dir, "sent", "%s.%d" % (cfg.cluster or "default", upload_id))


def already_sent(cfg, upload_id, mtime):
    """Whether this array's script was sent by an earlier task's prolog (its marker is newer than the script)."""
    try:
        return os.stat(_marker(cfg, upload_id)).st_mtime >= mtime
    except OSError:
        return False


def mark_sent(cfg, upload_id):
    if ensure_dir(os.path.join(cfg.queue_dir, "sent")):
        try:
            with open(_marker(cfg, upload_id), "w"):
                pass
            os.utime(_marker(cfg, upload_id), None)  # an existing marker: now newer than the script
        except OSError:
            pass


def prolog(cfg, job_id):
    """Upload one job's script within [api] timeout seconds; queue it on any failure."""
    deadline = Deadline(cfg.timeout)
    arm(cfg.timeout)
    payload = None
    settled = False
    try:
        found = find_script(cfg, job_id)
        if found is None:
            log.info(
                "job %d: no batch script in %s or %s (an salloc or srun job?)", job_id, cfg.spool, cfg.slurmd_spool
            )
            return
        upload_id, text, mtime, submitted = found
        is_array = upload_id != job_id or bool(env_int("SLURM_ARRAY_JOB_ID"))
        if is_array and already_sent(cfg, upload_id, mtime):
            log.debug("job %d: the script of array %d was already sent", job_id, upload_id)
            return
        payload = payload_for(cfg, upload_id, text, submitted)
        if cfg.batch and enqueue(cfg, payload, "spooled for a batch"):
            settled = True  # safe on disk: this run, another one or --flush sends it
            if is_array:
                mark_sent(cfg, upload_id)
            if not portal_recently_down(cfg):
                send_batches(cfg, deadline)
            return
        if portal_recently_down(cfg):
            settled = True
            disarm()
            if enqueue(cfg, payload, "the portal failed less than [queue] backoff seconds ago"):
                log.info("job %d: the portal failed recently; queued without trying", upload_id)
            return
        outcome, detail = send(cfg, payload, deadline.remaining())
        settled = True
        report(upload_id, outcome, detail)
        if outcome == OK:
            if is_array:
                mark_sent(cfg, upload_id)
            note_portal(cfg, up=True)
            if deadline.remaining() > 0.2:
                flush(cfg, deadline)
        elif outcome in (RETRY, REFUSED):
            disarm()
            enqueue(cfg, payload, detail)
            note_portal(cfg, up=False)
    except Timeout:
        disarm()
        if payload is not None and not settled:
            log.warning("job %d: no answer from %s within %.1f s; queued for a later try", job_id, cfg.url, cfg.timeout)
            enqueue(cfg, payload, "timed out")
            note_portal(cfg, up=False)
        else:
            log.warning("job %d: the %.1f s budget ran out", job_id, cfg.timeout)
    finally:
        disarm()
