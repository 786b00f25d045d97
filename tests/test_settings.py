"""Settings come from the environment and fail loudly on bad values."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from userportal.conf import str_list, strict_bool, strict_choice, strict_float, strict_int

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("Yes", True), ("1", True), ("off", False), ("0", False)]
)
def test_strict_bool_reads_clear_values(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert strict_bool("X_FLAG", default=not expected) is expected


def test_strict_bool_refuses_a_typo(monkeypatch):
    monkeypatch.setenv("X_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='ture' is not a boolean"):
        strict_bool("X_FLAG", default=False)


def test_strict_int_names_the_variable_and_the_bound(monkeypatch):
    monkeypatch.setenv("X_INT", "abc")
    with pytest.raises(ImproperlyConfigured, match="X_INT='abc' is not an integer"):
        strict_int("X_INT", default=1)
    monkeypatch.setenv("X_INT", "-3")
    with pytest.raises(ImproperlyConfigured, match="below the minimum 0"):
        strict_int("X_INT", default=1, minimum=0)


def test_strict_float_and_choice(monkeypatch):
    monkeypatch.setenv("X_F", "2.5")
    assert strict_float("X_F", default=1.0) == 2.5
    monkeypatch.setenv("X_C", "verbose")
    with pytest.raises(ImproperlyConfigured, match="must be one of: INFO, DEBUG"):
        strict_choice("X_C", default="INFO", choices=("INFO", "DEBUG"))


def test_str_list_strips_and_drops_empty_items(monkeypatch):
    monkeypatch.setenv("X_L", " a, b ,,c ")
    assert str_list("X_L") == ["a", "b", "c"]


def _settings_in_subprocess(then: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """Set Django up in a fresh interpreter with ``env``, then run the Python statement ``then``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "SLURM", "OIDC_", "AUTH_LDAP"))}
    for name in ("SECRET_KEY", "REDIS_URL", "JOBQUEUE_CACHE_URL"):
        clean.pop(name, None)
    clean.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='userportal.settings'; django.setup()\n" + then,
        ],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_without_secret_key_refuses_to_start():
    result = _settings_in_subprocess()
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_bad_boolean_stops_start_up_with_its_name():
    result = _settings_in_subprocess(PORTAL_DEBUG="ture")
    assert result.returncode != 0
    assert "PORTAL_DEBUG='ture' is not a boolean" in result.stderr


def test_unknown_module_is_refused():
    result = _settings_in_subprocess(PORTAL_DEBUG="true", PORTAL_MODULES="jobstats,nosuch")
    assert "unknown module 'nosuch'" in result.stderr


def test_oidc_without_endpoints_is_refused():
    result = _settings_in_subprocess(PORTAL_DEBUG="true", OIDC_RP_CLIENT_ID="portal")
    assert "OIDC_OP_AUTHORIZATION_ENDPOINT" in result.stderr


def test_development_defaults_start(tmp_path):
    result = _settings_in_subprocess(PORTAL_DEBUG="true", PORTAL_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr


def test_demo_app_is_installed_only_in_development(tmp_path):
    show = "from django.apps import apps; print('demo installed:', apps.is_installed('demo'))"
    development = _settings_in_subprocess(show, PORTAL_DEBUG="true", PORTAL_VAR_DIR=str(tmp_path))
    production = _settings_in_subprocess(show, SECRET_KEY="x" * 50, PORTAL_VAR_DIR=str(tmp_path))
    assert "demo installed: True" in development.stdout, development.stderr
    assert "demo installed: False" in production.stdout, production.stderr


def test_readme_documents_every_environment_variable():
    sources = (ROOT / "userportal" / "settings.py").read_text() + (
        ROOT / "userportal" / "auth" / "ldap_settings.py"
    ).read_text()
    names = set(re.findall(r'(?:strict_\w+|str_list|env\.\w+)\("([A-Z][A-Z0-9_]+)"', sources))
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    assert len(names) > 40
    assert sorted(names - documented) == []


def test_ldap_in_clear_over_the_network_is_refused():
    result = _settings_in_subprocess(
        PORTAL_DEBUG="true", AUTH_LDAP_SERVER_URI="ldap://ldap.example.org", AUTH_LDAP_USER_SEARCH_BASE="dc=x"
    )
    assert result.returncode != 0
    assert "would send passwords in clear" in result.stderr
    ok = _settings_in_subprocess(
        PORTAL_DEBUG="true",
        AUTH_LDAP_SERVER_URI="ldap://ldap.example.org",
        AUTH_LDAP_START_TLS="true",
        AUTH_LDAP_USER_SEARCH_BASE="dc=x",
    )
    assert ok.returncode == 0, ok.stderr


def test_rate_limits_count_in_redis_whenever_redis_url_is_set():
    show = "from django.conf import settings; c = settings.CACHES['throttle']; print(c['BACKEND'], c['LOCATION'])"
    redis = _settings_in_subprocess(show, PORTAL_DEBUG="true", REDIS_URL="redis://127.0.0.1:6399/4")
    # Django's backends, counting their hits and misses for /metrics (userportal/cache_backends.py)
    assert redis.stdout.split() == ["userportal.cache_backends.RedisCache", "redis://127.0.0.1:6399/4"]
    local = _settings_in_subprocess(show, PORTAL_DEBUG="true")
    assert local.stdout.split() == ["userportal.cache_backends.LocMemCache", "throttle"]


def test_the_default_cache_and_the_metrics_are_on_redis_whenever_redis_url_is_set():
    show = "from django.conf import settings; print(settings.CACHES['default']['LOCATION'], settings.PORTAL_METRICS_REDIS_URL)"
    redis = _settings_in_subprocess(show, PORTAL_DEBUG="true", REDIS_URL="redis://127.0.0.1:6399/4")
    assert redis.stdout.split() == ["redis://127.0.0.1:6399/4", "redis://127.0.0.1:6399/4"]
    local = _settings_in_subprocess(show, PORTAL_DEBUG="true")
    assert local.stdout.split() == ["portal"]  # a memory cache, and metrics in each process


def test_an_extension_larger_than_the_total_is_refused(tmp_path):
    result = _settings_in_subprocess(
        PORTAL_DEBUG="true", PORTAL_VAR_DIR=str(tmp_path), EXTENSIONS_MAX_HOURS="48", EXTENSIONS_MAX_TOTAL_HOURS="24"
    )
    assert result.returncode != 0
    assert "EXTENSIONS_MAX_HOURS=48 is more than EXTENSIONS_MAX_TOTAL_HOURS=24" in result.stderr
    same = _settings_in_subprocess(
        PORTAL_DEBUG="true", PORTAL_VAR_DIR=str(tmp_path), EXTENSIONS_MAX_HOURS="24", EXTENSIONS_MAX_TOTAL_HOURS="24"
    )
    assert same.returncode == 0, same.stderr
