"""Batch mode ([api] batch = yes): scripts are spooled in the queue and sent many at a time.

An array job starts thousands of tasks at once; each task's prolog writes its script to the queue
([queue] dir, one JSON file per job, as failed uploads are kept) and then tries the queue's lock.
The run that gets it sends the queue in batches of [api] batch_size to POST /api/jobscripts/batch/
(one request, many scripts; the portal inserts them at once and ignores the ones it has), within
its time budget; the others return at once, their scripts sent by that run. After releasing the
lock the sender looks again, so a script queued meanwhile is not left behind.
"""

import fcntl
import json
import os
from typing import List, Tuple  # noqa: F401 (type comments: this file runs on Python 3.6)

from config import log
from outbox import flush, note_portal, queued_files, read_queued, unlink
from portal import DROP, OK, RETRY, Timeout, arm, classify, disarm, post

# A batch request's body is kept under this many bytes (the portal refuses more than 16 MiB).
MAX_BATCH_BYTES = 8 * 1024 * 1024


def _read(cfg, path):
    """(payload, its size in bytes) of a queue file, or None after dropping it (unreadable or too old)."""
    queued = read_queued(cfg, path)
    if queued is None:
        return None
    payload = queued[0]
    return payload, len(payload.get("submit_script") or "") * 2 + 200


def _next_batch(cfg, paths):
    """The next batch from the queue files `paths` (oldest first): [(path, payload)], at most batch_size."""
    batch = []  # type: List[Tuple[str, dict]]
    size = 0
    for path in paths:
        found = _read(cfg, path)
        if found is None:
            continue
        payload, weight = found
        if batch and size + weight > MAX_BATCH_BYTES:
            break
        batch.append((path, payload))
        size += weight
        if len(batch) >= cfg.batch_size:
            break
    return batch


def send_batch(cfg, batch, timeout):
    """POST one batch; (OK | RETRY | REFUSED | DROP, description). On OK the batch's files are removed."""
    status, answer = post(cfg, cfg.batch_url, {"scripts": [payload for _path, payload in batch]}, timeout)
    if status is None:
        return RETRY, answer
    outcome, detail = classify(cfg, cfg.batch_url, status, answer)
    if outcome != OK or status != 200:
        return outcome, detail
    try:
        result = json.loads(answer.decode("utf-8"))
        stored, duplicates, rejected = int(result["stored"]), int(result["duplicates"]), list(result["rejected"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return RETRY, "unexpected answer from %s: %s" % (cfg.batch_url, exc)
    for entry in rejected:
        log.error("job %s: upload rejected by the portal, not retried: %s", entry.get("id_job"), entry.get("errors"))
    for path, _payload in batch:
        unlink(path)
    ids = [payload["id_job"] for _path, payload in batch]
    log.info(
        "%d scripts sent in one batch (jobs %s to %s): %d stored, %d already stored, %d rejected",
        len(batch), ids[0], ids[-1], stored, duplicates, len(rejected),
    )  # fmt: skip
    return OK, "%d stored" % stored


def _send_all(cfg, deadline):
    """Send the queue in batches while this run holds the lock; (batches sent, whether to fall back)."""
    sent = 0
    while deadline is None or deadline.remaining() >= 0.1:
        batch = _next_batch(cfg, queued_files(cfg))
        if not batch:
            break
        if deadline is not None:  # prolog mode: its SIGALRM budget is armed already
            outcome, detail = send_batch(cfg, batch, deadline.remaining())
        else:  # --flush, --daemon: a guard per request (a socket time-out does not bound DNS)
            arm(cfg.timeout + 0.5)
            try:
                outcome, detail = send_batch(cfg, batch, cfg.timeout)
            except Timeout:
                outcome, detail = RETRY, "no answer from %s within %.1f s" % (cfg.batch_url, cfg.timeout)
            finally:
                disarm()
        if outcome == OK:
            sent += 1
            note_portal(cfg, up=True)
            continue
        if outcome == DROP:  # the batch itself was refused (an older portal?): one by one instead
            log.error("batch of %d scripts refused (%s); sending them one by one", len(batch), detail)
            return sent, True
        log.warning("%d queued scripts not sent: %s", len(queued_files(cfg)), detail)
        note_portal(cfg, up=False)
        break
    return sent, False


def send_batches(cfg, deadline=None):
    """Send the queue in batches if no other run is doing it; return how many uploads are left."""
    while True:
        try:
            lock = open(os.path.join(cfg.queue_dir, ".lock"), "a")
        except OSError as exc:
            log.error("cannot open the queue lock in %s: %s", cfg.queue_dir, exc)
            return len(queued_files(cfg))
        try:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return len(queued_files(cfg))  # another run is sending: it sends ours too
            sent, fall_back = _send_all(cfg, deadline)
        finally:
            lock.close()
        if fall_back:
            return flush(cfg, deadline, guard_each=deadline is None)
        left = len(queued_files(cfg))
        # Queued while this run held the lock (its owner found the lock taken): send it too.
        if not left or not sent or (deadline is not None and deadline.remaining() < 0.1):
            return left
