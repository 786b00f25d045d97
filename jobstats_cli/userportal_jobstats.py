#!/usr/bin/python3
"""jobstats: a job's efficiency, figures and advice from the user portal, in a login node's terminal.

One file, Python 3.6 or newer, standard library only (jobstats_cli/README.md). It asks the
portal's API (GET /api/jobstats/<jobid>/) with the user's own read-only token, kept in
~/.config/userportal/token (mode 0600: a file others can read is refused). The portal's address
comes from --url, else $USERPORTAL_URL, else the site's /etc/userportal/jobstats.ini.

Exit codes: 0 shown; 2 bad arguments (or a job id the portal refused); 3 configuration (no
portal address, no or unsafe token file, a plain http:// portal elsewhere, a redirect); 4 the
token was refused (401, 403); 5 no such job of yours (404); 6 the portal is unreachable, too
slow, failing (5xx) or answered something else than its JSON.
"""

import argparse
import configparser
import ipaddress
import json
import os
import re
import socket
import ssl
import stat
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request

PROG = "jobstats"
VERSION = "1"
SITE_CONFIG = "/etc/userportal/jobstats.ini"
TOKEN_FILE = os.path.join("~", ".config", "userportal", "token")
TOKEN_PAGE = "/secure/jobstats-command/"  # noqa: S105 (a page, not a secret)
MAX_TOKEN = 256
MAX_ANSWER = 4 * 1024 * 1024
JOB_ID = re.compile(r"^[0-9]{1,10}(_[0-9]{1,10})?$")

# C0 controls, DEL and C1 controls: ESC (a job named "\x1b]52;..." writes a staff member's clipboard), CSI
# (0x9b), BEL, backspace and carriage return (which hide what came before), and the data's own newlines.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
JSON_UNESCAPED = re.compile("[\x7f-\x9f]")  # what json.dumps leaves as it is (it escapes C0 itself)

EXIT_OK, EXIT_USAGE, EXIT_CONFIG, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_UNAVAILABLE = 0, 2, 3, 4, 5, 6


class Failure(Exception):
    """An error for the user: its message and the exit code."""

    def __init__(self, message, code):
        Exception.__init__(self, message)
        self.code = code


class Settings(object):
    def __init__(self, url, ca_file="", allow_plain_http=False, timeout=30.0, token_file=""):
        self.url = url.rstrip("/")
        self.ca_file = ca_file
        self.allow_plain_http = allow_plain_http
        self.timeout = timeout
        self.token_file = token_file


def site_config(path):
    """[portal] of the site's ini (url, ca_file, allow_plain_http, timeout); {} when there is none."""
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeError, configparser.Error) as exc:
        raise Failure("cannot read {}: {}".format(path, exc), EXIT_CONFIG) from None
    return dict(parser.items("portal")) if parser.has_section("portal") else {}


def settings_from(args, environ):
    config_path = environ.get("USERPORTAL_JOBSTATS_CONFIG") or SITE_CONFIG
    site = site_config(config_path)
    url = args.url or environ.get("USERPORTAL_URL") or site.get("url", "")
    if not url:
        raise Failure(
            "no portal address: give --url https://portal.example.org, set USERPORTAL_URL, "
            "or ask your site to write it in {}".format(SITE_CONFIG),
            EXIT_CONFIG,
        )
    try:
        timeout = float(site.get("timeout", "30"))
    except ValueError:
        raise Failure("{}: [portal] timeout is not a number".format(config_path), EXIT_CONFIG) from None
    token_file = args.token_file or environ.get("USERPORTAL_TOKEN_FILE") or TOKEN_FILE
    return Settings(
        url,
        ca_file=site.get("ca_file", ""),
        allow_plain_http=site.get("allow_plain_http", "no").strip().lower() in ("yes", "true", "1", "on"),
        timeout=timeout,
        token_file=os.path.expanduser(token_file),
    )


