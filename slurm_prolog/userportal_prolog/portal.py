"""One upload to the portal (TrailblazingTurtle's protocol), its outcome, and the time budget (SIGALRM)."""

import json
import signal
import ssl
import time
import urllib.error
import urllib.request

from config import PROG, VERSION, log

# The portal's answer to a script it already has (TrailblazingTurtle's protocol): a success.
DUPLICATE_TEXT = b"job script with this id job already exists"

OK, RETRY, REFUSED, DROP = "ok", "retry", "refused", "drop"


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


def post(cfg, url, data, timeout):
    """POST `data` as JSON to `url`: (HTTP status, the answer's first `limit` bytes), or (None, why not)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(data).encode("utf-8"),
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
            return response.getcode(), response.read(1 << 20)
        finally:
            response.close()
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read(2048)
        except Exception:
            return exc.code, b""
    except Exception as exc:  # refused, unreachable, DNS, TLS, socket timeout, reset...
        return None, "cannot reach %s: %s" % (url, getattr(exc, "reason", None) or exc)


def send(cfg, payload, timeout):
    """POST one script; return (OK | RETRY | REFUSED | DROP, description).

    OK: stored, or already stored. RETRY: the portal is down, slow or failing (queue it).
    REFUSED: the token or the address is wrong (queue it, log loudly: an operator must act).
    DROP: the portal rejected this upload itself (a 400 other than "already exists").
    """
    status, answer = post(cfg, cfg.url, payload, timeout)
    if status is None:
        return RETRY, answer
    return classify(cfg, cfg.url, status, answer)


def classify(cfg, url, status, answer):
    """The outcome of an answer (see send)."""
    text = answer.decode("utf-8", "replace").strip()[:300]
    if status in (200, 201):
        return OK, "stored (HTTP %d)" % status
    if status == 400 and DUPLICATE_TEXT in answer[:2048]:
        return OK, "already stored"
    if status in (401, 403):
        return REFUSED, "HTTP %d from %s: the token in [api] token of %s was refused: %s" % (
            status,
            url,
            cfg.path,
            text,
        )
    if 300 <= status < 400 or status == 404:
        return REFUSED, "HTTP %d from %s: check [api] host (https://? the portal's address?)" % (status, url)
    if status in (408, 429) or status >= 500:
        return RETRY, "HTTP %d from %s: %s" % (status, url, text)
    return DROP, "HTTP %d from %s, upload rejected: %s" % (status, url, text)


def guarded_send(cfg, payload, timeout):
    """send() with a SIGALRM guard too: a socket timeout does not bound DNS or a trickling answer."""
    arm(timeout + 0.5)
    try:
        return send(cfg, payload, timeout)
    except Timeout:
        return RETRY, "no answer from %s within %.1f s" % (cfg.url, timeout)
    finally:
        disarm()


def report(job_id, outcome, detail):
    if outcome == OK:
        log.info("job %s: %s", job_id, detail)
    elif outcome == RETRY:
        log.warning("job %s: %s; queued for a later try", job_id, detail)
    elif outcome == REFUSED:
        log.error("job %s: %s; queued until this is fixed", job_id, detail)
    else:
        log.error("job %s: %s; not retried", job_id, detail)
