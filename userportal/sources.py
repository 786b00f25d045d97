"""Remembering for a short while that a data source is down.

A dead source costs every request its timeout. Once one request has seen it fail, the failure is
kept in the shared cache for a few seconds, so every worker's next pages show their notice at
once instead of waiting again; after that one request asks again. Prometheus (the metrics
session) and the quotas' LDAP directory both use it, each under its own key.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache

DOWN_SECONDS = 30


@dataclass(frozen=True)
class DownMemory:
    """The memory of one source's failure: ``key`` in the cache, for ``seconds``."""

    key: str
    seconds: int = DOWN_SECONDS

    def recent(self) -> bool:
        """True while a failure of the source is remembered."""
        return bool(cache.get(self.key))

    def remember(self) -> None:
        cache.set(self.key, True, self.seconds)
