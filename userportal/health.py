"""Checks of each data source for the health endpoint and the home page."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections

from userportal.prometheus import get_client


@dataclass(frozen=True)
class SourceStatus:
    name: str
    ok: bool
    latency_ms: float
    detail: str = ""


def _timed(name: str, check: Callable[[], None]) -> SourceStatus:
    started = time.monotonic()
    try:
        check()
    except Exception as exc:
        return SourceStatus(name, False, round((time.monotonic() - started) * 1000, 1), f"{type(exc).__name__}: {exc}")
    return SourceStatus(name, True, round((time.monotonic() - started) * 1000, 1))


def _database(alias: str) -> Callable[[], None]:
    def check() -> None:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return check


def _prometheus() -> None:
    if not get_client().ready():
        raise ConnectionError(f"{settings.PROMETHEUS_URL} is not ready")


def _redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


CACHE_KEY = "portal:health"
CACHE_SECONDS = 10


def check_sources() -> list[SourceStatus]:
    """Each source's status, cached briefly: /health/ is public, and a dead source costs a timeout."""
    cached = cache.get(CACHE_KEY)
    if cached is not None:
        return list(cached)
    statuses = _check_sources()
    cache.set(CACHE_KEY, statuses, CACHE_SECONDS)
    return statuses


def _check_sources() -> list[SourceStatus]:
    return [
        _timed("portal_db", _database("default")),
        _timed("slurmdb", _database("slurm")),
        _timed("prometheus", _prometheus),
        _timed("redis", _redis),
    ]


__all__ = ["DatabaseError", "SourceStatus", "check_sources"]
