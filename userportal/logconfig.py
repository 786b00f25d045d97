"""The portal's LOGGING: the console always, a log file when PORTAL_LOG_FILE names one.

The file rotates by size (PORTAL_LOG_FILE_MAX_BYTES, PORTAL_LOG_FILE_BACKUPS kept) with Python's
RotatingFileHandler; with PORTAL_LOG_FILE_MAX_BYTES=0 it never rotates itself and is reopened when
logrotate has moved it (WatchedFileHandler). Size rotation is per process: give processes that run
at once (the web server's, Celery's worker and beat) a file each, or use logrotate.

Imported by settings.py: it must not import Django's apps.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logging_config(level: str, log_file: str = "", max_bytes: int = 0, backups: int = 0) -> dict[str, Any]:
    """The LOGGING dict: root at `level` on the console, and on `log_file` when it is set."""
    handlers: dict[str, dict[str, Any]] = {"console": {"class": "logging.StreamHandler", "formatter": "plain"}}
    if log_file:
        directory = os.path.dirname(os.path.abspath(log_file))
        if not os.path.isdir(directory):
            raise ImproperlyConfigured(f"PORTAL_LOG_FILE={log_file!r}: the directory {directory} does not exist.")
        if max_bytes:
            handlers["file"] = {
                "class": "logging.handlers.RotatingFileHandler",
                "filename": log_file,
                "maxBytes": max_bytes,
                "backupCount": backups,
                "encoding": "utf-8",
                "formatter": "plain",
            }
        else:
            handlers["file"] = {
                "class": "logging.handlers.WatchedFileHandler",
                "filename": log_file,
                "encoding": "utf-8",
                "formatter": "plain",
            }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": FORMAT}},
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        # axes announces itself at INFO on every start; its warnings and lockouts still show.
        "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
    }
