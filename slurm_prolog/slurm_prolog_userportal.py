#!/usr/bin/python3
"""Upload Slurm job scripts to the HPC user portal (POST /api/jobscripts/).

Standard library only, Python 3.6 or newer: it runs on the slurmctld host (or a compute node)
with the system interpreter. Three ways to run it (see README.md beside this file):

  slurm_prolog_userportal.py            as PrologSlurmctld (or a node Prolog): upload $SLURM_JOB_ID
  slurm_prolog_userportal.py --daemon   watch slurmctld's StateSaveLocation and upload new scripts
  slurm_prolog_userportal.py --flush    retry the uploads queued on disk

A prolog that exits non-zero drains the node or requeues the job, and slurmctld waits for
PrologSlurmctld before it starts the job. So in prolog mode this program always exits 0 and
gives up after [api] timeout seconds in total (2 by default); an upload that fails or runs out
of time is queued on local disk and sent by a later run, the daemon, or --flush.
"""

import argparse
import configparser
import errno
import fcntl
import json
import logging
import logging.handlers
import os
import signal
import socket
import ssl
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.request

VERSION = "1.0"
PROG = "slurm_prolog_userportal"
DEFAULT_CONFIG = "/etc/slurm/userportal-prolog.ini"
DEFAULTS = {
    "api": {"host": "", "token": "", "script_length": "100000", "timeout": "2", "ca_file": ""},
    "slurm": {"spool": "/var/spool/slurmctld", "slurmd_spool": "/var/spool/slurmd", "cluster": ""},
    "queue": {
        "dir": "/var/spool/userportal-prolog",
        "max_files": "10000",
        "max_age_days": "7",
        "backoff": "30",
    },
    "daemon": {"interval": "2", "retry_interval": "60", "state_file": ""},
}
# The portal's answer to a script it already has (TrailblazingTurtle's protocol): a success.
DUPLICATE_TEXT = b"job script with this id job already exists"
# slurmctld writes a job's script when the job is submitted: the daemon leaves files younger
# than this for its next pass, so it never reads one half-written.
SETTLE_SECONDS = 1.0

OK, RETRY, REFUSED, DROP = "ok", "retry", "refused", "drop"

log = logging.getLogger(PROG)


class Timeout(BaseException):
    """The time budget ran out (SIGALRM). A BaseException, so no `except Exception` swallows it."""


def _on_alarm(signum, frame):
    raise Timeout()


def arm(seconds):
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))


def disarm():
    signal.setitimer(signal.ITIMER_REAL, 0)


class Deadline(object):
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def remaining(self):
        return max(0.0, self.end - time.monotonic())


# --- configuration ------------------------------------------------------------------------------
class Config(object):
    """The ini file ([api], [slurm], [queue], [daemon]); TrailblazingTurtle's ini is a valid subset."""

    def __init__(self, path):
        parser = configparser.RawConfigParser()  # no interpolation: a token may contain "%"
        parser.read_dict(DEFAULTS)
        self.path = path
        self.found = bool(parser.read(path))
        api, slurm, queue, daemon = parser["api"], parser["slurm"], parser["queue"], parser["daemon"]
        self.host = api.get("host").strip().rstrip("/")
        self.token = api.get("token").strip()
        self.script_length = api.getint("script_length")
        self.timeout = api.getfloat("timeout")
        self.ca_file = api.get("ca_file").strip()
        self.spool = slurm.get("spool").strip()
        self.slurmd_spool = slurm.get("slurmd_spool").strip()
        self.cluster = slurm.get("cluster").strip()
        self.queue_dir = queue.get("dir").strip()
        self.max_files = queue.getint("max_files")
        self.max_age = queue.getfloat("max_age_days") * 86400
        self.backoff = queue.getfloat("backoff")
        self.interval = daemon.getfloat("interval")
        self.retry_interval = daemon.getfloat("retry_interval")
        self.state_file = daemon.get("state_file").strip() or os.path.join(self.queue_dir, "daemon-state.json")

    def problems(self):
        found = []
        if not self.found:
            found.append("cannot read the configuration file %s" % self.path)
        elif self.token and world_readable(self.path):
            found.append(
                "the file holds the API token and every user can read it: refusing to use it; "
                "run chown root:slurm and chmod 640 on it, then revoke the token and issue a new one "
                "(manage.py drf_create_token <account> -r)"
            )
        if not self.host.startswith(("http://", "https://")):
            found.append("[api] host must be an http:// or https:// URL, e.g. https://portal.example.org")
        if not self.token:
            found.append("[api] token is empty (manage.py create_service_account prints one)")
        if self.script_length < 1 or self.timeout <= 0 or self.max_files < 1:
            found.append("[api] script_length and timeout, and [queue] max_files, must be positive")
        return found

    @property
    def url(self):
        return self.host + "/api/jobscripts/"


