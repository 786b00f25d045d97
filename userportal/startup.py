"""Start-up failures in one line: ``portal: <SETTING>: <what is wrong>``, exit status 2.

manage.py (every command) and the WSGI entry point load the settings through here. A setting that
is missing or wrong (an ImproperlyConfigured from userportal/settings.py or its readers in
userportal/conf.py, or any other error raised while the settings module runs) becomes one line on
stderr naming the setting, instead of a traceback; ``--traceback`` on a command shows it anyway.

``manage.py <command> --help`` ends with the settings the command reads (COMMAND_SETTINGS, and
CORE_SETTINGS that every command reads).
"""

from __future__ import annotations

import gc
import os
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from django.core.exceptions import ImproperlyConfigured

EXIT_STATUS = 2

# What every command (and the web server) reads: the settings module needs them to start.
CORE_SETTINGS = (
    "SECRET_KEY (required unless PORTAL_DEBUG=true)",
    "PORTAL_DEBUG",
    "DATABASE_URL",
    "SLURMDB_URL",
    "ROBINHOOD_URL",
    "REDIS_URL",
    "PORTAL_MODULES",
    "PORTAL_VAR_DIR",
)
# What a command reads beyond CORE_SETTINGS (the portal's commands, and Django's that operators run).
COMMAND_SETTINGS: dict[str, tuple[str, ...]] = {
    "audit_verify": ("AUDIT_HMAC_KEY",),
    "create_dev_users": ("PORTAL_DEBUG",),
    "create_service_account": ("SLURM_CLUSTERS", "API_TOKEN_DAYS"),
    "drf_create_token": ("API_TOKEN_DAYS",),
    "staff_powers": (),
    "jobqueue_token": ("JOBQUEUE_TOKEN_MAX_DAYS",),
    "priorities_admins": (),
    "billing_slurm_roles": ("BILLING_ROLES_FROM_SLURM", "BILLING_ROLES_SOURCE", "SLURM_SACCTMGR"),
    "billing_job_index": ("BILLING_JOB_INDEX", "BILLING_JOB_INDEX_GRACE_SECONDS", "SLURM_CLUSTERS"),
    "priorities_reconcile": (
        "PRIORITIES_APPLY_MODE",
        "PRIORITIES_END_WARNING_HOURS",
        "SLURM_SACCTMGR",
        "SLURM_SACCTMGR_TIMEOUT",
        "SLURM_CLUSTERS",
        "EMAIL_URL",
    ),
    "outreach": (
        "OUTREACH_RULES",
        "OUTREACH_WINDOW_DAYS",
        "OUTREACH_PERIOD_DAYS",
        "OUTREACH_MAX_JOBS",
        "OUTREACH_JOBS_PER_MAIL",
        "OUTREACH_EMAIL_DOMAIN",
        "OUTREACH_BCC",
        "the rules' thresholds (OUTREACH_GPU_*, OUTREACH_CPU_*, OUTREACH_MEMORY_*, OUTREACH_SHORT_*, OUTREACH_TIMEOUT_*)",
        "SLURM_CLUSTERS",
        "PROMETHEUS_URL",
        "JOBSTATS_HARDWARE_COST_PER_CORE_HOUR",
        "JOBSTATS_HARDWARE_COST_PER_GPU_HOUR",
        "PORTAL_BASE_URL",
        "EMAIL_URL",
        "DEFAULT_FROM_EMAIL",
    ),
    "seed_demo": ("SLURM_CLUSTERS",),
    "seed_robinhood": ("SLURM_CLUSTERS",),
    "demo_prometheus": ("DEMO_PROMETHEUS_PORT", "DEMO_PROMETHEUS_HOURS"),
    "migrate": (),
    "check": ("every setting (check --deploy: PORTAL_HTTPS, AUDIT_HMAC_KEY, REDIS_URL, PORTAL_CACHE_URL)",),
    "collectstatic": ("PORTAL_STATIC_ROOT", "PORTAL_MANIFEST_STATIC"),
    "dumpdata": (),
    "loaddata": (),
    "createsuperuser": (),
}

# A setting's name: upper case words joined by underscores (SECRET_KEY, PORTAL_DEBUG).
_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
_HERE = Path(__file__).resolve().parent
_SETTINGS_FILES = {_HERE / "settings.py", _HERE / "settings_test.py", _HERE / "conf.py"}


