"""A server process builds at start what its first requests would otherwise build (userportal/warmup.py)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from django.template import engines
from django.test import override_settings

from userportal import warmup

ROOT = Path(__file__).resolve().parents[1]


def test_the_portals_own_templates_and_no_others():
    names = warmup.template_names()
    assert {"base.html", "jobstats/user.html", "jobstats/job.html", "home.html"} <= set(names)
    assert not [name for name in names if name.startswith(("admin/", "rest_framework/"))]
    assert all(name.endswith(warmup.TEMPLATE_SUFFIXES) for name in names)


def test_a_template_that_does_not_load_is_logged_and_the_others_are_loaded(tmp_path, caplog):
    (tmp_path / "broken.html").write_text("{% if %}")
    (tmp_path / "fine.html").write_text("fine")
    templates = [{**engines.templates["django"], "DIRS": [tmp_path]}]
    with override_settings(TEMPLATES=templates, BASE_DIR=tmp_path), caplog.at_level(logging.WARNING):
        engine = engines["django"].engine
        assert warmup.template_names() == ["broken.html", "fine.html"]
        warmup.templates()
        cached = engine.template_loaders[0].get_template_cache
    assert "template broken.html not loaded at start" in caplog.text
    assert any("fine.html" in str(key) for key in cached)


def test_a_new_server_process_is_warm_before_its_first_request(tmp_path):
    """In a process of its own, as the server loads it: every language's reversing tables, the
    patterns' regular expressions, the templates in the cached loader, the per-cluster models,
    the access tables; and the database connections it opened are closed again."""
    code = """
import userportal.wsgi
from django.conf import settings
from django.db import connections
from django.template import engines
from django.urls import get_resolver
from slurm.models import clusters
from userportal import access
resolver = get_resolver()
languages = {code for code, _name in settings.LANGUAGES}
cached = {str(key) for key in engines["django"].engine.template_loaders[0].get_template_cache}
print(
    set(resolver._reverse_dict) == languages,
    all("regex" in vars(p.pattern) or set(p.pattern._regex_dict) == languages for p in resolver.url_patterns),
    "jobstats/user.html" in cached and "base.html" in cached,
    set(clusters._cache) == set(settings.SLURM_CLUSTERS),
    access.route_table.cache_info().currsize == 1,
    all(connections[alias].connection is None for alias in connections),
)
"""
    env = {
        "SECRET_KEY": "x" * 50,
        "PORTAL_DEBUG": "true",
        "PORTAL_VAR_DIR": str(tmp_path),
        "SLURM_CLUSTERS": "alpha,beta",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True"] * 6
