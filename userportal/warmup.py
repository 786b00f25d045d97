"""What a new server process prepares before its first request.

Django builds several things on first use: each language's URL reversing tables (of every
namespace), the translation catalogues, and each template (read, parsed and folded by the cached
loader). Left to the first requests, a process that was just started (a deploy, a restart,
mod_wsgi's maximum-requests) answers its first pages several times slower than the next ones
(bench/jobstats, a fresh gunicorn worker: the light user's page 72 ms against 10, the jobs API's
first page 35 ms against 6). ``warm()`` builds them when the process starts: the WSGI entry point
calls it (userportal/startup.py) before freezing the start-up heap, so what it builds is also out
of the garbage collector's sight. Only the portal's own templates are loaded (not the admin's or
DRF's); a template that does not load is logged and left to its request, which shows the error.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router
from django.template import TemplateDoesNotExist, TemplateSyntaxError, engines
from django.urls import URLResolver, get_resolver
from django.utils import formats, translation
from django.utils.module_loading import import_string

from userportal import access, metrics_store

log = logging.getLogger(__name__)

TEMPLATE_SUFFIXES = (".html", ".txt")


def warm() -> None:
    for config in apps.get_app_configs():  # first: a model class made later empties every model's tables
        warm_up = getattr(config, "warm_up", None)
        if callable(warm_up):
            try:
                warm_up()
            except Exception:  # what it did not build is built by the first requests (which show any error)
                log.warning("%s's warm-up failed", config.label, exc_info=True)
    for model in apps.get_models():
        model._meta.get_fields()  # the fields and relation tables of every model
    for alias in settings.CACHES:
        try:  # the backend, and its connection (a Redis client's pool notices a fork: gunicorn --preload)
            caches[alias].get("warmup:connect")
        except Exception as exc:  # a cache that is down is left to the requests (they say so)
            log.warning("cache %s not reached at start: %s", alias, exc)
    import_string(settings.MESSAGE_STORAGE)
    metrics_store.start_flusher()  # the /metrics counts' background flusher (a forked process starts its own)
    database_drivers()
    api_settings()
    reverse_tables()
    templates()


def database_drivers() -> None:
    """Each database's driver and SQL compiler modules (imported on first use), by opening and closing a connection.

    Closed again: a server that forks after loading the application (gunicorn --preload) must not
    share a connection between processes. A database that is down is left to the requests.
    """
    router.routers  # noqa: B018  # DATABASE_ROUTERS, imported on first use
    for alias in connections:
        connection = connections[alias]
        try:
            connection.ensure_connection()
            connection.ops.compiler("SQLCompiler")
        except (DatabaseError, ImproperlyConfigured) as exc:  # down, or a database not configured (dummy)
            log.warning("database %s not reached at start: %s", alias, exc)
        finally:
            connection.close()


def api_settings() -> None:
    """The API's configured classes (authentication, permissions, renderers...), imported on first use."""
    from rest_framework.settings import api_settings as configured

    for name in configured.defaults:
        getattr(configured, name)


def each_language() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def reverse_tables() -> None:
    """Every resolver's reversing tables and patterns' regular expressions, in every language (each has its own), and the access rules' tables."""

    def walk(resolver: URLResolver) -> None:
        resolver.reverse_dict  # noqa: B018  # builds this language's reverse, namespace and app tables
        for pattern in resolver.url_patterns:
            pattern.pattern.regex  # noqa: B018  # compiled on its first match, per language
            if isinstance(pattern, URLResolver):
                walk(pattern)

    for code in each_language():
        with translation.override(code):
            walk(get_resolver())
            formats.get_format_modules(code)  # the language's date and number formats
    access.route_table()
    access.permission_table()


def template_names() -> list[str]:
    """The names of the portal's own templates (its templates/ and its apps' ones), as the loaders find them."""
    base = Path(settings.BASE_DIR).resolve()
    names: set[str] = set()
    for backend in engines.all():
        for loader in getattr(getattr(backend, "engine", None), "template_loaders", []):
            for directory in getattr(loader, "get_dirs", list)():
                root = Path(directory).resolve()
                if not root.is_relative_to(base) or ".venv" in root.relative_to(base).parts:
                    continue
                names.update(
                    path.relative_to(root).as_posix()
                    for path in root.rglob("*")
                    if path.suffix in TEMPLATE_SUFFIXES and path.is_file()
                )
    return sorted(names)


def templates() -> None:
    """Load (read, parse, fold) each of the portal's templates into the cached loader; import the context processors."""
    for backend in engines.all():
        getattr(getattr(backend, "engine", None), "template_context_processors", None)
        for name in template_names():
            try:
                backend.get_template(name)
            except (TemplateDoesNotExist, TemplateSyntaxError) as exc:
                log.warning("template %s not loaded at start: %s", name, exc)