def check_url(settings):
    """The portal's address must be https://, or http:// to this machine (or a site that allows it)."""
    parts = urllib.parse.urlsplit(settings.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Failure("{!r} is not an http(s):// address of the portal".format(settings.url), EXIT_CONFIG)
    if parts.scheme == "http" and not settings.allow_plain_http and not _loopback(parts.hostname):
        raise Failure(
            "refusing to send your token in clear to {}: use https://, or your site sets "
            "allow_plain_http = yes in {}".format(settings.url, SITE_CONFIG),
            EXIT_CONFIG,
        )


def _loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path, portal_url):
    """The key in `path`, a file of the user's that nobody else may read."""
    create = "create one on {}{} and store it with the line that page shows".format(portal_url, TOKEN_PAGE)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise Failure("no token in {}: {}".format(path, create), EXIT_CONFIG) from None
    except OSError as exc:
        raise Failure("cannot read the token file {}: {}".format(path, exc.strerror or exc), EXIT_CONFIG) from None
    with os.fdopen(fd, "rb") as handle:  # checked on the open file: no race with a rename
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Failure("{} is not a regular file".format(path), EXIT_CONFIG)
        if info.st_uid != os.getuid():
            raise Failure("{} belongs to another user: refusing it".format(path), EXIT_CONFIG)
        if info.st_mode & 0o077:
            raise Failure(
                "{} can be read by others (mode {:o}): refusing it. Run chmod 600 {} and, since others "
                "may have read it, replace the token on {}{}".format(
                    path, stat.S_IMODE(info.st_mode), path, portal_url, TOKEN_PAGE
                ),
                EXIT_CONFIG,
            )
        raw = handle.read(MAX_TOKEN + 2)
    try:
        key = raw.decode("ascii").strip()
    except UnicodeError:
        key = ""
    if not key or len(key) > MAX_TOKEN or any(c.isspace() for c in key):
        raise Failure("{} does not hold a token: {}".format(path, create), EXIT_CONFIG)
    return key


def accept_language(environ):
    """The user's language (LC_ALL, LC_MESSAGES, LANG) as an Accept-Language header, or ""."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            code = value.split(".", 1)[0].split("@", 1)[0]
            if code in ("C", "POSIX") or not code.replace("_", "").isalpha():
                return ""
            language = code.split("_", 1)[0]
            full = code.replace("_", "-")
            return full if full == language else "{}, {};q=0.9".format(full, language)
    return ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the token to another address: report it instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def fetch(settings, key, job_id, user, environ):
    """The portal's JSON answer for `job_id`, or a Failure saying what went wrong."""
    query = "?" + urllib.parse.urlencode({"user": user}) if user else ""
    url = "{}/api/jobstats/{}/{}".format(settings.url, urllib.parse.quote(job_id), query)
    headers = {
        "Authorization": "Token " + key,
        "Accept": "application/json",
        "User-Agent": "{}/{} (userportal login-node command)".format(PROG, VERSION),
    }
    language = accept_language(environ)
    if language:
        headers["Accept-Language"] = language
    handlers = [urllib.request.ProxyHandler({}), _NoRedirect()]  # never through a proxy of the environment
    if settings.url.startswith("https://"):
        context = ssl.create_default_context(cafile=settings.ca_file or None)
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with opener.open(request, timeout=settings.timeout) as response:
            body = response.read(MAX_ANSWER + 1)
            status = response.status
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(MAX_ANSWER + 1)
        exc.close()
        raise _http_failure(status, body, exc.headers, settings, job_id) from None
    except (socket.timeout, TimeoutError):
        raise Failure(
            "the portal {} did not answer within {:g} s".format(settings.url, settings.timeout), EXIT_UNAVAILABLE
        ) from None
    except urllib.error.URLError as exc:
        raise Failure("cannot reach the portal {}: {}".format(settings.url, exc.reason), EXIT_UNAVAILABLE) from None
    except (OSError, ValueError) as exc:
        raise Failure("cannot reach the portal {}: {}".format(settings.url, exc), EXIT_UNAVAILABLE) from None
    answer = _json(body)
    if status != 200 or not isinstance(answer, dict) or "id_job" not in answer:
        raise Failure(
            "the portal's answer (HTTP {}) is not a job's figures: is {} the portal?".format(status, settings.url),
            EXIT_UNAVAILABLE,
        )
    return answer


def _json(body):
    if len(body) > MAX_ANSWER:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeError, ValueError):
        return None


def _detail(body):
    answer = _json(body)
    if isinstance(answer, dict):
        if "detail" in answer:
            return str(answer["detail"])
        return "; ".join(
            "{}: {}".format(k, " ".join(map(str, v)) if isinstance(v, list) else v) for k, v in answer.items()
        )
    return ""


