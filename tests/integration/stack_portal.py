"""The stack's own portal (Apache and Celery): its settings and its database, for the stack tests."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


def daemon_env(stack_dir: Path) -> dict[str, str]:
    """The settings of the stack's Apache and Celery (etc/portal/daemon.env)."""
    env = {}
    for line in (stack_dir / "etc" / "portal" / "daemon.env").read_text().splitlines():
        match = re.match(r"^export ([A-Z_]+)=(.*)$", line)
        if match:
            env[match.group(1)] = shlex.split(match.group(2))[0] if match.group(2) else ""
    return env


def connect_portal_db(stack_dir: Path) -> Any:
    """A new connection to the stack portal's database (MariaDB: the one Apache and Celery write to)."""
    import MySQLdb

    url = urlsplit(daemon_env(stack_dir)["DATABASE_URL"])
    return MySQLdb.connect(
        host=url.hostname,
        port=url.port or 3306,
        user=unquote(url.username or ""),
        passwd=unquote(url.password or ""),
        db=url.path.lstrip("/"),
        connect_timeout=5,
    )
