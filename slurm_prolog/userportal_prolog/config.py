"""The ini file ([api], [slurm], [queue], [daemon]) and the log; TrailblazingTurtle's ini is a valid subset."""

import configparser
import ipaddress
import logging
import logging.handlers
import os
import stat
import sys
from typing import Optional  # noqa: F401 (type comments: this file runs on Python 3.6)
from urllib.parse import urlsplit

VERSION = "1.0"
PROG = "slurm_prolog_userportal"
DEFAULT_CONFIG = "/etc/slurm/userportal-prolog.ini"
DEFAULTS = {
    "api": {
        "host": "",
        "token": "",
        "script_length": "100000",
        "timeout": "2",
        "ca_file": "",
        "allow_plain_http": "no",
        "batch": "no",
        "batch_size": "500",
    },
    "slurm": {"spool": "/var/spool/slurmctld", "slurmd_spool": "/var/spool/slurmd", "cluster": ""},
    "queue": {
        "dir": "/var/spool/userportal-prolog",
        "max_files": "10000",
        "max_age_days": "7",
        "backoff": "30",
    },
    "daemon": {"interval": "2", "retry_interval": "60", "state_file": ""},
}

log = logging.getLogger(PROG)


class Config(object):
    """Every setting of the ini file, read once (see userportal-prolog.ini.example)."""

    def __init__(self, path):
        parser = configparser.RawConfigParser()  # no interpolation: a token may contain "%"
        parser.read_dict(DEFAULTS)
        self.path = path
        self.found = bool(parser.read(path))
        api, slurm, queue, daemon = parser["api"], parser["slurm"], parser["queue"], parser["daemon"]
        self.host = api["host"].strip().rstrip("/")
        self.token = api["token"].strip()
        self.script_length = int(api["script_length"])
        self.timeout = float(api["timeout"])
        self.ca_file = api["ca_file"].strip()
        self.allow_plain_http = api.getboolean("allow_plain_http")
        self.batch = api.getboolean("batch")
        self.batch_size = int(api["batch_size"])
        self.spool = slurm["spool"].strip()
        self.slurmd_spool = slurm["slurmd_spool"].strip()
        self.cluster = slurm["cluster"].strip()
        self.queue_dir = queue["dir"].strip()
        self.max_files = int(queue["max_files"])
        self.max_age = float(queue["max_age_days"]) * 86400
        self.backoff = float(queue["backoff"])
        self.interval = float(daemon["interval"])
        self.retry_interval = float(daemon["retry_interval"])
        self.state_file = daemon["state_file"].strip() or os.path.join(self.queue_dir, "daemon-state.json")

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
        elif self.host.startswith("http://") and not self.allow_plain_http and not is_loopback(self.host):
            found.append(
                "[api] host is plain http:// to another machine: the token would cross the network in clear; "
                "use https://, or set allow_plain_http = yes in [api] if that network is trusted"
            )
        if not self.token:
            found.append("[api] token is empty (manage.py create_service_account prints one)")
        if self.script_length < 1 or self.timeout <= 0 or self.max_files < 1 or not 1 <= self.batch_size <= 1000:
            found.append(
                "[api] script_length and timeout, and [queue] max_files, must be positive; [api] batch_size 1 to 1000"
            )
        return found

    @property
    def url(self):
        return self.host + "/api/jobscripts/"

    @property
    def batch_url(self):
        return self.host + "/api/jobscripts/batch/"


def is_loopback(url):
    """True when `url` names this machine (localhost, 127.0.0.0/8, ::1): plain http never leaves it."""
    try:
        name = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def world_readable(path):
    """True when "other" may read the file (its token would be every user's)."""
    try:
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False


def setup_logging(verbose, to_stderr):
    """Syslog (/dev/log) when it exists, else standard error."""
    handler = None  # type: Optional[logging.Handler]
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
