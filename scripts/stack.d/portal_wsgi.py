"""WSGI entry point for the portal under the stack's Apache + mod_wsgi (written by scripts/stack).

mod_wsgi's SetEnv only reaches the WSGI environ, not os.environ, and the portal reads its settings
from os.environ: so the env files are loaded here, before Django is imported.
"""

import os
import shlex
import sys

ENV_FILES = "@ENV_FILES@".split("|")  # filled in by scripts/stack
REPO = "@REPO@"


def _load(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("export "):
                continue
            name, _, value = line[len("export ") :].partition("=")
            parts = shlex.split(value) if value else [""]
            os.environ[name.strip()] = parts[0] if parts else ""


for _path in ENV_FILES:
    _load(_path)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from userportal.wsgi import application  # noqa: E402,F401