def _http_failure(status, body, headers, settings, job_id):
    detail = _detail(body)
    suffix = " ({})".format(detail) if detail else ""
    if status in (301, 302, 303, 307, 308):
        location = headers.get("Location", "") if headers is not None else ""
        return Failure(
            "the portal redirects to {}: give that address with --url".format(location or "another address"),
            EXIT_CONFIG,
        )
    if status == 401:
        return Failure(
            "the portal refused your token{}: create a new one on {}{}".format(suffix, settings.url, TOKEN_PAGE),
            EXIT_AUTH,
        )
    if status == 403:
        return Failure("the portal refused this request{}".format(suffix), EXIT_AUTH)
    if status == 404:
        return Failure("no job {} of yours in the portal{}".format(job_id, suffix), EXIT_NOT_FOUND)
    if status == 400:
        return Failure("the portal refused the job id {}{}".format(job_id, suffix), EXIT_USAGE)
    return Failure(
        "the portal {} failed (HTTP {}){}; try again later".format(settings.url, status, suffix), EXIT_UNAVAILABLE
    )


# --- Text output ------------------------------------------------------------------------------
def _bar(percent, width=20):
    filled = max(0, min(width, round(min(percent, 100) * width / 100.0)))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _wrap(text, indent, width):
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


def _when(value):
    """An ISO-8601 time of the API as "2026-12-01 10:00 UTC" (the portal answers in UTC)."""
    if not value:
        return "-"
    utc = value.endswith("Z") or value.endswith("+00:00")
    return value.replace("T", " ")[:16] + (" UTC" if utc else "")


def clean(value):
    """The portal's answer as a terminal may show it: every control character of its strings becomes "?".

    Job names, program names, node lists, advice and the like come from users' jobs; the line
    breaks and the layout are the command's own, never the data's.
    """
    if isinstance(value, str):
        return CONTROL.sub("?", value)
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    return value


def json_text(answer):
    """--json: the answer as it came; C1 controls and DEL, which JSON does not escape, as \\u escapes."""
    text = json.dumps(answer, indent=2, ensure_ascii=False, sort_keys=True)
    return JSON_UNESCAPED.sub(lambda match: "\\u{:04x}".format(ord(match.group())), text)


def render_text(job, width=80):
    """The answer as the terminal shows it (every string of it through clean())."""
    width = max(width, 40)
    job = clean(job)
    lines = []
    title = "Job {} ({}) - {}".format(job["display_id"], job.get("name") or "-", job.get("state_label") or job["state"])
    lines.append(title)
    lines.append("=" * min(len(title), width))
    res = job.get("resources") or {}
    memory = "{} MB".format(res["memory_mb"]) if res.get("memory_mb") else "-"
    lines.append(
        "User {}, account {}, partition {}".format(
            job.get("user", "-"), job.get("account") or "-", job.get("partition") or "-"
        )
    )
    lines.append(
        "Submitted {}, started {}, ended {}".format(
            _when(job.get("submit")), _when(job.get("start")), _when(job.get("end"))
        )
    )
    lines.append(
        "Run time {} of {}; exit code {}".format(
            job.get("elapsed") or "-", job.get("timelimit") or "-", job.get("exit_code") or "-"
        )
    )
    lines.append("{} cores, {} memory, {} GPUs, {} nodes{}".format(
        res.get("cpus", 0), memory, res.get("gpus", 0), res.get("nodes", 0),
        " ({})".format(job["nodelist"]) if job.get("nodelist") else ""))  # fmt: skip
    pending = job.get("pending")
    if pending:
        lines.append("")
        lines.append(_wrap(pending.get("sentence", ""), "", width))
        if pending.get("reason"):
            lines.append("Reason: {}".format(pending["reason"]))
        if pending.get("start_estimate"):
            lines.append("Estimated start: {}".format(_when(pending["start_estimate"])))
    if job.get("metrics_notice"):
        lines.append("")
        lines.append(_wrap(job["metrics_notice"], "", width))
    efficiency = job.get("efficiency")
    if efficiency:
        lines.append("")
        lines.append(_wrap("Efficiency - figures {}{}".format(
            efficiency.get("source_label", ""), " (still running: so far)" if efficiency.get("running") else ""), "", width))  # fmt: skip
        for m in efficiency.get("measures", []):
            lines.append(
                "  {:<8} {} {:>4}%  {}".format(m["title"], _bar(m["percent"]), m["percent"], m["verdict_label"])
            )
            lines.append(_wrap("{} / {}".format(m["used"], m["requested"]), " " * 11, width))
            lines.append(_wrap(m["sentence"], " " * 11, width))
        for note in efficiency.get("notes", []):
            lines.append(_wrap("- " + note, "  ", width))
        lines.extend(_waste(efficiency, width))
    usage = job.get("usage")
    if usage and usage.get("programs"):
        programs = ", ".join("{} {:.2f}".format(p["name"], p["cores"]) for p in usage["programs"])
        lines.append(_wrap("Programs (average cores): " + programs, "  ", width))
    advice = job.get("advice") or []
    if advice:
        lines.append("")
        lines.append("Advice")
        for finding in advice:
            where = " (line {})".format(finding["line"]) if finding.get("line") else ""
            lines.append(_wrap("[{}] {}{}".format(finding["severity_label"], finding["message"], where), "  ", width))
            if finding.get("doc_url"):
                lines.append("      " + finding["doc_url"])
    lines.append("")
    lines.append("Page: {}".format(job.get("url", "")))
    return "\n".join(lines) + "\n"