def world_readable(path):
    """True when "other" may read the file (its token would be every user's)."""
    try:
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False


def setup_logging(verbose, to_stderr):
    """Syslog (/dev/log) when it exists, else standard error."""
    handler = None
    if not to_stderr and os.path.exists("/dev/log"):
        try:
            handler = logging.handlers.SysLogHandler(
                address="/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON
            )
            handler.setFormatter(logging.Formatter(PROG + "[%(process)d]: %(levelname)s %(message)s"))
        except OSError:
            handler = None
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s " + PROG + "[%(process)d]: %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


# --- reading scripts ----------------------------------------------------------------------------
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


def _env_int(name):
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 0


def find_script(cfg, job_id):
    """(id to upload under, script text, script mtime) for a prolog run, or None.

    slurmctld spools one script per array (under the master's id) and per het job (the
    leader's), so those ids are tried after the job's own; the portal shows the master's script
    for every task. A node Prolog reads slurmd's copy, under the job's own id.
    """
    context = os.environ.get("SLURM_SCRIPT_CONTEXT", "")
    candidates = []
    if context != "prolog_slurmd":
        for candidate in (job_id, _env_int("SLURM_ARRAY_JOB_ID"), _env_int("SLURM_HET_JOB_ID")):
            if candidate and all(candidate != known for known, _path in candidates):
                candidates.append((candidate, ctld_script_path(cfg.spool, candidate)))
    if context != "prolog_slurmctld":
        candidates.append((job_id, slurmd_script_path(cfg.slurmd_spool, job_id)))
    for upload_id, path in candidates:
        text = read_script(path, cfg.script_length)
        if text is not None:
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                mtime = time.time()
            log.debug("job %d: read %s", job_id, path)
            return upload_id, text, mtime
    return None


def payload_for(cfg, job_id, text):
    payload = {"id_job": job_id, "submit_script": text}
    if cfg.cluster:
        payload["cluster"] = cfg.cluster
    return payload


# --- talking to the portal ----------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect of a POST as a GET, without the script: report it instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _opener(cfg):
    handlers = [urllib.request.ProxyHandler({}), _NoRedirect()]  # never through a proxy from the environment
    if cfg.host.startswith("https://"):
        context = ssl.create_default_context(cafile=cfg.ca_file or None)
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def send(cfg, payload, timeout):
    """POST one script; return (OK | RETRY | REFUSED | DROP, description).

    OK: stored, or already stored. RETRY: the portal is down, slow or failing (queue it).
    REFUSED: the token or the address is wrong (queue it, log loudly: an operator must act).
    DROP: the portal rejected this upload itself (a 400 other than "already exists").
    """
    body = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(
        cfg.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": "Token " + cfg.token,
            "User-Agent": "%s/%s" % (PROG, VERSION),
        },
    )
    try:
        response = _opener(cfg).open(request, timeout=max(timeout, 0.05))
        try:
            status, answer = response.getcode(), response.read(2048)
        finally:
            response.close()
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            answer = exc.read(2048)
        except Exception:
            answer = b""
    except Exception as exc:  # refused, unreachable, DNS, TLS, socket timeout, reset...
        reason = getattr(exc, "reason", None) or exc
        return RETRY, "cannot reach %s: %s" % (cfg.url, reason)
    text = answer.decode("utf-8", "replace").strip()[:300]
    if status in (200, 201):
        return OK, "stored (HTTP %d)" % status
    if status == 400 and DUPLICATE_TEXT in answer:
        return OK, "already stored"
    if status in (401, 403):
        return REFUSED, "HTTP %d from %s: the token in [api] token of %s was refused: %s" % (
            status,
            cfg.url,
            cfg.path,
            text,
        )
    if 300 <= status < 400 or status == 404:
        return REFUSED, "HTTP %d from %s: check [api] host (https://? the portal's address?)" % (status, cfg.url)
    if status in (408, 429) or status >= 500:
        return RETRY, "HTTP %d from %s: %s" % (status, cfg.url, text)
    return DROP, "HTTP %d from %s, upload rejected: %s" % (status, cfg.url, text)


