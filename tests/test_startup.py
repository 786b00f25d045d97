"""manage.py and the WSGI start-up: a missing or bad setting is one line naming it, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from userportal import startup

ROOT = Path(__file__).resolve().parent.parent


def _production_env(tmp_path: Path, **env: str) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "SLURM", "OIDC_", "AUTH_LDAP", "DJANGO_", "JOBQUEUE", "CLOUDSTATS", "PAGES_"))
    }
    for name in ("SECRET_KEY", "REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL"):
        clean.pop(name, None)
    clean["PORTAL_VAR_DIR"] = str(tmp_path)
    clean.update(env)
    return clean


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_production_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_manage_py_without_secret_key_in_production_prints_one_line(tmp_path):
    result = _manage(tmp_path, "check")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "portal: SECRET_KEY: not set: set it (or SECRET_KEY_FILE, a file holding it) when PORTAL_DEBUG is false."
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["migrate", "staff_powers", "jobqueue_token"])
def test_every_command_fails_the_same_way(tmp_path, command):
    result = _manage(tmp_path, command, "list")
    assert result.returncode == 2
    assert result.stderr.startswith("portal: SECRET_KEY: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_value_names_its_setting(tmp_path):
    result = _manage(tmp_path, "check", SECRET_KEY="x" * 50, PORTAL_CONN_MAX_AGE="soon")
    assert result.returncode == 2
    assert result.stderr.strip() == "portal: PORTAL_CONN_MAX_AGE: 'soon' is not an integer."


def test_an_error_other_than_improperly_configured_in_settings_names_the_setting(tmp_path):
    # env.dict() raises a ValueError on an item without "=": the line of settings.py names the variable
    result = _manage(tmp_path, "check", PORTAL_DEBUG="true", JOBQUEUE_IP_RATES="submit")
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line.startswith("portal: JOBQUEUE_IP_RATES: ValueError"), line
    assert len(line.splitlines()) == 1


def test_traceback_flag_shows_the_whole_error(tmp_path):
    result = _manage(tmp_path, "check", "--traceback")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_help_says_which_settings_a_command_reads(tmp_path):
    result = _manage(tmp_path, "jobqueue_token", "--help", PORTAL_DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "Settings this command reads: JOBQUEUE_TOKEN_MAX_DAYS." in result.stdout
    assert "Every command reads" in result.stdout and "SECRET_KEY" in result.stdout


def test_every_portal_command_declares_its_settings():
    commands = {path.stem for path in ROOT.glob("*/management/commands/[a-z]*.py")}
    assert commands and sorted(commands - set(startup.COMMAND_SETTINGS)) == []


def test_wsgi_start_up_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import userportal.wsgi"],
        cwd=ROOT,
        env=_production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "portal: SECRET_KEY: not set: set it (or SECRET_KEY_FILE, a file holding it) when PORTAL_DEBUG is false."
    ]


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (ImproperlyConfigured("PORTAL_DEBUG='ture' is not a boolean: use true or false."),
         "portal: PORTAL_DEBUG: 'ture' is not a boolean: use true or false."),
        (ImproperlyConfigured("QUOTAS_SOURCE=file needs QUOTAS_FILE."), "portal: QUOTAS_SOURCE: file needs QUOTAS_FILE."),
        (ImproperlyConfigured("OIDC_RP_CLIENT_ID is set but these are\nmissing: OIDC_OP_TOKEN_ENDPOINT."),
         "portal: OIDC_RP_CLIENT_ID: set but these are missing: OIDC_OP_TOKEN_ENDPOINT."),
        (ImproperlyConfigured("The portal needs\nno name here"), "portal: settings: The portal needs no name here"),
    ],
)  # fmt: skip
def test_one_line_of_an_error(exc, line):
    assert startup.one_line(exc) == line


def test_the_wsgi_application_starts_with_its_views_imported_and_its_heap_frozen(tmp_path):
    """A server's process starts with the URL conf and views loaded and its start-up objects out of the
    collector's sight (gc.freeze: no full collection walks them during a request); its application is
    TokenPostHandler (userportal/token_posts.py). In a process of its own: never import userportal.wsgi
    in the test process."""
    code = (
        "import gc, sys; import userportal.wsgi; from userportal.token_posts import TokenPostHandler; "
        "print(gc.get_freeze_count() > 10000, 'jobstats.views' in sys.modules, 'jobstats.api' in sys.modules, "
        "isinstance(userportal.wsgi.application, TokenPostHandler))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_production_env(tmp_path, SECRET_KEY="x" * 50, PORTAL_DEBUG="true"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True", "True", "True"]  # the last: the token uploads' handler