def _waste(efficiency, width):
    waste = efficiency.get("waste") or {}
    parts = []
    if waste.get("gpu_hours"):
        parts.append("{:.1f} GPU-hours".format(waste["gpu_hours"]))
    elif waste.get("core_hours"):
        parts.append("{:.1f} core-hours".format(waste["core_hours"]))
    if waste.get("memory_gib_hours"):
        parts.append("{:.0f} GiB-hours of memory".format(waste["memory_gib_hours"]))
    if not parts:
        return []
    text = "Requested but unused: " + ", ".join(parts)
    if waste.get("cost") is not None:
        text += "; about {:.2f} {} of hardware time".format(waste["cost"], waste.get("currency", ""))
    return [_wrap(text + ".", "  ", width)]


# --- Command line -----------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Show a job's efficiency, figures and advice from the user portal.",
        epilog="Token: {} (mode 0600), created on the portal's {} page. Site settings: {}.".format(
            TOKEN_FILE, TOKEN_PAGE, SITE_CONFIG
        ),
    )
    parser.add_argument("jobid", help="a Slurm job id (1234) or an array task (1234_5)")
    parser.add_argument("--json", action="store_true", help="print the portal's JSON answer (for scripts)")
    parser.add_argument("--url", help="the portal's address (default: $USERPORTAL_URL, else the site's)")
    parser.add_argument(
        "--token-file", help="where the token is (default: $USERPORTAL_TOKEN_FILE, else {})".format(TOKEN_FILE)
    )
    parser.add_argument("--user", help="staff: whose job")
    parser.add_argument("--version", action="version", version="%(prog)s " + VERSION)
    args = parser.parse_args(argv)
    job_id = args.jobid.strip()
    if not JOB_ID.match(job_id):
        parser.error("{!r} is not a job id (1234) or an array task (1234_5)".format(args.jobid))
    args.jobid = job_id
    return args


def main(argv=None, environ=None, out=None, err=None):
    environ = os.environ if environ is None else environ
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_from(args, environ)
        check_url(settings)
        key = read_token(settings.token_file, settings.url)
        job = fetch(settings, key, args.jobid, args.user, environ)
    except Failure as failure:
        err.write("{}: {}\n".format(PROG, clean(str(failure))))  # it may quote the portal's answer
        return failure.code
    if args.json:
        write(out, json_text(job) + "\n")
    else:
        try:
            width = os.get_terminal_size(out.fileno()).columns
        except (AttributeError, ValueError, OSError):
            width = 80
        write(out, render_text(job, min(width, 100)))
    return EXIT_OK


def write(out, text):
    """Write `text`. Under an ASCII locale (LANG=C), UTF-8 as Python 3.7+ does (PEP 538), else "?" for what is missing."""
    encoding = (getattr(out, "encoding", None) or "ascii").lower()
    buffer = getattr(out, "buffer", None)
    if encoding in ("ascii", "ansi_x3.4-1968", "us-ascii") and buffer is not None:
        out.flush()
        buffer.write(text.encode("utf-8"))
        buffer.flush()
        return
    try:
        out.write(text)
    except UnicodeEncodeError:
        out.write(text.encode(encoding, "replace").decode(encoding))


if __name__ == "__main__":
    sys.exit(main())
