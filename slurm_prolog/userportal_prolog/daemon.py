"""Daemon mode: watch slurmctld's StateSaveLocation and upload the scripts that appear; retry the queue."""

import json
import os
import signal
import time

from batch import send_batches
from config import log
from jobscripts import payload_for, read_script
from outbox import enqueue, ensure_dir, flush, note_portal, write_json
from portal import OK, REFUSED, RETRY, guarded_send, report

# slurmctld writes a job's script when the job is submitted: the daemon leaves files younger
# than this for its next pass, so it never reads one half-written.
SETTLE_SECONDS = 1.0


def scan_spool(spool):
    """{job id: (script path, mtime)} of every job slurmctld holds."""
    found = {}
    for bucket in range(10):
        directory = os.path.join(spool, "hash.%d" % bucket)
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if not name.startswith("job.") or not name[4:].isdigit():
                continue
            path = os.path.join(directory, name, "script")
            try:
                found[int(name[4:])] = (path, os.stat(path).st_mtime)
            except OSError:
                continue
    return found


def load_state(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return {int(key): float(value) for key, value in data.get("sent", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def save_state(path, sent):
    try:
        if ensure_dir(os.path.dirname(path) or "."):
            write_json(path, {"sent": {str(key): value for key, value in sorted(sent.items())}})
    except OSError as exc:
        log.error("cannot save the daemon state %s: %s", path, exc)


def daemon_pass(cfg, sent):
    """Upload the scripts that appeared since the last pass; return whether `sent` changed."""
    current = scan_spool(cfg.spool)
    changed = False
    for job_id in [known for known in sent if known not in current]:
        del sent[job_id]  # slurmctld let the job go: forget it, the state file stays small
        changed = True
    portal_down = False
    now = time.time()
    for job_id in sorted(current):
        path, mtime = current[job_id]
        if sent.get(job_id) == mtime or now - mtime < SETTLE_SECONDS:
            continue
        text = read_script(path, cfg.script_length)
        if text is None:
            continue
        payload = payload_for(cfg, job_id, text, int(mtime))  # slurmctld's copy: written at submission
        if cfg.batch:  # spooled now, sent in batches after this pass
            enqueue(cfg, payload, "spooled for a batch")
            sent[job_id] = mtime
            changed = True
            continue
        if portal_down:  # do not wait for a timeout once per job
            outcome, detail = RETRY, "the portal is not answering"
        else:
            outcome, detail = guarded_send(cfg, payload, cfg.timeout)
            if outcome != OK:
                report(job_id, outcome, detail)
            else:
                log.info("job %d: %s", job_id, detail)
        if outcome in (RETRY, REFUSED):
            portal_down = True
            enqueue(cfg, payload, detail)
        sent[job_id] = mtime
        changed = True
    if portal_down:
        note_portal(cfg, up=False)
    if cfg.batch and changed:
        send_batches(cfg)
    return changed


def daemon(cfg, interval):
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sent = load_state(cfg.state_file)
    log.info(
        "watching %s every %.1f s (%d jobs already sent), uploading to %s", cfg.spool, interval, len(sent), cfg.url
    )
    if not os.path.isdir(cfg.spool):
        log.error("[slurm] spool %s is not a directory (slurm.conf StateSaveLocation)", cfg.spool)
    last_flush = 0.0
    while not stopping:
        try:
            if daemon_pass(cfg, sent):
                save_state(cfg.state_file, sent)
            if time.monotonic() - last_flush >= cfg.retry_interval:
                last_flush = time.monotonic()
                send_batches(cfg) if cfg.batch else flush(cfg, guard_each=True)
        except Exception:
            log.exception("daemon pass failed")
        wake = time.monotonic() + interval
        while not stopping and time.monotonic() < wake:
            time.sleep(min(0.2, max(wake - time.monotonic(), 0.01)))
    save_state(cfg.state_file, sent)
    log.info("stopped")