# --- the queue on disk --------------------------------------------------------------------------
def _ensure_dir(path):
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
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


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
    if not _ensure_dir(cfg.queue_dir):
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
        elif _ensure_dir(cfg.queue_dir):
            with open(marker, "w") as handle:
                handle.write("%d\n" % time.time())
    except OSError:
        pass


def report(job_id, outcome, detail):
    if outcome == OK:
        log.info("job %s: %s", job_id, detail)
    elif outcome == RETRY:
        log.warning("job %s: %s; queued for a later try", job_id, detail)
    elif outcome == REFUSED:
        log.error("job %s: %s; queued until this is fixed", job_id, detail)
    else:
        log.error("job %s: %s; not retried", job_id, detail)


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
            try:
                with open(path, encoding="utf-8") as handle:
                    entry = json.load(handle)
                payload = entry["payload"]
                queued_at = float(entry.get("queued_at") or 0)
                int(payload["id_job"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("dropping unreadable queue file %s: %s", path, exc)
                _unlink(path)
                continue
            if time.time() - queued_at > cfg.max_age:
                log.error(
                    "job %s: queued since %s, older than [queue] max_age_days: dropped",
                    payload["id_job"],
                    time.ctime(queued_at),
                )
                _unlink(path)
                continue
            timeout = deadline.remaining() if deadline is not None else cfg.timeout
            outcome, detail = guarded_send(cfg, payload, timeout) if guard_each else send(cfg, payload, timeout)
            if outcome in (OK, DROP):
                report(payload["id_job"], outcome, detail + " (from the queue)")
                _unlink(path)
                note_portal(cfg, up=True)
                continue
            report(payload["id_job"], outcome, detail)
            enqueue(cfg, payload, detail, queued_at=queued_at)  # keeps its age, records the error
            note_portal(cfg, up=False)
            break
        return len(queued_files(cfg))
    finally:
        lock.close()


def guarded_send(cfg, payload, timeout):
    """send() with a SIGALRM guard too: a socket timeout does not bound DNS or a trickling answer."""
    arm(timeout + 0.5)
    try:
        return send(cfg, payload, timeout)
    except Timeout:
        return RETRY, "no answer from %s within %.1f s" % (cfg.url, timeout)
    finally:
        disarm()


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


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


# --- prolog mode --------------------------------------------------------------------------------
def _marker(cfg, upload_id):
    return os.path.join(cfg.queue_dir, "sent", "%s.%d" % (cfg.cluster or "default", upload_id))


def already_sent(cfg, upload_id, mtime):
    """Whether this array's script was sent by an earlier task's prolog (its marker is newer than the script)."""
    try:
        return os.stat(_marker(cfg, upload_id)).st_mtime >= mtime
    except OSError:
        return False


def mark_sent(cfg, upload_id):
    if _ensure_dir(os.path.join(cfg.queue_dir, "sent")):
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
        upload_id, text, mtime = found
        is_array = upload_id != job_id or bool(_env_int("SLURM_ARRAY_JOB_ID"))
        if is_array and already_sent(cfg, upload_id, mtime):
            log.debug("job %d: the script of array %d was already sent", job_id, upload_id)
            return
        payload = payload_for(cfg, upload_id, text)
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


# --- daemon mode --------------------------------------------------------------------------------
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
        if _ensure_dir(os.path.dirname(path) or "."):
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
        payload = payload_for(cfg, job_id, text)
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
                flush(cfg, guard_each=True)
        except Exception:
            log.exception("daemon pass failed")
        wake = time.monotonic() + interval
        while not stopping and time.monotonic() < wake:
            time.sleep(min(0.2, max(wake - time.monotonic(), 0.01)))
    save_state(cfg.state_file, sent)
    log.info("stopped")


# --- entry point --------------------------------------------------------------------------------
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
        left = flush(cfg, guard_each=True)
        if left:
            log.warning("%d uploads still queued in %s", left, cfg.queue_dir)
        return 1 if left else 0
    job_id = args.job_id if args.job_id is not None else _env_int("SLURM_JOB_ID")
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
