"""The queue on disk: uploads that failed wait in [queue] dir (one JSON file per job) for a later run."""

import fcntl
import json
import os
import tempfile
import time

from config import log
from portal import DROP, OK, guarded_send, report, send


def ensure_dir(path):
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        return True
    except OSError as exc:
        log.error("cannot create %s: %s", path, exc)
        return False


def write_json(path, data):
    """Write `data` to `path` atomically (a temporary file in the same directory, then rename)."""
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp.", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, path)
    except BaseException:
        unlink(temporary)
        raise


def unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _queue_file(cfg, job_id):
    return os.path.join(cfg.queue_dir, "job.%d.json" % job_id)


def queued_files(cfg):
    """The queued uploads, oldest first."""
    try:
        names = [name for name in os.listdir(cfg.queue_dir) if name.startswith("job.") and name.endswith(".json")]
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(cfg.queue_dir, name)
        try:
            found.append((os.stat(path).st_mtime, path))
        except OSError:
            continue
    return [path for _mtime, path in sorted(found)]


def enqueue(cfg, payload, error, queued_at=None):
    """Keep a failed upload for a later run; False when it could not be kept (the queue is full)."""
    if not ensure_dir(cfg.queue_dir):
        return False
    path = _queue_file(cfg, payload["id_job"])
    if not os.path.exists(path) and len(queued_files(cfg)) >= cfg.max_files:
        log.error(
            "queue %s is full ([queue] max_files=%d): job %s's script is lost",
            cfg.queue_dir,
            cfg.max_files,
            payload["id_job"],
        )
        return False
    entry = {"payload": payload, "queued_at": queued_at or time.time(), "last_error": error}
    try:
        write_json(path, entry)
    except OSError as exc:
        log.error("cannot queue job %s in %s: %s", payload["id_job"], cfg.queue_dir, exc)
        return False
    return True


def _down_marker(cfg):
    return os.path.join(cfg.queue_dir, "portal-down")


def portal_recently_down(cfg):
    """Whether an upload failed in the last [queue] backoff seconds (then prologs queue without trying)."""
    try:
        return time.time() - os.stat(_down_marker(cfg)).st_mtime < cfg.backoff
    except OSError:
        return False


def note_portal(cfg, up):
    marker = _down_marker(cfg)
    try:
        if up:
            os.unlink(marker)
        elif ensure_dir(cfg.queue_dir):
            with open(marker, "w") as handle:
                handle.write("%d\n" % time.time())
    except OSError:
        pass


def flush(cfg, deadline=None, guard_each=False):
    """Send the queued uploads, oldest first; return how many are left.

    Stops at the first failure that is not the upload's own (the portal is down or refuses
    the token: the rest would fail too). Entries older than [queue] max_age_days are dropped.
    Only one process flushes at a time (a lock file); the others return at once.
    """
    if not os.path.isdir(cfg.queue_dir):
        return 0
    try:
        lock = open(os.path.join(cfg.queue_dir, ".lock"), "a")
    except OSError as exc:
        log.error("cannot open the queue lock in %s: %s", cfg.queue_dir, exc)
        return len(queued_files(cfg))
    try:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return len(queued_files(cfg))  # another run is flushing
        _prune(cfg)
        for path in queued_files(cfg):
            if deadline is not None and deadline.remaining() < 0.1:
                break
            queued = read_queued(cfg, path)
            if queued is None:
                continue
            payload, queued_at = queued
            timeout = deadline.remaining() if deadline is not None else cfg.timeout
            outcome, detail = guarded_send(cfg, payload, timeout) if guard_each else send(cfg, payload, timeout)
            if outcome in (OK, DROP):
                report(payload["id_job"], outcome, detail + " (from the queue)")
                unlink(path)
                note_portal(cfg, up=True)
                continue
            report(payload["id_job"], outcome, detail)
            enqueue(cfg, payload, detail, queued_at=queued_at)  # keeps its age, records the error
            note_portal(cfg, up=False)
            break
        return len(queued_files(cfg))
    finally:
        lock.close()


def read_queued(cfg, path):
    """(payload, queued_at) of a queue file, or None after dropping it (unreadable, or older than max_age)."""
    try:
        with open(path, encoding="utf-8") as handle:
            entry = json.load(handle)
        payload = entry["payload"]
        queued_at = float(entry.get("queued_at") or 0)
        int(payload["id_job"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("dropping unreadable queue file %s: %s", path, exc)
        unlink(path)
        return None
    if time.time() - queued_at > cfg.max_age:
        log.error(
            "job %s: queued since %s, older than [queue] max_age_days: dropped",
            payload["id_job"],
            time.ctime(queued_at),
        )
        unlink(path)
        return None
    return payload, queued_at


def _prune(cfg):
    """Remove temporary files left by a run killed mid-write, and old array markers."""
    now = time.time()
    for directory, prefix, age in (
        (cfg.queue_dir, ".tmp.", 3600),
        (os.path.join(cfg.queue_dir, "sent"), "", 30 * 86400),
    ):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            try:
                if name.startswith(prefix) and now - os.stat(path).st_mtime > age:
                    os.unlink(path)
            except OSError:
                continue