def describe(exc: BaseException) -> tuple[str, str]:
    """(setting, what is wrong) for an error raised while the settings load or a command starts."""
    message = " ".join(str(exc).split())
    setting = getattr(exc, "setting", None)
    if isinstance(exc, ModuleNotFoundError) and exc.name == os.environ.get("DJANGO_SETTINGS_MODULE"):
        return "DJANGO_SETTINGS_MODULE", f"no module named {exc.name!r}"
    if setting is None:
        leading = _NAME.match(message)
        if leading:
            setting = leading.group(0)
            message = message[leading.end() :].lstrip(" :")
            message = message[1:] if message.startswith("=") else message
            message = message[3:] if message.startswith("is ") else message
    if setting is None:
        setting = _setting_in_traceback(exc)
    if setting is None:
        found = _NAME.search(message)
        setting = found.group(0) if found else "settings"
    if not isinstance(exc, ImproperlyConfigured):
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return setting, message or "invalid value"


def _setting_in_traceback(exc: BaseException) -> str | None:
    """The setting named on the settings module's line that raised (e.g. ``env.dict("JOBQUEUE_IP_RATES", ...)``)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() in _SETTINGS_FILES and frame.line:
            found = re.search(r"""["']([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)["']""", frame.line) or re.match(
                r"\s*([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\s*=", frame.line
            )
            if found:
                return found.group(1)
    return None


def one_line(exc: BaseException) -> str:
    setting, what = describe(exc)
    return f"portal: {setting}: {what}"


def load_settings() -> None:
    """Import the settings module now (Django would on first use): raises what it raises."""
    from django.conf import settings

    _ = settings.INSTALLED_APPS  # the first access runs the settings module


def fail(exc: BaseException, stream: TextIO | None = None) -> int:
    print(one_line(exc), file=stream or sys.stderr)
    return EXIT_STATUS


def help_epilogue(argv: Sequence[str]) -> str:
    command = argv[1] if len(argv) > 1 and not argv[1].startswith("-") else ""
    if command == "help" and len(argv) > 2:
        command = argv[2]
    own = COMMAND_SETTINGS.get(command, ())
    lines = []
    if own:
        lines.append(f"Settings this command reads: {', '.join(own)}.")
    lines.append(
        f"Every command reads (from the environment; README, settings table): {', '.join(CORE_SETTINGS)}. "
        "A missing or bad setting stops it with one line, 'portal: <SETTING>: <what is wrong>', exit status 2."
    )
    return "\n".join(lines)


def run_command(argv: list[str]) -> int:
    """manage.py: the command's exit status; 2 with one line on stderr for a bad setting."""
    from django.core.management import execute_from_command_line

    show_traceback = "--traceback" in argv
    asks_help = any(arg in ("-h", "--help") for arg in argv[1:]) or (len(argv) > 1 and argv[1] == "help")
    try:
        load_settings()
        execute_from_command_line(argv)
    except SystemExit as exc:  # argparse's --help exits 0 once it has printed
        if asks_help and exc.code in (0, None):
            sys.stdout.write("\n" + help_epilogue(argv) + "\n")
        raise
    except ImproperlyConfigured as exc:
        if show_traceback:
            raise
        return fail(exc)
    except Exception as exc:
        if show_traceback or not _raised_in_settings(exc):
            raise
        return fail(exc)
    if asks_help:
        sys.stdout.write("\n" + help_epilogue(argv) + "\n")
    return 0


def _raised_in_settings(exc: BaseException) -> bool:
    if isinstance(exc, ModuleNotFoundError) and exc.name == os.environ.get("DJANGO_SETTINGS_MODULE"):
        return True
    return any(Path(frame.filename).resolve() in _SETTINGS_FILES for frame in traceback.extract_tb(exc.__traceback__))


def settle_heap() -> None:
    """Import the views, build what first requests would build, and move it all out of the garbage collector's sight.

    What Django builds at start (settings, apps, URL patterns, views, models, and what
    userportal.warmup prepares: reversing tables, catalogues, templates) lives as long as the
    process; left to the collector, each full collection walks all of it: 100-140 ms on a jobs
    page, about one request in 250 (the slowest requests measured). gc.freeze() is the standard
    library's answer for a server's long-lived start-up objects.
    """
    from django.urls import get_resolver

    from userportal import warmup

    get_resolver().url_patterns  # noqa: B018  # imports every app's urls and views
    warmup.warm()
    gc.collect()
    gc.freeze()


def wsgi_application() -> object:
    """The WSGI application; a bad setting prints its one line (the server's error log) and exits 2."""
    import django

    try:
        load_settings()
        django.setup(set_prefix=False)  # as django.core.wsgi.get_wsgi_application, with the token POSTs' handler
        from userportal.token_posts import TokenPostHandler

        application = TokenPostHandler()
        settle_heap()
        return application
    except Exception as exc:
        if not isinstance(exc, ImproperlyConfigured) and not _raised_in_settings(exc):
            raise
        fail(exc)
        sys.stderr.flush()
        raise SystemExit(EXIT_STATUS) from None
